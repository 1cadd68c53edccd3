//! Control tokens forced into a piece at bar boundaries: a tempo, time signature, program or
//! chord chosen by the user for bar k replaces sampling at the first point in bar k where the
//! grammar allows that token (a REMI Tempo or Chord needs a Position first, a TimeSig comes
//! right after the Bar), so forced pieces stay grammar-valid.

use aurl_core::tokenize::{GrammarState, Token, TokenId, Vocabulary};

use crate::SamplingError;

/// Tokens to force into bar `bar` (0-based, counted over prompt and new tokens as the
/// grammar counts bars; bar 0 is the start).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BarControl {
    /// The bar.
    pub bar: u64,
    /// Control tokens (Tempo, TimeSig, Chord, Program, Drums), placed in this order when
    /// the grammar allows each.
    pub tokens: Vec<TokenId>,
}

impl BarControl {
    /// Parses `BAR:NAME[,NAME...]` (the generate tool's `--control`): a 0-based bar and
    /// token names of `vocabulary`; `Tempo_<bpm>` takes any BPM, mapped to the nearest
    /// tempo bin.
    ///
    /// ```
    /// use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
    /// use aurl_sampling::BarControl;
    /// let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    /// let vocab = remi.vocab();
    /// let control = BarControl::parse("8: TimeSig_3/4, Tempo_97", vocab).unwrap();
    /// assert_eq!(control.bar, 8);
    /// assert_eq!(vocab.name(control.tokens[0]), "TimeSig_3/4");
    /// assert!(vocab.name(control.tokens[1]).starts_with("Tempo_"));
    /// assert!(BarControl::parse("8:Nonsense", vocab).is_err());
    /// ```
    ///
    /// # Errors
    /// [`SamplingError::InvalidConfig`] naming the spec: no `:`, a bar that is not a
    /// number, or a name the vocabulary does not have.
    pub fn parse(spec: &str, vocabulary: &Vocabulary) -> Result<Self, SamplingError> {
        let invalid = |reason: String| SamplingError::InvalidConfig {
            field: "controls".into(),
            reason: format!("{spec}: {reason}"),
        };
        let (bar, list) = spec
            .split_once(':')
            .ok_or_else(|| invalid("expected BAR:NAME[,NAME...]".to_owned()))?;
        let bar: u64 = bar
            .trim()
            .parse()
            .map_err(|e| invalid(format!("bar `{bar}`: {e}")))?;
        let names = vocabulary.names();
        let tokens = list
            .split(',')
            .map(|name| {
                let name = name.trim();
                names
                    .iter()
                    .position(|n| n == name)
                    .and_then(|id| TokenId::try_from(id).ok())
                    .or_else(|| nearest_tempo(name, vocabulary))
                    .ok_or_else(|| invalid(format!("no token named `{name}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { bar, tokens })
    }

    /// Whether `token` may be forced at a bar boundary: a tempo, time signature, chord,
    /// program (or drums) or voice token.
    #[must_use]
    pub fn is_control(token: &Token) -> bool {
        matches!(
            token,
            Token::Tempo(_)
                | Token::TimeSig(_)
                | Token::Chord(_)
                | Token::Program(_)
                | Token::Drums
                | Token::Voice(_)
        )
    }

    /// The names of `vocabulary`'s control tokens (see [`BarControl::is_control`]), in id
    /// order: what a request's controls may name.
    #[must_use]
    pub fn names(vocabulary: &Vocabulary) -> Vec<String> {
        (0..vocabulary.len())
            .filter_map(|id| TokenId::try_from(id).ok())
            .filter(|&id| vocabulary.token(id).is_some_and(|t| Self::is_control(&t)))
            .map(|id| vocabulary.name(id).to_string())
            .collect()
    }

    /// Checks that every token is a control token of `vocabulary`.
    ///
    /// # Errors
    /// [`SamplingError::InvalidConfig`] naming `controls` and the token.
    pub fn validate(controls: &[Self], vocabulary: &Vocabulary) -> Result<(), SamplingError> {
        for c in controls {
            for &id in &c.tokens {
                if !vocabulary.token(id).is_some_and(|t| Self::is_control(&t)) {
                    return Err(SamplingError::InvalidConfig {
                        field: "controls".into(),
                        reason: format!(
                            "bar {}: id {id} ({}) is not a tempo, time signature, chord, \
                             program or voice token",
                            c.bar,
                            vocabulary.name(id)
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// `Tempo_<bpm>` for any BPM: the tempo token of the nearest bin.
fn nearest_tempo(name: &str, vocabulary: &Vocabulary) -> Option<TokenId> {
    let bpm: f64 = name.strip_prefix("Tempo_")?.parse().ok()?;
    let tempos = &vocabulary.grid().tempos;
    let bin = (0..tempos.len()).min_by(|&a, &b| {
        let distance = |i: usize| (60e6 / f64::from(tempos[i]) - bpm).abs();
        distance(a).total_cmp(&distance(b))
    })?;
    vocabulary.id(Token::Tempo(u8::try_from(bin).ok()?))
}

/// One row's controls still to place.
#[derive(Debug, Clone)]
pub(crate) struct ControlQueue {
    controls: Vec<BarControl>,
    pending: Vec<TokenId>,
    bar: u64,
    /// Control tokens whose bar ended (or was skipped by a rest) before the grammar allowed
    /// them.
    dropped: usize,
}

impl ControlQueue {
    /// The queue of a row whose grammar state (after its prompt) is `state`.
    pub(crate) fn new(controls: &[BarControl], state: &GrammarState) -> Self {
        let bar = state.bar_index();
        Self {
            controls: controls.to_vec(),
            pending: Self::tokens_of(controls, bar),
            bar,
            dropped: 0,
        }
    }

    fn tokens_of(controls: &[BarControl], bar: u64) -> Vec<TokenId> {
        controls
            .iter()
            .filter(|c| c.bar == bar)
            .flat_map(|c| c.tokens.iter().copied())
            .collect()
    }

    /// The first pending token `allowed` accepts now, taken off the queue.
    pub(crate) fn take_allowed(&mut self, allowed: impl Fn(TokenId) -> bool) -> Option<TokenId> {
        let i = self.pending.iter().position(|&id| allowed(id))?;
        Some(self.pending.remove(i))
    }

    /// Follows the grammar state after a token: entering a new bar drops what is still
    /// pending (and the controls of bars skipped) and queues the new bar's.
    pub(crate) fn observe(&mut self, state: &GrammarState) {
        let bar = state.bar_index();
        if bar == self.bar {
            return;
        }
        self.dropped += self.pending.len();
        for skipped in self.bar + 1..bar {
            self.dropped += Self::tokens_of(&self.controls, skipped).len();
        }
        self.pending = Self::tokens_of(&self.controls, bar);
        self.bar = bar;
    }

    /// Control tokens that found no place once the piece is over: those dropped on the
    /// way, plus those still pending in the bar the piece ended in (it ended after that
    /// bar's `Bar` token, before the grammar allowed them). Controls of bars the piece
    /// never began are not counted.
    pub(crate) fn dropped_at_end(&self) -> usize {
        self.dropped + self.pending.len()
    }
}
