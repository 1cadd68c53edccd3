//! Fused kernels through Burn's backend extensions, called by model code written once.
//!
//! Model code calls the functions of this module ([`attention`], [`linear`], [`layer_norm`],
//! [`gelu`], [`dropout`], [`residual`], [`token_nll`]; optimizers call [`adam`]); each runs
//!
//! - on `Flex` (Burn's CPU backend, with this crate's `flex` feature): a specialised kernel
//!   with a hand-written backward pass ([`AurlOps`], `kernels/flex/`);
//! - on every other backend, or with [`KernelMode::Generic`]: the operation's generic body,
//!   built from Burn's backend operations (`kernels/reference.rs`), differentiated by Burn's
//!   autodiff. The same bodies are the default methods of [`AurlOps`] and the oracle of the
//!   kernels' tests (values and gradients).
//!
//! What each kernel replaces, and what it gains forward + backward at the shapes of a
//! `small()` B8 × 512 training step (`cargo bench --bench kernels`, flex, 2 threads,
//! 2026-12-05; each time includes the weighted sum that drives the backward):
//!
//! | kernel | replaces | fused | generic |
//! |---|---|---|---|
//! | [`attention`] | `q·kᵀ`, mask and bias adds, softmax, dropout and `p·v` on `[b, h, t, t]` tensors and their autodiff graph, by FlashAttention-2-style tiles: an online softmax, tiles past the causal diagonal or outside the window skipped, the backward recomputing probabilities per tile from the log-sum-exp | 40 ms (dropout 0.1: 42 ms) | 250 ms (437 ms) |
//! | [`linear`] | a broadcast batched matmul plus a one-core bias add, by one gemm call onto the bias rows (and for a decoding step's few rows, one streaming pass over an f32, f16 or int8 weight) | 46 ms | 71 ms |
//! | [`layer_norm`] | mean, variance, normalise, scale, shift and their backward | 3.2 ms | 9.4 ms |
//! | [`gelu`] | `erf` through libm, one element at a time, by a vectorised erf | 22 ms | 146 ms |
//! | [`dropout`], [`residual`] | a ChaCha draw per element and a mask tensor, by a counter-based hash recomputed in the backward | 3.8 ms | 25 ms |
//! | [`token_nll`] | log-softmax, gather, mean and their backward over `[n, vocab]` | 2.7 ms | 27 ms |
//! | [`adam`] | Burn's `Adam`/`AdamW` update, about 12 one-core tensor operations per parameter, by one pass over parameter, gradient and moments, in place, on both cores (all 41 tensors of `small()`, 2026-12-06) | 2.2 ms | 16 ms |
//!
//! Fused attention serves full and sliding-window attention, causal or bidirectional, with
//! padding, rotary positions (applied before), dropout on the weights, a chunk of queries
//! after cached keys and single-query steps over the KV cache; relative positions (Music
//! Transformer), hierarchical and multi-scale attention, and several queries over a wrapped
//! sliding-window ring run the generic path.
//!
//! `AURL_KERNELS=generic` in the environment (read once) or [`set_kernel_mode`] forces the
//! generic bodies everywhere, for comparisons and bug reports.

mod autodiff;
#[cfg(feature = "flex")]
mod flex;
mod ops;
mod random;
mod reference;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::{Dispatch, DispatchDevice};
use burn::prelude::*;
use burn::tensor::Distribution;

pub use ops::AurlOps;

/// Which implementation the functions of [`crate::kernels`] run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelMode {
    /// Specialised kernels where the backend has them (the default).
    Fused,
    /// The generic bodies on every backend.
    Generic,
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Chooses the kernels for the whole process (overrides `AURL_KERNELS`).
pub fn set_kernel_mode(mode: KernelMode) {
    MODE.store(
        match mode {
            KernelMode::Fused => 1,
            KernelMode::Generic => 2,
        },
        Ordering::Relaxed,
    );
}

/// The kernels in use: [`set_kernel_mode`]'s choice, else `AURL_KERNELS` (`generic` or
/// `fused`), else [`KernelMode::Fused`].
#[must_use]
pub fn kernel_mode() -> KernelMode {
    match MODE.load(Ordering::Relaxed) {
        1 => KernelMode::Fused,
        2 => KernelMode::Generic,
        _ => {
            let mode = match std::env::var("AURL_KERNELS").as_deref() {
                Ok("generic") => KernelMode::Generic,
                _ => KernelMode::Fused,
            };
            set_kernel_mode(mode);
            mode
        }
    }
}

