//! The quantised form every scheme encodes from and decodes to: notes on the grid with
//! binned values, tempo and time-signature changes at grid steps. `quantize(score)` is
//! `Piece::from_score(score).to_score()`, and decoding builds a `Piece` too, so
//! `decode(encode(x)) == quantize(x)` holds by construction of one shared normal form.

use crate::{
    Channel, Note, Pitch, PitchBend, Program, Score, Tempo, TimeSignature, Track, Velocity,
};

use super::Vocabulary;

pub(crate) use super::note_reader::BendList;
pub(crate) use super::note_reader::NoteReader;

/// Which stream a note belongs to: a General MIDI program (0..=127) or [`DRUMS`].
pub(crate) type StreamKey = u8;
/// The drum stream's key (sorts after every program).
pub(crate) const DRUMS: StreamKey = 128;

/// A note on the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GridNote {
    pub start: u64,
    pub key: StreamKey,
    /// Index among the tracks of the same stream key (0 unless the config keeps voices).
    pub voice: u8,
    pub pitch: u8,
    /// Length in grid steps (an allowed duration, except after FIFO re-pairing).
    pub duration: u32,
    pub velocity: u8,
}

/// A piece in the tokenizers' normal form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Sorted by (start, key, voice, pitch, duration, velocity).
    pub notes: Vec<GridNote>,
    /// (step, tempo bin): the first at step 0, then only changes, ascending.
    pub tempos: Vec<(u64, u8)>,
    /// (bar-start step, time-signature index): the first at 0, then only changes.
    pub time_signatures: Vec<(u64, u8)>,
    /// (step, stream, pitch-bend bin), sorted by (step, stream): per stream only changes,
    /// starting from the centre bin.
    pub bends: Vec<(u64, StreamKey, u8)>,
}

/// Melodic channels in allocation order (channel 10 is for drums).
const MELODIC_CHANNELS: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15];

impl Piece {
    /// Quantises a score onto the vocabulary's grid.
    pub fn from_score(score: &Score, vocab: &Vocabulary) -> Self {
        let config = vocab.config();
        let grid = vocab.grid();
        let tpq = score.ticks_per_quarter;
        let mut notes = Vec::with_capacity(score.note_count());
        let mut pedalled = Track::default();
        // Voices handed out so far per stream key (tracks with a note in range count).
        let mut voices_used = [0u8; DRUMS as usize + 1];
        for track in &score.tracks {
            if track.is_drum && !config.use_drums {
                continue;
            }
            let [lo, hi] = if track.is_drum {
                config.drum_pitch_range
            } else {
                config.pitch_range
            };
            let track =
                if config.sustain_pedal && !track.is_drum && !track.sustain_spans().is_empty() {
                    pedalled.clone_from(track);
                    pedalled.apply_sustain_pedal();
                    &pedalled
                } else {
                    track
                };
            let key = match (config.use_programs, track.is_drum) {
                (false, _) => 0,
                (true, true) => DRUMS,
                (true, false) => track.program.get(),
            };
            let voice = if config.voices > 0
                && track
                    .notes
                    .iter()
                    .any(|n| (lo..=hi).contains(&n.pitch.get()))
            {
                let used = &mut voices_used[usize::from(key)];
                *used = used.saturating_add(1);
                (*used - 1).min(config.voices - 1)
            } else {
                0
            };
            for n in &track.notes {
                let pitch = n.pitch.get();
                if pitch < lo || pitch > hi {
                    continue;
                }
                let start = grid.step(n.start, tpq);
                let end = grid.step(n.end(), tpq);
                notes.push(GridNote {
                    start,
                    key,
                    voice,
                    pitch,
                    duration: grid.durations[grid.duration_index(end - start)],
                    velocity: grid.velocity_index(n.velocity.get()) as u8,
                });
            }
        }
        notes.sort_unstable();

        let mut bends = BendList::new(grid);
        if config.use_pitch_bends {
            let mut raw: Vec<(u64, StreamKey, u8)> = Vec::new();
            for track in score.tracks.iter().filter(|t| !t.is_drum) {
                let key = if config.use_programs {
                    track.program.get()
                } else {
                    0
                };
                for b in &track.pitch_bends {
                    raw.push((
                        grid.step(b.tick, tpq),
                        key,
                        grid.pitch_bend_index(b.value) as u8,
                    ));
                }
            }
            raw.sort_by_key(|&(step, key, _)| (step, key)); // stable: later events win below
            for (step, key, bin) in raw {
                bends.push(step, key, bin);
            }
        }
        let bends = bends.finish();

        let mut tempos: Vec<(u64, u8)> = Vec::new();
        if config.use_tempos {
            let mut sorted = score.tempos.clone();
            sorted.sort_by_key(|t| t.tick);
            let initial = sorted
                .iter()
                .take_while(|t| t.tick == 0)
                .last()
                .map_or(Tempo::DEFAULT_MICROS_PER_QUARTER, |t| t.micros_per_quarter);
            tempos.push((0, grid.tempo_index(initial) as u8));
            for t in sorted.iter().filter(|t| t.tick > 0) {
                let step = grid.step(t.tick, tpq);
                let bin = grid.tempo_index(t.micros_per_quarter) as u8;
                push_change(&mut tempos, step, bin);
            }
        }

        let last_onset = notes.last().map_or(0, |n| n.start);
        let content_end = last_onset
            .max(tempos.last().map_or(0, |t| t.0))
            .max(bends.last().map_or(0, |b| b.0));
        let time_signatures = if config.use_time_signatures {
            bar_structure(score, vocab, content_end)
        } else {
            vec![(0, 0)]
        };
        Self {
            notes,
            tempos,
            time_signatures,
            bends,
        }
    }

