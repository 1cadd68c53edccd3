//! What the reader found wrong with a file and what it did about it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// One kind of damage or irregularity the reader can meet.
///
/// *Syntax* kinds ([`RepairKind::is_syntax_error`]) break the Standard MIDI File
/// specification: in [`Mode::Strict`](crate::Mode::Strict) they are errors, in
/// [`Mode::Lenient`](crate::Mode::Lenient) they are repaired as each variant says and counted.
/// The other kinds are musical irregularities of well-formed files; both modes repair and
/// count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RepairKind {
    /// Bytes before the `MThd` header (e.g. a MacBinary wrapper); skipped.
    LeadingGarbage,
    /// The header chunk is shorter than 6 bytes; missing fields taken as format 1, one track.
    BadHeaderLength,
    /// Format is not 0, 1 or 2; read as format 1.
    UnknownFormat,
    /// The time division is zero; 480 ticks per quarter assumed.
    InvalidDivision,
    /// The header's track count differs from the track chunks present; all present chunks read.
    TrackCountMismatch,
    /// A format-0 file has more than one track chunk; all read as in format 1.
    Format0WithSeveralTracks,
    /// A chunk declares more bytes than the file has; what is there was read.
    ChunkLengthBeyondFile,
    /// A track's events continue past its declared length; read on to the next track chunk.
    ChunkLengthTooShort,
    /// The data ends inside an event or a variable-length number; the partial event dropped.
    TruncatedEvent,
    /// A track chunk has no end-of-track event; ended at its last event.
    MissingEndOfTrack,
    /// Events follow the end-of-track event inside the chunk; they were read.
    EventsAfterEndOfTrack,
    /// A data byte where a status byte was needed and no running status was set; bytes up to
    /// the next status byte skipped.
    RunningStatusWithoutStatus,
    /// Running status used right after a meta or sysex event (which cancel it per the
    /// specification); the previous channel status was used, as players do.
    RunningStatusAcrossMeta,
    /// A status byte (≥ 0x80) inside a channel message's data; the partial message dropped and
    /// the byte read as the next status.
    InvalidDataByte,
    /// Bytes ≥ 0x80 where data bytes are due, in a track that parses cleanly only when they
    /// are data (writers that store 127 as 0xFF): each read as 127. The track's first such
    /// byte decides its reading: clipped when the rest of the track then needs fewer
    /// repairs than reading the byte as a status ([`RepairKind::InvalidDataByte`]).
    DataByteClipped,
    /// A system common or real-time status (0xF1–0xFE) inside a track; skipped.
    UndefinedStatus,
    /// A variable-length number longer than 4 bytes; its value was still read.
    OverlongVarint,
    /// A tempo, time-signature, key-signature or end-of-track meta event has the wrong length;
    /// its known fields read when present, otherwise it was ignored.
    InvalidMetaLength,
    /// Bytes after the last chunk that form no chunk; ignored.
    TrailingBytes,
    /// A second MIDI header (`MThd`) after the track chunks: two files back to back. The
    /// first song is read; the rest of the file is not (reading its tracks as more tracks
    /// of the first song would play it twice).
    TrailingSong,
    /// A tempo of zero microseconds per quarter; ignored.
    ZeroTempo,
    /// A time signature with numerator 0 or a denominator beyond 2^7; ignored.
    InvalidTimeSignature,
    /// A key signature outside −7..=7 sharps or with a mode byte other than 0/1; clamped.
    InvalidKeySignature,
    /// A tempo event in a file timed in SMPTE frames, where tempo has no meaning; ignored.
    TempoInSmpteFile,
    /// A note-on never followed by its note-off; closed at the end of its track.
    DanglingNoteClosed,
    /// A note-off with no sounding note of that pitch and channel; dropped.
    OrphanNoteOffDropped,
    /// A note-off placed just before its own note-on on the same tick (how some exporters,
    /// music21 among them, write grace notes): read as a zero-length note rather than an
    /// orphan note-off plus a note sounding to the end of the track.
    NoteOffBeforeNoteOn,
    /// A chunk of unknown type, skipped as the specification asks. Counted so nothing is
    /// skipped silently, but not a repair: [`ParseReport::is_clean`] ignores it.
    UnknownChunkSkipped,
}