/// Whether `device`'s backend has specialised kernels and they are on.
fn fused(device: &Device) -> bool {
    if kernel_mode() == KernelMode::Generic {
        return false;
    }
    #[allow(clippy::match_like_matches_macro)]
    match device.clone().inner().as_dispatch() {
        #[cfg(feature = "flex")]
        DispatchDevice::Flex(_) => true,
        _ => false,
    }
}

/// Dropout of the fused kernels: drop probability and the seed of its counter-based mask.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// Probability of dropping an element, in `(0, 1)`.
    pub prob: f32,
    /// Seed of the mask.
    pub seed: u64,
}

/// Which keys each query of [`attention`] sees, and how scores are scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionOptions {
    /// Query `i` sees keys `j ≤ offset + i` only.
    pub causal: bool,
    /// Position of the first query relative to the first key (keys cached before the
    /// queries; 0 in training).
    pub offset: usize,
    /// Query `i` sees keys `j > offset + i − window` only (sliding-window attention).
    pub window: Option<usize>,
    /// Factor applied to `q·kᵀ` (usually `1/√d_head`).
    pub scale: f32,
    /// Dropout on the attention weights, if any.
    pub dropout: Option<Dropout>,
}

impl AttentionOptions {
    /// Whether query `i` sees key `j`.
    #[must_use]
    pub fn visible(&self, i: usize, j: usize) -> bool {
        let position = self.offset + i;
        (!self.causal || j <= position) && self.window.is_none_or(|w| j + w > position)
    }
}

/// A seed for a counter-based mask, drawn from `device`'s generator (seeded per step by the
/// trainer), so masks are reproducible from the run's seed.
fn draw_seed(device: &Device) -> u64 {
    let words = Tensor::<1, Int>::random(
        [3],
        Distribution::Uniform(0.0, 2_097_152.0),
        &device.clone().inner(),
    )
    .into_data()
    .convert::<i64>()
    .try_into_vec::<i64>()
    .unwrap_or_default();
    words
        .iter()
        .fold(0u64, |seed, &w| (seed << 21) ^ (w as u64 & 0x1F_FFFF))
}

/// Multi-head attention `softmax(q·kᵀ·scale + mask + key_bias)·v`, with `options.dropout`
/// on the weights, fused where the backend has a kernel.
///
/// Shapes: `q` `[b, h, tq, d]`, `k` and `v` `[b, h, tk, d]` (any strides: views from a
/// projection need no copy), `key_bias` `[b, tk]` (additive, e.g. a large negative value at
/// padded keys; constant: no gradient reaches it) → `[b, h, tq, d]`.
///
/// Dropout: the fused kernel drops the weights its seed's counter-based mask says (the same
/// mask the generic body builds from the seed); the generic path on other backends draws
/// its own Bernoulli mask on the device instead (same distribution, other draws).
#[must_use]
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    key_bias: Option<Tensor<2>>,
    options: AttentionOptions,
) -> Tensor<4> {
    let device = q.device();
    if fused(&device) {
        let key_bias = key_bias.unwrap_or_else(|| Tensor::empty([0, 0], &device));
        let (out, _) = <Dispatch as AurlOps>::fused_attention(
            q.into_dispatch(),
            k.into_dispatch(),
            v.into_dispatch(),
            key_bias.into_dispatch(),
            options,
        );
        return Tensor::from_dispatch(out);
    }
    let keep = options.dropout.map(|dropout| {
        let [b, h, tq, _] = q.dims();
        let tk = k.dims()[2];
        let keep = 1.0 - f64::from(dropout.prob);
        Tensor::<4>::random([b, h, tq, tk], Distribution::Bernoulli(keep), &device)
            .div_scalar(keep)
            .into_dispatch()
    });
    let (out, _) = reference::attention::<Dispatch>(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        key_bias.map(Tensor::into_dispatch),
        &options,
        keep,
    );
    Tensor::from_dispatch(out)
}

/// The attention-weight dropout `module` applies on `device` now, with a fresh seed drawn
/// from the device's generator (seeded per step by the trainer): `None` outside training
/// (a device without autodiff, a frozen module, probability 0).
#[must_use]
pub fn training_dropout(module: &burn::nn::Dropout, device: &Device) -> Option<Dropout> {
    let training = module.training.is_enabled() && device.is_autodiff();
    (training && module.prob > 0.0).then(|| Dropout {
        prob: module.prob as f32,
        seed: draw_seed(device),
    })
}

/// The epsilon of every layer norm in this crate's models (`LayerNormConfig`'s default).
pub(crate) const LAYER_NORM_EPSILON: f32 = 1e-5;

