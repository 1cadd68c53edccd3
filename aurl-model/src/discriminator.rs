//! A multi-scale discriminator over token sequences for the VAE-GAN: it judges windows at
//! several scales (a few tokens ≈ notes, tens of tokens ≈ phrases, the whole sequence ≈ the
//! piece) and reads *soft* tokens, so the generator's gradient flows through its output
//! distribution: real sequences enter as one-hot rows, generated ones as probabilities
//! (optionally Gumbel-softmax samples), both times the discriminator's embedding matrix.
//! Every linear layer is spectrally normalized ([`SpectralLinear`]).

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{leaky_relu, softmax};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};
use crate::spectral::SpectralLinear;

/// Shape of a [`Discriminator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscriminatorConfig {
    /// Width of the token embedding.
    pub d_embed: usize,
    /// Width of the hidden features.
    pub hidden: usize,
    /// Window of every scale in tokens, judged on consecutive non-overlapping windows
    /// (0 = the whole sequence, mean-pooled). Default: note (4), phrase (32), piece (0).
    pub scales: Vec<usize>,
    /// Negative slope of the leaky ReLUs.
    pub leak: f64,
}

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        Self {
            d_embed: 64,
            hidden: 128,
            scales: vec![4, 32, 0],
            leak: 0.2,
        }
    }
}

impl DiscriminatorConfig {
    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.d_embed == 0 {
            return Err(invalid("discriminator.d_embed", "must be at least 1"));
        }
        if self.hidden == 0 {
            return Err(invalid("discriminator.hidden", "must be at least 1"));
        }
        if self.scales.is_empty() {
            return Err(invalid("discriminator.scales", "needs at least one scale"));
        }
        if !self.leak.is_finite() || !(0.0..1.0).contains(&self.leak) {
            return Err(invalid("discriminator.leak", "must be in [0, 1)"));
        }
        Ok(())
    }

    /// Builds the discriminator for a vocabulary of `vocab_size` tokens.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the bad field.
    pub fn init(&self, vocab_size: usize, device: &Device) -> Result<Discriminator, ModelError> {
        self.validate()?;
        if vocab_size == 0 {
            return Err(invalid("vocab_size", "must be at least 1"));
        }
        let h = self.hidden;
        Ok(crate::eager::eager(Discriminator {
            embedding: Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([vocab_size, self.d_embed], device),
            trunk: SpectralLinear::new(self.d_embed, h, device),
            heads: self
                .scales
                .iter()
                .map(|&window| ScaleHead {
                    window,
                    features: SpectralLinear::new(window.max(1) * h, h, device),
                    logit: SpectralLinear::new(h, 1, device),
                })
                .collect(),
            leak: self.leak,
        }))
    }
}

/// One scale: a window of trunk features → hidden features → one logit per window.
#[derive(Module, Debug)]
pub struct ScaleHead {
    window: usize,
    features: SpectralLinear,
    logit: SpectralLinear,
}

/// What the discriminator says about a batch.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Per scale, one logit per window `[b, windows]` (high = real).
    pub logits: Vec<Tensor<2>>,
    /// Per scale, the hidden features `[b, windows, hidden]` (for feature matching).
    pub features: Vec<Tensor<3>>,
}

/// The multi-scale discriminator. Input: soft tokens `[b, t, vocab]` (rows summing to 1).
#[derive(Module, Debug)]
pub struct Discriminator {
    embedding: Param<Tensor<2>>,
    trunk: SpectralLinear,
    heads: Vec<ScaleHead>,
    leak: f64,
}

impl Discriminator {
    /// Judges soft tokens `[b, t, vocab]`.
    #[must_use]
    pub fn forward(&self, soft: Tensor<3>) -> Judgement {
        let [b, t, v] = soft.dims();
        let embedding = self.embedding.val();
        let e = embedding.dims()[1];
        let x = soft
            .reshape([b * t, v])
            .matmul(embedding)
            .reshape([b, t, e]);
        self.judge(x)
    }

    /// Judges hard token ids `[b, t]` (the same as one-hot soft tokens, without building
    /// them).
    #[must_use]
    pub fn forward_ids(&self, ids: Tensor<2, Int>) -> Judgement {
        self.judge(self.embed_ids(ids))
    }

    /// The embedded input `[b, t, d_embed]` of hard token ids: what
    /// [`Discriminator::judge`] reads.
    #[must_use]
    pub fn embed_ids(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [b, t] = ids.dims();
        let embedding = self.embedding.val();
        let e = embedding.dims()[1];
        embedding.select(0, ids.reshape([b * t])).reshape([b, t, e])
    }