impl RepairKind {
    /// Every kind, in declaration order.
    pub const ALL: [RepairKind; 28] = [
        Self::LeadingGarbage,
        Self::BadHeaderLength,
        Self::UnknownFormat,
        Self::InvalidDivision,
        Self::TrackCountMismatch,
        Self::Format0WithSeveralTracks,
        Self::ChunkLengthBeyondFile,
        Self::ChunkLengthTooShort,
        Self::TruncatedEvent,
        Self::MissingEndOfTrack,
        Self::EventsAfterEndOfTrack,
        Self::RunningStatusWithoutStatus,
        Self::RunningStatusAcrossMeta,
        Self::InvalidDataByte,
        Self::DataByteClipped,
        Self::UndefinedStatus,
        Self::OverlongVarint,
        Self::InvalidMetaLength,
        Self::TrailingBytes,
        Self::TrailingSong,
        Self::ZeroTempo,
        Self::InvalidTimeSignature,
        Self::InvalidKeySignature,
        Self::TempoInSmpteFile,
        Self::DanglingNoteClosed,
        Self::OrphanNoteOffDropped,
        Self::NoteOffBeforeNoteOn,
        Self::UnknownChunkSkipped,
    ];

    /// Whether this kind violates the file-format specification (an error in strict mode).
    #[must_use]
    pub const fn is_syntax_error(self) -> bool {
        !matches!(
            self,
            Self::ZeroTempo
                | Self::InvalidTimeSignature
                | Self::InvalidKeySignature
                | Self::TempoInSmpteFile
                | Self::DanglingNoteClosed
                | Self::OrphanNoteOffDropped
                | Self::NoteOffBeforeNoteOn
                | Self::UnknownChunkSkipped
        )
    }

    /// A stable snake_case name, as used in JSON reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::LeadingGarbage => "leading_garbage",
            Self::BadHeaderLength => "bad_header_length",
            Self::UnknownFormat => "unknown_format",
            Self::InvalidDivision => "invalid_division",
            Self::TrackCountMismatch => "track_count_mismatch",
            Self::Format0WithSeveralTracks => "format0_with_several_tracks",
            Self::ChunkLengthBeyondFile => "chunk_length_beyond_file",
            Self::ChunkLengthTooShort => "chunk_length_too_short",
            Self::TruncatedEvent => "truncated_event",
            Self::MissingEndOfTrack => "missing_end_of_track",
            Self::EventsAfterEndOfTrack => "events_after_end_of_track",
            Self::RunningStatusWithoutStatus => "running_status_without_status",
            Self::RunningStatusAcrossMeta => "running_status_across_meta",
            Self::InvalidDataByte => "invalid_data_byte",
            Self::DataByteClipped => "data_byte_clipped",
            Self::UndefinedStatus => "undefined_status",
            Self::OverlongVarint => "overlong_varint",
            Self::InvalidMetaLength => "invalid_meta_length",
            Self::TrailingBytes => "trailing_bytes",
            Self::TrailingSong => "trailing_song",
            Self::ZeroTempo => "zero_tempo",
            Self::InvalidTimeSignature => "invalid_time_signature",
            Self::InvalidKeySignature => "invalid_key_signature",
            Self::TempoInSmpteFile => "tempo_in_smpte_file",
            Self::DanglingNoteClosed => "dangling_note_closed",
            Self::OrphanNoteOffDropped => "orphan_note_off_dropped",
            Self::NoteOffBeforeNoteOn => "note_off_before_note_on",
            Self::UnknownChunkSkipped => "unknown_chunk_skipped",
        }
    }
}