/// `norm.forward(x)` for a [`burn::nn::LayerNorm`] built with the default epsilon, fused where
/// the backend has a kernel.
///
/// Shapes: `[..., d]` → `[..., d]`.
#[must_use]
pub fn layer_norm<const D: usize>(norm: &burn::nn::LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let gamma = norm.gamma.val();
    let beta = match &norm.beta {
        Some(beta) => beta.val(),
        None => gamma.zeros_like(),
    };
    let (y, _, _) = if fused(&x.device()) {
        <Dispatch as AurlOps>::fused_layer_norm(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            LAYER_NORM_EPSILON,
        )
    } else {
        reference::layer_norm::<Dispatch>(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            LAYER_NORM_EPSILON,
        )
    };
    Tensor::from_dispatch(y)
}

/// The exact GELU `x·Φ(x)`, fused where the backend has a kernel.
#[must_use]
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let y = if fused(&x.device()) {
        <Dispatch as AurlOps>::fused_gelu(x.into_dispatch())
    } else {
        reference::gelu::<Dispatch>(x.into_dispatch())
    };
    Tensor::from_dispatch(y)
}

/// `module.forward(x)` for a [`burn::nn::Dropout`]: the identity outside training (a device
/// without autodiff, a frozen module, probability 0), else a counter-based mask where the
/// backend has a kernel and the module's own random mask elsewhere.
#[must_use]
pub fn dropout<const D: usize>(module: &burn::nn::Dropout, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if module.prob == 0.0 || !module.training.is_enabled() || !device.is_autodiff() {
        return x;
    }
    if !fused(&device) {
        return module.forward(x);
    }
    let dropout = Dropout {
        prob: module.prob as f32,
        seed: draw_seed(&device),
    };
    Tensor::from_dispatch(<Dispatch as AurlOps>::fused_dropout(
        x.into_dispatch(),
        dropout,
    ))
}

/// The residual connection `x + module.forward(a)` for a [`burn::nn::Dropout`] `module`, in
/// one pass where the backend has a kernel (the sum and the dropout mask fused; the
/// backward hands the gradient to `x` and its masked copy to `a`).
///
/// Shapes: `x` and `a` the same.
#[must_use]
pub fn residual<const D: usize>(
    module: &burn::nn::Dropout,
    x: Tensor<D>,
    a: Tensor<D>,
) -> Tensor<D> {
    let device = x.device();
    if !fused(&device) || x.dims() != a.dims() {
        return x + module.forward(a);
    }
    let training = module.prob > 0.0 && module.training.is_enabled() && device.is_autodiff();
    let dropout = training.then(|| Dropout {
        prob: module.prob as f32,
        seed: draw_seed(&device),
    });
    Tensor::from_dispatch(<Dispatch as AurlOps>::fused_residual(
        x.into_dispatch(),
        a.into_dispatch(),
        dropout,
    ))
}

/// Per-row cross entropy of `logits` `[n, v]` against `targets` `[n]`, with label smoothing
/// `smoothing`: `(1 − ε)·(−log p(target)) + ε·mean_c(−log p(c))` `[n]`, fused where the
/// backend has a kernel (no `[n, v]` log-probabilities are kept for the backward).
#[must_use]
pub fn token_nll(logits: Tensor<2>, targets: Tensor<1, Int>, smoothing: f32) -> Tensor<1> {
    let (loss, _) = if fused(&logits.device()) {
        <Dispatch as AurlOps>::fused_token_nll(
            logits.into_dispatch(),
            targets.into_dispatch(),
            smoothing,
        )
    } else {
        reference::token_nll::<Dispatch>(logits.into_dispatch(), targets.into_dispatch(), smoothing)
    };
    Tensor::from_dispatch(loss)
}

/// `linear.forward(x)`, fused where the backend has a kernel: for many rows the output
/// starts as the bias rows and one product accumulates onto it (the backward runs three
/// products, one per gradient); for a decoding step's few rows, column blocks of the weight
/// stream once on parallel tasks, read in f32, f16 or int8 (a decoding copy from
/// [`crate::Transformer::with_weights`] is widened as it is read).
///
/// Shapes: `[..., d_in]` → `[..., d_out]`.
#[must_use]
pub fn linear<const D: usize>(linear: &burn::nn::Linear, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let quantized = matches!(linear.weight.val().dtype(), burn::tensor::DType::QFloat(_));
    let inference = !device.is_autodiff();
    if !fused(&device) || x.dtype() != burn::tensor::DType::F32 || (quantized && !inference) {
        return crate::project::generic_project(linear, x);
    }
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows = dims[..D - 1].iter().product();
    let weight = linear.weight.val();
    let d_out = weight.dims()[1];
    let bias = match &linear.bias {
        Some(bias) => bias.val(),
        None => Tensor::empty([0], &device),
    };
    let x = x.reshape([rows, d_in]).into_dispatch();
    let y = if quantized {
        <Dispatch as AurlOps>::fused_linear_quantized(
            x,
            weight.into_dispatch(),
            bias.into_dispatch(),
        )
    } else {
        <Dispatch as AurlOps>::fused_linear(x, weight.into_dispatch(), bias.into_dispatch())
    };
    let mut out = dims;
    out[D - 1] = d_out;
    Tensor::<2>::from_dispatch(y).reshape(out)
}

