//! Every well-formed fixture read with exact expectations: notes, tracks, global events,
//! and an empty repair report in both modes.

mod common;

use aurl_core::{KeySignature, Tempo, TextKind, TimeSignature};
use common::expect::{N, assert_track, clean, lenient};
use common::{fixtures, fixtures_dir};

#[test]
fn committed_fixtures_match_their_generator() {
    let write = std::env::var_os("AURL_WRITE_FIXTURES").is_some();
    for (name, generated) in fixtures::all() {
        let path = fixtures_dir().join(name);
        if write {
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{name} differs from its generator; regenerate with \
             `AURL_WRITE_FIXTURES=1 cargo test -p aurl-data --test fixtures`"
        );
    }
}

#[test]
fn format0_channels_and_program_changes_become_separate_tracks() {
    let s = clean("format0_multichannel.mid");
    assert_eq!(s.ticks_per_quarter, 96);
    assert_eq!(s.tracks.len(), 3);
    let piano = [
        (60, 90, 0, 96),
        (64, 80, 0, 96),
        (67, 70, 96, 96),
        (60, 50, 288, 96),
    ];
    assert_track(&s.tracks[0], b"Format 0 mix", 0, 0, &piano);
    assert_eq!(
        s.tracks[0].controls.len(),
        1,
        "volume before the program change stays with piano"
    );
    assert_track(&s.tracks[1], b"Format 0 mix", 1, 33, &[(36, 100, 0, 192)]);
    assert_track(&s.tracks[2], b"Format 0 mix", 0, 40, &[(72, 60, 192, 96)]);
    assert!(s.title.is_empty());
}

#[test]
fn format1_general_midi_song_with_drums_on_channel_ten() {
    let s = clean("format1_gm_drums.mid");
    assert_eq!(s.title_lossy(), "GM Song");
    assert_eq!(
        s.tempos,
        vec![Tempo {
            tick: 0,
            micros_per_quarter: 500_000
        }]
    );
    assert_eq!(
        s.time_signatures,
        vec![TimeSignature::new(0, 4, 4).unwrap()]
    );
    let chords = [[60u8, 64, 67], [62, 65, 69], [59, 62, 67], [60, 64, 67]];
    let piano: Vec<N> = chords
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.iter().map(move |&p| (p, 80, i as u64 * 480, 480)))
        .collect();
    assert_track(&s.tracks[0], b"Piano", 0, 0, &piano);
    let bass = [
        (36, 100, 0, 240),
        (38, 100, 480, 240),
        (31, 100, 960, 240),
        (36, 100, 1440, 240),
    ];
    assert_track(&s.tracks[1], b"Bass", 1, 33, &bass);
    let drums = [
        (42, 70, 0, 120),
        (36, 110, 0, 120),
        (42, 70, 240, 120),
        (42, 70, 480, 120),
        (38, 100, 480, 120),
        (42, 70, 720, 120),
        (42, 70, 960, 120),
        (36, 110, 960, 120),
        (42, 70, 1200, 120),
        (42, 70, 1440, 120),
        (38, 100, 1440, 120),
        (42, 70, 1680, 120),
    ];
    assert_track(&s.tracks[2], b"Drums", 9, 0, &drums);
    assert_eq!(s.note_count(), 28);
    assert!((s.duration_seconds() - 2.0).abs() < 1e-9);
}

#[test]
fn tempo_time_and_key_signature_changes_are_kept_and_timed_exactly() {
    let s = clean("tempo_timesig_changes.mid");
    let t = |tick, m| Tempo {
        tick,
        micros_per_quarter: m,
    };
    assert_eq!(
        s.tempos,
        vec![t(0, 500_000), t(1440, 666_667), t(2880, 428_571)]
    );
    let ts = |tick, n, d| TimeSignature::new(tick, n, d).unwrap();
    assert_eq!(s.time_signatures, vec![ts(0, 3, 4), ts(2880, 6, 8)]);
    let k = |tick, sharps, minor| KeySignature {
        tick,
        sharps,
        minor,
    };
    assert_eq!(s.key_signatures, vec![k(0, 1, false), k(2880, 1, true)]);
    let melody: Vec<N> = (0..12u64)
        .map(|b| (67 + (b % 5) as u8, 64, b * 360, 300))
        .collect();
    assert_track(&s.tracks[0], b"Melody", 0, 73, &melody);
    // 1.5 s at 120 BPM + 3 quarters at 666,667 µs + 2.875 quarters at 428,571 µs.
    let expected = 1.5 + 3.0 * 0.666_667 + 2.875 * 0.428_571;
    assert!(
        (s.duration_seconds() - expected).abs() < 1e-12,
        "{}",
        s.duration_seconds()
    );
}

#[test]
fn running_status_and_zero_velocity_note_offs() {
    let s = clean("running_status.mid");
    let expected = [
        (60, 100, 0, 120),
        (62, 90, 120, 120),
        (64, 80, 240, 120),
        (65, 70, 360, 240),
    ];
    assert_track(&s.tracks[0], b"Running", 0, 24, &expected);
    let cc: Vec<(u8, u8, u64)> = s.tracks[0]
        .controls
        .iter()
        .map(|c| (c.controller.get(), c.value.get(), c.tick))
        .collect();
    assert_eq!(cc, vec![(7, 100, 360), (10, 64, 360)]);
}

