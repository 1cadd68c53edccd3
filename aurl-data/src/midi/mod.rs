//! Standard MIDI File reading (strict and lenient) and writing.
//!
//! The reader is a single pass over the bytes that builds the [`Score`] directly, without an
//! intermediate event list; it never allocates by a size the file *declares*, only by what
//! is actually present, so memory stays bounded by the input size and [`ReadLimits`].
//!
//! # How MIDI maps onto a score
//! * A track chunk that plays several channels, or changes program after notes were played,
//!   becomes one [`Track`](aurl_core::Track) per (channel, program), in order of appearance.
//!   A program change before any note of its channel only relabels that channel's track.
//! * Note-ons are paired with note-offs per (track chunk, channel, pitch), first in, first
//!   out: with overlapping notes of one pitch, a note-off ends the *oldest* sounding note.
//!   A note-on with velocity 0 is a note-off.
//! * Tempo, time-signature, key-signature and text events from every chunk go to the score's
//!   global lists. Track names name the tracks of their chunk; the name of a chunk without
//!   channel events (the conductor track of format 1) becomes the score's title.
//! * Format 2 files are read like format 1 (all sequences start at tick 0).
//! * SMPTE timing (frames per second × ticks per frame) becomes a metrical resolution of
//!   one tick per SMPTE tick and one tempo of one second per "quarter" (1.001 s for 29.97
//!   drop-frame), so seconds are exact.
//! * Sysex, aftertouch and other meta events are skipped as well-formed content (not repairs).
//! * Two files back to back (a second `MThd` after the tracks): the first song is read and
//!   the rest reported as [`RepairKind::TrailingSong`].

mod assemble;
mod reader;
mod report;
mod track;
mod write;

use std::path::Path;

use aurl_core::Score;

pub use report::{ParseReport, Problem, RepairKind};
pub use write::{WriteOptions, allocate_channels, write_atomically, write_midi, write_midi_file};

use crate::Error;

/// How to treat violations of the file-format specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Any violation is an [`Error::Malformed`] naming its byte offset and track.
    Strict,
    /// Violations are repaired and counted in the [`ParseReport`]; every recoverable note is
    /// kept. Only input with no usable MIDI structure is an error.
    #[default]
    Lenient,
}

/// Bounds on what one file may make the reader do. Exceeding one is an
/// [`Error::LimitExceeded`], never an abort or a huge allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest input accepted, in bytes.
    pub max_bytes: usize,
    /// Most tracks (one per channel and program of each track chunk) one file may create.
    /// Track chunks themselves are bounded only by `max_bytes`: one that holds no channel
    /// events creates no track and costs no work, so a file of 65,535 empty chunks reads.
    pub max_tracks: usize,
    /// Most notes read from one file.
    pub max_notes: usize,
    /// Latest tick an event may fall on. Guards later stages (tokenizers, piano rolls)
    /// against files whose delta times span thousands of years.
    pub max_tick: u64,
}

impl Default for ReadLimits {
    /// 64 MiB, 4,096 tracks, 4 million notes, 2³⁶ ticks (about 39 hours at
    /// 30,000 ticks per quarter and 300 BPM). Generous for any real piece.
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_tracks: 4096,
            max_notes: 4_000_000,
            max_tick: 1 << 36,
        }
    }
}

/// Reads Standard MIDI File bytes with default [`ReadLimits`].
///
/// # Errors
/// [`Error::NotMidi`] if there is no MIDI header, [`Error::Malformed`] for a specification
/// violation in strict mode, [`Error::LimitExceeded`] when a limit is hit.
pub fn read_midi(bytes: &[u8], mode: Mode) -> Result<(Score, ParseReport), Error> {
    read_midi_with_limits(bytes, mode, &ReadLimits::default())
}

/// Reads Standard MIDI File bytes under explicit limits.
///
/// # Errors
/// As [`read_midi`].
pub fn read_midi_with_limits(
    bytes: &[u8],
    mode: Mode,
    limits: &ReadLimits,
) -> Result<(Score, ParseReport), Error> {
    reader::read(bytes, mode, limits)
}

/// Reads a MIDI file from disk with default [`ReadLimits`].
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::LimitExceeded`] if it is larger than
/// the byte limit (checked before reading it), otherwise as [`read_midi`].
pub fn read_midi_file(path: impl AsRef<Path>, mode: Mode) -> Result<(Score, ParseReport), Error> {
    let bytes = read_file_bytes(path.as_ref())?;
    read_midi(&bytes, mode)
}

/// Reads a whole file, refusing one larger than the default byte limit before reading it.
pub(crate) fn read_file_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let limit = ReadLimits::default().max_bytes as u64;
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > limit {
        return Err(Error::LimitExceeded {
            what: "file size in bytes",
            field: "max_bytes",
            value: len,
            limit,
        });
    }
    std::fs::read(path).map_err(io)
}
