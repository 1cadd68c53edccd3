//! The event level: one pass over a track chunk's bytes, decoding delta times, running
//! status, channel messages, sysex and meta events, with resynchronisation in lenient mode.

use aurl_core::{KeySignature, Score, Tempo, TextEvent, TextKind, TimeSignature};

use super::Mode;
use super::assemble::Assembler;
use super::reader::{ReadCtx, find_track_magic, looks_like_chunk};
use super::report::RepairKind;
use crate::Error;

/// Result of reading a variable-length quantity.
enum Varint {
    Value(u32, usize),
    Overlong(u32, usize),
    Truncated,
}

/// Reads a MIDI variable-length number at `pos` (at most 4 bytes by the specification;
/// longer ones are read on to their last byte and flagged).
#[inline]
fn varint(bytes: &[u8], pos: usize, end: usize) -> Varint {
    let mut value: u32 = 0;
    let mut i = pos;
    while i < end {
        let b = bytes[i];
        value = (value << 7) | u32::from(b & 0x7F);
        i += 1;
        if b < 0x80 {
            let len = i - pos;
            return if len > 4 {
                Varint::Overlong(value, len)
            } else {
                Varint::Value(value, len)
            };
        }
    }
    Varint::Truncated
}

/// Number of data bytes after a channel status.
#[inline]
const fn channel_data_len(status: u8) -> usize {
    match status & 0xF0 {
        0xC0 | 0xD0 => 1,
        _ => 2,
    }
}

/// The state of the cursor over one chunk.
struct Cursor<'b> {
    bytes: &'b [u8],
    pos: usize,
    end: usize,
    track: usize,
    /// Whether the chunk was already extended past its declared length.
    extended: bool,
}

impl Cursor<'_> {
    /// Lenient recovery when a track's events run past its declared end: if what follows is
    /// not a chunk header, the declared length was wrong, so read on to the next `MTrk`.
    fn try_extend(&mut self, ctx: &mut ReadCtx<'_>) -> Result<bool, Error> {
        let file_end = self.bytes.len();
        if ctx.mode == Mode::Strict
            || self.extended
            || self.end >= file_end
            || looks_like_chunk(self.bytes, self.end)
        {
            return Ok(false);
        }
        let new_end = find_track_magic(self.bytes, self.end, file_end).unwrap_or(file_end);
        ctx.problem(RepairKind::ChunkLengthTooShort, self.end, Some(self.track))?;
        self.extended = true;
        self.end = new_end;
        Ok(true)
    }
}

