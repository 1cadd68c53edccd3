//! The container level: RIFF wrapper, header, and the walk over chunks.

use std::cell::RefCell;

use aurl_core::{Score, Tempo};

use super::assemble::Assembler;
use super::report::{ParseReport, Problem, RepairKind};
use super::track::read_track;
use super::{Mode, ReadLimits};
use crate::Error;

/// State shared by every level of one read: mode, limits and the report being built.
pub(super) struct ReadCtx<'l> {
    pub mode: Mode,
    pub limits: &'l ReadLimits,
    pub report: ParseReport,
    /// Whether the file is timed in SMPTE frames (tempo events are then meaningless).
    pub smpte: bool,
}

impl ReadCtx<'_> {
    /// Records a problem; in strict mode a syntax error ends the read instead.
    pub fn problem(
        &mut self,
        kind: RepairKind,
        offset: usize,
        track: Option<usize>,
    ) -> Result<(), Error> {
        let problem = Problem {
            kind,
            offset,
            track,
        };
        if self.mode == Mode::Strict && kind.is_syntax_error() {
            return Err(Error::Malformed(problem));
        }
        self.report.record(problem);
        Ok(())
    }

    pub fn limit(
        &self,
        what: &'static str,
        field: &'static str,
        value: u64,
        limit: u64,
    ) -> Result<(), Error> {
        if value > limit {
            return Err(Error::LimitExceeded {
                what,
                field,
                value,
                limit,
            });
        }
        Ok(())
    }
}

pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(super) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// How far into the input a lenient read looks for a header behind leading garbage.
const HEADER_SEARCH_WINDOW: usize = 4096;

/// Finds the SMF bytes: `start..end` of `MThd…`, unwrapping RIFF `RMID` and (leniently)
/// skipping leading garbage.
fn locate(bytes: &[u8], ctx: &mut ReadCtx<'_>) -> Result<(usize, usize), Error> {
    let not_midi = || Error::NotMidi {
        found: bytes[..bytes.len().min(4)].to_vec(),
    };
    if bytes.starts_with(b"MThd") {
        return Ok((0, bytes.len()));
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"RMID" {
        ctx.report.riff = true;
        let mut pos = 12;
        while pos + 8 <= bytes.len() {
            let len = u32::from_le_bytes([
                bytes[pos + 4],
                bytes[pos + 5],
                bytes[pos + 6],
                bytes[pos + 7],
            ]) as usize;
            let data = pos + 8;
            let end = data.saturating_add(len).min(bytes.len());
            if &bytes[pos..pos + 4] == b"data" {
                if !bytes[data..end].starts_with(b"MThd") {
                    return Err(not_midi());
                }
                return Ok((data, end));
            }
            pos = end + (len & 1);
        }
        return Err(not_midi());
    }
    if ctx.mode == Mode::Lenient {
        let window = &bytes[..bytes.len().min(HEADER_SEARCH_WINDOW)];
        if let Some(at) = window.windows(4).position(|w| w == b"MThd") {
            ctx.problem(RepairKind::LeadingGarbage, 0, None)?;
            return Ok((at, bytes.len()));
        }
    }
    Err(not_midi())
}

/// Whether `at` starts something that looks like a chunk header (four ASCII letters, digits
/// or spaces), so a track that ran out of declared bytes is not continued into it.
pub(super) fn looks_like_chunk(bytes: &[u8], at: usize) -> bool {
    bytes.len() >= at + 8
        && bytes[at..at + 4]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b' ')
}

/// Position of the next `MTrk` at or after `from`, if any.
pub(super) fn find_track_magic(bytes: &[u8], from: usize, end: usize) -> Option<usize> {
    if from >= end {
        return None;
    }
    bytes[from..end]
        .windows(4)
        .position(|w| w == b"MTrk")
        .map(|i| from + i)
}

thread_local! {
    /// Each thread keeps its note-pairing tables between files: allocating and clearing them
    /// per file cost more than parsing a small file.
    static ASSEMBLER: RefCell<Option<Assembler>> = const { RefCell::new(None) };
}

pub(super) fn read(
    bytes: &[u8],
    mode: Mode,
    limits: &ReadLimits,
) -> Result<(Score, ParseReport), Error> {
    let mut asm = ASSEMBLER
        .with(|a| a.borrow_mut().take())
        .unwrap_or_else(Assembler::new);
    let result = read_with(&mut asm, bytes, mode, limits);
    asm.reset();
    ASSEMBLER.with(|a| *a.borrow_mut() = Some(asm));
    result
}

