//! Every damaged or irregular fixture: strict mode's error and offset, and lenient mode's
//! exact repair report and recovered notes.

mod common;

use aurl_core::{KeySignature, TextKind};
use aurl_data::{Error, Mode, RepairKind, read_midi};
use common::expect::{assert_track, bytes, clean, lenient, malformed, notes, repairs};
use common::fixtures;

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
fn two_songs_back_to_back_read_the_first_once() {
    use RepairKind::*;
    let s = malformed(
        "malformed_two_songs.mid",
        TrailingSong,
        &[(TrailingSong, 1)],
    );
    assert_eq!(s.tracks.len(), 1, "the second song is not appended");
    assert_track(&s.tracks[0], b"First", 0, 0, &[(60, 100, 0, 96)]);
}

#[test]
fn data_bytes_written_as_0xff_are_clipped_when_that_parses_the_track() {
    use RepairKind::*;
    let s = malformed(
        "malformed_data_bytes_0xff.mid",
        InvalidDataByte,
        &[(DataByteClipped, 5)],
    );
    assert_track(
        &s.tracks[0],
        b"Loud",
        0,
        0,
        &[
            (60, 127, 0, 96),
            (62, 127, 96, 96),
            (64, 127, 192, 96),
            (65, 127, 288, 96),
            (67, 80, 384, 96),
        ],
    );
    assert_eq!(s.tracks[0].controls.len(), 1);
    assert_eq!(s.tracks[0].controls[0].value.get(), 127);
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