/// Reads the track chunk `bytes[start..chunk_end]` into `score` through the assembler and
/// returns the position where its content really ended (beyond `chunk_end` when a wrong
/// length was repaired).
pub(super) fn read_track(
    ctx: &mut ReadCtx<'_>,
    asm: &mut Assembler,
    score: &mut Score,
    bytes: &[u8],
    start: usize,
    chunk_end: usize,
    track: usize,
) -> Result<usize, Error> {
    let mut c = Cursor {
        bytes,
        pos: start,
        end: chunk_end,
        track,
        extended: false,
    };
    let max_tick = ctx.limits.max_tick;
    let mut tick: u64 = 0;
    // Running status in force, and the last channel status even after a meta/sysex event
    // cancelled it (players keep using it; lenient mode does too).
    let mut running: Option<u8> = None;
    let mut last_channel_status: Option<u8> = None;
    // After a resynchronisation the next byte is a status with no delta time before it.
    let mut status_pending = false;
    let mut saw_end_of_track = false;
    asm.begin_chunk(score, track, chunk_end - start);

    'events: loop {
        if c.pos >= c.end {
            if saw_end_of_track {
                break;
            }
            if c.try_extend(ctx)? {
                continue;
            }
            ctx.problem(RepairKind::MissingEndOfTrack, c.pos, Some(track))?;
            break;
        }
        let event_start = c.pos;
        let (tick_before, pending_before) = (tick, status_pending);
        macro_rules! truncated {
            () => {{
                if c.try_extend(ctx)? {
                    c.pos = event_start;
                    tick = tick_before;
                    status_pending = pending_before;
                    continue 'events;
                }
                ctx.problem(RepairKind::TruncatedEvent, event_start, Some(track))?;
                break 'events;
            }};
        }

        if !status_pending {
            let delta = match varint(bytes, c.pos, c.end) {
                Varint::Value(v, n) => {
                    c.pos += n;
                    v
                }
                Varint::Overlong(v, n) => {
                    ctx.problem(RepairKind::OverlongVarint, c.pos, Some(track))?;
                    c.pos += n;
                    v
                }
                Varint::Truncated => truncated!(),
            };
            tick += u64::from(delta);
            if tick > max_tick {
                ctx.limit("event tick", "max_tick", tick, max_tick)?;
            }
        }
        status_pending = false;
        if c.pos >= c.end {
            truncated!();
        }

        let b = bytes[c.pos];
        let status = if b >= 0x80 {
            c.pos += 1;
            b
        } else if let Some(rs) = running {
            rs
        } else if let Some(rs) = last_channel_status {
            ctx.problem(RepairKind::RunningStatusAcrossMeta, c.pos, Some(track))?;
            running = Some(rs);
            rs
        } else {
            ctx.problem(RepairKind::RunningStatusWithoutStatus, c.pos, Some(track))?;
            // Skip to the next status byte. If more than the offending byte was skipped,
            // the byte just before that status is most likely its delta time: read it as one.
            let first = c.pos;
            while c.pos < c.end && bytes[c.pos] < 0x80 {
                c.pos += 1;
            }
            if c.pos - first >= 2 && c.pos < c.end {
                c.pos -= 1;
            } else {
                status_pending = true;
            }
            continue;
        };

        match status {
            0x80..=0xEF => {
                running = Some(status);
                last_channel_status = Some(status);
                let n = channel_data_len(status);
                if c.pos + n > c.end {
                    // A status byte inside the missing data is the more precise diagnosis.
                    if let Some(i) = (c.pos..c.end).find(|&i| bytes[i] >= 0x80) {
                        ctx.problem(RepairKind::InvalidDataByte, i, Some(track))?;
                        c.pos = i;
                        status_pending = true;
                        continue;
                    }
                    truncated!();
                }
                let d = &bytes[c.pos..c.pos + n];
                if let Some(i) = d.iter().position(|&x| x >= 0x80) {
                    ctx.problem(RepairKind::InvalidDataByte, c.pos + i, Some(track))?;
                    c.pos += i;
                    status_pending = true;
                    continue;
                }
                c.pos += n;
                let channel = status & 0x0F;
                match status & 0xF0 {
                    0x90 if d[1] > 0 => asm.note_on(score, ctx, channel, d[0], d[1], tick)?,
                    0x80 | 0x90 => asm.note_off(score, ctx, channel, d[0], tick, event_start)?,
                    0xB0 => asm.control(score, channel, d[0], d[1], tick),
                    0xC0 => asm.program(score, channel, d[0]),
                    0xE0 => {
                        let value = (i16::from(d[1]) << 7 | i16::from(d[0])) - 8192;
                        asm.pitch_bend(score, channel, value, tick);
                    }
                    _ => {} // aftertouch: well-formed, not kept
                }
            }
            0xF0 | 0xF7 => {
                running = None;
                let len = match varint(bytes, c.pos, c.end) {
                    Varint::Value(v, n) | Varint::Overlong(v, n) => {
                        c.pos += n;
                        v as usize
                    }
                    Varint::Truncated => truncated!(),
                };
                if len > c.end - c.pos {
                    truncated!();
                }
                c.pos += len;
            }
            0xFF => {
                running = None;
                if c.pos >= c.end {
                    truncated!();
                }
                let kind = bytes[c.pos];
                let len = match varint(bytes, c.pos + 1, c.end) {
                    Varint::Value(v, n) | Varint::Overlong(v, n) => {
                        c.pos += 1 + n;
                        v as usize
                    }
                    Varint::Truncated => truncated!(),
                };
                if len > c.end - c.pos {
                    truncated!();
                }
                let data = &bytes[c.pos..c.pos + len];
                c.pos += len;
                if kind == 0x2F {
                    if len != 0 {
                        ctx.problem(RepairKind::InvalidMetaLength, event_start, Some(track))?;
                    }
                    saw_end_of_track = true;
                    let rest = &bytes[c.pos..c.end];
                    if rest.iter().all(|&b| b == 0) {
                        // Nothing after it, or zero padding: the chunk is done.
                        break;
                    }
                    ctx.problem(RepairKind::EventsAfterEndOfTrack, c.pos, Some(track))?;
                    continue;
                }
                meta(ctx, asm, score, kind, data, tick, event_start, track)?;
            }
            _ => {
                // System common / real-time bytes have no place in a file: skip them and
                // the data bytes they would carry.
                ctx.problem(RepairKind::UndefinedStatus, c.pos - 1, Some(track))?;
                let n = match status {
                    0xF2 => 2,
                    0xF1 | 0xF3 => 1,
                    _ => 0,
                };
                let mut skipped = 0;
                while skipped < n && c.pos < c.end && bytes[c.pos] < 0x80 {
                    c.pos += 1;
                    skipped += 1;
                }
            }
        }
    }
    let end_offset = c.pos.min(c.end);
    asm.end_chunk(score, ctx, tick, end_offset)?;
    Ok(c.end)
}

