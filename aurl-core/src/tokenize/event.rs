//! The event scheme (MIDI-like; Oore et al., "This Time with Feeling", 2018 — Performance
//! RNN; MidiTok's MIDILike): notes are `[Program] NoteOn Velocity` … `[Program] NoteOff`, and
//! time moves by `TimeShift` tokens: `[TimeSig] [Tempo] (TimeShift* [TimeSig] [Tempo]
//! NoteOff* NoteOn*)*`. Note-offs end the oldest sounding note of their pitch, so overlapping
//! notes of one pitch are re-paired first in, first out by [`Tokenizer::quantize`].

use std::collections::{HashMap, VecDeque};

use super::piece::{BendList, DRUMS, GridNote, Piece, StreamKey, push_change};
use super::timeline::Timeline;
use super::{DecodeReport, Token, TokenId, TokenSequence, Tokenizer, TokenizerConfig, Vocabulary};
use crate::{Error, Score};

/// The note-on/note-off tokenizer.
#[derive(Debug, Clone)]
pub struct Event {
    vocab: Vocabulary,
}

impl Event {
    /// An event tokenizer for `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn new(config: &TokenizerConfig) -> Result<Self, Error> {
        Ok(Self {
            vocab: Vocabulary::event(config)?,
        })
    }

    fn id(&self, token: Token) -> TokenId {
        let id = self.vocab.id(token);
        debug_assert!(id.is_some(), "{token:?} is not in the vocabulary");
        id.unwrap_or(0)
    }

    fn piece(&self, score: &Score) -> Piece {
        let mut piece = Piece::from_score(score, &self.vocab);
        piece.pair_fifo();
        piece
    }

    fn program(&self, key: StreamKey, out: &mut TokenSequence) {
        if self.vocab.config().use_programs {
            out.ids.push(self.id(if key == DRUMS {
                Token::Drums
            } else {
                Token::Program(key)
            }));
        }
    }

    fn encode_piece(&self, piece: &Piece) -> Result<TokenSequence, Error> {
        // Note-offs in time order (stable, so ties keep note order).
        let mut offs: Vec<&GridNote> = piece.notes.iter().collect();
        offs.sort_by_key(|n| n.start + u64::from(n.duration));
        let last = offs.last().map_or(0, |n| n.start + u64::from(n.duration));
        let mut time = Timeline::new(&self.vocab, piece, last.max(piece.last_event()))?;
        let mut out = TokenSequence {
            ids: Vec::with_capacity(piece.notes.len() * 6 + 16),
            bars: Vec::new(),
        };
        let (mut ons, mut off, mut bends) = (0usize, 0usize, 0usize);
        loop {
            let next_on = piece.notes.get(ons).map(|n| n.start);
            let next_off = offs.get(off).map(|n| n.start + u64::from(n.duration));
            let Some(step) = next_on
                .into_iter()
                .chain(next_off)
                .chain(piece.bends.get(bends).map(|b| b.0))
                .chain(time.next_meta())
                .min()
            else {
                break;
            };
            // Nothing sounds once every started note has ended.
            let silent_from = if ons == off { 0 } else { u64::MAX };
            time.advance_to(step, silent_from, &mut out);
            while let Some(n) = offs
                .get(off)
                .filter(|n| n.start + u64::from(n.duration) == step)
            {
                self.program(n.key, &mut out);
                out.ids.push(self.id(Token::NoteOff(n.pitch)));
                off += 1;
            }
            piece.write_bends(&mut bends, step, &self.vocab, &mut out.ids);
            while let Some(n) = piece.notes.get(ons).filter(|n| n.start == step) {
                self.program(n.key, &mut out);
                out.ids.push(self.id(Token::NoteOn(n.pitch)));
                out.ids.push(self.id(Token::Velocity(n.velocity)));
                ons += 1;
            }
        }
        Ok(out)
    }
}

impl Tokenizer for Event {
    fn vocab(&self) -> &Vocabulary {
        &self.vocab
    }

    fn encode(&self, score: &Score) -> Result<TokenSequence, Error> {
        self.encode_piece(&self.piece(score))
    }

    /// The shared quantised form, with overlapping notes of one pitch re-paired first in,
    /// first out (their lengths may then fall between duration bins).
    fn quantize(&self, score: &Score) -> Score {
        self.piece(score).to_score(&self.vocab)
    }

