//! Spectral normalization (Miyato et al., "Spectral Normalization for Generative Adversarial
//! Networks", ICLR 2018): a linear layer whose weight is divided by an estimate of its largest
//! singular value σ, so the layer is (about) 1-Lipschitz and a discriminator built from them
//! cannot sharpen without bound.
//!
//! σ is estimated by power iteration. The iteration vector `u` is module state (saved with
//! the weights, not trained): [`SpectralLinear::forward`] is pure and uses the current `u`;
//! the training loop calls [`SpectralLinear::power_iteration`] (through the owning module)
//! once per discriminator step, as Miyato et al. do, so the estimate tracks the weight as it
//! changes.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;

/// `y = x·W/σ(W) + b` with `W` `[d_input, d_output]`.
#[derive(Module, Debug)]
pub struct SpectralLinear {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
    /// Right singular vector estimate `[d_output]`: a parameter so the record saves it
    /// (Burn 0.22 does not persist plain tensor fields), never trained (it takes no
    /// gradient: every use reads it detached).
    u: Param<Tensor<1>>,
}

impl SpectralLinear {
    /// A layer initialised like Burn's `Linear` (Kaiming uniform), with a random unit `u`.
    #[must_use]
    pub fn new(d_input: usize, d_output: usize, device: &Device) -> Self {
        let weight = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        }
        .init_with([d_input, d_output], Some(d_input), Some(d_output), device);
        let u = Tensor::<1>::random(
            [d_output],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        Self {
            weight,
            bias: Initializer::Zeros.init([d_output], device),
            u: Param::from_tensor(normalize(u)).set_require_grad(false),
        }
    }

    /// The left and right singular vector estimates `(v, u)` for the current weight
    /// (gradient-free).
    fn vectors(&self) -> (Tensor<1>, Tensor<1>) {
        self.vectors_from(self.u.val().detach())
    }

    /// One power-iteration step from the estimate `u`.
    fn vectors_from(&self, u: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
        let w = self.weight.val().detach();
        let [d_in, d_out] = w.dims();
        let v = normalize(w.clone().matmul(u.reshape([d_out, 1])).reshape([d_in]));
        let u = normalize(
            w.transpose()
                .matmul(v.clone().reshape([d_in, 1]))
                .reshape([d_out]),
        );
        (v, u)
    }

    /// The current estimate of the weight's largest singular value, `vᵀ·W·u` (differentiable
    /// in `W`, as in Miyato et al.).
    #[must_use]
    pub fn sigma(&self) -> Tensor<1> {
        let (v, u) = self.vectors();
        let [d_in, d_out] = self.weight.val().dims();
        v.reshape([1, d_in])
            .matmul(self.weight.val())
            .matmul(u.reshape([d_out, 1]))
            .reshape([1])
    }

    /// Advances the power iteration `steps` times (each `u ← normalize(Wᵀ·normalize(W·u))`).
    #[must_use]
    pub fn power_iteration(mut self, steps: usize) -> Self {
        let id = self.u.id;
        let mut u = self.u.val().detach();
        for _ in 0..steps {
            let (_, next) = self.vectors_from(u);
            u = next;
        }
        // A fresh leaf: on an autodiff device the iterate must not keep the graph of the
        // step that computed it (Burn consumes a graph on backward, and a later loss
        // reaching back into it would fail).
        let device = u.device();
        let u = Tensor::<1>::from_data(u.into_data(), &device);
        self.u = Param::initialized(id, u).set_require_grad(false);
        self
    }

    /// The layer on `x` `[.., d_input]`.
    #[must_use]
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let sigma = self.sigma().clamp_min(1e-12);
        let [d_in, d_out] = self.weight.val().dims();
        let w = self.weight.val() / sigma.reshape([1, 1]).expand([d_in, d_out]);
        burn::tensor::module::linear(x, w, Some(self.bias.val()))
    }

    /// The normalized weight `W/σ` (for inspection and tests).
    #[must_use]
    pub fn normalized_weight(&self) -> Tensor<2> {
        let [d_in, d_out] = self.weight.val().dims();
        self.weight.val() / self.sigma().reshape([1, 1]).expand([d_in, d_out])
    }
}

fn normalize(x: Tensor<1>) -> Tensor<1> {
    let norm = x.clone().powi_scalar(2).sum().sqrt().clamp_min(1e-12);
    x / norm
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest singular value by many host power iterations on WᵀW, in f64.
    fn largest_singular_value(w: &[f32], d_in: usize, d_out: usize) -> f64 {
        let mut x = vec![1.0f64; d_out];
        let mut sigma = 0.0;
        for _ in 0..3000 {
            // y = W x (d_in), z = Wᵀ y (d_out)
            let y: Vec<f64> = (0..d_in)
                .map(|i| (0..d_out).map(|j| f64::from(w[i * d_out + j]) * x[j]).sum())
                .collect();
            let z: Vec<f64> = (0..d_out)
                .map(|j| (0..d_in).map(|i| f64::from(w[i * d_out + j]) * y[i]).sum())
                .collect();
            let n = z.iter().map(|v| v * v).sum::<f64>().sqrt();
            sigma = n.sqrt();
            x = z.iter().map(|v| v / n).collect();
        }
        sigma
    }

    #[test]
    fn power_iteration_finds_the_largest_singular_value() {
        let device = Device::flex();
        device.seed(12);
        let layer = SpectralLinear::new(12, 7, &device);
        let w = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let exact = largest_singular_value(&w, 12, 7);
        let layer = layer.power_iteration(30);
        let estimate = f64::from(layer.sigma().into_scalar::<f32>());
        assert!(
            (estimate - exact).abs() / exact < 1e-3,
            "{estimate} vs {exact}"
        );
        // The normalized weight's largest singular value is 1.
        let n = layer
            .normalized_weight()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let s = largest_singular_value(&n, 12, 7);
        assert!((s - 1.0).abs() < 1e-3, "{s}");
    }

    #[test]
    fn the_layer_is_one_lipschitz_after_iterating() {
        let device = Device::flex();
        device.seed(13);
        let layer = SpectralLinear::new(8, 8, &device).power_iteration(30);
        for seed in 0..5 {
            device.seed(100 + seed);
            let a = Tensor::<2>::random(
                [1, 8],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let b = Tensor::<2>::random(
                [1, 8],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let gap_in = (a.clone() - b.clone())
                .powi_scalar(2)
                .sum()
                .sqrt()
                .into_scalar::<f32>();
            let gap_out = (layer.forward(a) - layer.forward(b))
                .powi_scalar(2)
                .sum()
                .sqrt()
                .into_scalar::<f32>();
            assert!(gap_out <= gap_in * 1.001, "{gap_out} > {gap_in}");
        }
    }
}
