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
#[derive(Clone, Copy)]
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

/// One decoded event a caller acts on (sysex, undefined statuses and end-of-track are
/// consumed by the walker).
enum Event<'b> {
    /// A channel message: its status and data bytes (the second is 0 for one-byte messages).
    Channel { status: u8, data: [u8; 2] },
    /// A meta event other than end-of-track.
    Meta { kind: u8, data: &'b [u8] },
}

/// What reading one event gave the walker.
enum Step<'b> {
    /// An event for the caller.
    Event(Event<'b>),
    /// Something consumed without an event (sysex, a repair); read on.
    Skipped,
    /// The chunk ended inside the event.
    Truncated,
    /// The end-of-track event.
    End,
}

/// How a byte ≥ 0x80 met where a channel message's data byte is due is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DataBytes {
    /// Not met yet in this track: the first one decides (lenient mode only).
    Undecided,
    /// As the status byte of the next event (the specification's reading).
    Status,
    /// As a data byte clipped to 127 (writers that store 127 as 0xFF).
    Clipped,
}

/// Walks the events of one track chunk: delta times, running status, channel messages,
/// sysex and meta events, with resynchronisation in lenient mode.
#[derive(Clone, Copy)]
struct Walker<'b> {
    c: Cursor<'b>,
    tick: u64,
    /// Running status in force, and the last channel status even after a meta/sysex event
    /// cancelled it (players keep using it; lenient mode does too).
    running: Option<u8>,
    last_channel_status: Option<u8>,
    /// After a resynchronisation the next byte is a status with no delta time before it.
    status_pending: bool,
    saw_end_of_track: bool,
    data_bytes: DataBytes,
    /// Offset of the event being read.
    event_start: usize,
}

impl<'b> Walker<'b> {
    fn new(bytes: &'b [u8], start: usize, chunk_end: usize, track: usize, mode: Mode) -> Self {
        Self {
            c: Cursor {
                bytes,
                pos: start,
                end: chunk_end,
                track,
                extended: false,
            },
            tick: 0,
            running: None,
            last_channel_status: None,
            status_pending: false,
            saw_end_of_track: false,
            data_bytes: if mode == Mode::Strict {
                DataBytes::Status
            } else {
                DataBytes::Undecided
            },
            event_start: start,
        }
    }

