//! The score level: turns decoded channel events into tracks and paired notes.

use aurl_core::{
    Channel, ControlChange, ControlValue, Note, Pitch, PitchBend, Program, Score, Track, Velocity,
};

use super::reader::ReadCtx;
use super::report::RepairKind;
use crate::Error;

const NONE: u32 = u32::MAX;
const KEYS: usize = 16 * 128;

/// A note-off that found no sounding note.
#[derive(Clone, Copy)]
struct Orphan {
    key: u16,
    tick: u64,
    offset: usize,
    matched: bool,
}

/// A sounding note waiting for its note-off, linked into its (channel, pitch) queue.
#[derive(Clone, Copy)]
struct Open {
    track: u32,
    note: u32,
    next: u32,
}

/// Builds tracks from channel events. Reused across the chunks of one file, so its buffers
/// are allocated once per file.
pub(super) struct Assembler {
    /// Per (channel, pitch): first and last open note in `slab` (a FIFO queue), or NONE.
    head: Vec<u32>,
    tail: Vec<u32>,
    /// Open notes; freed entries are chained through `next` from `free`.
    slab: Vec<Open>,
    free: u32,
    open: usize,
    /// Track (index into `score.tracks`) each channel of the current chunk writes to.
    current: [u32; 16],
    /// Program in force per channel of the current chunk.
    programs: [u8; 16],
    /// First index in `score.tracks` belonging to the current chunk.
    chunk_first: usize,
    chunk_index: usize,
    chunk_name: Option<Vec<u8>>,
    /// Note-offs of this chunk that found no sounding note.
    orphans: Vec<Orphan>,
    /// Expected notes in the current chunk (a note takes at least 6 bytes; most take ~8).
    chunk_note_estimate: usize,
    notes: usize,
}

impl Assembler {
    pub fn new() -> Self {
        Self {
            head: vec![NONE; KEYS],
            tail: vec![NONE; KEYS],
            slab: Vec::new(),
            free: NONE,
            open: 0,
            current: [NONE; 16],
            programs: [0; 16],
            chunk_first: 0,
            chunk_index: 0,
            chunk_name: None,
            orphans: Vec::new(),
            chunk_note_estimate: 0,
            notes: 0,
        }
    }

    /// Makes the assembler ready for another file, whatever state the last one left
    /// (an error can end a read with notes still open).
    pub fn reset(&mut self) {
        if self.open > 0 {
            self.head.fill(NONE);
            self.tail.fill(NONE);
        }
        self.open = 0;
        self.slab.clear();
        self.free = NONE;
        self.notes = 0;
        self.orphans.clear();
    }

    /// Starts a track chunk of `chunk_len` bytes.
    pub fn begin_chunk(&mut self, score: &Score, chunk_index: usize, chunk_len: usize) {
        self.chunk_note_estimate = chunk_len / 8;
        self.current = [NONE; 16];
        self.programs = [0; 16];
        self.chunk_first = score.tracks.len();
        self.chunk_index = chunk_index;
        self.chunk_name = None;
    }

    /// The first track name of a chunk names its tracks.
    pub fn set_chunk_name(&mut self, name: &[u8]) {
        if self.chunk_name.is_none() {
            self.chunk_name = Some(name.to_vec());
        }
    }

    /// The track of `channel` in this chunk, created on first use.
    #[inline]
    fn track_for(&mut self, score: &mut Score, channel: u8) -> usize {
        let t = self.current[usize::from(channel)];
        if t != NONE {
            return t as usize;
        }
        let program = self.programs[usize::from(channel)];
        let t = self.find_or_create(score, channel, program);
        self.current[usize::from(channel)] = t as u32;
        t
    }

    fn find_or_create(&mut self, score: &mut Score, channel: u8, program: u8) -> usize {
        let existing = score.tracks[self.chunk_first..]
            .iter()
            .position(|t| t.channel.get() == channel && t.program.get() == program);
        if let Some(i) = existing {
            return self.chunk_first + i;
        }
        let channel = Channel::saturating(channel);
        // The chunk's first track usually gets most of its notes: size it once instead of
        // growing it through a dozen reallocations (bounded by the input size).
        let notes = Vec::with_capacity(std::mem::take(&mut self.chunk_note_estimate));
        score.tracks.push(Track {
            program: Program::saturating(program),
            is_drum: channel == Channel::DRUMS,
            channel,
            notes,
            ..Track::default()
        });
        score.tracks.len() - 1
    }

