//! Properties of augmentation: determinism, the input untouched, and every transform's
//! invariant; augmented fixtures still tokenize into grammar-valid sequences.

mod common;

use aurl_core::Score;
use aurl_core::tokenize::{Grammar, Remi, Tokenizer, TokenizerConfig};
use aurl_data::augment::{
    Augmentation, Schedule, SeedRng, SwingUnit, augment, humanize, swing, time_stretch, transpose,
    transposition_room,
};
use aurl_data::{Mode, read_midi_file};
use common::fixtures_dir;
use common::strategies::score;
use proptest::prelude::*;

fn everything(p: f64) -> Augmentation {
    let mut c = Augmentation::default();
    c.transpose.probability = Schedule::Constant(p);
    c.time_stretch.probability = Schedule::Constant(p);
    c.velocity.probability = Schedule::Constant(p);
    c.instruments.probability = Schedule::Constant(p);
    c.swing.probability = Schedule::Constant(p);
    c.humanize.probability = Schedule::Constant(p);
    c
}

fn pitched(s: &Score) -> Vec<i32> {
    s.tracks
        .iter()
        .filter(|t| !t.is_drum)
        .flat_map(|t| t.notes.iter().map(|n| i32::from(n.pitch.get())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn augmentation_is_a_function_of_seed_epoch_and_index(
        s in score(), seed in any::<u64>(), epoch in 0u64..100, index in 0u64..1_000_000,
    ) {
        let config = everything(0.5);
        let original = s.clone();
        let (a, applied_a) = augment(&s, &config, seed, epoch, index).unwrap();
        let (b, applied_b) = augment(&s, &config, seed, epoch, index).unwrap();
        prop_assert_eq!(&s, &original);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(applied_a, applied_b);
        prop_assert_eq!(a.note_count(), s.note_count(), "no transform adds or removes notes");
        let (off, _) = augment(&s, &Augmentation::default(), seed, epoch, index).unwrap();
        prop_assert_eq!(off, original);
    }

    #[test]
    fn transposition_shifts_every_pitched_note_alike_and_spares_drums(
        mut s in score(), k in -12i32..=12,
    ) {
        let before = s.clone();
        let fits = transposition_room(&s, 21, 108).is_some_and(|(d, u)| d <= 0 && 0 <= u);
        let applied = transpose(&mut s, k, 21, 108);
        for (a, b) in pitched(&before).iter().zip(pitched(&s)) {
            prop_assert_eq!(b - a, applied);
        }
        for (a, b) in before.tracks.iter().zip(&s.tracks).filter(|(a, _)| a.is_drum) {
            prop_assert_eq!(a, b);
        }
        if fits {
            prop_assert!(pitched(&s).iter().all(|p| (21..=108).contains(p)));
            prop_assert!(applied.abs() <= k.abs());
        }
    }

    #[test]
    fn time_stretch_only_touches_tempi(mut s in score(), f in 0.5f64..2.0) {
        let before = s.clone();
        time_stretch(&mut s, f);
        prop_assert_eq!(&s.tracks, &before.tracks);
        prop_assert!(!s.tempos.is_empty());
    }

    #[test]
    fn swing_keeps_notes_downbeats_and_order(mut s in score(), ratio in 0.5f64..0.8, sixteenths in any::<bool>()) {
        let unit = if sixteenths { SwingUnit::Sixteenth } else { SwingUnit::Eighth };
        let pair = match unit {
            SwingUnit::Eighth => u64::from(s.ticks_per_quarter),
            SwingUnit::Sixteenth => u64::from(s.ticks_per_quarter) / 2,
        };
        for t in &mut s.tracks {
            t.notes.sort_by_key(|n| n.start);
        }
        let before = s.clone();
        swing(&mut s, unit, ratio);
        prop_assert_eq!(s.note_count(), before.note_count());
        for (a, b) in before.tracks.iter().zip(&s.tracks) {
            for (x, y) in a.notes.iter().zip(&b.notes) {
                prop_assert!(x.duration == 0 || y.duration > 0);
                if pair >= 2 && x.start % pair == 0 {
                    prop_assert_eq!(x.start, y.start, "downbeats stay");
                }
            }
            prop_assert!(b.notes.windows(2).all(|w| w[0].start <= w[1].start));
        }
    }

    #[test]
    fn humanize_keeps_notes_and_lengths(mut s in score(), seed in any::<u64>()) {
        let before = s.clone();
        humanize(&mut s, &mut SeedRng::new(seed), 0.02, 5.0);
        prop_assert_eq!(s.note_count(), before.note_count());
        for (a, b) in before.tracks.iter().zip(&s.tracks) {
            let mut x: Vec<u64> = a.notes.iter().map(|n| n.duration).collect();
            let mut y: Vec<u64> = b.notes.iter().map(|n| n.duration).collect();
            x.sort_unstable();
            y.sort_unstable();
            prop_assert_eq!(x, y);
        }
    }
}

#[test]
fn augmented_fixtures_tokenize_into_grammar_valid_sequences() {
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let grammar = Grammar::new(remi.vocab());
    let config = everything(1.0);
    let files = aurl_data::audit::discover(&[fixtures_dir()]).files;
    let mut checked = 0;
    for (i, path) in files.iter().enumerate() {
        let Ok((score, _)) = read_midi_file(path, Mode::Lenient) else {
            continue;
        };
        for epoch in 0..3 {
            let (augmented, applied) = augment(&score, &config, 9, epoch, i as u64).unwrap();
            assert!(applied.time_stretch.is_some() && applied.humanize);
            let Ok(tokens) = remi.encode(&augmented) else {
                continue;
            };
            let report = grammar.validate(&tokens.ids);
            assert_eq!(
                report.error_count(),
                0,
                "{} epoch {epoch}: {:?}",
                path.display(),
                report.errors
            );
            checked += 1;
        }
    }
    assert!(checked >= 60, "{checked}");
}
