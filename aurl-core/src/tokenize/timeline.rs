//! Time in time-shift schemes (TSD, event): walks a piece's timeline, writing time shifts,
//! rests, time-signature and tempo changes, and recording where bars start.

use super::piece::Piece;
use super::{BarStart, Token, TokenId, TokenSequence, Vocabulary};
use crate::Error;

/// Most time-shift tokens a sequence may need before the score is considered absurdly long.
const MAX_SHIFTS: u64 = 10_000_000;

/// The cursor over a piece's time and meta events.
pub(crate) struct Timeline<'a> {
    vocab: &'a Vocabulary,
    piece: &'a Piece,
    now: u64,
    tempos: usize,
    sigs: usize,
    ts_index: u8,
    tempo: Option<TokenId>,
    next_bar: u64,
    shifts: Vec<usize>,
}

impl<'a> Timeline<'a> {
    /// A cursor at step 0; errors when reaching `last_step` would need too many shifts.
    pub fn new(vocab: &'a Vocabulary, piece: &'a Piece, last_step: u64) -> Result<Self, Error> {
        let grid = vocab.grid();
        if last_step / u64::from(*grid.time_shifts.last().unwrap_or(&1)) > MAX_SHIFTS {
            return Err(Error::SequenceTooLong {
                bars: last_step / u64::from(grid.bar_steps(0).max(1)),
                limit: MAX_SHIFTS,
            });
        }
        Ok(Self {
            vocab,
            piece,
            now: 0,
            tempos: 0,
            sigs: 0,
            ts_index: piece.time_signatures.first().map_or(0, |t| t.1),
            tempo: None,
            next_bar: 0,
            shifts: Vec::new(),
        })
    }

    fn id(&self, token: Token) -> TokenId {
        let id = self.vocab.id(token);
        debug_assert!(id.is_some(), "{token:?} is not in the vocabulary");
        id.unwrap_or(0)
    }

    /// Writes the time shifts from `now` to `step` and moves there.
    fn shift(&mut self, step: u64, out: &mut TokenSequence) {
        self.shifts.clear();
        self.vocab
            .grid()
            .time_shift_indices(step - self.now, &mut self.shifts);
        for i in 0..self.shifts.len() {
            out.ids
                .push(self.id(Token::TimeShift(self.shifts[i] as u16)));
        }
        self.now = step;
    }

    /// The step of the next pending tempo or time-signature change.
    pub fn next_meta(&self) -> Option<u64> {
        let t = self.piece.tempos.get(self.tempos).map(|t| t.0);
        let s = self.piece.time_signatures.get(self.sigs).map(|t| t.0);
        t.into_iter().chain(s).min()
    }

    /// Moves to `step`: records bar starts passed, writes the time shifts, then the
    /// time-signature and tempo changes that happen at `step`. Nothing sounds from
    /// `silent_from` on: with rests on, whole quarter notes of that silence become `Rest`
    /// tokens (shift to the silence, rests, then shift the remainder).
    pub fn advance_to(&mut self, step: u64, silent_from: u64, out: &mut TokenSequence) {
        let config = self.vocab.config();
        let grid = self.vocab.grid();
        while self.next_bar <= step {
            if let Some(&(at, t)) = self.piece.time_signatures.get(self.sigs)
                && at == self.next_bar
            {
                self.ts_index = t;
            }
            let time_signature = config
                .use_time_signatures
                .then(|| self.id(Token::TimeSig(self.ts_index)));
            out.bars.push(BarStart {
                token_index: out.ids.len(),
                time_signature,
                tempo: self.tempo,
            });
            self.next_bar += u64::from(grid.bar_steps(usize::from(self.ts_index)));
        }
        let beat = u64::from(grid.resolution);
        let silence = silent_from.max(self.now);
        if config.use_rests && silence < step && step - silence >= beat {
            self.shift(silence, out);
            let mut beats = (step - silence) / beat;
            while beats > 0 {
                let k = beats.min(u64::from(config.max_rest));
                out.ids.push(self.id(Token::Rest(k as u8)));
                beats -= k;
            }
            self.now = step - (step - silence) % beat;
        }
        self.shift(step, out);
        if let Some(&(_, t)) = self
            .piece
            .time_signatures
            .get(self.sigs)
            .filter(|t| t.0 == step)
        {
            if config.use_time_signatures {
                out.ids.push(self.id(Token::TimeSig(t)));
            }
            self.sigs += 1;
        }
        if let Some(&(_, t)) = self.piece.tempos.get(self.tempos).filter(|t| t.0 == step) {
            let id = self.id(Token::Tempo(t));
            out.ids.push(id);
            self.tempo = Some(id);
            self.tempos += 1;
        }
    }
}