    /// The score this piece stands for: resolution = grid steps per quarter, one track per
    /// stream and voice (programs ascending, drums last) with channels allocated in that
    /// order, no names, controllers or text; a stream's pitch bends go to its first voice.
    pub fn to_score(&self, vocab: &Vocabulary) -> Score {
        let config = vocab.config();
        let grid = vocab.grid();
        let mut score = Score::new(grid.resolution as u16);
        if config.use_tempos {
            score.tempos = self
                .tempos
                .iter()
                .map(|&(step, bin)| Tempo {
                    tick: step,
                    micros_per_quarter: grid.tempos[usize::from(bin)],
                })
                .collect();
        }
        if config.use_time_signatures {
            score.time_signatures = self
                .time_signatures
                .iter()
                .map(|&(step, i)| {
                    let (n, d) = grid.time_signatures[usize::from(i)];
                    TimeSignature {
                        tick: step,
                        numerator: n,
                        denominator: d,
                    }
                })
                .collect();
        }
        let mut melodic = 0;
        for (key, voice, first_voice) in self.voices() {
            let channel = if key == DRUMS {
                Channel::DRUMS
            } else {
                melodic += 1;
                Channel::saturating(MELODIC_CHANNELS[(melodic - 1) % MELODIC_CHANNELS.len()])
            };
            let notes = self
                .notes
                .iter()
                .filter(|n| (n.key, n.voice) == (key, voice))
                .map(|n| {
                    Note::new(
                        Pitch::saturating(n.pitch),
                        Velocity::saturating(grid.velocities[usize::from(n.velocity)]),
                        n.start,
                        u64::from(n.duration),
                    )
                })
                .collect();
            score.tracks.push(Track {
                program: Program::saturating(if key == DRUMS { 0 } else { key }),
                is_drum: key == DRUMS,
                channel,
                notes,
                pitch_bends: self
                    .bends
                    .iter()
                    .filter(|b| first_voice && b.1 == key)
                    .map(|&(step, _, bin)| PitchBend {
                        tick: step,
                        value: grid.pitch_bends[usize::from(bin)],
                    })
                    .collect(),
                ..Track::default()
            });
        }
        score
    }
}

