//! Priors over the global latent code: the standard Gaussian (analytic KL) or a learned
//! mixture of Gaussians (KL estimated from the posterior sample).

use std::f64::consts::TAU;

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::latent::LatentRng;
use crate::loss::gaussian_kl;

/// Which prior the global code has (local codes always have the standard Gaussian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum PriorKind {
    /// `N(0, I)`: KL in closed form.
    #[default]
    Gaussian,
    /// A learned mixture `Σ_k π_k N(μ_k, diag σ_k²)` (as in GMVAE-style music models,
    /// e.g. Tan & Herremans' Music FaderNets, 2020): clusters of styles in latent space.
    /// The KL is the single-sample estimate `log q(z|x) − log p(z)`.
    Mixture {
        /// Number of components (≥ 1).
        components: usize,
    },
}

/// The learned parameters of a mixture prior: means `[k, z]`, log-variances `[k, z]` and
/// component logits `[k]`.
#[derive(Module, Debug)]
pub struct MixturePrior {
    means: Param<Tensor<2>>,
    log_vars: Param<Tensor<2>>,
    logits: Param<Tensor<1>>,
}

impl MixturePrior {
    /// `components` components over codes of `z_dim`, means spread `N(0, 1)`, unit
    /// variances, equal weights.
    #[must_use]
    pub fn new(components: usize, z_dim: usize, device: &Device) -> Self {
        let k = components.max(1);
        Self {
            means: Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([k, z_dim], device),
            log_vars: Initializer::Zeros.init([k, z_dim], device),
            logits: Initializer::Zeros.init([k], device),
        }
    }

    /// `log p(z)` for codes `[b, z]`: `[b]`.
    #[must_use]
    pub fn log_density(&self, z: Tensor<2>) -> Tensor<1> {
        let [b, d] = z.dims();
        let means = self.means.val();
        let [k, _] = means.dims();
        let log_vars = self.log_vars.val();
        let diff = z.reshape([b, 1, d]).expand([b, k, d]) - means.reshape([1, k, d]);
        // Σ_d log N(z_d; μ_kd, σ²_kd) = −½ Σ_d (ln 2π + ln σ² + (z − μ)²/σ²)
        let per_component = (diff.powi_scalar(2) / log_vars.clone().exp().reshape([1, k, d])
            + log_vars.reshape([1, k, d]))
        .add_scalar(TAU.ln())
        .sum_dim(2)
        .reshape([b, k])
        .mul_scalar(-0.5);
        let log_weights = burn::tensor::activation::log_softmax(self.logits.val(), 0);
        log_sum_exp(per_component + log_weights.reshape([1, k]))
    }

    /// `b` codes drawn from the mixture.
    #[must_use]
    pub fn sample(&self, b: usize, rng: &mut LatentRng) -> Tensor<2> {
        let device = self.means.val().device();
        let weights = burn::tensor::activation::softmax(self.logits.val(), 0)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let [k, d] = self.means.val().dims();
        let mut index = Vec::with_capacity(b);
        for _ in 0..b {
            let u = rng.uniform() as f32;
            let mut acc = 0.0;
            let pick = weights
                .iter()
                .position(|w| {
                    acc += w;
                    u <= acc
                })
                .unwrap_or(k - 1);
            index.push(pick as i64);
        }
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [b]), &device);
        let mean = self.means.val().select(0, index.clone());
        let std = self.log_vars.val().select(0, index).mul_scalar(0.5).exp();
        mean + std * rng.normal([b, d], &device)
    }
}

/// `log Σ_k exp(x_k)` over the last dimension of `[b, k]`, stably: `[b]`.
fn log_sum_exp(x: Tensor<2>) -> Tensor<1> {
    let [b, _] = x.dims();
    let max = x.clone().max_dim(1).detach();
    ((x - max.clone()).exp().sum_dim(1).log() + max).reshape([b])
}

/// `log q(z | x)` of codes `[b, z]` under diagonal Gaussians: `[b]`.
pub(crate) fn gaussian_log_density(z: Tensor<2>, mean: Tensor<2>, log_var: Tensor<2>) -> Tensor<1> {
    let [b, _] = z.dims();
    ((z - mean).powi_scalar(2) / log_var.clone().exp() + log_var)
        .add_scalar(TAU.ln())
        .sum_dim(1)
        .reshape([b])
        .mul_scalar(-0.5)
}

/// The prior's KL term `[b, dims]` for the global code: per dimension and analytic for
/// the standard Gaussian; one column (the sampled estimate) for a mixture.
pub(crate) fn global_kl(
    mixture: Option<&MixturePrior>,
    z: Tensor<2>,
    mean: Tensor<2>,
    log_var: Tensor<2>,
) -> Tensor<2> {
    match mixture {
        None => gaussian_kl(mean, log_var),
        Some(prior) => {
            let [b, _] = z.dims();
            (gaussian_log_density(z.clone(), mean, log_var) - prior.log_density(z)).reshape([b, 1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_standard_component_is_the_standard_gaussian() {
        let device = Device::flex();
        let mut prior = MixturePrior::new(1, 2, &device);
        prior.means = Initializer::Zeros.init([1, 2], &device);
        let z = Tensor::<2>::from_data([[0.0f32, 0.0], [1.0, -2.0]], &device);
        let got = prior
            .log_density(z.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let expect = gaussian_log_density(
            z,
            Tensor::zeros([2, 2], &device),
            Tensor::zeros([2, 2], &device),
        )
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
        // log N(0; 0, 1)² = −ln 2π.
        assert!((got[0] + TAU.ln() as f32).abs() < 1e-5, "{got:?}");
        assert!((got[1] - expect[1]).abs() < 1e-5, "{got:?} vs {expect:?}");
    }

    #[test]
    fn the_sampled_kl_estimates_the_analytic_one() {
        // Against a single standard component the sampled KL averages to the analytic KL.
        let device = Device::flex();
        let mut prior = MixturePrior::new(1, 1, &device);
        prior.means = Initializer::Zeros.init([1, 1], &device);
        let n = 4000;
        let mean = Tensor::<2>::full([n, 1], 1.0, &device);
        let log_var = Tensor::<2>::full([n, 1], -1.0, &device);
        let mut rng = LatentRng::new(1);
        let eps = rng.normal([n, 1], &device);
        let z = mean.clone() + log_var.clone().mul_scalar(0.5).exp() * eps;
        let sampled = global_kl(Some(&prior), z.clone(), mean.clone(), log_var.clone())
            .mean()
            .into_scalar::<f32>();
        let exact = global_kl(None, z, mean, log_var)
            .mean()
            .into_scalar::<f32>();
        // ½(1 + e⁻¹ − 1 + 1) = 0.684
        assert!((exact - 0.6839).abs() < 1e-3, "{exact}");
        assert!((sampled - exact).abs() < 0.05, "{sampled} vs {exact}");
    }
}
