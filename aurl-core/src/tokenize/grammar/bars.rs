//! Bar starts of any token sequence, recovered by replaying the grammar: what a generator
//! needs to re-emit the header state when it slides its context window.

use super::Grammar;
use crate::tokenize::{BarStart, Token, TokenId};

impl Grammar {
    /// The bars of `ids` as the encoder would have listed them: where each bar's first
    /// token is, with the time-signature and tempo tokens in force (the time signature of
    /// the bar itself, the last tempo before it). Tokens the grammar refuses are skipped,
    /// so any sequence — a generated one included — gives an answer.
    ///
    /// ```
    /// use aurl_core::tokenize::{Grammar, Remi, Tokenizer, TokenizerConfig};
    /// use aurl_core::{Note, Pitch, Score, Track, Velocity};
    /// let mut score = Score::new(480);
    /// let mut t = Track::new("piano");
    /// for bar in 0..3u64 {
    ///     t.notes.push(Note::new(Pitch::MIDDLE_C, Velocity::saturating(80), bar * 1920, 480));
    /// }
    /// score.tracks.push(t);
    /// let remi = Remi::new(&TokenizerConfig::default())?;
    /// let tokens = remi.encode(&score)?;
    /// assert_eq!(Grammar::new(remi.vocab()).bar_starts(&tokens.ids), tokens.bars);
    /// # Ok::<(), aurl_core::Error>(())
    /// ```
    #[must_use]
    pub fn bar_starts(&self, ids: &[TokenId]) -> Vec<BarStart> {
        if self.bars {
            self.bar_token_starts(ids)
        } else {
            self.time_shift_bar_starts(ids)
        }
    }

    /// The time signature in force before any TimeSig token.
    fn default_time_sig_id(&self) -> Option<TokenId> {
        (self.use_time_signatures && !self.time_sig_ids.is_empty()).then(|| {
            (self.time_sig_ids.start + usize::from(self.default_time_signature)) as TokenId
        })
    }

    /// REMI: every accepted `Bar` token opens a bar; a TimeSig right after it is that bar's.
    fn bar_token_starts(&self, ids: &[TokenId]) -> Vec<BarStart> {
        let mut state = self.start();
        let mut bars: Vec<BarStart> = Vec::new();
        let (mut time_signature, mut tempo) = (self.default_time_sig_id(), None);
        for (i, &id) in ids.iter().enumerate() {
            if self.advance(&mut state, id).is_err() {
                continue;
            }
            match self.tokens.get(usize::from(id)).copied().flatten() {
                Some(Token::Bar) => bars.push(BarStart {
                    token_index: i,
                    time_signature,
                    tempo,
                }),
                Some(Token::TimeSig(_)) => {
                    time_signature = Some(id);
                    if let Some(last) = bars.last_mut()
                        && last.token_index + 1 == i
                    {
                        last.time_signature = Some(id);
                    }
                }
                Some(Token::Tempo(_)) => tempo = Some(id),
                _ => {}
            }
        }
        bars
    }

    /// TSD and event: the first bar opens before any token; a bar line crossed by a run of
    /// TimeShift/Rest tokens opens a bar at the run's first token (as the encoder writes
    /// it), and a TimeSig on the bar line is that bar's.
    fn time_shift_bar_starts(&self, ids: &[TokenId]) -> Vec<BarStart> {
        let mut state = self.start();
        let (mut time_signature, mut tempo) = (self.default_time_sig_id(), None);
        let mut bars = vec![BarStart {
            token_index: 0,
            time_signature,
            tempo,
        }];
        let mut run_start: Option<usize> = None;
        let flush =
            |bars: &mut Vec<BarStart>, state: &super::GrammarState, at: usize, ts, tempo| {
                while (bars.len() as u64) <= state.bar_index() {
                    bars.push(BarStart {
                        token_index: at,
                        time_signature: ts,
                        tempo,
                    });
                }
            };
        for (i, &id) in ids.iter().enumerate() {
            let token = self.tokens.get(usize::from(id)).copied().flatten();
            let moves_time = matches!(token, Some(Token::TimeShift(_) | Token::Rest(_)));
            if !moves_time {
                flush(
                    &mut bars,
                    &state,
                    run_start.unwrap_or(i),
                    time_signature,
                    tempo,
                );
                run_start = None;
            }
            if self.advance(&mut state, id).is_err() {
                continue;
            }
            match token {
                Some(Token::TimeShift(_) | Token::Rest(_)) => {
                    run_start.get_or_insert(i);
                }
                Some(Token::TimeSig(_)) => {
                    time_signature = Some(id);
                    if state.time_steps() == state.bar_start
                        && let Some(last) = bars.last_mut()
                    {
                        last.time_signature = Some(id);
                    }
                }
                Some(Token::Tempo(_)) => tempo = Some(id),
                _ => {}
            }
        }
        flush(
            &mut bars,
            &state,
            run_start.unwrap_or(ids.len()),
            time_signature,
            tempo,
        );
        bars
    }
}