/// Handles one meta event (other than end-of-track).
#[allow(clippy::too_many_arguments)]
fn meta(
    ctx: &mut ReadCtx<'_>,
    asm: &mut Assembler,
    score: &mut Score,
    kind: u8,
    data: &[u8],
    tick: u64,
    offset: usize,
    track: usize,
) -> Result<(), Error> {
    let bad_length =
        |ctx: &mut ReadCtx<'_>| ctx.problem(RepairKind::InvalidMetaLength, offset, Some(track));
    match kind {
        0x51 => {
            if data.len() != 3 {
                bad_length(ctx)?;
                if data.len() < 3 {
                    return Ok(());
                }
            }
            let micros = u32::from(data[0]) << 16 | u32::from(data[1]) << 8 | u32::from(data[2]);
            if ctx.smpte {
                ctx.problem(RepairKind::TempoInSmpteFile, offset, Some(track))?;
            } else if micros == 0 {
                ctx.problem(RepairKind::ZeroTempo, offset, Some(track))?;
            } else {
                score.tempos.push(Tempo {
                    tick,
                    micros_per_quarter: micros,
                });
            }
        }
        0x58 => {
            if data.len() != 4 {
                bad_length(ctx)?;
                if data.len() < 2 {
                    return Ok(());
                }
            }
            match TimeSignature::new(
                tick,
                data[0],
                1u8.checked_shl(u32::from(data[1])).unwrap_or(0),
            ) {
                Ok(ts) if data[1] <= 7 => score.time_signatures.push(ts),
                _ => ctx.problem(RepairKind::InvalidTimeSignature, offset, Some(track))?,
            }
        }
        0x59 => {
            if data.len() != 2 {
                bad_length(ctx)?;
                if data.len() < 2 {
                    return Ok(());
                }
            }
            let sharps = data[0] as i8;
            if !(-7..=7).contains(&sharps) || data[1] > 1 {
                ctx.problem(RepairKind::InvalidKeySignature, offset, Some(track))?;
            }
            score
                .key_signatures
                .push(KeySignature::clamped(tick, sharps, data[1] != 0));
        }
        0x03 => asm.set_chunk_name(data),
        _ => {
            if let Some(kind) = TextKind::from_meta_type(kind) {
                score.texts.push(TextEvent {
                    tick,
                    kind,
                    bytes: data.to_vec(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_decode_per_the_specification() {
        let cases: [(&[u8], u32); 6] = [
            (&[0x00], 0),
            (&[0x7F], 127),
            (&[0x81, 0x00], 128),
            (&[0xC0, 0x00], 0x2000),
            (&[0xFF, 0xFF, 0x7F], 0x1F_FFFF),
            (&[0xFF, 0xFF, 0xFF, 0x7F], 0x0FFF_FFFF),
        ];
        for (bytes, want) in cases {
            match varint(bytes, 0, bytes.len()) {
                Varint::Value(v, n) => assert_eq!((v, n), (want, bytes.len())),
                _ => panic!("{bytes:?} should decode"),
            }
        }
        assert!(matches!(varint(&[0x81, 0x80], 0, 2), Varint::Truncated));
        assert!(matches!(
            varint(&[0x80, 0x80, 0x80, 0x80, 0x01], 0, 5),
            Varint::Overlong(1, 5)
        ));
    }
}