    #[inline]
    pub fn note_on(
        &mut self,
        score: &mut Score,
        ctx: &ReadCtx<'_>,
        channel: u8,
        pitch: u8,
        velocity: u8,
        tick: u64,
    ) -> Result<(), Error> {
        self.notes += 1;
        if self.notes > ctx.limits.max_notes {
            ctx.limit(
                "notes",
                "max_notes",
                self.notes as u64,
                ctx.limits.max_notes as u64,
            )?;
        }
        let t = self.track_for(score, channel);
        let notes = &mut score.tracks[t].notes;
        notes.push(Note::new(
            Pitch::saturating(pitch),
            Velocity::saturating(velocity),
            tick,
            0,
        ));
        let entry = Open {
            track: t as u32,
            note: (notes.len() - 1) as u32,
            next: NONE,
        };
        let slot = if self.free != NONE {
            let s = self.free;
            self.free = self.slab[s as usize].next;
            self.slab[s as usize] = entry;
            s
        } else {
            self.slab.push(entry);
            (self.slab.len() - 1) as u32
        };
        let key = usize::from(channel) * 128 + usize::from(pitch);
        if self.tail[key] == NONE {
            self.head[key] = slot;
        } else {
            self.slab[self.tail[key] as usize].next = slot;
        }
        self.tail[key] = slot;
        self.open += 1;
        Ok(())
    }

    /// Ends the oldest sounding note of (channel, pitch). A note-off with nothing sounding
    /// is kept aside as an orphan: if a note of that pitch then starts on the same tick, the
    /// orphan was that note's own note-off written first (a zero-length grace note). That is
    /// settled here when a later note of the pitch is sounding behind it, otherwise at the end
    /// of the chunk ([`Assembler::end_chunk`]).
    #[inline]
    pub fn note_off(
        &mut self,
        score: &mut Score,
        ctx: &mut ReadCtx<'_>,
        channel: u8,
        pitch: u8,
        tick: u64,
        offset: usize,
    ) -> Result<(), Error> {
        let key = usize::from(channel) * 128 + usize::from(pitch);
        let Some(mut open) = self.pop_oldest(key) else {
            self.orphans.push(Orphan {
                key: key as u16,
                tick,
                offset,
                matched: false,
            });
            return Ok(());
        };
        // Several grace notes of one pitch on one tick each left an orphan: settle them all.
        while !self.orphans.is_empty() && self.head[key] != NONE {
            let start = score.tracks[open.track as usize].notes[open.note as usize].start;
            let own_off = self
                .orphans
                .iter_mut()
                .find(|o| !o.matched && usize::from(o.key) == key && o.tick == start);
            let Some(orphan) = own_off else { break };
            orphan.matched = true;
            let orphan_offset = orphan.offset;
            score.tracks[open.track as usize].notes[open.note as usize].duration = 0;
            ctx.problem(
                RepairKind::NoteOffBeforeNoteOn,
                orphan_offset,
                Some(self.chunk_index),
            )?;
            open = self
                .pop_oldest(key)
                .expect("checked: another note of this key is sounding");
        }
        let note = &mut score.tracks[open.track as usize].notes[open.note as usize];
        note.duration = tick - note.start;
        Ok(())
    }

    /// Removes and returns the oldest sounding note of `key`.
    #[inline]
    fn pop_oldest(&mut self, key: usize) -> Option<Open> {
        let slot = self.head[key];
        if slot == NONE {
            return None;
        }
        let open = self.slab[slot as usize];
        self.head[key] = open.next;
        if open.next == NONE {
            self.tail[key] = NONE;
        }
        self.slab[slot as usize].next = self.free;
        self.free = slot;
        self.open -= 1;
        Some(open)
    }

    #[inline]
    pub fn control(
        &mut self,
        score: &mut Score,
        channel: u8,
        controller: u8,
        value: u8,
        tick: u64,
    ) {
        let t = self.track_for(score, channel);
        score.tracks[t].controls.push(ControlChange {
            tick,
            controller: ControlValue::saturating(controller),
            value: ControlValue::saturating(value),
        });
    }

