//! Metric invariants over random scores: every metric is finite and in its range, musical
//! metrics ignore transposition, and the plagiarism index finds a piece inside itself.

use aurl_core::analysis::{estimate_key, intervals, melody, skyline};
use aurl_core::metrics::{
    MelodyIndex, PIECE_METRICS, compare_sets, piece_metrics, pitch_class_entropy, pitch_entropy,
    pitch_range, polyphony, scale_consistency,
};
use aurl_core::{Note, Pitch, Score, TimeSignature, Track, Velocity};
use proptest::prelude::*;

fn track(tpq: u64) -> impl Strategy<Value = Track> {
    (
        any::<bool>(),
        prop::collection::vec(
            (30u8..=90, 0..tpq * 32, prop_oneof![Just(0u64), 1..tpq * 8]),
            0..40,
        ),
    )
        .prop_map(|(drum, notes)| {
            let mut t = if drum {
                Track::drums("d")
            } else {
                Track::new("p")
            };
            t.notes = notes
                .into_iter()
                .map(|(p, s, d)| {
                    Note::new(Pitch::new(p).unwrap(), Velocity::new(64).unwrap(), s, d)
                })
                .collect();
            t
        })
}

fn score() -> impl Strategy<Value = Score> {
    (
        prop_oneof![Just(4u16), Just(96), Just(480), 3u16..=960],
        0usize..4,
        any::<bool>(),
    )
        .prop_flat_map(|(tpq, tracks, waltz)| {
            prop::collection::vec(track(u64::from(tpq)), tracks).prop_map(move |tracks| {
                let mut s = Score::new(tpq);
                if waltz {
                    s.time_signatures.push(TimeSignature::new(0, 3, 4).unwrap());
                }
                s.tracks = tracks;
                s
            })
        })
}

fn transposed(score: &Score, k: i32) -> Score {
    let mut s = score.clone();
    for t in s.tracks.iter_mut().filter(|t| !t.is_drum) {
        for n in &mut t.notes {
            n.pitch = n.pitch.transposed(k).unwrap();
        }
    }
    s
}

/// Metrics that are shares, rates or correlations, with their bounds.
fn bounds(name: &str) -> Option<(f64, f64)> {
    match name {
        "pitch_class_entropy" => Some((0.0, 12f64.log2() + 1e-9)),
        "key_clarity" => Some((-1.0, 1.0)),
        n if n.ends_with("_rate") || n.ends_with("consistency") || n.ends_with("coverage") => {
            Some((0.0, 1.0))
        }
        "bar_self_similarity" => Some((0.0, 1.0 + 1e-9)),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_metric_is_finite_and_in_range(s in score()) {
        for (name, value) in PIECE_METRICS.iter().zip(piece_metrics(&s)) {
            if let Some(v) = value {
                prop_assert!(v.is_finite(), "{name} = {v}");
                if let Some((lo, hi)) = bounds(name) {
                    prop_assert!(v >= lo - 1e-12 && v <= hi + 1e-12, "{name} = {v}");
                }
            }
        }
    }

    #[test]
    fn pitch_metrics_ignore_transposition(s in score(), k in -12i32..=12) {
        let t = transposed(&s, k);
        prop_assert_eq!(pitch_range(&s), pitch_range(&t));
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            (a, b) => a.is_none() && b.is_none(),
        };
        prop_assert!(close(pitch_entropy(&s), pitch_entropy(&t)));
        prop_assert!(close(pitch_class_entropy(&s), pitch_class_entropy(&t)));
        prop_assert!(close(scale_consistency(&s), scale_consistency(&t)));
        prop_assert!(close(polyphony(&s), polyphony(&t)));
        prop_assert_eq!(intervals(&melody(&s)), intervals(&melody(&t)));
        let (a, b) = (estimate_key(&s), estimate_key(&t));
        prop_assert!(close(a.map(|k| k.correlation), b.map(|k| k.correlation)));
    }

    #[test]
    fn a_piece_is_found_whole_in_an_index_holding_it(s in score(), other in score()) {
        let mut index = MelodyIndex::new();
        index.add("other", &other);
        index.add("self", &s);
        let longest = s
            .tracks
            .iter()
            .filter(|t| !t.is_drum)
            .map(|t| skyline(&t.notes).len())
            .max()
            .unwrap_or(0);
        let found = index.longest_shared(&s);
        if longest >= 2 {
            prop_assert_eq!(found.map(|f| f.notes), Some(longest));
        } else {
            prop_assert!(found.is_none());
        }
    }

    #[test]
    fn set_comparison_is_bounded_and_reflexive(a in prop::collection::vec(-100.0f64..100.0, 1..40),
                                                b in prop::collection::vec(-100.0f64..100.0, 1..40)) {
        let c = compare_sets(&a, &b).unwrap();
        prop_assert!((0.0..=1.0).contains(&c.overlap) && c.kl_divergence >= 0.0);
        let same = compare_sets(&a, &a).unwrap();
        prop_assert!(same.overlap > 0.99 && same.kl_divergence < 1e-6, "{:?}", same);
    }
}