impl Piece {
    /// Every (stream, voice) with a note, plus voice 0 of a stream with only pitch bends,
    /// ascending, each with whether it is its stream's first voice (which carries the bends).
    fn voices(&self) -> Vec<(StreamKey, u8, bool)> {
        let mut voices: Vec<(StreamKey, u8)> = self
            .notes
            .iter()
            .map(|n| (n.key, n.voice))
            .chain(self.bends.iter().map(|b| (b.1, 0)))
            .collect();
        voices.sort_unstable();
        voices.dedup();
        // A bends-only voice 0 is dropped when the stream has notes in another voice.
        let has_notes =
            |key: StreamKey, voice: u8| self.notes.iter().any(|n| (n.key, n.voice) == (key, voice));
        let mut out: Vec<(StreamKey, u8, bool)> = Vec::with_capacity(voices.len());
        for (i, &(key, voice)) in voices.iter().enumerate() {
            let later_voice = voices.get(i + 1).is_some_and(|v| v.0 == key);
            if voice == 0 && later_voice && !has_notes(key, 0) {
                continue;
            }
            let first = out.last().is_none_or(|v| v.0 != key);
            out.push((key, voice, first));
        }
        out
    }
}

/// Writes the `[Program|Drums] [Voice]` tokens that open a note or a pitch bend of stream
/// `key`, voice `voice` (each only when the vocabulary has the family).
pub(crate) fn write_stream(
    key: StreamKey,
    voice: u8,
    vocab: &Vocabulary,
    out: &mut Vec<super::TokenId>,
) {
    use super::Token;
    let config = vocab.config();
    if config.use_programs {
        let program = if key == DRUMS {
            Token::Drums
        } else {
            Token::Program(key)
        };
        out.extend(vocab.id(program));
    }
    if config.voices > 0 {
        out.extend(vocab.id(Token::Voice(voice)));
    }
}

/// Appends a change at `step`: a later change on the same step replaces the earlier one, and
/// a change to the value already in force is dropped.
pub(crate) fn push_change(changes: &mut Vec<(u64, u8)>, step: u64, value: u8) {
    if let Some(last) = changes.last_mut() {
        if last.0 == step {
            last.1 = value;
            let n = changes.len();
            if n >= 2 && changes[n - 2].1 == value {
                changes.pop();
            }
            return;
        }
        if last.1 == value {
            return;
        }
    }
    changes.push((step, value));
}

/// Time-signature changes moved to bar starts of the quantised bar grid, for the bars that
/// cover `content_end`.
fn bar_structure(score: &Score, vocab: &Vocabulary, content_end: u64) -> Vec<(u64, u8)> {
    let grid = vocab.grid();
    let tpq = score.ticks_per_quarter;
    let mut sorted = score.time_signatures.clone();
    sorted.sort_by_key(|t| t.tick);
    let index = |ts: &TimeSignature| grid.time_signature_index(ts.numerator, ts.denominator) as u8;
    let initial = sorted
        .iter()
        .take_while(|t| t.tick == 0)
        .last()
        .map_or_else(|| grid.time_signature_index(4, 4) as u8, index);
    let mut changes: Vec<(u64, u8)> = sorted
        .iter()
        .filter(|t| t.tick > 0)
        .map(|t| (grid.step(t.tick, tpq), index(t)))
        .collect();
    changes.reverse(); // pop from the earliest
    let mut out = vec![(0u64, initial)];
    let mut current = initial;
    let mut bar_start = u64::from(grid.bar_steps(usize::from(initial)));
    while bar_start <= content_end {
        let mut next = current;
        while changes.last().is_some_and(|c| c.0 <= bar_start) {
            next = changes.pop().map_or(next, |c| c.1);
        }
        if next != current {
            out.push((bar_start, next));
            current = next;
        }
        bar_start += u64::from(grid.bar_steps(usize::from(current)));
    }
    out
}

