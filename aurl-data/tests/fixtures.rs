//! Every fixture read with exact expectations: notes, tracks, global events and the exact
//! repair report, in both modes.

mod common;

use aurl_core::{KeySignature, Score, Tempo, TextKind, TimeSignature, Track};
use aurl_data::{Error, Mode, ParseReport, RepairKind, read_midi};
use common::{fixtures, fixtures_dir};

/// (pitch, velocity, start, duration)
type N = (u8, u8, u64, u64);

fn bytes(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lenient(name: &str) -> (Score, ParseReport) {
    read_midi(&bytes(name), Mode::Lenient).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn notes(t: &Track) -> Vec<N> {
    t.notes
        .iter()
        .map(|n| (n.pitch.get(), n.velocity.get(), n.start, n.duration))
        .collect()
}

fn repairs(r: &ParseReport) -> Vec<(RepairKind, u32)> {
    r.repairs().collect()
}

#[track_caller]
fn assert_track(t: &Track, name: &[u8], channel: u8, program: u8, expected: &[N]) {
    assert_eq!(t.name_lossy(), String::from_utf8_lossy(name));
    assert_eq!(
        (t.channel.get(), t.program.get(), t.is_drum),
        (channel, program, channel == 9)
    );
    assert_eq!(notes(t), expected);
}

/// A clean fixture reads the same in both modes with an empty report.
#[track_caller]
fn clean(name: &str) -> Score {
    let (score, report) = lenient(name);
    assert!(report.is_clean(), "{name}: {:?}", repairs(&report));
    let (strict, _) = read_midi(&bytes(name), Mode::Strict).expect("strict accepts a clean file");
    assert_eq!(strict, score);
    score
}

/// A malformed fixture: strict mode fails with `first`, lenient mode repairs exactly `expected`.
#[track_caller]
fn malformed(name: &str, first: RepairKind, expected: &[(RepairKind, u32)]) -> Score {
    match read_midi(&bytes(name), Mode::Strict) {
        Err(Error::Malformed(p)) => assert_eq!(p.kind, first, "{name}: {p}"),
        other => panic!("{name}: strict mode should fail with {first}, got {other:?}"),
    }
    let (score, report) = lenient(name);
    assert_eq!(repairs(&report), expected, "{name}");
    score
}

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

#[test]
fn lenient_reader_recovers_notes_before_truncation_in_a_track() {
    use RepairKind::*;
    let s = malformed(
        "malformed_truncated_track.mid",
        ChunkLengthBeyondFile,
        &[
            (ChunkLengthBeyondFile, 1),
            (TruncatedEvent, 1),
            (DanglingNoteClosed, 2),
        ],
    );
    // 62 and 65 never got their note-off: closed where the data ends (tick 192).
    assert_track(
        &s.tracks[0],
        b"Cut",
        0,
        0,
        &[(60, 100, 0, 96), (62, 100, 96, 96), (65, 90, 144, 48)],
    );
}

#[test]
fn lenient_reader_recovers_notes_before_a_truncated_varint() {
    use RepairKind::*;
    let s = malformed(
        "malformed_truncated_varint.mid",
        ChunkLengthBeyondFile,
        &[(ChunkLengthBeyondFile, 1), (TruncatedEvent, 1)],
    );
    assert_track(&s.tracks[0], b"Varint", 0, 0, &[(60, 100, 0, 96)]);
}

#[test]
fn a_too_short_chunk_length_is_read_past_to_the_next_track() {
    use RepairKind::*;
    let s = malformed(
        "malformed_bad_chunk_length.mid",
        MissingEndOfTrack,
        &[(ChunkLengthTooShort, 1)],
    );
    assert_track(
        &s.tracks[0],
        b"Short",
        0,
        0,
        &[(60, 100, 0, 96), (64, 100, 96, 96)],
    );
    assert_track(&s.tracks[1], b"Fine", 1, 0, &[(48, 100, 0, 192)]);
}

#[test]
fn a_missing_end_of_track_ends_the_track_at_its_chunk() {
    use RepairKind::*;
    let s = malformed(
        "malformed_missing_eot.mid",
        MissingEndOfTrack,
        &[(MissingEndOfTrack, 1)],
    );
    assert_track(&s.tracks[0], b"No end", 0, 0, &[(60, 100, 0, 96)]);
    assert_track(&s.tracks[1], b"Proper", 1, 0, &[(50, 100, 0, 96)]);
}

#[test]
fn data_bytes_without_status_are_skipped_and_timing_resynchronised() {
    use RepairKind::*;
    let s = malformed(
        "malformed_running_status_without_status.mid",
        RunningStatusWithoutStatus,
        &[(RunningStatusWithoutStatus, 1)],
    );
    assert_track(&s.tracks[0], b"No status", 0, 0, &[(62, 100, 10, 90)]);
}

#[test]
fn running_status_across_a_meta_event_is_honoured_leniently() {
    use RepairKind::*;
    let s = malformed(
        "malformed_running_status_across_meta.mid",
        RunningStatusAcrossMeta,
        &[(RunningStatusAcrossMeta, 1)],
    );
    assert_track(
        &s.tracks[0],
        b"Across",
        0,
        0,
        &[(60, 100, 0, 96), (62, 90, 96, 96)],
    );
    assert_eq!(s.texts[0].kind, TextKind::Marker);
}

#[test]
fn a_file_that_is_not_midi_is_a_typed_error_in_both_modes() {
    for mode in [Mode::Strict, Mode::Lenient] {
        match read_midi(&bytes("malformed_wrong_magic.mid"), mode) {
            Err(Error::NotMidi { found }) => assert_eq!(found, b"RIFX"),
            other => panic!("{mode:?}: {other:?}"),
        }
    }
    assert!(matches!(
        read_midi(&[], Mode::Lenient),
        Err(Error::NotMidi { .. })
    ));
}

#[test]
fn a_size_bomb_is_read_by_what_is_present_not_what_is_declared() {
    use RepairKind::*;
    let b = bytes("malformed_size_bomb.mid");
    assert_eq!(b.len(), 34);
    let s = malformed(
        "malformed_size_bomb.mid",
        ChunkLengthBeyondFile,
        &[(TrackCountMismatch, 1), (ChunkLengthBeyondFile, 1)],
    );
    assert_eq!(notes(&s.tracks[0]), vec![(60, 64, 0, 96)]);
    match read_midi(&b, Mode::Strict) {
        Err(Error::Malformed(p)) => assert_eq!((p.offset, p.track), (18, Some(0))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trailing_bytes_and_a_wrong_track_count_are_reported() {
    use RepairKind::*;
    let s = malformed(
        "malformed_trailing_bytes.mid",
        TrailingBytes,
        &[(TrackCountMismatch, 1), (TrailingBytes, 1)],
    );
    assert_track(&s.tracks[0], b"Tail", 0, 0, &[(60, 100, 0, 96)]);
}

#[test]
fn a_status_byte_inside_a_message_drops_only_that_message() {
    use RepairKind::*;
    let s = malformed(
        "malformed_data_byte_is_status.mid",
        InvalidDataByte,
        &[(InvalidDataByte, 1)],
    );
    assert_track(
        &s.tracks[0],
        b"Data",
        0,
        0,
        &[(60, 100, 0, 96), (64, 100, 96, 96)],
    );
}

#[test]
fn events_after_end_of_track_are_recovered() {
    use RepairKind::*;
    let s = malformed(
        "malformed_events_after_eot.mid",
        EventsAfterEndOfTrack,
        &[(EventsAfterEndOfTrack, 1)],
    );
    assert_track(
        &s.tracks[0],
        b"After",
        0,
        0,
        &[(60, 100, 0, 96), (67, 100, 96, 96)],
    );
}

#[test]
fn orphan_note_offs_are_dropped_and_dangling_notes_closed_in_both_modes() {
    use RepairKind::*;
    for mode in [Mode::Strict, Mode::Lenient] {
        let (s, r) = read_midi(&bytes("irregular_orphans_and_dangling.mid"), mode).unwrap();
        assert_eq!(
            repairs(&r),
            vec![(DanglingNoteClosed, 1), (OrphanNoteOffDropped, 1)]
        );
        assert!(r.is_well_formed() && !r.is_clean());
        assert_track(
            &s.tracks[0],
            b"Loose ends",
            0,
            0,
            &[(60, 100, 0, 96), (72, 100, 96, 96)],
        );
    }
}

#[test]
fn a_note_off_just_before_its_note_on_is_a_zero_length_grace_note() {
    let (s, r) = read_midi(&bytes("irregular_grace_note_off_first.mid"), Mode::Strict).unwrap();
    assert_eq!(repairs(&r), vec![(RepairKind::NoteOffBeforeNoteOn, 3)]);
    assert_track(
        &s.tracks[0],
        b"Grace",
        0,
        0,
        &[
            (60, 90, 0, 96),
            (62, 80, 96, 0),
            (64, 90, 96, 96),
            (65, 70, 192, 0),
            (65, 71, 192, 0),
            (65, 72, 240, 48),
        ],
    );
}

#[test]
fn unknown_chunks_are_skipped_counted_and_not_a_repair() {
    let s = clean("unknown_chunk.mid");
    let (_, r) = lenient("unknown_chunk.mid");
    assert_eq!(repairs(&r), vec![(RepairKind::UnknownChunkSkipped, 1)]);
    assert_track(&s.tracks[0], b"After XFIH", 0, 0, &[(60, 100, 0, 96)]);
}

#[test]
fn out_of_range_key_signatures_are_clamped_not_rejected() {
    let (s, r) = read_midi(&bytes("irregular_key_signature.mid"), Mode::Strict).unwrap();
    assert_eq!(repairs(&r), vec![(RepairKind::InvalidKeySignature, 1)]);
    assert_eq!(
        s.key_signatures,
        vec![KeySignature {
            tick: 0,
            sharps: 7,
            minor: true
        }]
    );
}

#[test]
fn strict_mode_accepts_exactly_the_files_lenient_mode_finds_well_formed() {
    for (name, _) in fixtures::all() {
        let b = bytes(name);
        let strict = read_midi(&b, Mode::Strict);
        match read_midi(&b, Mode::Lenient) {
            Ok((score, report)) => {
                assert_eq!(strict.is_ok(), report.is_well_formed(), "{name}");
                if let Ok((s, r)) = strict {
                    assert_eq!((s, r), (score, report), "{name}");
                }
            }
            Err(_) => assert!(strict.is_err(), "{name}"),
        }
    }
}
