//! The KL term of a VAE: the analytic KL divergence of a diagonal Gaussian posterior from
//! the standard normal prior, free bits, and the β schedules that weigh it over training.

use std::f64::consts::{LN_2, PI};

use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};

/// `KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − ln σ²)` per latent dimension, for posteriors
/// given by `mean` and `log_var = ln σ²` (both `[batch, z]`); the result is `[batch, z]`, in
/// nats.
///
/// ```
/// use aurl_model::loss::gaussian_kl;
/// use burn::prelude::*;
/// let device = Device::flex();
/// // The prior itself costs nothing; a mean of 2 costs ½·2² = 2 nats.
/// let mean = Tensor::<2>::from_data([[0.0f32, 2.0]], &device);
/// let kl = gaussian_kl(mean, Tensor::zeros([1, 2], &device)).into_data().try_to_vec::<f32>()?;
/// assert_eq!(kl, vec![0.0, 2.0]);
/// # Ok::<(), burn::tensor::DataError>(())
/// ```
#[must_use]
pub fn gaussian_kl(mean: Tensor<2>, log_var: Tensor<2>) -> Tensor<2> {
    (mean.powi_scalar(2) + log_var.clone().exp() - log_var)
        .sub_scalar(1.0)
        .mul_scalar(0.5)
}

/// A KL budget the model may spend for free, so the decoder cannot simply ignore the latent
/// (posterior collapse). Values are in bits; the penalty is what exceeds the budget, so it is
/// 0 (with no gradient) while the posterior stays within it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum FreeBits {
    /// The plain KL, summed over latent dimensions.
    #[default]
    None,
    /// MusicVAE's (Roberts et al., 2018): per example, `max(Σ_d KL_d − bits·ln 2, 0)`.
    Total {
        /// Free bits per example (MusicVAE hierdec 16-bar: 256).
        bits: f64,
    },
    /// Kingma et al. (IAF, 2016): per latent dimension, the batch-mean KL beyond
    /// `bits·ln 2`, summed over dimensions, so no single dimension collapses.
    PerDimension {
        /// Free bits per dimension.
        bits: f64,
    },
}

impl FreeBits {
    /// Checks the budget is finite and not negative.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming `free_bits.bits`.
    pub fn validate(&self) -> Result<(), ModelError> {
        match *self {
            Self::None => Ok(()),
            Self::Total { bits } | Self::PerDimension { bits } => {
                if bits.is_finite() && bits >= 0.0 {
                    Ok(())
                } else {
                    Err(invalid("free_bits.bits", "must be finite and >= 0"))
                }
            }
        }
    }

    /// The KL penalty (a scalar `[1]`, nats per example) from per-dimension KL `[batch, z]`.
    #[must_use]
    pub fn penalty(&self, kl: Tensor<2>) -> Tensor<1> {
        let [b, z] = kl.dims();
        match *self {
            Self::None => kl.sum().div_scalar(b as f64),
            Self::Total { bits } => relu(kl.sum_dim(1).reshape([b]).sub_scalar(bits * LN_2)).mean(),
            Self::PerDimension { bits } => {
                relu(kl.mean_dim(0).reshape([z]).sub_scalar(bits * LN_2)).sum()
            }
        }
    }
}

/// The weight β of the KL term as a function of the training step (annealing against
/// posterior collapse: the decoder first learns to use the latent, then the prior is
/// enforced).
///
/// ```
/// use aurl_model::loss::KlSchedule;
/// let s = KlSchedule::Cyclical { beta: 1.0, period: 100, ramp: 0.5 };
/// assert_eq!(s.beta(0), 0.0);
/// assert_eq!(s.beta(25), 0.5);
/// assert_eq!(s.beta(75), 1.0);
/// assert_eq!(s.beta(125), 0.5); // the next cycle starts again from 0
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum KlSchedule {
    /// `β` throughout (β-VAE, Higgins et al., 2017).
    Constant {
        /// The weight.
        beta: f64,
    },
    /// From 0 up to `beta` linearly over `steps` (Bowman et al., 2016), then constant.
    Linear {
        /// Final weight.
        beta: f64,
        /// Steps of the ramp.
        steps: u64,
    },
    /// From 0 up to `beta` along a half cosine over `steps`, then constant.
    Cosine {
        /// Final weight.
        beta: f64,
        /// Steps of the ramp.
        steps: u64,
    },
    /// Fu et al. (2019): every `period` steps, a linear ramp from 0 to `beta` over the first
    /// `ramp` fraction of the period, then `beta` for the rest.
    Cyclical {
        /// Weight reached in each cycle.
        beta: f64,
        /// Steps per cycle.
        period: u64,
        /// Fraction of a cycle spent ramping (0..=1).
        ramp: f64,
    },
    /// MusicVAE's: `beta·(1 − rate^step)`.
    Exponential {
        /// Limit of the weight.
        beta: f64,
        /// Decay of the gap per step (0..1; MusicVAE uses 0.99999).
        rate: f64,
    },
}

impl Default for KlSchedule {
    fn default() -> Self {
        Self::Constant { beta: 1.0 }
    }
}