impl Piece {
    /// Re-pairs overlapping notes of one stream and pitch first in, first out (the k-th onset
    /// gets the k-th earliest end), as note-on/note-off schemes read them back, and restores
    /// the sort order. Lengths stay at least one step.
    pub fn pair_fifo(&mut self) {
        let mut groups: std::collections::HashMap<(StreamKey, u8, u8), Vec<usize>> =
            std::collections::HashMap::new();
        for (i, n) in self.notes.iter().enumerate() {
            groups.entry((n.key, n.voice, n.pitch)).or_default().push(i);
        }
        let mut ends: Vec<u64> = Vec::new();
        for indices in groups.values().filter(|v| v.len() > 1) {
            ends.clear();
            ends.extend(
                indices
                    .iter()
                    .map(|&i| self.notes[i].start + u64::from(self.notes[i].duration)),
            );
            if ends.is_sorted() {
                continue;
            }
            ends.sort_unstable();
            for (&i, &end) in indices.iter().zip(&ends) {
                let n = &mut self.notes[i];
                // The k-th smallest end is after the k-th smallest start: lengths stay >= 1.
                n.duration = u32::try_from(end - n.start).unwrap_or(u32::MAX);
            }
        }
        self.notes.sort_unstable();
    }
}

impl Piece {
    /// The latest step at which a note starts, a tempo changes or a pitch bend happens.
    pub fn last_event(&self) -> u64 {
        let notes = self.notes.last().map_or(0, |n| n.start);
        let tempos = self.tempos.last().map_or(0, |t| t.0);
        let bends = self.bends.last().map_or(0, |b| b.0);
        notes.max(tempos).max(bends)
    }

    /// Writes `[Program|Drums] [Voice_0] PitchBend` for every bend at `step`, from `*next` on.
    pub fn write_bends(
        &self,
        next: &mut usize,
        step: u64,
        vocab: &Vocabulary,
        out: &mut Vec<super::TokenId>,
    ) {
        while let Some(&(_, key, bin)) = self.bends.get(*next).filter(|b| b.0 == step) {
            write_stream(key, 0, vocab, out);
            out.extend(vocab.id(super::Token::PitchBend(bin)));
            *next += 1;
        }
    }
}

impl Piece {
    /// One piece per stream and voice (programs ascending, drums last), each with all tempo
    /// and time-signature changes (a stream's bends with its first voice); a piece with no
    /// stream stays whole.
    pub fn split_streams(&self) -> Vec<Piece> {
        let voices = self.voices();
        if voices.is_empty() {
            return vec![self.clone()];
        }
        voices
            .into_iter()
            .map(|(key, voice, first)| Piece {
                notes: self
                    .notes
                    .iter()
                    .filter(|n| (n.key, n.voice) == (key, voice))
                    .copied()
                    .collect(),
                tempos: self.tempos.clone(),
                time_signatures: self.time_signatures.clone(),
                bends: self
                    .bends
                    .iter()
                    .filter(|b| first && b.1 == key)
                    .copied()
                    .collect(),
            })
            .collect()
    }

    /// Decodes per-stream sequences and merges them: notes and bends of every stream, and
    /// the longest tempo and time-signature lists (a stream that ends early stops its bars
    /// early; the one that lasts longest has every change).
    pub fn decode_streams(
        vocab: &Vocabulary,
        sequences: &[Vec<super::TokenId>],
        decode: impl Fn(&[super::TokenId]) -> (Piece, super::DecodeReport),
    ) -> (Score, super::DecodeReport) {
        let mut merged = Piece::default();
        let mut report = super::DecodeReport::default();
        for ids in sequences {
            let (piece, r) = decode(ids);
            report.absorb(&r);
            merged.notes.extend(piece.notes);
            merged.bends.extend(piece.bends);
            if piece.tempos.len() > merged.tempos.len() {
                merged.tempos = piece.tempos;
            }
            if piece.time_signatures.len() > merged.time_signatures.len() {
                merged.time_signatures = piece.time_signatures;
            }
        }
        merged.notes.sort_unstable();
        merged.bends.sort_by_key(|b| (b.0, b.1));
        (merged.to_score(vocab), report)
    }
}
