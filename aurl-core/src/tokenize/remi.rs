//! REMI (Huang & Yang, "Pop Music Transformer", 2020) with REMI+ extensions (programs in one
//! stream, tempo and time-signature tokens; von Rütte et al., "FIGARO", 2023):
//! `Bar [TimeSig] (Position [Tempo] ([Program] Pitch Velocity Duration)*)* Rest*`, where the
//! optional `Rest_k` tokens stand for the next k bars having no onset and nothing sounding.

use super::piece::{DRUMS, NoteReader, Piece, push_change, write_stream};
use super::{
    BarStart, DecodeReport, Token, TokenId, TokenSequence, Tokenizer, TokenizerConfig, Vocabulary,
};
use crate::analysis::{Chord, PitchClassSet};
use crate::{Error, Score};

/// Most bars one sequence may span (guards against files whose ticks span millennia).
const MAX_BARS: u64 = 1_000_000;

/// The bar-based tokenizer.
#[derive(Debug, Clone)]
pub struct Remi {
    vocab: Vocabulary,
}

impl Remi {
    /// A REMI tokenizer for `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn new(config: &TokenizerConfig) -> Result<Self, Error> {
        Ok(Self {
            vocab: Vocabulary::remi(config)?,
        })
    }

    fn id(&self, token: Token) -> TokenId {
        // Every token built below is in range by construction of the piece and vocabulary.
        let id = self.vocab.id(token);
        debug_assert!(id.is_some(), "{token:?} is not in the vocabulary");
        id.unwrap_or(0)
    }

    fn encode_piece(&self, piece: &Piece) -> Result<TokenSequence, Error> {
        let config = self.vocab.config();
        let grid = self.vocab.grid();
        let content_end = piece.last_event();
        let mut out = TokenSequence {
            ids: Vec::with_capacity(piece.notes.len() * 5 + 16),
            bars: Vec::new(),
        };
        let (mut notes, mut tempos, mut sigs, mut bends) = (0usize, 0usize, 0usize, 0usize);
        let mut ts = 0u8;
        let mut tempo: Option<TokenId> = None;
        let mut bar_start = 0u64;
        let mut bars = 0u64;
        // Until when something sounds (for rests).
        let mut busy = 0u64;
        while bar_start <= content_end {
            if config.use_rests && bars > 0 {
                // Whole bars with no onset, no change and nothing sounding become rests.
                let len = u64::from(grid.bar_steps(usize::from(ts)));
                let quiet = |start: u64| {
                    let end = start + len;
                    busy <= start
                        && start <= content_end
                        && piece.notes.get(notes).is_none_or(|n| n.start >= end)
                        && piece.tempos.get(tempos).is_none_or(|t| t.0 >= end)
                        && piece.bends.get(bends).is_none_or(|b| b.0 >= end)
                        && piece.time_signatures.get(sigs).is_none_or(|t| t.0 > start)
                };
                let mut run = 0u64;
                while run < MAX_BARS && quiet(bar_start + run * len) {
                    run += 1;
                }
                bar_start += run * len;
                bars += run;
                while run > 0 {
                    let k = run.min(u64::from(config.max_rest));
                    out.ids.push(self.id(Token::Rest(k as u8)));
                    run -= k;
                }
                if bar_start > content_end {
                    break;
                }
            }
            bars += 1;
            if bars > MAX_BARS {
                return Err(Error::SequenceTooLong {
                    bars: content_end / u64::from(grid.bar_steps(0).max(1)),
                    limit: MAX_BARS,
                });
            }
            let mut ts_changed = bar_start == 0;
            while sigs < piece.time_signatures.len() && piece.time_signatures[sigs].0 <= bar_start {
                ts = piece.time_signatures[sigs].1;
                sigs += 1;
                ts_changed = true;
            }
            let ts_id = config
                .use_time_signatures
                .then(|| self.id(Token::TimeSig(ts)));
            out.bars.push(BarStart {
                token_index: out.ids.len(),
                time_signature: ts_id,
                tempo,
            });
            out.ids.push(self.id(Token::Bar));
            if ts_changed && let Some(id) = ts_id {
                out.ids.push(id);
            }
            let bar_end = bar_start + u64::from(grid.bar_steps(usize::from(ts)));
            loop {
                let next_note = piece
                    .notes
                    .get(notes)
                    .map(|n| n.start)
                    .filter(|&s| s < bar_end);
                let next_tempo = piece
                    .tempos
                    .get(tempos)
                    .map(|t| t.0)
                    .filter(|&s| s < bar_end);
                let next_bend = piece.bends.get(bends).map(|b| b.0).filter(|&s| s < bar_end);
                let Some(step) = next_note
                    .into_iter()
                    .chain(next_tempo)
                    .chain(next_bend)
                    .min()
                else {
                    break;
                };
                out.ids
                    .push(self.id(Token::Position((step - bar_start) as u16)));
                if next_tempo == Some(step) {
                    let id = self.id(Token::Tempo(piece.tempos[tempos].1));
                    out.ids.push(id);
                    tempo = Some(id);
                    tempos += 1;
                }
                if config.use_chords
                    && let Some(chord) = chord_at(&piece.notes[notes..], step)
                {
                    out.ids.push(self.id(Token::Chord(chord.index() as u8)));
                }
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
            bar_start = bar_end;
        }
        Ok(out)
    }
}