impl fmt::Display for RepairKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a problem was found: byte offset in the file (after any RIFF wrapper is removed,
/// offsets still count from the start of the original bytes) and track chunk index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What was wrong.
    pub kind: RepairKind,
    /// Byte offset from the start of the input.
    pub offset: usize,
    /// Index of the track chunk (0-based), when inside one.
    pub track: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.track {
            Some(t) => write!(f, "{} at byte {} (track {t})", self.kind, self.offset),
            None => write!(f, "{} at byte {}", self.kind, self.offset),
        }
    }
}

/// What reading one file found: counts per [`RepairKind`], the first few problems with their
/// location, and facts about the file's layout.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ParseReport {
    /// SMF format from the header (0, 1 or 2; other values are reported and read as 1).
    pub format: u16,
    /// Track count the header declared.
    pub declared_tracks: u16,
    /// Track chunks actually read.
    pub track_chunks: usize,
    /// Whether the file was wrapped in a RIFF `RMID` container.
    pub riff: bool,
    /// Whether the file is timed in SMPTE frames (converted to a tempo map).
    pub smpte: bool,
    counts: [u32; RepairKind::ALL.len()],
    /// The first [`ParseReport::MAX_PROBLEMS`] problems in the order they were found (note
    /// pairing problems are settled at the end of their track chunk), with their location.
    pub problems: Vec<Problem>,
}

impl ParseReport {
    /// How many located problems are kept; counts go on past it.
    pub const MAX_PROBLEMS: usize = 32;

    /// Records one occurrence.
    pub(crate) fn record(&mut self, problem: Problem) {
        self.counts[problem.kind as usize] = self.counts[problem.kind as usize].saturating_add(1);
        if self.problems.len() < Self::MAX_PROBLEMS {
            self.problems.push(problem);
        }
    }

    /// How many times `kind` occurred.
    #[must_use]
    pub fn count(&self, kind: RepairKind) -> u32 {
        self.counts[kind as usize]
    }

    /// Kinds that occurred, with their counts, in declaration order.
    pub fn repairs(&self) -> impl Iterator<Item = (RepairKind, u32)> + '_ {
        RepairKind::ALL
            .iter()
            .map(|&k| (k, self.count(k)))
            .filter(|&(_, n)| n > 0)
    }

    /// The repairs as a name → count map, as in JSON reports.
    #[must_use]
    pub fn repair_map(&self) -> BTreeMap<&'static str, u32> {
        self.repairs().map(|(k, n)| (k.name(), n)).collect()
    }

    /// Total number of repairs of any kind (skipped unknown chunks are not repairs).
    #[must_use]
    pub fn total_repairs(&self) -> u64 {
        self.repairs()
            .filter(|&(k, _)| k != RepairKind::UnknownChunkSkipped)
            .map(|(_, n)| u64::from(n))
            .sum()
    }

    /// True when nothing had to be repaired: the file is well-formed and musically consistent.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.total_repairs() == 0
    }

    /// True when the file follows the specification (strict mode would accept it), even if
    /// musical irregularities such as orphan note-offs were repaired.
    #[must_use]
    pub fn is_well_formed(&self) -> bool {
        self.repairs().all(|(k, _)| !k.is_syntax_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_at_its_discriminant() {
        for (i, k) in RepairKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k}");
        }
    }

    #[test]
    fn counts_go_on_after_the_located_list_is_full() {
        let mut r = ParseReport::default();
        for i in 0..100 {
            r.record(Problem {
                kind: RepairKind::OrphanNoteOffDropped,
                offset: i,
                track: Some(0),
            });
        }
        assert_eq!(r.count(RepairKind::OrphanNoteOffDropped), 100);
        assert_eq!(r.problems.len(), ParseReport::MAX_PROBLEMS);
        assert!(!r.is_clean());
        assert!(
            r.is_well_formed(),
            "orphan note-offs are not a syntax error"
        );
        assert_eq!(r.repair_map().get("orphan_note_off_dropped"), Some(&100));
    }
}
