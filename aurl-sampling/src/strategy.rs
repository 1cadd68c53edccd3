//! Turning one row of logits into a token: temperature, top-k, top-p (nucleus), min-p,
//! greedy, and an optional mask of allowed ids (the token grammar).

use aurl_core::tokenize::{TokenId, TokenMask};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::SamplingError;

/// How the next token is chosen from the model's logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Strategy {
    /// Divides the logits (> 0; 1 = the model's distribution). Ignored when `greedy`.
    pub temperature: f32,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p` (0 < p ≤ 1).
    pub top_p: Option<f32>,
    /// Drop tokens less likely than `min_p` times the most likely one (0 ≤ min_p < 1).
    pub min_p: Option<f32>,
    /// Always take the most likely allowed token.
    pub greedy: bool,
}

impl Default for Strategy {
    /// Nucleus sampling with p = 0.95 at temperature 1.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: None,
            top_p: Some(0.95),
            min_p: None,
            greedy: false,
        }
    }
}

impl Strategy {
    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`SamplingError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), SamplingError> {
        let bad = |field: &str, reason: &str| {
            Err(SamplingError::InvalidConfig {
                field: field.into(),
                reason: reason.into(),
            })
        };
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad("temperature", "must be finite and > 0");
        }
        if self.top_k == Some(0) {
            return bad("top_k", "must be at least 1");
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return bad("top_p", "must be in (0, 1]");
        }
        if let Some(m) = self.min_p
            && !(0.0..1.0).contains(&m)
        {
            return bad("min_p", "must be in [0, 1)");
        }
        Ok(())
    }
}

/// Reusable buffers for [`Strategy::sample`] (one per decoding loop, so sampling a token
/// allocates nothing).
#[derive(Debug, Default)]
pub struct Scratch {
    candidates: Vec<(f32, u32)>,
}

impl Strategy {
    /// Picks a token from `logits` (one row), considering only ids in `allowed` when given.
    /// Returns `None` when no id is allowed or every allowed logit is −∞/NaN.
    pub fn sample(
        &self,
        logits: &[f32],
        allowed: Option<&TokenMask>,
        rng: &mut StdRng,
        scratch: &mut Scratch,
    ) -> Option<TokenId> {
        let c = &mut scratch.candidates;
        c.clear();
        match allowed {
            Some(mask) => c.extend(
                mask.iter()
                    .filter(|&i| i < logits.len())
                    .map(|i| (logits[i], i as u32)),
            ),
            None => c.extend(logits.iter().enumerate().map(|(i, &l)| (l, i as u32))),
        }
        c.retain(|(l, _)| l.is_finite());
        if c.is_empty() {
            return None;
        }
        if self.greedy {
            let best = c
                .iter()
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))?;
            return Some(best.1 as TokenId);
        }
        // Most likely first; ties by id so the order is deterministic.
        c.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        if let Some(k) = self.top_k {
            c.truncate(k.max(1));
        }
        // Probabilities at the temperature, relative to the best.
        let best = c[0].0;
        let inv_t = 1.0 / self.temperature;
        for x in c.iter_mut() {
            x.0 = ((x.0 - best) * inv_t).exp();
        }
        if let Some(m) = self.min_p {
            // The best has weight 1, so min-p compares weights directly.
            c.retain(|x| x.0 >= m);
        }
        if let Some(p) = self.top_p {
            let total: f32 = c.iter().map(|x| x.0).sum();
            let mut cumulative = 0.0;
            let mut keep = c.len();
            for (i, x) in c.iter().enumerate() {
                cumulative += x.0;
                if cumulative >= p * total {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
        }
        let total: f32 = c.iter().map(|x| x.0).sum();
        let mut u = rng.random::<f32>() * total;
        for x in c.iter() {
            u -= x.0;
            if u <= 0.0 {
                return Some(x.1 as TokenId);
            }
        }
        c.last().map(|x| x.1 as TokenId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn draws(s: &Strategy, logits: &[f32], mask: Option<&TokenMask>, n: usize) -> Vec<TokenId> {
        let mut rng = StdRng::seed_from_u64(9);
        let mut scratch = Scratch::default();
        (0..n)
            .map(|_| s.sample(logits, mask, &mut rng, &mut scratch).unwrap())
            .collect()
    }

    #[test]
    fn greedy_takes_the_best_allowed_id() {
        let s = Strategy {
            greedy: true,
            ..Strategy::default()
        };
        let logits = [0.0, 5.0, 1.0, 4.0];
        assert_eq!(draws(&s, &logits, None, 1), [1]);
        let mut mask = TokenMask::new(4);
        mask.insert(0);
        mask.insert(3);
        assert_eq!(draws(&s, &logits, Some(&mask), 1), [3]);
    }

    #[test]
    fn top_k_keeps_the_right_ids_and_masks_are_obeyed() {
        let s = Strategy {
            top_k: Some(2),
            top_p: None,
            ..Strategy::default()
        };
        let logits = [3.0, -1.0, 2.9, 0.0, 1.0];
        let d = draws(&s, &logits, None, 200);
        assert!(d.iter().all(|&t| t == 0 || t == 2), "{d:?}");
        assert!(d.contains(&0) && d.contains(&2));
        let mut mask = TokenMask::new(5);
        mask.insert(1);
        mask.insert(3);
        let d = draws(&s, &logits, Some(&mask), 100);
        assert!(d.iter().all(|&t| t == 1 || t == 3));
        assert!(
            s.sample(
                &logits,
                Some(&TokenMask::new(5)),
                &mut StdRng::seed_from_u64(1),
                &mut Scratch::default()
            )
            .is_none()
        );
    }

    #[test]
    fn top_p_and_min_p_cut_the_tail() {
        // Probabilities ∝ (8, 4, 2, 1, 1)/16: the 0.7 nucleus is {0, 1}.
        let logits: Vec<f32> = [8.0f32, 4.0, 2.0, 1.0, 1.0]
            .iter()
            .map(|x| x.ln())
            .collect();
        let p = Strategy {
            top_p: Some(0.7),
            ..Strategy::default()
        };
        let d = draws(&p, &logits, None, 300);
        assert!(d.iter().all(|&t| t <= 1) && d.contains(&1));
        let m = Strategy {
            top_p: None,
            min_p: Some(0.3),
            ..Strategy::default()
        };
        let d = draws(&m, &logits, None, 300);
        assert!(
            d.iter().all(|&t| t <= 1),
            "weights ≥ 0.3 × best: ids 0 (1) and 1 (0.5)"
        );
    }

    #[test]
    fn sampling_is_deterministic_for_a_seed_and_follows_the_distribution() {
        let s = Strategy {
            top_p: None,
            ..Strategy::default()
        };
        let logits = [0.0f32, 3f32.ln()];
        let a = draws(&s, &logits, None, 2000);
        assert_eq!(a, draws(&s, &logits, None, 2000));
        let ones = a.iter().filter(|&&t| t == 1).count() as f64 / 2000.0;
        assert!((ones - 0.75).abs() < 0.04, "{ones}");
        assert!(
            Strategy {
                temperature: 0.0,
                ..Strategy::default()
            }
            .validate()
            .is_err()
        );
    }
}