/// One Adam(W) update's settings, for [`adam`].
///
/// The update, with `g = grad + penalty·p`, `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²`:
/// `p ← (1 − lr·decay)·p − lr·m̂ / (√v̂ + ε)`, `m̂` and `v̂` the bias-corrected moments — Burn's
/// `Adam` (`penalty`, an L2 term) and `AdamW` (`decay`, decoupled) in one formula.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Learning rate of this step.
    pub lr: f64,
    /// Decay of the first moment (Burn's and PyTorch's default 0.9).
    pub beta_1: f32,
    /// Decay of the second moment (default 0.999).
    pub beta_2: f32,
    /// Added to `√v̂` (Burn's default 1e-5).
    pub epsilon: f32,
    /// Decoupled weight decay (AdamW): the parameter is scaled by `1 − lr·decay` first.
    pub decay: f32,
    /// L2 penalty (Adam): `penalty·p` is added to the gradient.
    pub penalty: f32,
    /// This step's number, from 1: the exponent of the bias corrections.
    pub time: usize,
}

/// [`AdamStep`] folded into the four constants of the update
/// `p ← keep·p − rate·m / (√v + epsilon)` (plus the L2 `penalty`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamScalars {
    pub(crate) penalty: f32,
    pub(crate) keep: f32,
    pub(crate) rate: f32,
    pub(crate) epsilon: f32,
}

impl AdamStep {
    /// The constants of the update; `m̂/(√v̂ + ε) = m·(√c₂/c₁)/(√v + ε·√c₂)` with
    /// `cᵢ = 1 − βᵢᵗ`, computed in f32 as Burn's optimizers do.
    pub(crate) fn scalars(&self) -> AdamScalars {
        let time = i32::try_from(self.time.max(1)).unwrap_or(i32::MAX);
        let correction_1 = 1.0 - self.beta_1.powi(time);
        let correction_2_sqrt = (1.0 - self.beta_2.powi(time)).sqrt();
        AdamScalars {
            penalty: self.penalty,
            keep: (1.0 - self.lr * f64::from(self.decay)) as f32,
            rate: (self.lr * f64::from(correction_2_sqrt / correction_1)) as f32,
            epsilon: self.epsilon * correction_2_sqrt,
        }
    }
}

/// One Adam(W) update of `param` from `grad` and the moments `moment_1`, `moment_2` (all the
/// same shape, tensors of a device without autodiff, as optimizers see them): returns the
/// parameter and both moments after the step. Where the backend has a kernel this is one
/// pass over the four tensors, in place where they are not shared, on every core (the
/// generic body runs about 12 one-core operations, each allocating its result).
///
/// ```
/// use aurl_model::burn::prelude::*;
/// use aurl_model::kernels::{AdamStep, adam};
///
/// let device = Device::default();
/// let p = Tensor::<1>::from_floats([1.0, -2.0], &device);
/// let g = Tensor::<1>::from_floats([0.5, 0.5], &device);
/// let step = AdamStep {
///     lr: 0.1, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-8, decay: 0.0, penalty: 0.0, time: 1,
/// };
/// let (p, m, v) = adam(p, g.clone(), g.zeros_like(), g.zeros_like(), &step);
/// // The first step moves each parameter by lr against its gradient's sign.
/// let p: Vec<f32> = p.into_data().try_to_vec().unwrap();
/// assert!((p[0] - 0.9).abs() < 1e-5 && (p[1] + 2.1).abs() < 1e-5);
/// # let _ = (m, v);
/// ```
#[must_use]
pub fn adam<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moment_1: Tensor<D>,
    moment_2: Tensor<D>,
    step: &AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let fused = fused(&param.device());
    let (param, grad, moment_1, moment_2) = (
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
    );
    let (p, m, v) = if fused {
        <Dispatch as AurlOps>::fused_adam(param, grad, moment_1, moment_2, *step)
    } else {
        reference::adam::<Dispatch>(param, grad, moment_1, moment_2, step)
    };
    (
        Tensor::from_dispatch(p),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    )
}
