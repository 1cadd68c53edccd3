//! TSD, Time-Shift-Duration (MidiTok; Fradet et al., "Byte Pair Encoding for Symbolic Music",
//! 2023): time moves by `TimeShift` tokens instead of bars and positions, and each note is
//! `[Program] Pitch Velocity Duration`:
//! `[TimeSig] [Tempo] ((TimeShift|Rest)* [TimeSig] [Tempo] Note*)*`; rests (optional) mark
//! whole quarter notes during which nothing sounds.
//! Time signatures only change at bar starts, so bars stay recoverable without bar tokens.

use super::piece::{NoteReader, Piece, push_change, write_stream};
use super::timeline::Timeline;
use super::{DecodeReport, Token, TokenId, TokenSequence, Tokenizer, TokenizerConfig, Vocabulary};
use crate::{Error, Score};

/// The time-shift tokenizer.
#[derive(Debug, Clone)]
pub struct Tsd {
    vocab: Vocabulary,
}

impl Tsd {
    /// A TSD tokenizer for `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn new(config: &TokenizerConfig) -> Result<Self, Error> {
        Ok(Self {
            vocab: Vocabulary::tsd(config)?,
        })
    }

    fn id(&self, token: Token) -> TokenId {
        // Every token built below is in range by construction of the piece and vocabulary.
        let id = self.vocab.id(token);
        debug_assert!(id.is_some(), "{token:?} is not in the vocabulary");
        id.unwrap_or(0)
    }

    fn encode_piece(&self, piece: &Piece) -> Result<TokenSequence, Error> {
        let grid = self.vocab.grid();
        let last = piece.last_event();
        let mut time = Timeline::new(&self.vocab, piece, last)?;
        let mut out = TokenSequence {
            ids: Vec::with_capacity(piece.notes.len() * 5 + 16),
            bars: Vec::new(),
        };
        let (mut notes, mut bends) = (0usize, 0usize);
        // Until when something sounds (for rests).
        let mut busy = 0u64;
        loop {
            let next_note = piece.notes.get(notes).map(|n| n.start);
            let next_bend = piece.bends.get(bends).map(|b| b.0);
            let Some(step) = next_note
                .into_iter()
                .chain(next_bend)
                .chain(time.next_meta())
                .min()
            else {
                break;
            };
            time.advance_to(step, busy, &mut out);
            piece.write_bends(&mut bends, step, &self.vocab, &mut out.ids);
            while let Some(n) = piece.notes.get(notes).filter(|n| n.start == step) {
                write_stream(n.key, n.voice, &self.vocab, &mut out.ids);
                out.ids.push(self.id(Token::Pitch(n.pitch)));
                out.ids.push(self.id(Token::Velocity(n.velocity)));
                let duration = grid.duration_index(u64::from(n.duration));
                out.ids.push(self.id(Token::Duration(duration as u16)));
                busy = busy.max(step + u64::from(grid.durations[duration]));
                notes += 1;
            }
        }
        Ok(out)
    }
}

impl Tokenizer for Tsd {
    fn vocab(&self) -> &Vocabulary {
        &self.vocab
    }

    fn encode(&self, score: &Score) -> Result<TokenSequence, Error> {
        self.encode_piece(&Piece::from_score(score, &self.vocab))
    }

    fn quantize(&self, score: &Score) -> Score {
        super::quantize(score, &self.vocab)
    }

    fn decode(&self, ids: &[TokenId]) -> (Score, DecodeReport) {
        let (piece, report) = self.decode_piece(ids);
        (piece.to_score(&self.vocab), report)
    }

    fn encode_streams(&self, score: &Score) -> Result<Vec<TokenSequence>, Error> {
        Piece::from_score(score, &self.vocab)
            .split_streams()
            .iter()
            .map(|p| self.encode_piece(p))
            .collect()
    }

    fn decode_streams(&self, sequences: &[Vec<TokenId>]) -> (Score, DecodeReport) {
        Piece::decode_streams(&self.vocab, sequences, |ids| self.decode_piece(ids))
    }
}

impl Tsd {
    /// Decodes into the normal form (see [`Tokenizer::decode`]).
    fn decode_piece(&self, ids: &[TokenId]) -> (Piece, DecodeReport) {
        let grid = self.vocab.grid();
        let mut report = DecodeReport::default();
        let mut piece = Piece::default();
        let mut notes = NoteReader::new(self.vocab.config().use_programs, grid);
        let mut now = 0u64;
        for (i, &id) in ids.iter().enumerate() {
            let Some(token) = self.vocab.token(id) else {
                report.unknown_ids += 1;
                continue;
            };
            notes.interrupt(token, &mut report);
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
                Token::Bar | Token::Position(_) | Token::Chord(_) => report.misplaced += 1,
                note => {
                    if !notes.read(note, Some(now), grid, &mut piece, &mut report) {
                        report.misplaced += 1;
                    }
                }
            }
        }
        notes.finish(&mut piece, &mut report);
        (piece, report)
    }
}
