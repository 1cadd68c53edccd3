//! Turning one row of logits into a token: repetition penalty, temperature, top-k, min-p,
//! typical sampling, top-p (nucleus), greedy, and an optional mask of allowed ids (the
//! token grammar). The steps apply in that order.

use aurl_core::rng::SeedRng;
use aurl_core::tokenize::{TokenId, TokenMask};
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
    /// Locally typical sampling (Meister et al., 2023): keep the tokens whose surprisal is
    /// closest to the distribution's entropy until their probability reaches `typical_p`
    /// (0 < p ≤ 1).
    pub typical_p: Option<f32>,
    /// Repetition penalty (Keskar et al., 2019): logits of ids among the last
    /// `repetition_window` tokens are divided by this (if positive) or multiplied by it
    /// (if negative); 1 = off, > 1 discourages repeats. Structural tokens (bars, positions)
    /// repeat by design in music, so keep it mild (1.05–1.3).
    pub repetition_penalty: f32,
    /// How many recent tokens the repetition penalty looks at.
    pub repetition_window: usize,
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
            typical_p: None,
            repetition_penalty: 1.0,
            repetition_window: 64,
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
        if let Some(p) = self.typical_p
            && !(p > 0.0 && p <= 1.0)
        {
            return bad("typical_p", "must be in (0, 1]");
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad("repetition_penalty", "must be finite and > 0 (1 = off)");
        }
        Ok(())
    }
}

/// Reusable buffers for [`Strategy::sample`] (one per decoding loop, so sampling a token
/// allocates nothing).
#[derive(Debug, Default)]
pub struct Scratch {
    candidates: Vec<(f32, u32)>,
    /// Per-id flags of the recent window (repetition penalty).
    recent: Vec<bool>,
}

impl Strategy {
    /// Picks a token from `logits` (one row), considering only ids in `allowed` when given;
    /// `history` is the sequence so far (the repetition penalty reads its last
    /// `repetition_window` ids). Returns `None` when no id is allowed or every allowed logit
    /// is −∞/NaN.
    pub fn sample(
        &self,
        logits: &[f32],
        allowed: Option<&TokenMask>,
        history: &[TokenId],
        rng: &mut SeedRng,
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
        if self.repetition_penalty != 1.0 && !history.is_empty() {
            let recent = &mut scratch.recent;
            recent.clear();
            recent.resize(logits.len(), false);
            let from = history.len().saturating_sub(self.repetition_window);
            for &id in &history[from..] {
                if let Some(flag) = recent.get_mut(usize::from(id)) {
                    *flag = true;
                }
            }
            let theta = self.repetition_penalty;
            for x in c.iter_mut().filter(|x| recent[x.1 as usize]) {
                x.0 = if x.0 > 0.0 { x.0 / theta } else { x.0 * theta };
            }
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
        if let Some(tau) = self.typical_p {
            // Surprisal −log p against the entropy H; keep the tokens closest to H.
            let total: f32 = c.iter().map(|x| x.0).sum();
            let entropy: f32 = c
                .iter()
                .map(|x| x.0 / total)
                .filter(|&p| p > 0.0)
                .map(|p| -p * p.ln())
                .sum();
            let distance = |w: f32| {
                let p = w / total;
                if p > 0.0 {
                    (-p.ln() - entropy).abs()
                } else {
                    f32::INFINITY
                }
            };
            c.sort_by(|a, b| distance(a.0).total_cmp(&distance(b.0)).then(a.1.cmp(&b.1)));
            let mut cumulative = 0.0;
            let mut keep = c.len();
            for (i, x) in c.iter().enumerate() {
                cumulative += x.0;
                if cumulative >= tau * total {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
            // Back to most-likely-first for the nucleus.
            c.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
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
        let mut u = rng.unit_f32() * total;
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

    fn draws(s: &Strategy, logits: &[f32], mask: Option<&TokenMask>, n: usize) -> Vec<TokenId> {
        let mut rng = SeedRng::new(9);
        let mut scratch = Scratch::default();
        (0..n)
            .map(|_| s.sample(logits, mask, &[], &mut rng, &mut scratch).unwrap())
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
                &[],
                &mut SeedRng::new(1),
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

    #[test]
    fn typical_sampling_drops_the_too_likely_and_the_too_rare() {
        // p = (0.5, 0.25, 0.125, 0.125): H = 1.75 bits = 1.213 nats; surprisals in nats
        // 0.693, 1.386, 2.079, 2.079 → distances 0.520, 0.173, 0.866, 0.866. The 0.3 typical
        // set is {1} (0.25), then {1, 0} reaches 0.75 ≥ 0.3 → ids 1 and 0 only.
        let logits: Vec<f32> = [4.0f32, 2.0, 1.0, 1.0].iter().map(|x| x.ln()).collect();
        let s = Strategy {
            top_p: None,
            typical_p: Some(0.3),
            ..Strategy::default()
        };
        let d = draws(&s, &logits, None, 400);
        assert!(
            d.iter().all(|&t| t <= 1) && d.contains(&0) && d.contains(&1),
            "{d:?}"
        );
        // With 0.2 only the most typical token remains: id 1, not the most likely.
        let s = Strategy {
            top_p: None,
            typical_p: Some(0.2),
            ..Strategy::default()
        };
        assert!(draws(&s, &logits, None, 50).iter().all(|&t| t == 1));
    }

    #[test]
    fn the_repetition_penalty_discourages_recent_ids_only() {
        // Logits 1.0 and 1.0: equal. With id 0 in the window and θ = 2, id 0's logit
        // becomes 0.5: P(0) = e^0.5 / (e^0.5 + e^1) ≈ 0.378. Outside the window (history
        // 0 9 9 with a window of 2; id 9 is out of range and ignored), no effect.
        let s = Strategy {
            top_p: None,
            repetition_penalty: 2.0,
            repetition_window: 2,
            ..Strategy::default()
        };
        let (mut rng, mut scratch) = (SeedRng::new(4), Scratch::default());
        let n = 4000;
        let zeros = (0..n)
            .filter(|_| s.sample(&[1.0, 1.0], None, &[0, 9, 9], &mut rng, &mut scratch) == Some(0))
            .count();
        assert!(
            (zeros as f64 / n as f64 - 0.5).abs() < 0.03,
            "id 0 left the window"
        );
        let zeros = (0..n)
            .filter(|_| s.sample(&[1.0, 1.0], None, &[9, 0], &mut rng, &mut scratch) == Some(0))
            .count();
        let expected = 0.5f64.exp() / (0.5f64.exp() + 1f64.exp());
        assert!((zeros as f64 / n as f64 - expected).abs() < 0.03, "{zeros}");
        assert!(
            Strategy {
                repetition_penalty: 0.0,
                ..Strategy::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Strategy {
                typical_p: Some(1.5),
                ..Strategy::default()
            }
            .validate()
            .is_err()
        );
    }
}