    fn decode(&self, ids: &[TokenId]) -> (Score, DecodeReport) {
        let (piece, report) = self.decode_piece(ids);
        (piece.to_score(&self.vocab), report)
    }

    fn encode_streams(&self, score: &Score) -> Result<Vec<TokenSequence>, Error> {
        self.piece(score)
            .split_streams()
            .iter()
            .map(|p| self.encode_piece(p))
            .collect()
    }

    fn decode_streams(&self, sequences: &[Vec<TokenId>]) -> (Score, DecodeReport) {
        Piece::decode_streams(&self.vocab, sequences, |ids| self.decode_piece(ids))
    }
}

impl Event {
    /// Decodes into the normal form (see [`Tokenizer::decode`]).
    fn decode_piece(&self, ids: &[TokenId]) -> (Piece, DecodeReport) {
        let grid = self.vocab.grid();
        let mut report = DecodeReport::default();
        let mut piece = Piece::default();
        let mut key: Option<StreamKey> = (!self.vocab.config().use_programs).then_some(0);
        let mut pending_on: Option<(StreamKey, u8)> = None;
        let mut sounding: HashMap<(StreamKey, u8), VecDeque<usize>> = HashMap::new();
        let mut closed: Vec<bool> = Vec::new();
        let mut now = 0u64;
        let mut bends = BendList::new(grid);
        for (i, &id) in ids.iter().enumerate() {
            let Some(token) = self.vocab.token(id) else {
                report.unknown_ids += 1;
                continue;
            };
            if pending_on.is_some() && !matches!(token, Token::Velocity(_)) {
                report.incomplete_notes += 1;
                pending_on = None;
            }
            match token {
                Token::Pad | Token::Bos | Token::Mask => {}
                Token::Eos => {
                    let pad = self.vocab.pad();
                    report.after_eos += ids[i + 1..].iter().filter(|&&id| id != pad).count();
                    break;
                }
                Token::TimeShift(s) => {
                    now = now.saturating_add(u64::from(grid.time_shifts[usize::from(s)]))
                }
                Token::Rest(k) => {
                    now = now.saturating_add(u64::from(k) * u64::from(grid.resolution))
                }
                Token::TimeSig(t) => push_change(&mut piece.time_signatures, now, t),
                Token::Tempo(t) => push_change(&mut piece.tempos, now, t),
                Token::Program(p) => key = Some(p),
                Token::Drums => key = Some(DRUMS),
                // Not in an event vocabulary (it has no voices).
                Token::Voice(_) => report.misplaced += 1,
                Token::PitchBend(b) => match key {
                    Some(k) => bends.push(now, k, b),
                    None => report.misplaced += 1,
                },
                Token::NoteOn(p) => match key {
                    Some(k) => pending_on = Some((k, p)),
                    None => report.misplaced += 1,
                },
                Token::Velocity(v) => match pending_on.take() {
                    Some((k, p)) => {
                        sounding
                            .entry((k, p))
                            .or_default()
                            .push_back(piece.notes.len());
                        piece.notes.push(GridNote {
                            start: now,
                            key: k,
                            voice: 0,
                            pitch: p,
                            duration: 0,
                            velocity: v,
                        });
                        closed.push(false);
                    }
                    None => report.misplaced += 1,
                },
                Token::NoteOff(p) => {
                    let oldest = key
                        .and_then(|k| sounding.get_mut(&(k, p)))
                        .and_then(VecDeque::pop_front);
                    match oldest {
                        Some(n) => {
                            let note = &mut piece.notes[n];
                            note.duration = u32::try_from(now - note.start).unwrap_or(u32::MAX);
                            closed[n] = true;
                        }
                        None => report.misplaced += 1,
                    }
                }
                Token::Bar
                | Token::Position(_)
                | Token::Pitch(_)
                | Token::Duration(_)
                | Token::Chord(_) => report.misplaced += 1,
            }
        }
        if pending_on.is_some() {
            report.incomplete_notes += 1;
        }
        // Notes never ended have no length: they are dropped and counted.
        report.incomplete_notes += closed.iter().filter(|&&c| !c).count();
        piece.bends = bends.finish();
        let mut flags = closed.iter();
        piece
            .notes
            .retain(|_| flags.next().copied().unwrap_or(false));
        (piece, report)
    }
}
