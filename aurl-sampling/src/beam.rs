//! Beam search under the grammar mask: the most likely continuation instead of a sample,
//! with length normalisation so that short pieces are not favoured merely for being short
//! (score = log-probability / new_tokens^α).

use aurl_core::tokenize::{GrammarState, TokenId, TokenMask};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::SamplingError;
use crate::generate::{Generated, Generator, Request};

/// Beam-search settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeamConfig {
    /// Hypotheses kept at every step (≥ 1; 1 is greedy decoding).
    pub width: usize,
    /// Length-normalisation exponent α (0 = raw log-probability; 1 = per-token mean).
    pub length_penalty: f64,
}

impl Default for BeamConfig {
    /// Width 4, α = 1.
    fn default() -> Self {
        Self {
            width: 4,
            length_penalty: 1.0,
        }
    }
}

/// One hypothesis.
#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<TokenId>,
    state: GrammarState,
    log_prob: f64,
}

impl Generator<'_> {
    /// The best continuation of `request.prompt` by beam search (the request's seed is not
    /// used; its token limit is; bar and second limits are not applied). Under the grammar
    /// constraint the result is grammar-valid like sampled pieces.
    ///
    /// # Errors
    /// [`SamplingError::InvalidConfig`] for a zero width or a request with controls;
    /// otherwise as
    /// [`Generator::generate`].
    pub fn beam_search(
        &self,
        request: &Request,
        beam: &BeamConfig,
    ) -> Result<Generated, SamplingError> {
        Self::check_beam(self.vae.is_some(), request, beam)?;
        let prompt = if request.prompt.is_empty() {
            vec![self.bos]
        } else {
            request.prompt.clone()
        };
        let p = prompt.len();
        let capacity = self.model.max_positions();
        if p >= capacity {
            return Err(SamplingError::InvalidPrompt {
                index: 0,
                reason: format!("{p} tokens leave no room in the model's {capacity} positions"),
            });
        }
        let state = self.prompt_state(&prompt)?;
        let vocab_size = self.model.vocab_size();
        let mut cache = self.model.new_cache(1);
        let flat = prompt.iter().map(|&x| i64::from(x)).collect();
        let mut logits = self.prefill(flat, 1, Some(&mut cache), None)?;
        let mut beams = vec![Hypothesis {
            tokens: prompt,
            state,
            log_prob: 0.0,
        }];
        let mut finished: Vec<(Hypothesis, bool)> = Vec::new();
        let limit = (p + request.max_new_tokens).min(capacity);
        let mut position = p;
        let mut mask = TokenMask::new(vocab_size);
        let mut candidates: Vec<(f64, usize, TokenId)> = Vec::new();
        while !beams.is_empty() && position < limit && finished.len() < beam.width {
            let data = logits.reshape([beams.len(), vocab_size]).into_data();
            let values = data
                .as_slice::<f32>()
                .map_err(|e| SamplingError::Output(format!("{e:?}")))?;
            candidates.clear();
            for (b, hyp) in beams.iter().enumerate() {
                let row = &values[b * vocab_size..(b + 1) * vocab_size];
                let eos_allowed = hyp.tokens.len() - p >= self.config.min_new_tokens;
                self.extend_candidates(hyp, b, row, eos_allowed, &mut mask, &mut candidates);
            }
            // Best first; ties by parent then id so results are deterministic.
            candidates.sort_unstable_by(|a, b| {
                b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
            });
            let mut next: Vec<Hypothesis> = Vec::with_capacity(beam.width);
            let mut parents: Vec<usize> = Vec::with_capacity(beam.width);
            for &(log_prob, b, id) in &candidates {
                if next.len() == beam.width || finished.len() >= beam.width {
                    break;
                }
                let mut hyp = beams[b].clone();
                let _ = self.grammar.advance(&mut hyp.state, id);
                hyp.tokens.push(id);
                hyp.log_prob = log_prob;
                if id == self.eos {
                    finished.push((hyp, true));
                } else {
                    next.push(hyp);
                    parents.push(b);
                }
            }
            beams = next;
            if beams.is_empty() || position + 1 >= limit || finished.len() >= beam.width {
                break;
            }
            cache.reorder(&parents).map_err(SamplingError::Model)?;
            let last: Vec<i64> = beams
                .iter()
                .map(|h| i64::from(*h.tokens.last().unwrap_or(&self.bos)))
                .collect();
            let input =
                Tensor::<2, Int>::from_data(TensorData::new(last, [beams.len(), 1]), &self.device);
            logits = self
                .model
                .forward(input, position, Some(&mut cache))
                .map_err(SamplingError::Model)?;
            position += 1;
        }
        finished.extend(beams.into_iter().map(|h| (h, false)));
        let score = |h: &Hypothesis| {
            let new = (h.tokens.len() - p).max(1) as f64;
            h.log_prob / new.powf(beam.length_penalty)
        };
        let (best, ended) = finished
            .into_iter()
            .max_by(|a, b| score(&a.0).total_cmp(&score(&b.0)))
            .ok_or(SamplingError::NoHypothesis)?;
        Ok(self.finish(best.tokens, p, ended, self.config.constrained))
    }

    /// Refuses what beam search does not do: latent codes, forced controls, a zero width or
    /// a length penalty that is not a number.
    fn check_beam(latent: bool, request: &Request, beam: &BeamConfig) -> Result<(), SamplingError> {
        if latent {
            return Err(SamplingError::InvalidConfig {
                field: "beam".into(),
                reason: "beam search does not decode from latent codes; sample instead".into(),
            });
        }
        if !request.controls.is_empty() {
            return Err(SamplingError::InvalidConfig {
                field: "controls".into(),
                reason: "beam search does not force control tokens; sample instead".into(),
            });
        }
        if beam.width == 0 || !beam.length_penalty.is_finite() {
            return Err(SamplingError::InvalidConfig {
                field: "beam".into(),
                reason: "width must be ≥ 1 and the length penalty finite".into(),
            });
        }
        Ok(())
    }

    /// The grammar state after `prompt` (an invalid prompt is an error when constrained).
    fn prompt_state(&self, prompt: &[TokenId]) -> Result<GrammarState, SamplingError> {
        let mut state = self.grammar.start();
        for &id in prompt {
            let result = self.grammar.advance(&mut state, id);
            if self.config.constrained {
                result.map_err(|e| SamplingError::InvalidPrompt {
                    index: e.index,
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(state)
    }

    /// Adds every allowed next token of `hyp` (the `b`-th beam, whose logits are `row`) to
    /// `candidates` with the hypothesis's log-probability after it.
    fn extend_candidates(
        &self,
        hyp: &Hypothesis,
        b: usize,
        row: &[f32],
        eos_allowed: bool,
        mask: &mut TokenMask,
        candidates: &mut Vec<(f64, usize, TokenId)>,
    ) {
        let allowed: Vec<usize> = if self.config.constrained {
            self.grammar.allowed(&hyp.state, mask);
            mask.iter().collect()
        } else {
            (0..row.len()).collect()
        };
        let ids: Vec<usize> = allowed
            .into_iter()
            .filter(|&i| row[i].is_finite() && (eos_allowed || i != usize::from(self.eos)))
            .collect();
        let max = ids
            .iter()
            .map(|&i| row[i])
            .fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = ids.iter().map(|&i| f64::from(row[i] - max).exp()).sum();
        let lse = f64::from(max) + sum.ln();
        candidates.extend(
            ids.iter()
                .map(|&i| (hyp.log_prob + f64::from(row[i]) - lse, b, i as TokenId)),
        );
    }
}
