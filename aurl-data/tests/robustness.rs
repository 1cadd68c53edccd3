//! Hostile and random input: no panic, bounded allocation, limits as typed errors.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use aurl_data::{Error, Mode, ReadLimits, read_midi, read_midi_with_limits};
use common::smf_builder::{Trk, chunk, header, smf};
use common::{fixtures, fixtures_dir};
use proptest::prelude::*;

/// Counts the bytes allocated by the current thread, so each test measures only itself.
struct CountingAlloc;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn add(n: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn sub(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: forwards to the system allocator; only bookkeeping is added.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        sub(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size);
        sub(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Peak bytes allocated while reading `bytes` leniently (the result is dropped inside).
fn peak_allocation(bytes: &[u8]) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let _ = read_midi(bytes, Mode::Lenient);
    let _ = read_midi(bytes, Mode::Strict);
    PEAK.with(Cell::get) - base
}

/// The allowance: a fixed working set (pairing tables) plus a constant factor of the input.
fn allowance(len: usize) -> usize {
    64 * 1024 + 48 * len
}

fn fixture_bytes() -> Vec<Vec<u8>> {
    fixtures::all()
        .iter()
        .map(|(name, _)| std::fs::read(fixtures_dir().join(name)).unwrap())
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *m {
        Mutation::Flip(i, b) => {
            let i = i % bytes.len();
            bytes[i] ^= b | 1;
        }
        Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
        Mutation::Delete(i) => {
            bytes.remove(i % bytes.len());
        }
        Mutation::Truncate(i) => bytes.truncate(i % bytes.len()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_fixtures_never_panic_and_allocate_in_proportion(
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let all = fixture_bytes();
        let mut bytes = all[which % all.len()].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let peak = peak_allocation(&bytes);
        prop_assert!(peak <= allowance(bytes.len()), "{peak} bytes for a {}-byte input", bytes.len());
    }

    #[test]
    fn random_bytes_behind_a_header_never_panic(body in prop::collection::vec(any::<u8>(), 0..3000),
                                                 tracks in any::<u16>(), division in any::<u16>()) {
        let mut bytes = header(1, tracks, division);
        bytes.extend(chunk(b"MTrk", &body));
        bytes.extend_from_slice(&body);
        let peak = peak_allocation(&bytes);
        prop_assert!(peak <= allowance(bytes.len()), "{peak} bytes for a {}-byte input", bytes.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_midi(&bytes, Mode::Lenient);
        let _ = read_midi(&bytes, Mode::Strict);
    }
}

#[test]
fn sixty_thousand_notes_on_one_tick_are_read_in_linear_time() {
    let mut t = Trk::new();
    for i in 0..60_000u32 {
        t.on(0, (i % 16) as u8, (i % 128) as u8, 100);
    }
    for i in 0..60_000u32 {
        t.off(if i == 0 { 10 } else { 0 }, (i % 16) as u8, (i % 128) as u8);
    }
    t.eot(0);
    let bytes = smf(0, 96, &[t]);
    let started = std::time::Instant::now();
    let (score, report) = read_midi(&bytes, Mode::Strict).unwrap();
    assert!(report.is_clean());
    assert_eq!(score.note_count(), 60_000);
    assert!(
        score
            .tracks
            .iter()
            .flat_map(|t| &t.notes)
            .all(|n| n.start == 0 && n.duration == 10)
    );
    // Generous: the read takes milliseconds; quadratic pairing would take minutes.
    assert!(started.elapsed().as_secs() < 20);
    assert!(peak_allocation(&bytes) <= allowance(bytes.len()));
}

#[test]
fn delta_times_spanning_millennia_hit_the_tick_limit() {
    let mut t = Trk::new();
    for _ in 0..1000 {
        t.on(0x0FFF_FFFF, 0, 60, 100).off(0, 0, 60);
    }
    t.eot(0);
    let bytes = smf(1, 96, &[t]);
    match read_midi(&bytes, Mode::Lenient) {
        Err(Error::LimitExceeded { field, .. }) => assert_eq!(field, "max_tick"),
        other => panic!("{other:?}"),
    }
    let generous = ReadLimits {
        max_tick: u64::MAX,
        ..ReadLimits::default()
    };
    let (s, _) = read_midi_with_limits(&bytes, Mode::Lenient, &generous).unwrap();
    assert_eq!(s.note_count(), 1000);
}

#[test]
fn sixty_five_thousand_empty_track_chunks_are_read_not_refused() {
    let mut real = Trk::new();
    real.on(0, 0, 60, 100).off(96, 0, 60).eot(0);
    let mut empty = Trk::new();
    empty.eot(0);
    let mut tracks = vec![real];
    tracks.extend(std::iter::repeat_n(empty, 65_534));
    let bytes = smf(1, 96, &tracks);
    assert!(bytes.len() < 800_000, "{} bytes", bytes.len());
    for mode in [Mode::Lenient, Mode::Strict] {
        let (score, report) = read_midi(&bytes, mode).expect("small and valid");
        assert_eq!(report.track_chunks, 65_535);
        assert_eq!((score.tracks.len(), score.note_count()), (1, 1));
    }
    assert!(peak_allocation(&bytes) <= allowance(bytes.len()));
}

#[test]
fn note_and_track_limits_are_typed_errors() {
    let mut t = Trk::new();
    for i in 0..100 {
        t.on(1, 0, i, 100).off(1, 0, i);
    }
    t.eot(0);
    let bytes = smf(1, 96, &[t.clone(), t.clone(), t]);
    let few_notes = ReadLimits {
        max_notes: 150,
        ..ReadLimits::default()
    };
    assert!(matches!(
        read_midi_with_limits(&bytes, Mode::Lenient, &few_notes),
        Err(Error::LimitExceeded {
            field: "max_notes",
            ..
        })
    ));
    let few_tracks = ReadLimits {
        max_tracks: 2,
        ..ReadLimits::default()
    };
    assert!(matches!(
        read_midi_with_limits(&bytes, Mode::Lenient, &few_tracks),
        Err(Error::LimitExceeded {
            field: "max_tracks",
            ..
        })
    ));
    let small = ReadLimits {
        max_bytes: 100,
        ..ReadLimits::default()
    };
    assert!(matches!(
        read_midi_with_limits(&bytes, Mode::Lenient, &small),
        Err(Error::LimitExceeded {
            field: "max_bytes",
            ..
        })
    ));
}