    /// The next event, or `None` at the end of the track (its end-of-track event, or where a
    /// damaged track had to stop, recorded in `ctx`). Not called again after `None`.
    fn next(&mut self, ctx: &mut ReadCtx<'_>) -> Result<Option<Event<'b>>, Error> {
        loop {
            if self.c.pos >= self.c.end {
                if self.saw_end_of_track {
                    return Ok(None);
                }
                if self.c.try_extend(ctx)? {
                    continue;
                }
                ctx.problem(
                    RepairKind::MissingEndOfTrack,
                    self.c.pos,
                    Some(self.c.track),
                )?;
                return Ok(None);
            }
            let before = *self;
            self.event_start = self.c.pos;
            match self.event(ctx, &before)? {
                Step::Event(event) => return Ok(Some(event)),
                Step::Skipped => {}
                Step::End => return Ok(None),
                Step::Truncated => {
                    // A wrong chunk length: read the event again over the longer chunk.
                    if self.c.try_extend(ctx)? {
                        let end = self.c.end;
                        *self = Self {
                            c: Cursor {
                                end,
                                extended: true,
                                ..before.c
                            },
                            ..before
                        };
                        continue;
                    }
                    let at = self.event_start;
                    ctx.problem(RepairKind::TruncatedEvent, at, Some(self.c.track))?;
                    return Ok(None);
                }
            }
        }
    }

    /// Reads one event from `event_start` (`before` is the walker's state there).
    fn event(&mut self, ctx: &mut ReadCtx<'_>, before: &Self) -> Result<Step<'b>, Error> {
        if !self.status_pending {
            let Some(delta) = self.varint(ctx, self.c.pos, true)? else {
                return Ok(Step::Truncated);
            };
            self.tick += u64::from(delta);
            let max_tick = ctx.limits.max_tick;
            if self.tick > max_tick {
                ctx.limit("event tick", "max_tick", self.tick, max_tick)?;
            }
        }
        self.status_pending = false;
        if self.c.pos >= self.c.end {
            return Ok(Step::Truncated);
        }
        let Some(status) = self.status(ctx)? else {
            return Ok(Step::Skipped);
        };
        match status {
            0x80..=0xEF => self.channel_message(ctx, status, before),
            0xF0 | 0xF7 => {
                self.running = None;
                let Some(len) = self.varint(ctx, self.c.pos, false)? else {
                    return Ok(Step::Truncated);
                };
                Ok(self.skip(len as usize))
            }
            0xFF => self.meta_event(ctx),
            _ => {
                // System common / real-time bytes have no place in a file: skip them and the
                // data bytes they would carry.
                let track = Some(self.c.track);
                ctx.problem(RepairKind::UndefinedStatus, self.c.pos - 1, track)?;
                let n = match status {
                    0xF2 => 2,
                    0xF1 | 0xF3 => 1,
                    _ => 0,
                };
                let bytes = self.c.bytes;
                let mut skipped = 0;
                while skipped < n && self.c.pos < self.c.end && bytes[self.c.pos] < 0x80 {
                    self.c.pos += 1;
                    skipped += 1;
                }
                Ok(Step::Skipped)
            }
        }
    }

    /// A variable-length number at `at`; the cursor moves past it. `None` when the chunk
    /// ends inside it. An over-long delta time is recorded (lengths of sysex and meta
    /// events are read as they are, as always).
    fn varint(
        &mut self,
        ctx: &mut ReadCtx<'_>,
        at: usize,
        delta: bool,
    ) -> Result<Option<u32>, Error> {
        match varint(self.c.bytes, at, self.c.end) {
            Varint::Value(v, n) => {
                self.c.pos = at + n;
                Ok(Some(v))
            }
            Varint::Overlong(v, n) => {
                if delta {
                    ctx.problem(RepairKind::OverlongVarint, at, Some(self.c.track))?;
                }
                self.c.pos = at + n;
                Ok(Some(v))
            }
            Varint::Truncated => Ok(None),
        }
    }

    /// Skips `len` bytes of content; truncated when the chunk has fewer.
    fn skip(&mut self, len: usize) -> Step<'b> {
        if len > self.c.end - self.c.pos {
            return Step::Truncated;
        }
        self.c.pos += len;
        Step::Skipped
    }

    /// The event's status: its own byte, or the running status. `None` after resynchronising
    /// past data bytes that no status explains (the walker then reads on from there).
    fn status(&mut self, ctx: &mut ReadCtx<'_>) -> Result<Option<u8>, Error> {
        let (bytes, track) = (self.c.bytes, Some(self.c.track));
        let b = bytes[self.c.pos];
        if b >= 0x80 {
            self.c.pos += 1;
            return Ok(Some(b));
        }
        if let Some(rs) = self.running {
            return Ok(Some(rs));
        }
        if let Some(rs) = self.last_channel_status {
            ctx.problem(RepairKind::RunningStatusAcrossMeta, self.c.pos, track)?;
            self.running = Some(rs);
            return Ok(Some(rs));
        }
        ctx.problem(RepairKind::RunningStatusWithoutStatus, self.c.pos, track)?;
        // Skip to the next status byte. If more than the offending byte was skipped, the
        // byte just before that status is most likely its delta time: read it as one.
        let first = self.c.pos;
        while self.c.pos < self.c.end && bytes[self.c.pos] < 0x80 {
            self.c.pos += 1;
        }
        if self.c.pos - first >= 2 && self.c.pos < self.c.end {
            self.c.pos -= 1;
        } else {
            self.status_pending = true;
        }
        Ok(None)
    }

    /// A channel message's data bytes, read as the track's [`DataBytes`] reading says.
    fn channel_message(
        &mut self,
        ctx: &mut ReadCtx<'_>,
        status: u8,
        before: &Self,
    ) -> Result<Step<'b>, Error> {
        let (bytes, track) = (self.c.bytes, Some(self.c.track));
        self.running = Some(status);
        self.last_channel_status = Some(status);
        let n = channel_data_len(status);
        let present = (self.c.end - self.c.pos).min(n);
        let invalid = bytes[self.c.pos..self.c.pos + present]
            .iter()
            .position(|&x| x >= 0x80);
        if let Some(i) = invalid {
            if self.data_bytes == DataBytes::Undecided {
                self.data_bytes = Self::choose_data_bytes(before, ctx);
            }
            if self.data_bytes == DataBytes::Status {
                // The status byte inside the message starts the next event.
                let at = self.c.pos + i;
                ctx.problem(RepairKind::InvalidDataByte, at, track)?;
                self.c.pos = at;
                self.status_pending = true;
                return Ok(Step::Skipped);
            }
        }
        if present < n {
            return Ok(Step::Truncated);
        }
        let mut data = [0u8; 2];
        for (k, slot) in data.iter_mut().take(n).enumerate() {
            let x = bytes[self.c.pos + k];
            if x >= 0x80 {
                ctx.problem(RepairKind::DataByteClipped, self.c.pos + k, track)?;
            }
            *slot = x.min(0x7F);
        }
        self.c.pos += n;
        Ok(Step::Event(Event::Channel { status, data }))
    }

