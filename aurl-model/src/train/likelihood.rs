//! A trained model's likelihood of a set of pieces: NLL per token and per note, and
//! perplexity — the numbers a checkpoint is compared by across tokenizations.

use super::{TokenWindows, WindowTensors, evaluate};
use crate::loss::TokenLoss;
use crate::weights::SavedModel;
use aurl_core::Score;
use aurl_core::metrics::bits_per_note;
use aurl_core::tokenize::{TokenSequence, Tokenizer};
use serde::Serialize;

/// How likely a model finds some pieces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NllReport {
    /// Mean negative log-likelihood per predicted token, in nats.
    pub nats_per_token: f64,
    /// `exp(nats_per_token)`.
    pub perplexity: f64,
    /// Total NLL in bits divided by the pieces' notes (comparable across tokenizers).
    pub bits_per_note: f64,
    /// Tokens predicted.
    pub tokens: usize,
    /// Notes in the pieces.
    pub notes: usize,
}

/// A negative log-likelihood as a sum, so that parts (the shards of a validation split
/// evaluated on several ranks, say) add up before the mean is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct NllSum {
    /// Summed NLL of the predicted tokens, in nats.
    pub nats: f64,
    /// Real (non-padding) target tokens predicted.
    pub tokens: f64,
}

impl std::ops::Add for NllSum {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            nats: self.nats + other.nats,
            tokens: self.tokens + other.tokens,
        }
    }
}

impl NllSum {
    /// Nats per token; `None` without tokens.
    ///
    /// ```
    /// use aurl_model::train::NllSum;
    /// let shards = [NllSum { nats: 3.0, tokens: 2.0 }, NllSum { nats: 1.0, tokens: 2.0 }];
    /// let all = shards[0] + shards[1];
    /// assert_eq!(all.mean(), Some(1.0));
    /// assert_eq!(NllSum::default().mean(), None);
    /// ```
    #[must_use]
    pub fn mean(self) -> Option<f64> {
        (self.tokens > 0.0).then(|| self.nats / self.tokens)
    }

    /// The NLL of the windows `rows` of `windows`, in batches of `batch_size`, under the
    /// model `logits` stands for (inputs `[b, t]` to logits `[b, t, vocab]`); `None` when it
    /// fails on a batch. Padding targets do not count.
    pub(crate) fn over(
        windows: &TokenWindows,
        rows: std::ops::Range<usize>,
        batch_size: usize,
        device: &burn::prelude::Device,
        vocab_size: usize,
        logits: impl Fn(
            burn::prelude::Tensor<2, burn::prelude::Int>,
        ) -> Option<burn::prelude::Tensor<3>>,
    ) -> Option<Self> {
        let loss = TokenLoss::new(vocab_size).with_padding(usize::from(windows.pad()));
        let rows: Vec<usize> = rows.filter(|&i| i < windows.count()).collect();
        let mut sum = Self::default();
        for chunk in rows.chunks(batch_size.max(1)) {
            let (inputs, targets) = windows.batch(chunk, device);
            let (nats, tokens) = loss.sums(logits(inputs)?, targets);
            sum = sum
                + Self {
                    nats: f64::from(nats.into_scalar::<f32>()),
                    tokens: f64::from(tokens.into_scalar::<f32>()),
                };
        }
        Some(sum)
    }
}

/// The NLL of `scores` under `saved`, tokenized with its vocabulary and framed with BOS/EOS
/// as in training, read in windows of `seq_len` tokens (each token predicted once).
/// `None` if no piece tokenizes to two or more tokens.
#[must_use]
pub fn negative_log_likelihood(
    saved: &SavedModel,
    tokenizer: &dyn Tokenizer,
    scores: &[Score],
    seq_len: usize,
    batch_size: usize,
) -> Option<NllReport> {
    let vocab = &saved.vocabulary;
    let mut notes = 0;
    let sequences: Vec<TokenSequence> = scores
        .iter()
        .filter_map(|s| {
            let t = tokenizer.encode(s).ok()?;
            notes += s.note_count();
            Some(t.framed(vocab))
        })
        .collect();
    let seq_len = seq_len.clamp(1, saved.config.max_positions);
    let windows = TokenWindows::contiguous(&sequences, seq_len, vocab.pad());
    let all: Vec<usize> = (0..windows.count()).collect();
    let tokens = windows.target_tokens(&all);
    let nats = evaluate(&saved.model, &windows, batch_size)?;
    Some(NllReport {
        nats_per_token: nats,
        perplexity: nats.exp(),
        bits_per_note: bits_per_note(nats * tokens as f64, notes.max(1)).unwrap_or(f64::NAN),
        tokens,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransformerConfig;
    use aurl_core::tokenize::{Remi, TokenizerConfig};
    use aurl_core::{Note, Pitch, Track, Velocity};
    use burn::prelude::*;

    #[test]
    fn an_untrained_model_is_near_uniform_and_the_units_agree() {
        let remi = Remi::new(&TokenizerConfig::default()).unwrap();
        let device = Device::flex();
        device.seed(1);
        let config = TransformerConfig::tiny(remi.vocab().len());
        let saved = SavedModel {
            model: config.init(&device).unwrap(),
            config,
            vocabulary: remi.vocab().clone(),
        };
        let mut track = Track::new("p");
        for i in 0..20u64 {
            let pitch = Pitch::new(60 + (i % 12) as u8).unwrap();
            track
                .notes
                .push(Note::new(pitch, Velocity::new(80).unwrap(), 240 * i, 240));
        }
        let mut score = Score::new(480);
        score.tracks.push(track);
        let r = negative_log_likelihood(&saved, &remi, &[score], 64, 4).unwrap();
        let uniform = (remi.vocab().len() as f64).ln();
        assert!(
            (r.nats_per_token - uniform).abs() < 1.0,
            "{r:?} vs ln V = {uniform}"
        );
        assert!((r.perplexity - r.nats_per_token.exp()).abs() < 1e-9);
        let bits = r.nats_per_token * r.tokens as f64 / std::f64::consts::LN_2 / 20.0;
        assert!((r.bits_per_note - bits).abs() < 1e-9 && r.notes == 20);
        assert!(negative_log_likelihood(&saved, &remi, &[], 64, 4).is_none());
    }
}
