//! Expectation helpers for the fixture tests.
#![allow(dead_code)]

use aurl_core::{Score, Track};
use aurl_data::{Error, Mode, ParseReport, RepairKind, read_midi};

use super::fixtures_dir;

/// (pitch, velocity, start, duration)
pub type N = (u8, u8, u64, u64);

pub fn bytes(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn lenient(name: &str) -> (Score, ParseReport) {
    read_midi(&bytes(name), Mode::Lenient).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn notes(t: &Track) -> Vec<N> {
    t.notes
        .iter()
        .map(|n| (n.pitch.get(), n.velocity.get(), n.start, n.duration))
        .collect()
}

pub fn repairs(r: &ParseReport) -> Vec<(RepairKind, u32)> {
    r.repairs().collect()
}

#[track_caller]
pub fn assert_track(t: &Track, name: &[u8], channel: u8, program: u8, expected: &[N]) {
    assert_eq!(t.name_lossy(), String::from_utf8_lossy(name));
    assert_eq!(
        (t.channel.get(), t.program.get(), t.is_drum),
        (channel, program, channel == 9)
    );
    assert_eq!(notes(t), expected);
}

/// A clean fixture reads the same in both modes with an empty report.
#[track_caller]
pub fn clean(name: &str) -> Score {
    let (score, report) = lenient(name);
    assert!(report.is_clean(), "{name}: {:?}", repairs(&report));
    let (strict, _) = read_midi(&bytes(name), Mode::Strict).expect("strict accepts a clean file");
    assert_eq!(strict, score);
    score
}

/// A malformed fixture: strict mode fails with `first`, lenient mode repairs exactly `expected`.
#[track_caller]
pub fn malformed(name: &str, first: RepairKind, expected: &[(RepairKind, u32)]) -> Score {
    match read_midi(&bytes(name), Mode::Strict) {
        Err(Error::Malformed(p)) => assert_eq!(p.kind, first, "{name}: {p}"),
        other => panic!("{name}: strict mode should fail with {first}, got {other:?}"),
    }
    let (score, report) = lenient(name);
    assert_eq!(repairs(&report), expected, "{name}");
    score
}
