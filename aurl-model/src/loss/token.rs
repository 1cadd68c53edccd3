//! Token-level loss: cross entropy with label smoothing, ignored padding and per-kind
//! weights (notes, timing, velocity, structure) taken from the vocabulary.

use aurl_core::tokenize::{TokenGroup, Vocabulary};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};
use crate::kernels;

/// Loss weight of each token kind ([`TokenGroup`]); all 1 by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindWeights {
    /// Pitch, NoteOn, NoteOff, PitchBend.
    pub notes: f32,
    /// Position, TimeShift, Rest, Duration.
    pub timing: f32,
    /// Velocity.
    pub velocity: f32,
    /// Bar, TimeSig, Tempo, Chord, Program, specials.
    pub structure: f32,
}

impl Default for KindWeights {
    fn default() -> Self {
        Self {
            notes: 1.0,
            timing: 1.0,
            velocity: 1.0,
            structure: 1.0,
        }
    }
}

impl KindWeights {
    fn of(&self, group: TokenGroup) -> f32 {
        match group {
            TokenGroup::Notes => self.notes,
            TokenGroup::Timing => self.timing,
            TokenGroup::Velocity => self.velocity,
            TokenGroup::Structure => self.structure,
        }
    }
}

/// Next-token cross entropy over logits `[batch, t, vocab]` and targets `[batch, t]`.
///
/// Each counted target contributes `(1 − ε)·(−log p(target)) + ε·mean_c(−log p(c))`
/// (label smoothing ε), times the weight of its kind; targets equal to the padding id
/// count for nothing. The result is the weighted mean.
///
/// ```
/// use aurl_model::loss::TokenLoss;
/// use burn::prelude::*;
/// let device = Device::flex();
/// let loss = TokenLoss::new(3).with_padding(0);
/// // Uniform logits over 3 classes: the loss is ln 3 whatever the (non-padding) target.
/// let logits = Tensor::<3>::zeros([1, 2, 3], &device);
/// let targets = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 0], [1, 2]), &device);
/// let l = loss.forward(logits, targets).into_scalar::<f32>();
/// assert!((l - 3f32.ln()).abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct TokenLoss {
    vocab_size: usize,
    smoothing: f32,
    padding: Option<usize>,
    class_weights: Option<Vec<f32>>,
}

