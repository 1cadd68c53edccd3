//! Learning-rate schedules: linear warm-up, then cosine decay to a floor, or a constant
//! rate reduced when validation stops improving.

use serde::{Deserialize, Serialize};

/// What the learning rate does after the warm-up.
///
/// In TOML: `lr_schedule = "cosine"` or
/// `lr_schedule = { plateau = { factor = 0.5, patience = 2 } }`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// Half a cosine from the peak down to `min_learning_rate` at the last step
    /// ([`learning_rate`]).
    #[default]
    Cosine,
    /// The peak rate, multiplied by `factor` whenever `patience` validations in a row have
    /// not improved on the best validation NLL (never below `min_learning_rate`).
    Plateau {
        /// Multiplier per reduction, in (0, 1).
        factor: f64,
        /// Validations without improvement before a reduction.
        patience: usize,
    },
}

impl LrSchedule {
    /// The rate at `step` for a run of `total` steps, times `scale` (1 at the start; the
    /// plateau schedule's reductions and rollbacks lower it). The plateau rate never goes
    /// below `floor`.
    #[must_use]
    pub fn rate(
        &self,
        step: usize,
        total: usize,
        warmup: usize,
        peak: f64,
        floor: f64,
        scale: f64,
    ) -> f64 {
        match self {
            Self::Cosine => learning_rate(step, total, warmup, peak, floor) * scale,
            Self::Plateau { .. } if step < warmup => peak * (step + 1) as f64 / warmup as f64,
            Self::Plateau { .. } => (peak * scale).max(floor),
        }
    }
}

/// The learning rate at `step` (0-based) of `total`: rises linearly from `peak / warmup` to
/// `peak` over `warmup` steps, then follows a half cosine down to `floor` at the last step.
///
/// ```
/// use aurl_model::train::learning_rate;
/// assert_eq!(learning_rate(0, 100, 10, 1e-3, 1e-4), 1e-4);
/// assert_eq!(learning_rate(9, 100, 10, 1e-3, 1e-4), 1e-3);
/// assert!((learning_rate(99, 100, 10, 1e-3, 1e-4) - 1e-4).abs() < 1e-12);
/// ```
#[must_use]
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64, floor: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).saturating_sub(1).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::{LrSchedule, learning_rate};

    #[test]
    fn plateau_warms_up_then_holds_the_scaled_peak_above_the_floor() {
        let p = LrSchedule::Plateau {
            factor: 0.5,
            patience: 2,
        };
        assert_eq!(p.rate(0, 100, 4, 1.0, 0.1, 1.0), 0.25);
        assert_eq!(p.rate(50, 100, 4, 1.0, 0.1, 1.0), 1.0);
        assert_eq!(p.rate(50, 100, 4, 1.0, 0.1, 0.25), 0.25);
        assert_eq!(p.rate(50, 100, 4, 1.0, 0.1, 0.01), 0.1);
        assert_eq!(
            LrSchedule::Cosine.rate(99, 100, 10, 1e-3, 1e-4, 1.0),
            learning_rate(99, 100, 10, 1e-3, 1e-4)
        );
        assert_eq!(
            LrSchedule::Cosine.rate(50, 100, 10, 1e-3, 1e-4, 0.5),
            learning_rate(50, 100, 10, 1e-3, 1e-4) * 0.5
        );
    }

    #[test]
    fn warms_up_then_decays_monotonically() {
        let lr: Vec<f64> = (0..50).map(|s| learning_rate(s, 50, 5, 1.0, 0.1)).collect();
        assert!(lr[..5].windows(2).all(|w| w[0] < w[1]));
        assert!(lr[4..].windows(2).all(|w| w[0] >= w[1]));
        assert!((lr[4] - 1.0).abs() < 1e-12 && (lr[49] - 0.1).abs() < 1e-12);
        // Without warm-up the first step runs at the peak.
        assert_eq!(learning_rate(0, 10, 0, 2.0, 0.0), 2.0);
    }
}
