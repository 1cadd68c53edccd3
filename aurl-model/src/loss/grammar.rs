//! The grammar loss: the probability mass a model puts on tokens the shared token grammar
//! (aurl-core's [`Grammar`], the one constrained sampling uses) forbids next. Cross entropy
//! only pushes the target up; this pushes every impossible continuation down, so an
//! unconstrained sampler produces fewer invalid sequences.

use aurl_core::tokenize::{Grammar, TokenId, TokenMask, Vocabulary};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::error::ModelError;

/// Forbidden-token masks `[rows, t, vocab_size]` for next-token prediction over `rows` (each
/// of `t` ids): entry `[r, i, v]` is 1 when the grammar, having read `rows[r][..=i]`,
/// forbids `v` next, else 0. From the first id the grammar rejects (data it cannot follow,
/// or padding) to the end of the row, and where it allows nothing, the rows are all 0: those
/// positions are not judged.
///
/// # Errors
/// [`ModelError::Shape`] when the rows differ in length.
pub fn forbidden_masks(
    grammar: &Grammar,
    rows: &[Vec<TokenId>],
    vocab_size: usize,
    device: &Device,
) -> Result<Tensor<3>, ModelError> {
    let t = rows.first().map_or(0, Vec::len);
    if let Some(row) = rows.iter().find(|r| r.len() != t) {
        return Err(ModelError::Shape(format!(
            "grammar masks need rows of one length ({t} and {})",
            row.len()
        )));
    }
    let mut data = vec![0.0f32; rows.len() * t * vocab_size];
    let mut allowed = TokenMask::new(vocab_size);
    for (r, row) in rows.iter().enumerate() {
        let mut state = grammar.start();
        for (i, &id) in row.iter().enumerate() {
            if grammar.advance(&mut state, id).is_err() {
                break;
            }
            grammar.allowed(&state, &mut allowed);
            if (0..vocab_size).all(|v| !allowed.contains(v)) {
                continue;
            }
            let at = (r * t + i) * vocab_size;
            for (v, slot) in data[at..at + vocab_size].iter_mut().enumerate() {
                if !allowed.contains(v) {
                    *slot = 1.0;
                }
            }
        }
    }
    Ok(
        Tensor::<1>::from_data(TensorData::new(data, [rows.len() * t * vocab_size]), device)
            .reshape([rows.len(), t, vocab_size]),
    )
}

/// The grammar loss of one vocabulary: build masks for a batch with
/// [`GrammarLoss::masks`], then score logits with [`GrammarLoss::forward`].
///
/// ```
/// use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
/// use aurl_model::loss::GrammarLoss;
/// use burn::prelude::*;
///
/// let vocab = Vocabulary::remi(&TokenizerConfig::default())?;
/// let loss = GrammarLoss::new(&vocab);
/// let device = Device::flex();
/// let masks = loss.masks(&[vec![vocab.bos()]], &device)?;
/// // Uniform logits after BOS: the forbidden share of the vocabulary is the loss.
/// let logits = Tensor::<3>::zeros([1, 1, vocab.len()], &device);
/// let mass = loss.forward(logits, masks).into_scalar::<f32>();
/// assert!(mass > 0.9 && mass < 1.0);
/// # Ok::<(), aurl_model::ModelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct GrammarLoss {
    grammar: Grammar,
    vocab_size: usize,
}

impl GrammarLoss {
    /// The grammar of `vocab`.
    #[must_use]
    pub fn new(vocab: &Vocabulary) -> Self {
        Self {
            grammar: Grammar::new(vocab),
            vocab_size: vocab.len(),
        }
    }

    /// [`forbidden_masks`] for a batch of input rows.
    ///
    /// # Errors
    /// As [`forbidden_masks`].
    pub fn masks(&self, rows: &[Vec<TokenId>], device: &Device) -> Result<Tensor<3>, ModelError> {
        forbidden_masks(&self.grammar, rows, self.vocab_size, device)
    }

    /// The mean forbidden probability mass (a scalar `[1]`, in 0..1) over the judged
    /// positions of logits `[b, t, vocab]` (positions whose mask row is all 0 are skipped).
    #[must_use]
    pub fn forward(&self, logits: Tensor<3>, forbidden: Tensor<3>) -> Tensor<1> {
        let judged = forbidden.clone().max_dim(2);
        let mass = (softmax(logits, 2) * forbidden).sum_dim(2);
        (mass * judged.clone()).sum() / judged.sum().clamp_min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurl_core::tokenize::{Token, TokenizerConfig};

    #[test]
    fn masks_follow_the_grammar_and_stop_at_a_rejected_id() {
        let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
        let grammar = Grammar::new(&vocab);
        let device = Device::flex();
        let id = |t| vocab.id(t).unwrap();
        let bos = id(Token::Bos);
        let pad = id(Token::Pad);
        let rows = vec![vec![bos, pad, bos]];
        let ragged = vec![vec![bos, pad], vec![bos]];
        assert!(matches!(
            forbidden_masks(&grammar, &ragged, vocab.len(), &device),
            Err(ModelError::Shape(_))
        ));
        let masks = forbidden_masks(&grammar, &rows, vocab.len(), &device).unwrap();
        let m = masks.into_data().try_to_vec::<f32>().unwrap();
        let v = vocab.len();
        // After BOS: exactly what the grammar allows is unmasked.
        let mut state = grammar.start();
        grammar.advance(&mut state, bos).unwrap();
        for (t, &forbidden) in m[..v].iter().enumerate() {
            let allowed = grammar.is_allowed(&state, t as TokenId);
            assert_eq!(forbidden == 0.0, allowed, "token {t}");
        }
        assert!(m[..v].contains(&1.0));
        // Padding is rejected: that position and the rest are not judged.
        assert!(m[v..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn loss_is_the_forbidden_mass_over_judged_positions() {
        let device = Device::flex();
        // Vocabulary of 3; position 0 forbids token 2, position 1 is not judged.
        let forbidden = Tensor::<3>::from_data([[[0.0f32, 0.0, 1.0], [0.0, 0.0, 0.0]]], &device);
        // Position 0: p = (¼, ¼, ½) → mass ½; position 1 would be ⅓ but is skipped.
        let logits = Tensor::<3>::from_data([[[0.0f32, 0.0, 2f32.ln()], [0.0, 0.0, 0.0]]], &device);
        let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
        let loss = GrammarLoss::new(&vocab);
        let l = loss.forward(logits, forbidden).into_scalar::<f32>();
        assert!((l - 0.5).abs() < 1e-6, "{l}");
    }
}
