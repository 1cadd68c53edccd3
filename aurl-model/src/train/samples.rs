//! What sampling a few sequences during training says about the model: how often it breaks
//! the token grammar on its own (sampled without the grammar mask), whether its notes are
//! complete, and whether it has collapsed into repeating one token.

use aurl_core::tokenize::{Grammar, TokenId};
use serde::Serialize;

use super::TrainConfig;

/// The grammar and repetition figures of sequences sampled during training.
///
/// ```
/// use aurl_core::tokenize::{Grammar, Token, TokenizerConfig, Vocabulary};
/// use aurl_model::train::SampleCheck;
/// let vocab = Vocabulary::remi(&TokenizerConfig::default())?;
/// let bar = vocab.id(Token::Bar).unwrap();
/// let bos = vocab.id(Token::Bos).unwrap();
/// let check = SampleCheck::of(&Grammar::new(&vocab), &[vec![bos, bar, bar, bar]]);
/// assert_eq!(check.longest_repeat, 3);
/// # Ok::<(), aurl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleCheck {
    /// Sequences sampled.
    pub pieces: usize,
    /// Their tokens.
    pub tokens: usize,
    /// Tokens the grammar refuses, over all tokens.
    pub grammar_error_rate: f64,
    /// Mean fraction of started notes that were completed.
    pub note_pairing_rate: f64,
    /// Longest run of one token repeated, over all sequences.
    pub longest_repeat: usize,
}

impl std::fmt::Display for SampleCheck {
    /// `1.5% grammar errors, 98.0% notes paired`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1}% grammar errors, {:.1}% notes paired",
            100.0 * self.grammar_error_rate,
            100.0 * self.note_pairing_rate
        )
    }
}

impl SampleCheck {
    /// Checks `sequences` against `grammar`.
    #[must_use]
    pub fn of(grammar: &Grammar, sequences: &[Vec<TokenId>]) -> Self {
        let (mut tokens, mut errors, mut pairing) = (0usize, 0usize, 0.0f64);
        let mut longest_repeat = 0;
        for s in sequences {
            let report = grammar.validate(s);
            tokens += report.tokens;
            errors += report.error_count();
            pairing += report.note_pairing_rate;
            let mut run = 0;
            for (i, id) in s.iter().enumerate() {
                run = if i > 0 && s[i - 1] == *id { run + 1 } else { 1 };
                longest_repeat = longest_repeat.max(run);
            }
        }
        Self {
            pieces: sequences.len(),
            tokens,
            grammar_error_rate: if tokens == 0 {
                0.0
            } else {
                errors as f64 / tokens as f64
            },
            note_pairing_rate: if sequences.is_empty() {
                1.0
            } else {
                pairing / sequences.len() as f64
            },
            longest_repeat,
        }
    }

    /// Why these samples show a collapsed model under `config`'s thresholds
    /// (`train.collapse_error_rate`, `train.collapse_repeat`), or `None`.
    #[must_use]
    pub fn collapse(&self, config: &TrainConfig) -> Option<String> {
        if let Some(max) = config.collapse_error_rate
            && self.grammar_error_rate > max
        {
            return Some(format!(
                "sampled sequences collapsed: grammar error rate {:.3} above {max}",
                self.grammar_error_rate
            ));
        }
        if let Some(max) = config.collapse_repeat
            && self.longest_repeat >= max
        {
            return Some(format!(
                "sampled sequences collapsed: one token repeated {} times",
                self.longest_repeat
            ));
        }
        None
    }
}