#[test]
fn sysex_and_escape_events_are_skipped_without_losing_notes() {
    let s = clean("sysex.mid");
    assert_eq!(s.title_lossy(), "Sysex test");
    assert_track(
        &s.tracks[0],
        b"Sysex",
        0,
        0,
        &[(60, 100, 0, 66), (62, 100, 66, 60)],
    );
}

#[test]
fn sustain_pedal_events_are_kept_as_controls() {
    let s = clean("sustain_pedal.mid");
    assert_track(
        &s.tracks[0],
        b"Pedal",
        0,
        0,
        &[(48, 80, 0, 100), (52, 80, 100, 100), (55, 90, 210, 200)],
    );
    let pedal: Vec<(u64, u8)> = s.tracks[0]
        .controls
        .iter()
        .filter(|c| c.controller.get() == 64)
        .map(|c| (c.tick, c.value.get()))
        .collect();
    assert_eq!(pedal, vec![(0, 127), (200, 0), (210, 127), (410, 0)]);
}

#[test]
fn pitch_bends_cover_the_full_signed_range() {
    let s = clean("pitch_bends.mid");
    assert_track(&s.tracks[0], b"Bends", 2, 80, &[(69, 100, 0, 100)]);
    let bends: Vec<(u64, i16)> = s.tracks[0]
        .pitch_bends
        .iter()
        .map(|b| (b.tick, b.value))
        .collect();
    assert_eq!(
        bends,
        vec![(10, -8192), (20, 0), (30, 8191), (40, 4096), (50, 0)]
    );
}

#[test]
fn triplets_keep_their_exact_ticks() {
    let s = clean("triplets.mid");
    let trip: Vec<N> = (0..6u64)
        .map(|i| (72 + (i % 3) as u8, 80, i * 160, 160))
        .collect();
    assert_track(&s.tracks[0], b"Triplets", 0, 0, &trip);
    assert_track(
        &s.tracks[1],
        b"Quarters",
        1,
        32,
        &[(48, 80, 0, 480), (48, 80, 480, 480)],
    );
}

#[test]
fn overlapping_notes_of_one_pitch_pair_first_in_first_out() {
    let s = clean("overlapping_same_pitch.mid");
    // on@0, on@100, off@150, off@400: the first off ends the oldest note.
    assert_track(
        &s.tracks[0],
        b"Overlap",
        0,
        0,
        &[(60, 100, 0, 150), (60, 50, 100, 300), (64, 70, 400, 0)],
    );
}

#[test]
fn performance_with_high_resolution_and_unquantised_timing() {
    let s = clean("performance_high_ppq.mid");
    assert_eq!(s.ticks_per_quarter, 19_200);
    assert_eq!(s.note_count(), 240);
    assert_eq!(s.tracks[0].controls.len(), 30);
    assert!(
        s.tracks[0].notes.iter().any(|n| n.start % 1200 != 0),
        "timing is unquantised"
    );
    assert!(
        s.tracks[0]
            .notes
            .windows(2)
            .all(|w| w[0].start <= w[1].start),
        "onset order"
    );
}

#[test]
fn smpte_timing_becomes_an_exact_tempo_map() {
    let s = clean("smpte_timing.mid");
    assert_eq!(s.ticks_per_quarter, 1000);
    assert_eq!(
        s.tempos,
        vec![Tempo {
            tick: 0,
            micros_per_quarter: 1_000_000
        }]
    );
    assert_track(
        &s.tracks[0],
        b"SMPTE",
        0,
        0,
        &[(60, 100, 0, 500), (67, 100, 1000, 1500)],
    );
    assert_eq!(s.duration_seconds(), 2.5);
    assert!(lenient("smpte_timing.mid").1.smpte);
}

#[test]
fn riff_rmid_wrapper_is_unwrapped() {
    let (s, r) = lenient("rmid_wrapped.rmi");
    assert!(r.riff && r.is_clean());
    assert_eq!(s.title_lossy(), "RMID");
    assert_track(
        &s.tracks[0],
        b"Inside RIFF",
        0,
        11,
        &[(72, 90, 0, 240), (76, 90, 240, 240)],
    );
}

#[test]
fn non_ascii_names_and_lyrics_keep_their_bytes() {
    let s = clean("names_non_ascii.mid");
    assert_eq!(s.title, "Chanson d'été".as_bytes());
    assert_eq!(
        s.tracks[0].name, b"Fl\xfbte",
        "Latin-1 bytes are kept as they are"
    );
    assert_eq!(s.tracks[0].name_lossy(), "Fl\u{fffd}te");
    assert_eq!(s.tracks[1].name_lossy(), "ピアノ");
    let texts: Vec<(u64, TextKind, String)> = s
        .texts
        .iter()
        .map(|t| (t.tick, t.kind, t.text_lossy().into_owned()))
        .collect();
    assert_eq!(
        texts,
        vec![
            (0, TextKind::Marker, "Couplet".into()),
            (0, TextKind::Lyric, "La".into()),
            (96, TextKind::Lyric, "là".into()),
        ]
    );
}

#[test]
fn format2_is_read_as_parallel_tracks_at_low_resolution() {
    let s = clean("format2_low_ppq.mid");
    assert_eq!(s.ticks_per_quarter, 24);
    assert_track(&s.tracks[0], b"Pattern A", 0, 0, &[(60, 100, 0, 24)]);
    assert_track(
        &s.tracks[1],
        b"Pattern B",
        0,
        0,
        &[(62, 100, 0, 12), (64, 100, 12, 12)],
    );
}