impl TokenLoss {
    /// Plain cross entropy over `vocab_size` classes.
    #[must_use]
    pub fn new(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            smoothing: 0.0,
            padding: None,
            class_weights: None,
        }
    }

    /// Label smoothing ε in [0, 1).
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for ε outside [0, 1).
    pub fn with_smoothing(mut self, epsilon: f32) -> Result<Self, ModelError> {
        if !(0.0..1.0).contains(&epsilon) {
            return Err(invalid("label_smoothing", "must be in [0, 1)"));
        }
        self.smoothing = epsilon;
        Ok(self)
    }

    /// Targets equal to `id` are ignored.
    #[must_use]
    pub fn with_padding(mut self, id: usize) -> Self {
        self.padding = Some(id);
        self
    }

    /// Weighs each target by the weight of its kind in `vocab`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] if the vocabulary's size differs or a weight is
    /// negative or not finite.
    pub fn with_kind_weights(
        mut self,
        vocab: &Vocabulary,
        weights: KindWeights,
    ) -> Result<Self, ModelError> {
        if vocab.len() != self.vocab_size {
            return Err(invalid(
                "vocab_size",
                format!(
                    "loss has {} classes, vocabulary {}",
                    self.vocab_size,
                    vocab.len()
                ),
            ));
        }
        for (name, w) in [
            ("notes", weights.notes),
            ("timing", weights.timing),
            ("velocity", weights.velocity),
            ("structure", weights.structure),
        ] {
            if !w.is_finite() || w < 0.0 {
                return Err(invalid(
                    format!("kind_weights.{name}"),
                    "must be finite and >= 0",
                ));
            }
        }
        self.class_weights = Some(vocab.groups().into_iter().map(|g| weights.of(g)).collect());
        Ok(self)
    }

    /// The weighted mean loss (a scalar `[1]`).
    pub fn forward(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
        let (total, weight) = self.sums(logits, targets);
        total / weight.clamp_min(1e-12)
    }

    /// The weighted sum of per-token losses and the sum of weights (the number of counted
    /// tokens without kind weights): add these up over batches for an exact mean NLL.
    pub fn sums(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> (Tensor<1>, Tensor<1>) {
        let [b, t, v] = logits.dims();
        let n = b * t;
        let device = logits.device();
        let targets = targets.reshape([n]);
        // One fused pass where the backend has the kernel: no `[n, v]` log-probabilities
        // are materialised for the backward.
        let per_token = kernels::token_nll(logits.reshape([n, v]), targets.clone(), self.smoothing);
        let mut weights = match &self.class_weights {
            Some(w) => Tensor::<1>::from_data(TensorData::new(w.clone(), [w.len()]), &device)
                .select(0, targets.clone()),
            None => Tensor::<1>::ones([n], &device),
        };
        if let Some(pad) = self.padding {
            weights = weights.mask_fill(targets.equal_elem(pad as i64), 0.0);
        }
        ((per_token * weights.clone()).sum(), weights.sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurl_core::tokenize::TokenizerConfig;

    fn device() -> Device {
        Device::flex()
    }

    fn logits(values: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, shape), &device())
    }

    fn targets(values: Vec<i64>, shape: [usize; 2]) -> Tensor<2, Int> {
        Tensor::from_data(TensorData::new(values, shape), &device())
    }

    #[test]
    fn matches_hand_computed_cross_entropy_and_ignores_padding() {
        // Row 1: logits (0, ln 3) → p(class 1) = 3/4, NLL = ln(4/3).
        // Row 2 is padding (target 0) and must not count, whatever its logits.
        let l = TokenLoss::new(2).with_padding(0);
        let x = logits(vec![0.0, 3f32.ln(), 50.0, -50.0], [1, 2, 2]);
        let v = l
            .forward(x, targets(vec![1, 0], [1, 2]))
            .into_scalar::<f32>();
        assert!((v - (4.0f32 / 3.0).ln()).abs() < 1e-6, "{v}");
    }

    #[test]
    fn label_smoothing_mixes_in_the_uniform_target() {
        // p = (1/4, 3/4); target 1: (1 − 0.1)·ln(4/3) + 0.1·(ln 4 + ln(4/3))/2.
        let l = TokenLoss::new(2).with_smoothing(0.1).unwrap();
        let x = logits(vec![0.0, 3f32.ln()], [1, 1, 2]);
        let v = l.forward(x, targets(vec![1], [1, 1])).into_scalar::<f32>();
        let expected = 0.9 * (4.0f32 / 3.0).ln() + 0.1 * (4f32.ln() + (4.0f32 / 3.0).ln()) / 2.0;
        assert!((v - expected).abs() < 1e-6, "{v} vs {expected}");
        assert!(TokenLoss::new(2).with_smoothing(1.0).is_err());
    }

    #[test]
    fn kind_weights_weigh_targets_by_their_group() {
        let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
        let n = vocab.len();
        let pitch = usize::from(vocab.id(aurl_core::tokenize::Token::Pitch(60)).unwrap());
        let bar = usize::from(vocab.id(aurl_core::tokenize::Token::Bar).unwrap());
        let weights = KindWeights {
            notes: 3.0,
            structure: 1.0,
            ..KindWeights::default()
        };
        let l = TokenLoss::new(n)
            .with_kind_weights(&vocab, weights)
            .unwrap();
        // Uniform logits: every token costs ln n; the weighted mean is still ln n, and the
        // sums count the pitch three times.
        let x = Tensor::<3>::zeros([1, 2, n], &device());
        let t = targets(vec![pitch as i64, bar as i64], [1, 2]);
        let (total, weight) = l.sums(x, t);
        let (total, weight) = (total.into_scalar::<f32>(), weight.into_scalar::<f32>());
        assert!((weight - 4.0).abs() < 1e-6);
        assert!((total - 4.0 * (n as f32).ln()).abs() < 1e-4);
        let bad = KindWeights {
            notes: f32::NAN,
            ..KindWeights::default()
        };
        let err = TokenLoss::new(n)
            .with_kind_weights(&vocab, bad)
            .unwrap_err();
        assert!(err.to_string().contains("kind_weights.notes"));
    }
}