fn read_with(
    asm: &mut Assembler,
    bytes: &[u8],
    mode: Mode,
    limits: &ReadLimits,
) -> Result<(Score, ParseReport), Error> {
    let mut ctx = ReadCtx {
        mode,
        limits,
        report: ParseReport::default(),
        smpte: false,
    };
    ctx.limit(
        "input size in bytes",
        "max_bytes",
        bytes.len() as u64,
        limits.max_bytes as u64,
    )?;
    let (start, end) = locate(bytes, &mut ctx)?;
    let bytes = &bytes[..end];

    // Header chunk.
    if end - start < 8 {
        return Err(Error::NotMidi {
            found: bytes[start..].iter().take(4).copied().collect(),
        });
    }
    let header_len = be32(bytes, start + 4) as usize;
    let fields = start + 8;
    let available = (end - fields).min(header_len);
    if header_len < 6 || available < 6 {
        let kind = if header_len < 6 {
            RepairKind::BadHeaderLength
        } else {
            RepairKind::ChunkLengthBeyondFile
        };
        ctx.problem(kind, start + 4, None)?;
    }
    let field = |i: usize, default: u16| {
        if available >= 2 * i + 2 {
            be16(bytes, fields + 2 * i)
        } else {
            default
        }
    };
    let format = field(0, 1);
    let declared_tracks = field(1, 1);
    let division = field(2, 0);
    ctx.report.format = format;
    ctx.report.declared_tracks = declared_tracks;
    if format > 2 {
        ctx.problem(RepairKind::UnknownFormat, fields, None)?;
    }

    let mut score = Score::new(480);
    if division & 0x8000 != 0 {
        set_smpte_timing(&mut score, division, &mut ctx, fields + 4)?;
    } else if division == 0 {
        ctx.problem(RepairKind::InvalidDivision, fields + 4, None)?;
    } else {
        score.ticks_per_quarter = division;
    }

    let pos = fields.saturating_add(header_len).min(end);
    let track_index = read_chunks(&mut ctx, asm, &mut score, bytes, pos)?;
    ctx.report.track_chunks = track_index;
    if track_index != usize::from(declared_tracks) {
        ctx.problem(RepairKind::TrackCountMismatch, start + 10, None)?;
    }
    if format == 0 && track_index > 1 {
        ctx.problem(RepairKind::Format0WithSeveralTracks, start + 8, None)?;
    }
    score.sort_global_events();
    Ok((score, ctx.report))
}

/// Reads the chunks from `pos` to the end of `bytes`: track chunks into `score`, unknown
/// chunks skipped, bytes outside any chunk skipped to the next `MTrk`; a second header ends
/// the file. Returns the number of track chunks read.
fn read_chunks(
    ctx: &mut ReadCtx<'_>,
    asm: &mut Assembler,
    score: &mut Score,
    bytes: &[u8],
    mut pos: usize,
) -> Result<usize, Error> {
    let end = bytes.len();
    let mut track_index = 0usize;
    while pos < end {
        if end - pos < 8 || !looks_like_chunk(bytes, pos) {
            // Bytes outside any chunk: skip to the next track chunk if there is one.
            ctx.problem(RepairKind::TrailingBytes, pos, None)?;
            match find_track_magic(bytes, pos + 1, end) {
                Some(next) => {
                    pos = next;
                    continue;
                }
                None => break,
            }
        }
        let len = be32(bytes, pos + 4) as usize;
        let data = pos + 8;
        let declared_end = data.saturating_add(len);
        let chunk_end = if declared_end > end {
            ctx.problem(
                RepairKind::ChunkLengthBeyondFile,
                pos + 4,
                Some(track_index),
            )?;
            end
        } else {
            declared_end
        };
        if &bytes[pos..pos + 4] == b"MTrk" {
            let read_to = read_track(ctx, asm, score, bytes, data, chunk_end, track_index)?;
            track_index += 1;
            pos = read_to.max(chunk_end);
            // Track chunks are bounded by the input (an empty one is 12 bytes and costs no
            // work); the tracks they create are what later stages pay for.
            ctx.limit(
                "tracks",
                "max_tracks",
                score.tracks.len() as u64,
                ctx.limits.max_tracks as u64,
            )?;
        } else if &bytes[pos..pos + 4] == b"MThd" && track_index > 0 {
            ctx.problem(RepairKind::TrailingSong, pos, None)?;
            break;
        } else {
            ctx.problem(RepairKind::UnknownChunkSkipped, pos, None)?;
            pos = chunk_end;
        }
    }
    Ok(track_index)
}

/// Converts SMPTE timing into a metrical resolution plus one tempo, exactly.
fn set_smpte_timing(
    score: &mut Score,
    division: u16,
    ctx: &mut ReadCtx<'_>,
    offset: usize,
) -> Result<(), Error> {
    ctx.smpte = true;
    ctx.report.smpte = true;
    // The high byte is the negated frame rate (two's complement): 0xE7 = -25.
    let fps = -i32::from((division >> 8) as u8 as i8);
    let ticks_per_frame = i32::from(division as u8);
    // 29 means 29.97 drop-frame: 30 nominal frames last 1.001 s.
    let (frames, micros) = match fps {
        24 | 25 | 30 => (fps, 1_000_000),
        29 => (30, 1_001_000),
        _ => (0, 0),
    };
    if frames == 0 || ticks_per_frame == 0 {
        ctx.problem(RepairKind::InvalidDivision, offset, None)?;
        return Ok(());
    }
    // One "quarter" = one second: ticks per quarter = ticks per second (at most 30 × 255).
    score.ticks_per_quarter = (frames * ticks_per_frame) as u16;
    score.tempos.push(Tempo {
        tick: 0,
        micros_per_quarter: micros,
    });
    Ok(())
}

/// Global event lists are gathered chunk by chunk; put them in time order (stable).
trait SortGlobal {
    fn sort_global_events(&mut self);
}

impl SortGlobal for Score {
    fn sort_global_events(&mut self) {
        // Usually already in order (one conductor track): checking is cheaper than sorting.
        if !self.tempos.is_sorted_by_key(|e| e.tick) {
            self.tempos.sort_by_key(|e| e.tick);
        }
        if !self.time_signatures.is_sorted_by_key(|e| e.tick) {
            self.time_signatures.sort_by_key(|e| e.tick);
        }
        if !self.key_signatures.is_sorted_by_key(|e| e.tick) {
            self.key_signatures.sort_by_key(|e| e.tick);
        }
        if !self.texts.is_sorted_by_key(|e| e.tick) {
            self.texts.sort_by_key(|e| e.tick);
        }
    }
}