/// The chord formed by the (non-drum) notes starting at `step`, from the front of `notes`.
fn chord_at(notes: &[super::piece::GridNote], step: u64) -> Option<Chord> {
    let mut set = PitchClassSet::EMPTY;
    let mut bass = u8::MAX;
    for n in notes
        .iter()
        .take_while(|n| n.start == step)
        .filter(|n| n.key != DRUMS)
    {
        set.insert_pitch(n.pitch);
        bass = bass.min(n.pitch);
    }
    Chord::recognize(set, bass % 12)
}

impl Tokenizer for Remi {
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

impl Remi {
    /// Decodes into the normal form (see [`Tokenizer::decode`]).
    fn decode_piece(&self, ids: &[TokenId]) -> (Piece, DecodeReport) {
        let grid = self.vocab.grid();
        let config = self.vocab.config();
        let mut report = DecodeReport::default();
        let mut piece = Piece::default();
        // State: bar start and length, whether the bar has had a position yet, onset, stream,
        // and the note being assembled.
        let mut bar: Option<(u64, u32)> = None;
        let mut ts: u8 = 0;
        let mut bar_has_position = false;
        let mut onset: Option<u64> = None;
        let mut notes = NoteReader::new(config.use_programs, grid);
        let default_ts = grid.time_signature_index(4, 4) as u8;
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
                Token::Bar => {
                    let start = match bar {
                        None => {
                            ts = if config.use_time_signatures {
                                ts
                            } else {
                                default_ts
                            };
                            0
                        }
                        Some((start, len)) => start + u64::from(len),
                    };
                    bar = Some((start, grid.bar_steps(usize::from(ts))));
                    bar_has_position = false;
                    onset = None;
                }
                Token::TimeSig(t) => match bar {
                    Some((start, _)) if !bar_has_position => {
                        ts = t;
                        bar = Some((start, grid.bar_steps(usize::from(t))));
                        push_change(&mut piece.time_signatures, start, t);
                    }
                    _ => report.misplaced += 1,
                },
                Token::Position(p) => match bar {
                    Some((start, len)) if u32::from(p) < len => {
                        let step = start + u64::from(p);
                        if onset.is_some_and(|o| step < o) {
                            report.misplaced += 1; // time never goes backwards
                        } else {
                            onset = Some(step);
                            bar_has_position = true;
                        }
                    }
                    _ => report.misplaced += 1,
                },
                Token::Tempo(t) => match onset {
                    Some(step) => push_change(&mut piece.tempos, step, t),
                    None => report.misplaced += 1,
                },
                Token::TimeShift(_) => report.misplaced += 1,
                // Rests skip whole silent bars after the current one.
                Token::Rest(k) => match bar {
                    Some((start, len)) => {
                        bar = Some((start.saturating_add(u64::from(k) * u64::from(len)), len));
                        bar_has_position = true;
                        onset = None;
                    }
                    None => report.misplaced += 1,
                },
                // Chords annotate the notes that follow; they carry nothing to decode.
                Token::Chord(_) if onset.is_some() => {}
                note => {
                    if !notes.read(note, onset, grid, &mut piece, &mut report) {
                        report.misplaced += 1;
                    }
                }
            }
        }
        notes.finish(&mut piece, &mut report);
        (piece, report)
    }
}