    /// A finite-difference R1 penalty (Mescheder et al., 2018) on real token ids:
    /// `E_δ[((D(x + εδ) − D(x)) / ε)²]` over `directions` random Gaussian directions `δ` in
    /// the embedded input space, summed over scales and averaged over windows. For
    /// `δ ~ N(0, I)`, `E[(∇D·δ)²] = ‖∇D‖²`, so this estimates the R1 term `‖∇ₓD(x)‖²` with one
    /// backward pass. The exact penalty needs a double backward, which Burn 0.22's autodiff
    /// does not offer (a gradient taken with `Tensor::grad` has no autodiff association).
    /// Noise comes from the device's seeded generator.
    #[must_use]
    pub fn r1_penalty(&self, ids: Tensor<2, Int>, epsilon: f64, directions: usize) -> Tensor<1> {
        let x = self.embed_ids(ids);
        let base = self.judge(x.clone()).logits;
        let mut total: Option<Tensor<1>> = None;
        for _ in 0..directions.max(1) {
            let delta = Tensor::<3>::random(x.dims(), Distribution::Normal(0.0, 1.0), &x.device());
            let moved = self.judge(x.clone() + delta.mul_scalar(epsilon)).logits;
            for (m, b) in moved.into_iter().zip(&base) {
                let slope = (m - b.clone()).div_scalar(epsilon).powi_scalar(2).mean();
                total = Some(match total {
                    Some(t) => t + slope,
                    None => slope,
                });
            }
        }
        total
            .expect("at least one scale and one direction")
            .div_scalar(directions.max(1) as f64)
    }

    /// Judges embedded inputs `[b, t, d_embed]`.
    #[must_use]
    pub fn judge(&self, x: Tensor<3>) -> Judgement {
        let [b, t, _] = x.dims();
        let h = leaky_relu(self.trunk.forward(x), self.leak);
        let hidden = h.dims()[2];
        let mut logits = Vec::with_capacity(self.heads.len());
        let mut features = Vec::with_capacity(self.heads.len());
        for head in &self.heads {
            let grouped = match head.window {
                0 => h.clone().mean_dim(1),
                w if t < w => h
                    .clone()
                    .pad(
                        [(0, w - t), (0, 0)],
                        burn::tensor::ops::PadMode::Constant(0.0),
                    )
                    .reshape([b, 1, w * hidden]),
                w => {
                    let n = t / w;
                    h.clone().narrow(1, 0, n * w).reshape([b, n, w * hidden])
                }
            };
            let f = leaky_relu(head.features.forward(grouped), self.leak);
            let n = f.dims()[1];
            logits.push(head.logit.forward(f.clone()).reshape([b, n]));
            features.push(f);
        }
        Judgement { logits, features }
    }

    /// Advances every layer's spectral-norm power iteration (call once per discriminator
    /// step).
    #[must_use]
    pub fn power_iteration(mut self, steps: usize) -> Self {
        self.trunk = self.trunk.power_iteration(steps);
        self.heads = self
            .heads
            .into_iter()
            .map(|h| ScaleHead {
                window: h.window,
                features: h.features.power_iteration(steps),
                logit: h.logit.power_iteration(steps),
            })
            .collect();
        self
    }
}