    #[inline]
    pub fn pitch_bend(&mut self, score: &mut Score, channel: u8, value: i16, tick: u64) {
        let t = self.track_for(score, channel);
        score.tracks[t].pitch_bends.push(PitchBend { tick, value });
    }

    /// A program change relabels the channel's track while it has no notes; after notes it
    /// starts (or returns to) the channel's track for the new program.
    pub fn program(&mut self, score: &mut Score, channel: u8, program: u8) {
        self.programs[usize::from(channel)] = program;
        let t = self.current[usize::from(channel)];
        if t != NONE && score.tracks[t as usize].notes.is_empty() {
            score.tracks[t as usize].program = Program::saturating(program);
            return;
        }
        let t = self.find_or_create(score, channel, program);
        self.current[usize::from(channel)] = t as u32;
    }

    /// Closes dangling notes, names the chunk's tracks, and folds note-less tracks left by
    /// program changes into their channel's track with notes.
    pub fn end_chunk(
        &mut self,
        score: &mut Score,
        ctx: &mut ReadCtx<'_>,
        end_tick: u64,
        end_offset: usize,
    ) -> Result<(), Error> {
        let chunk = Some(self.chunk_index);
        let mut zero_length_repaired = false;
        if self.open > 0 {
            for key in 0..KEYS {
                let mut slot = self.head[key];
                while slot != NONE {
                    let open = self.slab[slot as usize];
                    let note = &mut score.tracks[open.track as usize].notes[open.note as usize];
                    // Its own note-off came first, on the same tick: a zero-length note.
                    let own_off = self
                        .orphans
                        .iter_mut()
                        .find(|o| !o.matched && usize::from(o.key) == key && o.tick == note.start);
                    if let Some(orphan) = own_off {
                        orphan.matched = true;
                        note.duration = 0;
                        zero_length_repaired = true;
                        ctx.problem(RepairKind::NoteOffBeforeNoteOn, orphan.offset, chunk)?;
                    } else {
                        note.duration = end_tick - note.start;
                        ctx.problem(RepairKind::DanglingNoteClosed, end_offset, chunk)?;
                    }
                    slot = open.next;
                }
                self.head[key] = NONE;
                self.tail[key] = NONE;
            }
            self.open = 0;
        }
        if zero_length_repaired {
            // A zero-length note inside a longer one of the same pitch would be "nested",
            // which MIDI cannot store; re-pair first in, first out like every other note.
            for t in &mut score.tracks[self.chunk_first..] {
                t.pair_overlaps_fifo();
            }
        }
        for orphan in self.orphans.drain(..).filter(|o| !o.matched) {
            ctx.problem(RepairKind::OrphanNoteOffDropped, orphan.offset, chunk)?;
        }
        self.slab.clear();
        self.free = NONE;

        self.fold_noteless_tracks(score);
        let first = self.chunk_first;
        match self.chunk_name.take() {
            Some(name) if score.tracks.len() > first => {
                for t in &mut score.tracks[first..] {
                    t.name.clone_from(&name);
                }
            }
            Some(name) if self.chunk_index == 0 && score.title.is_empty() => score.title = name,
            _ => {}
        }
        Ok(())
    }

    fn fold_noteless_tracks(&mut self, score: &mut Score) {
        let first = self.chunk_first;
        let mut i = first;
        while i < score.tracks.len() {
            let t = &score.tracks[i];
            let host = if t.notes.is_empty() {
                score.tracks[first..]
                    .iter()
                    .position(|o| o.channel == t.channel && !o.notes.is_empty())
                    .map(|p| first + p)
            } else {
                None
            };
            if let Some(host) = host {
                let removed = score.tracks.remove(i);
                let host = if host > i { host - 1 } else { host };
                let h = &mut score.tracks[host];
                h.controls.extend(removed.controls);
                h.pitch_bends.extend(removed.pitch_bends);
                h.controls.sort_by_key(|c| c.tick);
                h.pitch_bends.sort_by_key(|b| b.tick);
            } else {
                i += 1;
            }
        }
    }
}
