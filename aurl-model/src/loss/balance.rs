//! Adding several losses into one: fixed weights, or weights learned by homoscedastic
//! uncertainty (Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
//! Losses", 2018).

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};

/// How the components of a training loss (reconstruction, KL, adversarial, grammar, …) are
/// combined. Schedules such as the KL's β multiply a component before it gets here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum LossBalancer {
    /// `Σ wᵢ·Lᵢ` with one weight per component, in order.
    Fixed {
        /// The weights (finite, ≥ 0).
        weights: Vec<f64>,
    },
    /// `Σ exp(−sᵢ)·Lᵢ + sᵢ` with learned `sᵢ = ln σᵢ²` ([`UncertaintyWeights`]): a component
    /// whose loss stays large (noisy) is weighed down, and the `+ sᵢ` term keeps every weight
    /// from going to zero. The weights must then be trained with the model.
    Uncertainty,
}

impl LossBalancer {
    /// Checks the fixed weights against the number of components.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming `balancer.weights`.
    pub fn validate(&self, components: usize) -> Result<(), ModelError> {
        match self {
            Self::Fixed { weights } if weights.len() != components => Err(invalid(
                "balancer.weights",
                format!("{} weights for {components} loss components", weights.len()),
            )),
            Self::Fixed { weights } if weights.iter().any(|w| !w.is_finite() || *w < 0.0) => {
                Err(invalid("balancer.weights", "must be finite and >= 0"))
            }
            _ => Ok(()),
        }
    }

    /// The combined loss (a scalar `[1]`). `learned` holds the uncertainty weights when the
    /// balancer is [`LossBalancer::Uncertainty`].
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] when the weights do not fit `losses`, or the uncertainty
    /// balancer has no (or mismatched) learned weights.
    pub fn combine(
        &self,
        losses: &[Tensor<1>],
        learned: Option<&UncertaintyWeights>,
    ) -> Result<Tensor<1>, ModelError> {
        self.validate(losses.len())?;
        if losses.is_empty() {
            return Err(invalid("balancer", "no loss components to combine"));
        }
        match self {
            Self::Fixed { weights } => Ok(losses
                .iter()
                .zip(weights)
                .map(|(l, &w)| l.clone().mul_scalar(w))
                .reduce(|a, b| a + b)
                .expect("at least one component")),
            Self::Uncertainty => learned
                .ok_or_else(|| {
                    invalid(
                        "balancer",
                        format!(
                            "uncertainty weighting needs {} learned weights",
                            losses.len()
                        ),
                    )
                })?
                .combine(losses),
        }
    }
}

/// Learned log-variances `sᵢ`, one per loss component, for [`LossBalancer::Uncertainty`].
/// A module: keep it in the trained model so the optimiser updates it.
///
/// ```
/// use aurl_model::loss::UncertaintyWeights;
/// use burn::prelude::*;
/// let device = Device::flex();
/// let u = UncertaintyWeights::new(2, &device);
/// // sᵢ start at 0: every weight is 1.
/// let l = u.combine(&[Tensor::from_data([2.0f32], &device), Tensor::from_data([3.0f32], &device)])?;
/// assert_eq!(l.into_scalar::<f32>(), 5.0);
/// # Ok::<(), aurl_model::ModelError>(())
/// ```
#[derive(Module, Debug)]
pub struct UncertaintyWeights {
    log_variances: Param<Tensor<1>>,
}

impl UncertaintyWeights {
    /// `n` components, all starting at weight 1.
    #[must_use]
    pub fn new(n: usize, device: &Device) -> Self {
        Self {
            log_variances: Initializer::Zeros.init([n.max(1)], device),
        }
    }

    /// Number of components.
    #[must_use]
    pub fn len(&self) -> usize {
        self.log_variances.val().dims()[0]
    }

    /// Whether there are no components (never: at least one is kept).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current weights `exp(−sᵢ)`, for logging.
    #[must_use]
    pub fn weights(&self) -> Vec<f32> {
        self.log_variances
            .val()
            .neg()
            .exp()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    }

    /// `Σ exp(−sᵢ)·Lᵢ + sᵢ`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] (`balancer`) when `losses` does not hold
    /// [`UncertaintyWeights::len`] scalars.
    pub fn combine(&self, losses: &[Tensor<1>]) -> Result<Tensor<1>, ModelError> {
        if losses.len() != self.len() {
            return Err(invalid(
                "balancer",
                format!("{} losses for {} learned weights", losses.len(), self.len()),
            ));
        }
        let s = self.log_variances.val();
        let stacked = Tensor::cat(losses.to_vec(), 0);
        Ok((stacked * s.clone().neg().exp() + s).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{GradientsParams, SgdConfig};

    fn scalar(v: f32, device: &Device) -> Tensor<1> {
        Tensor::from_data([v], device)
    }

    #[test]
    fn fixed_weights_are_a_weighted_sum_and_are_checked() {
        let device = Device::flex();
        let b = LossBalancer::Fixed {
            weights: vec![1.0, 0.5],
        };
        let l = b
            .combine(&[scalar(2.0, &device), scalar(4.0, &device)], None)
            .unwrap();
        assert_eq!(l.into_scalar::<f32>(), 4.0);
        assert!(b.combine(&[scalar(1.0, &device)], None).is_err());
        assert!(
            LossBalancer::Uncertainty
                .combine(&[scalar(1.0, &device)], None)
                .is_err()
        );
    }

    #[test]
    fn uncertainty_weights_learn_to_weigh_down_the_larger_loss() {
        // For a constant loss L the optimum of exp(−s)·L + s is s = ln L: weight 1/L.
        let device = Device::flex().autodiff();
        let mut u = UncertaintyWeights::new(2, &device);
        let mut optim = SgdConfig::new().init();
        for _ in 0..400 {
            let l = u
                .combine(&[scalar(4.0, &device), scalar(0.5, &device)])
                .unwrap();
            let grads = GradientsParams::from_grads(l.backward(), &u);
            u = optim.step(0.05, u, grads);
        }
        let w = u.weights();
        assert!((w[0] - 0.25).abs() < 0.02, "{w:?}");
        assert!((w[1] - 2.0).abs() < 0.1, "{w:?}");
    }
}