impl KlSchedule {
    /// The weight at `step` (0-based).
    #[must_use]
    pub fn beta(&self, step: u64) -> f64 {
        let ramp = |beta: f64, at: f64| beta * at.clamp(0.0, 1.0);
        match *self {
            Self::Constant { beta } => beta,
            Self::Linear { beta, steps } => ramp(beta, step as f64 / steps.max(1) as f64),
            Self::Cosine { beta, steps } => {
                let at = (step as f64 / steps.max(1) as f64).min(1.0);
                beta * 0.5 * (1.0 - (PI * at).cos())
            }
            Self::Cyclical {
                beta,
                period,
                ramp: fraction,
            } => {
                let period = period.max(1);
                let within = (step % period) as f64 / period as f64;
                if fraction <= 0.0 {
                    beta
                } else {
                    ramp(beta, within / fraction)
                }
            }
            Self::Exponential { beta, rate } => beta * (1.0 - rate.powf(step as f64)),
        }
    }

    /// Checks every field; the error names the bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        let beta = match *self {
            Self::Constant { beta }
            | Self::Linear { beta, .. }
            | Self::Cosine { beta, .. }
            | Self::Cyclical { beta, .. }
            | Self::Exponential { beta, .. } => beta,
        };
        if !beta.is_finite() || beta < 0.0 {
            return Err(invalid("kl_schedule.beta", "must be finite and >= 0"));
        }
        match *self {
            Self::Cyclical { period: 0, .. } => Err(invalid("kl_schedule.period", "must be >= 1")),
            Self::Cyclical { ramp, .. } if !(0.0..=1.0).contains(&ramp) => {
                Err(invalid("kl_schedule.ramp", "must be in [0, 1]"))
            }
            Self::Exponential { rate, .. } if !(0.0..1.0).contains(&rate) => {
                Err(invalid("kl_schedule.rate", "must be in [0, 1)"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    fn tensor(values: Vec<f32>, shape: [usize; 2]) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, shape), &device())
    }

    #[test]
    fn gaussian_kl_matches_the_closed_form() {
        // σ² = e: ½(0 + e − 1 − 1) = (e − 2)/2; μ = 1, σ² = 1: ½.
        let kl = gaussian_kl(
            tensor(vec![0.0, 1.0], [1, 2]),
            tensor(vec![1.0, 0.0], [1, 2]),
        );
        let kl = kl.into_data().try_to_vec::<f32>().unwrap();
        assert!(
            (kl[0] - (std::f32::consts::E - 2.0) / 2.0).abs() < 1e-6,
            "{kl:?}"
        );
        assert!((kl[1] - 0.5).abs() < 1e-6, "{kl:?}");
    }

    #[test]
    fn free_bits_forgive_the_budget_only() {
        // Two examples, two dimensions; KL per example 3 and 1 nats.
        let kl = || tensor(vec![2.0, 1.0, 0.5, 0.5], [2, 2]);
        let value = |f: FreeBits| f.penalty(kl()).into_scalar::<f32>();
        assert!((value(FreeBits::None) - 2.0).abs() < 1e-6);
        // Budget 2 nats per example: max(3 − 2, 0) and max(1 − 2, 0), mean ½.
        let total = FreeBits::Total { bits: 2.0 / LN_2 };
        assert!((value(total) - 0.5).abs() < 1e-5);
        // Per dimension, budget 1 nat: batch means 1.25 and 0.75 → 0.25 + 0.
        let per_dim = FreeBits::PerDimension { bits: 1.0 / LN_2 };
        assert!((value(per_dim) - 0.25).abs() < 1e-5);
        assert!(FreeBits::Total { bits: -1.0 }.validate().is_err());
    }

    #[test]
    fn schedules_ramp_to_beta() {
        let linear = KlSchedule::Linear {
            beta: 0.2,
            steps: 10,
        };
        assert_eq!(linear.beta(0), 0.0);
        assert!((linear.beta(5) - 0.1).abs() < 1e-12);
        assert!((linear.beta(50) - 0.2).abs() < 1e-12);
        let cosine = KlSchedule::Cosine {
            beta: 1.0,
            steps: 10,
        };
        assert!((cosine.beta(5) - 0.5).abs() < 1e-12);
        assert!((cosine.beta(10) - 1.0).abs() < 1e-12);
        let exp = KlSchedule::Exponential {
            beta: 1.0,
            rate: 0.5,
        };
        assert!((exp.beta(2) - 0.75).abs() < 1e-12);
        for bad in [
            KlSchedule::Constant { beta: f64::NAN },
            KlSchedule::Cyclical {
                beta: 1.0,
                period: 0,
                ramp: 0.5,
            },
            KlSchedule::Cyclical {
                beta: 1.0,
                period: 10,
                ramp: 1.5,
            },
            KlSchedule::Exponential {
                beta: 1.0,
                rate: 1.0,
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schedules_read_from_toml() {
        #[derive(Deserialize)]
        struct T {
            kl: KlSchedule,
            free_bits: FreeBits,
        }
        let t: T = toml::from_str(
            "kl = { kind = \"cyclical\", beta = 0.2, period = 1000, ramp = 0.5 }\n\
             free_bits = { kind = \"total\", bits = 256.0 }",
        )
        .unwrap();
        assert_eq!(t.kl.beta(250), 0.1);
        assert_eq!(t.free_bits, FreeBits::Total { bits: 256.0 });
    }
}
