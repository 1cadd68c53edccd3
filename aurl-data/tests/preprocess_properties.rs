//! Properties of the preprocessing steps on arbitrary scores.

mod common;

use aurl_core::{Score, Tick};
use aurl_data::preprocess::{
    GridChoice, OutOfRange, PitchRange, Preprocessing, QuantizeConfig, VelocityNorm, clamp_pitches,
    max_polyphony, normalize_velocities, preprocess, quantize, reduce_polyphony,
};
use common::strategies::score;
use proptest::prelude::*;

fn grid() -> impl Strategy<Value = GridChoice> {
    prop_oneof![
        Just(GridChoice::Straight),
        Just(GridChoice::Triplet),
        Just(GridChoice::Both),
        Just(GridChoice::Adaptive),
    ]
}

fn onsets(s: &Score) -> Vec<Vec<Tick>> {
    s.tracks
        .iter()
        .map(|t| t.notes.iter().map(|n| n.start).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn strict_quantization_is_idempotent_and_never_empties_a_note(
        s in score(), g in grid(), steps in 1u16..=12, triplet in 1u16..=12,
    ) {
        let config = QuantizeConfig { grid: g, steps_per_quarter: steps, triplet_steps_per_quarter: triplet, strength: 1.0 };
        let mut once = s.clone();
        let report = quantize(&mut once, &config).unwrap();
        prop_assert_eq!(once.note_count(), s.note_count());
        prop_assert!(once.tracks.iter().flat_map(|t| &t.notes).all(|n| n.duration > 0));
        // Quantize again with the grid the first pass chose: nothing moves.
        let again = QuantizeConfig { grid: report.grid.unwrap(), ..config };
        let mut twice = once.clone();
        let r2 = quantize(&mut twice, &again).unwrap();
        prop_assert_eq!(r2.moved, 0);
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn groove_quantization_shrinks_every_offset_by_the_strength(
        mut s in score(), strength in 0.0f64..1.0,
    ) {
        for t in &mut s.tracks {
            t.notes.sort_by_key(|n| n.start);
        }
        let strict = QuantizeConfig { grid: GridChoice::Straight, strength: 1.0, ..QuantizeConfig::default() };
        let groove = QuantizeConfig { strength, ..strict };
        let mut snapped = s.clone();
        quantize(&mut snapped, &strict).unwrap();
        let mut grooved = s.clone();
        quantize(&mut grooved, &groove).unwrap();
        for ((orig, snap), groove) in onsets(&s).iter().zip(onsets(&snapped)).zip(onsets(&grooved)) {
            for ((&o, &q), &g) in orig.iter().zip(&snap).zip(&groove) {
                let expected = (1.0 - strength) * o.abs_diff(q) as f64;
                prop_assert!((g.abs_diff(q) as f64 - expected).abs() <= 1.0, "{o} {q} {g}");
            }
        }
    }

    #[test]
    fn polyphony_is_bounded_and_extremes_survive(s in score(), voices in 1usize..5) {
        for t in s.tracks.iter().filter(|t| !t.notes.is_empty()) {
            let mut reduced = t.clone();
            reduce_polyphony(&mut reduced, voices);
            prop_assert!(max_polyphony(&reduced) <= voices);
            let lowest = t.notes.iter().map(|n| n.pitch).min();
            prop_assert_eq!(reduced.notes.iter().map(|n| n.pitch).min(), lowest);
            if voices >= 2 {
                let highest = t.notes.iter().map(|n| n.pitch).max();
                prop_assert_eq!(reduced.notes.iter().map(|n| n.pitch).max(), highest);
            }
            // Every kept note is an input note, possibly shortened.
            for n in &reduced.notes {
                prop_assert!(t.notes.iter().any(|m| m.pitch == n.pitch && m.start == n.start
                    && m.velocity == n.velocity && m.duration >= n.duration));
            }
        }
    }

    #[test]
    fn velocity_normalization_keeps_the_order_within_each_track(
        mut s in score(), mean in 20.0f64..110.0, spread in 0.0f64..40.0,
    ) {
        let before = s.clone();
        normalize_velocities(&mut s, &VelocityNorm::PerTrack { mean, spread }).unwrap();
        for (a, b) in before.tracks.iter().zip(&s.tracks) {
            for (i, j) in (0..a.notes.len()).flat_map(|i| (0..a.notes.len()).map(move |j| (i, j))) {
                if a.notes[i].velocity < a.notes[j].velocity {
                    prop_assert!(b.notes[i].velocity <= b.notes[j].velocity);
                }
            }
        }
    }

    #[test]
    fn clamped_scores_lie_in_the_range_and_counts_add_up(
        mut s in score(), low in 0u8..=60, width in 0u8..=67, fold in any::<bool>(),
    ) {
        let range = PitchRange {
            low,
            high: low + width,
            out_of_range: if fold { OutOfRange::Fold } else { OutOfRange::Drop },
        };
        let before = s.note_count();
        let report = clamp_pitches(&mut s, &range).unwrap();
        prop_assert_eq!(s.note_count() + report.dropped, before);
        for t in s.tracks.iter().filter(|t| !t.is_drum) {
            prop_assert!(t.notes.iter().all(|n| (low..=low + width).contains(&n.pitch.get())));
        }
        if fold && width >= 11 {
            prop_assert_eq!(report.dropped, 0, "an octave-wide range holds every pitch class");
        }
    }

    #[test]
    fn any_valid_pipeline_runs_and_only_removes_notes(
        mut s in score(), voices in proptest::option::of(1usize..4), melody in any::<bool>(),
        pedal in any::<bool>(), q in any::<bool>(),
    ) {
        let config = Preprocessing {
            sustain_pedal: pedal,
            max_voices: voices,
            melody_only: melody,
            quantize: q.then(QuantizeConfig::default),
            pitch_range: Some(PitchRange::default()),
            velocity: VelocityNorm::PerTrack { mean: 70.0, spread: 15.0 },
            ..Preprocessing::default()
        };
        let before = s.note_count();
        let report = preprocess(&mut s, &config).unwrap();
        prop_assert_eq!(report.notes_before, before);
        prop_assert_eq!(report.notes_after, s.note_count());
        prop_assert!(report.notes_after <= before);
        if melody {
            prop_assert!(s.tracks.len() <= 1);
            prop_assert!(s.tracks.iter().all(|t| max_polyphony(t) <= 1));
        }
    }
}
