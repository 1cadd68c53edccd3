//! Round trips: Score → MIDI → Score, and MIDI → Score → MIDI → Score.

mod common;

use aurl_data::{Mode, WriteOptions, read_midi, write_midi};
use common::strategies::{as_midi_returns_it, score};
use common::{fixtures, fixtures_dir};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn writing_then_reading_returns_the_canonical_score(s in score()) {
        let expected = as_midi_returns_it(s.clone());
        let bytes = write_midi(&s, &WriteOptions::keep_resolution()).unwrap();
        let (back, report) = read_midi(&bytes, Mode::Strict).unwrap();
        prop_assert!(report.is_clean(), "{:?}", report.repair_map());
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn midi_to_score_to_midi_to_score_is_identical(s in score()) {
        let keep = WriteOptions::keep_resolution();
        let midi = write_midi(&s, &keep).unwrap();
        let (read, _) = read_midi(&midi, Mode::Strict).unwrap();
        let second = write_midi(&read, &keep).unwrap();
        let (again, _) = read_midi(&second, Mode::Strict).unwrap();
        prop_assert_eq!(&again, &read);
        // From a score read from MIDI on, the bytes are a fixed point too.
        prop_assert_eq!(write_midi(&again, &keep).unwrap(), second);
    }

    #[test]
    fn writing_at_another_resolution_resamples(s in score(), tpq in prop_oneof![Just(480u16), 24u16..=960]) {
        let bytes = write_midi(&s, &WriteOptions::default().with_ticks_per_quarter(tpq)).unwrap();
        let (back, _) = read_midi(&bytes, Mode::Strict).unwrap();
        prop_assert_eq!(back.ticks_per_quarter, tpq);
        prop_assert_eq!(back, as_midi_returns_it(s.resampled(tpq)));
    }
}

#[test]
fn every_readable_fixture_round_trips_through_the_writer() {
    for (name, _) in fixtures::all() {
        let bytes = std::fs::read(fixtures_dir().join(name)).unwrap();
        let Ok((score, _)) = read_midi(&bytes, Mode::Lenient) else {
            continue;
        };
        let written = write_midi(&score, &WriteOptions::keep_resolution()).unwrap();
        let (back, report) = read_midi(&written, Mode::Strict).unwrap();
        assert!(report.is_clean(), "{name}: {:?}", report.repair_map());
        assert_eq!(back, as_midi_returns_it(score), "{name}");
    }
}