    /// A meta event; end-of-track ends the walk unless events follow it in the chunk.
    fn meta_event(&mut self, ctx: &mut ReadCtx<'_>) -> Result<Step<'b>, Error> {
        let (bytes, track) = (self.c.bytes, Some(self.c.track));
        self.running = None;
        if self.c.pos >= self.c.end {
            return Ok(Step::Truncated);
        }
        let kind = bytes[self.c.pos];
        let Some(len) = self.varint(ctx, self.c.pos + 1, false)? else {
            return Ok(Step::Truncated);
        };
        let len = len as usize;
        if len > self.c.end - self.c.pos {
            return Ok(Step::Truncated);
        }
        let data = &bytes[self.c.pos..self.c.pos + len];
        self.c.pos += len;
        if kind != 0x2F {
            return Ok(Step::Event(Event::Meta { kind, data }));
        }
        if len != 0 {
            ctx.problem(RepairKind::InvalidMetaLength, self.event_start, track)?;
        }
        self.saw_end_of_track = true;
        if bytes[self.c.pos..self.c.end].iter().all(|&b| b == 0) {
            // Nothing after it, or zero padding: the chunk is done.
            return Ok(Step::End);
        }
        ctx.problem(RepairKind::EventsAfterEndOfTrack, self.c.pos, track)?;
        Ok(Step::Skipped)
    }

    /// Decides, at the first byte ≥ 0x80 where a data byte is due, how this track reads
    /// such bytes: the reading under which the rest of the track (from the event `before`
    /// starts) parses with fewer syntax repairs; the specification's (a status byte) on a
    /// tie. Both are tried on copies, so nothing is recorded twice.
    fn choose_data_bytes(before: &Self, ctx: &ReadCtx<'_>) -> DataBytes {
        let repairs = |reading: DataBytes| {
            let mut trial = *before;
            trial.data_bytes = reading;
            let mut scratch = ReadCtx {
                mode: Mode::Lenient,
                limits: ctx.limits,
                report: super::ParseReport::default(),
                smpte: ctx.smpte,
            };
            loop {
                match trial.next(&mut scratch) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => return u64::MAX,
                }
            }
            scratch
                .report
                .repairs()
                .filter(|(kind, _)| kind.is_syntax_error() && *kind != RepairKind::DataByteClipped)
                .map(|(_, n)| u64::from(n))
                .sum::<u64>()
        };
        if repairs(DataBytes::Clipped) < repairs(DataBytes::Status) {
            DataBytes::Clipped
        } else {
            DataBytes::Status
        }
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
    let mut walker = Walker::new(bytes, start, chunk_end, track, ctx.mode);
    asm.begin_chunk(score, track, chunk_end - start);
    while let Some(event) = walker.next(ctx)? {
        let (tick, offset) = (walker.tick, walker.event_start);
        match event {
            Event::Channel { status, data: d } => {
                let channel = status & 0x0F;
                match status & 0xF0 {
                    0x90 if d[1] > 0 => asm.note_on(score, ctx, channel, d[0], d[1], tick)?,
                    0x80 | 0x90 => asm.note_off(score, ctx, channel, d[0], tick, offset)?,
                    0xB0 => asm.control(score, channel, d[0], d[1], tick),
                    0xC0 => asm.program(score, channel, d[0]),
                    0xE0 => {
                        let value = (i16::from(d[1]) << 7 | i16::from(d[0])) - 8192;
                        asm.pitch_bend(score, channel, value, tick);
                    }
                    _ => {} // aftertouch: well-formed, not kept
                }
            }
            Event::Meta { kind, data } => {
                meta(ctx, asm, score, kind, data, tick, offset, track)?;
            }
        }
    }
    let c = walker.c;
    asm.end_chunk(score, ctx, walker.tick, c.pos.min(c.end))?;
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