/// The decoder's soft tokens `[b, t, vocab]` from its logits: `softmax(logits / τ)`, or with
/// `gumbel` the Gumbel-softmax relaxation `softmax((logits + g) / τ)`, `g = −ln(−ln U)`
/// (Jang et al.; Maddison et al., 2017), whose samples approach one-hot rows as τ → 0.
/// Noise comes from the device's seeded generator.
///
/// ```
/// use aurl_model::soft_tokens;
/// use burn::prelude::*;
/// let device = Device::flex();
/// let p = soft_tokens(Tensor::<3>::zeros([1, 2, 4], &device), 1.0, false);
/// let rows = p.sum_dim(2).into_data().try_to_vec::<f32>()?;
/// assert!(rows.iter().all(|r| (r - 1.0).abs() < 1e-6));
/// # Ok::<(), burn::tensor::DataError>(())
/// ```
#[must_use]
pub fn soft_tokens(logits: Tensor<3>, temperature: f64, gumbel: bool) -> Tensor<3> {
    let logits = if gumbel {
        let u = Tensor::<3>::random(
            logits.dims(),
            Distribution::Uniform(1e-10, 1.0),
            &logits.device(),
        );
        logits + u.log().neg().log().neg()
    } else {
        logits
    };
    softmax(logits.div_scalar(temperature.max(1e-6)), 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::AdversarialLoss;
    use burn::optim::{AdamConfig, GradientsParams};

    fn ids(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
        let t = rows[0].len();
        let flat: Vec<i64> = rows.concat();
        Tensor::<1, Int>::from_data(TensorData::new(flat, [rows.len() * t]), device)
            .reshape([rows.len(), t])
    }

    #[test]
    fn every_scale_judges_its_windows_and_one_hot_equals_ids() {
        let device = Device::flex();
        device.seed(2);
        let d = DiscriminatorConfig::default().init(10, &device).unwrap();
        let tokens = ids(&[(0..40).map(|i| i % 10).collect()], &device);
        let judged = d.forward_ids(tokens.clone());
        let windows: Vec<usize> = judged.logits.iter().map(|l| l.dims()[1]).collect();
        assert_eq!(windows, vec![10, 1, 1]);
        assert_eq!(judged.features[0].dims(), [1, 10, 128]);
        let one_hot = tokens.one_hot::<3>(10).float();
        let soft = d.forward(one_hot);
        for (a, b) in judged.logits.into_iter().zip(soft.logits) {
            let gap = (a - b).abs().max().into_scalar::<f32>();
            assert!(gap < 1e-5, "{gap}");
        }
    }

    #[test]
    fn generator_gradients_flow_through_soft_tokens() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let d = DiscriminatorConfig::default().init(6, &device).unwrap();
        let logits = Tensor::<3>::zeros([2, 8, 6], &device).require_grad();
        let judged = d.forward(soft_tokens(logits.clone(), 1.0, true));
        let loss = judged
            .logits
            .into_iter()
            .map(|l| AdversarialLoss::NonSaturating.generator(l))
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        let g = logits
            .grad(&grads)
            .unwrap()
            .abs()
            .sum()
            .into_scalar::<f32>();
        assert!(g > 0.0 && g.is_finite(), "{g}");
    }

    #[test]
    fn the_finite_difference_r1_estimates_the_input_gradient_norm() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let d = DiscriminatorConfig {
            scales: vec![0],
            ..DiscriminatorConfig::default()
        }
        .init(8, &device)
        .unwrap()
        .power_iteration(5);
        let tokens = ids(&[(0..12).map(|i| (i * 5) % 8).collect()], &device);
        // The exact ‖∇ₓD‖² by one backward pass (one window, one row).
        let x = d.embed_ids(tokens.clone()).detach().require_grad();
        let grads = d.judge(x.clone()).logits[0].clone().sum().backward();
        let exact = x
            .grad(&grads)
            .unwrap()
            .powi_scalar(2)
            .sum()
            .into_scalar::<f32>();
        let estimate = d.r1_penalty(tokens, 1e-2, 400).into_scalar::<f32>();
        assert!(exact > 0.0);
        assert!(
            (estimate - exact).abs() / exact < 0.25,
            "{estimate} vs {exact}"
        );
    }

    #[test]
    fn the_discriminator_learns_to_tell_two_patterns_apart() {
        let device = Device::flex().autodiff();
        device.seed(4);
        let config = DiscriminatorConfig {
            scales: vec![4, 0],
            ..DiscriminatorConfig::default()
        };
        let mut d = config.init(8, &device).unwrap();
        let mut optim = AdamConfig::new().init();
        let row = |step: i64| -> Vec<i64> { (0..16).map(|i| (i * step) % 8).collect() };
        let real = ids(&vec![row(1); 2], &device);
        let fake = ids(&vec![row(2); 2], &device);
        let loss_of = |d: &Discriminator| {
            d.forward_ids(real.clone())
                .logits
                .into_iter()
                .zip(d.forward_ids(fake.clone()).logits)
                .map(|(r, f)| AdversarialLoss::Hinge.discriminator(r, f))
                .reduce(|a, b| a + b)
                .unwrap()
        };
        let first = loss_of(&d).into_scalar::<f32>();
        for _ in 0..60 {
            d = d.power_iteration(1);
            let loss = loss_of(&d);
            let grads = GradientsParams::from_grads(loss.backward(), &d);
            d = optim.step(1e-3, d, grads);
        }
        let last = loss_of(&d).into_scalar::<f32>();
        assert!(last < 0.25 * first, "{first} → {last}");
        assert!(
            DiscriminatorConfig {
                scales: vec![],
                ..config
            }
            .init(8, &device)
            .is_err()
        );
    }
}
