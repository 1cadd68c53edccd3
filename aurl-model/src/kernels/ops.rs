//! The backend extension trait: every fused operation with a default body built from Burn's
//! generic backend operations ([`super::reference`]), so any backend runs it unchanged.

use burn::backend::tensor::{FloatTensor, IntTensor, QuantizedTensor};
use burn::backend::{Backend, backend_extension};
use burn::tensor::FloatDType;

use super::reference;
use super::{AdamStep, AttentionOptions, Dropout};

/// Fused operations of Aurl's models.
///
/// Each method's default body is the generic composition of Burn backend operations that
/// the fused kernel replaces (and the oracle its tests compare against); `Flex` specialises
/// them with CPU kernels and `Autodiff<B>` differentiates them with hand-written backward
/// passes that call the `*_backward` methods. Call them through the wrappers of
/// [`crate::kernels`], never directly.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait AurlOps: Backend {
    /// Attention of `q` `[b, h, tq, d]` over `k`, `v` `[b, h, tk, d]` with an additive
    /// `key_bias` `[b, tk]` (padding; an empty tensor for none), the causal/window mask of `options` and dropout on the
    /// attention weights; returns the output `[b, h, tq, d]` and the log-sum-exp of every
    /// query's scores `[b, h, tq]` (what the backward pass needs).
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_bias: FloatTensor<Self>,
        options: AttentionOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let keep = reference::keep_mask::<Self>(&q, &k, &options);
        reference::attention::<Self>(q, k, v, reference::bias::<Self>(key_bias), &options, keep)
    }

    /// Gradients of [`AurlOps::fused_attention`] with respect to `q`, `k` and `v`, given its
    /// output `out`, log-sum-exp `lse` and the output's gradient `grad`.
    #[allow(clippy::too_many_arguments)]
    fn fused_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        key_bias: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: AttentionOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let keep = reference::keep_mask::<Self>(&q, &k, &options);
        reference::attention_backward::<Self>(
            q,
            k,
            v,
            reference::bias::<Self>(key_bias),
            out,
            lse,
            grad,
            &options,
            keep,
        )
    }

    /// Layer normalisation over the last dimension: `(x − mean) / sqrt(var + epsilon) · gamma
    /// + beta`; returns the output and, per row, the mean and `1 / sqrt(var + epsilon)`
    /// (shaped as `x` with a last dimension of 1).
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        reference::layer_norm::<Self>(x, gamma, beta, epsilon)
    }

    /// Gradients of [`AurlOps::fused_layer_norm`] with respect to `x`, `gamma` and `beta`.
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        reference::layer_norm_backward::<Self>(x, gamma, mean, rstd, grad)
    }

    /// `x · Φ(x)` (exact GELU, Φ the standard normal CDF), element-wise.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::gelu::<Self>(x)
    }

    /// `grad · d gelu(x) / dx`, element-wise.
    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::gelu_backward::<Self>(x, grad)
    }

    /// `x` with the elements the counter-based mask of `dropout` drops set to 0 and the
    /// others scaled by `1 / (1 − p)`. The same call on the output's gradient is its backward.
    fn fused_dropout(x: FloatTensor<Self>, dropout: Dropout) -> FloatTensor<Self> {
        reference::dropout::<Self>(x, dropout)
    }

    /// `x + dropout(a)` (a residual connection), with `dropout` applied as
    /// [`AurlOps::fused_dropout`] does, or `x + a` without.
    fn fused_residual(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        dropout: Option<Dropout>,
    ) -> FloatTensor<Self> {
        reference::residual::<Self>(x, a, dropout)
    }

    /// Per-row cross entropy of `logits` `[n, v]` against `targets` `[n]` with label
    /// smoothing `smoothing`: `(1 − ε)·(−log p(target)) + ε·mean_c(−log p(c))`; returns the
    /// losses `[n]` and the log-sum-exp of every row `[n]`.
    fn fused_token_nll(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        smoothing: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::token_nll::<Self>(logits, targets, smoothing)
    }

    /// Gradient of [`AurlOps::fused_token_nll`] with respect to the logits, given every row's
    /// log-sum-exp and the gradient of every row's loss `grad` `[n]`.
    fn fused_token_nll_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        smoothing: f32,
    ) -> FloatTensor<Self> {
        reference::token_nll_backward::<Self>(logits, targets, lse, grad, smoothing)
    }

    /// `x · weight + bias` for `x` `[rows, d_in]`, `weight` `[d_in, d_out]` and `bias`
    /// `[d_out]` (an empty tensor for none).
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        reference::linear::<Self>(x, weight, reference::bias::<Self>(bias))
    }

    /// `grad · weightᵀ`: the gradient of [`AurlOps::fused_linear`] with respect to `x`.
    fn fused_linear_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        reference::linear_input_grad::<Self>(weight, grad)
    }

    /// `xᵀ · grad`: the gradient of [`AurlOps::fused_linear`] with respect to `weight`.
    fn fused_linear_weight_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        reference::linear_weight_grad::<Self>(x, grad)
    }

    /// The column sums of `grad`: the gradient of [`AurlOps::fused_linear`] with respect to
    /// `bias`.
    fn fused_linear_bias_grad(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        reference::linear_bias_grad::<Self>(grad)
    }

    /// `x · w + bias` for a quantized weight `w` `[d_in, d_out]` (a decoding copy from
    /// [`crate::Transformer::with_weights`]); no gradient.
    fn fused_linear_quantized(
        x: FloatTensor<Self>,
        weight: QuantizedTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let weight = Self::dequantize(weight, FloatDType::F32);
        reference::linear::<Self>(x, weight, reference::bias::<Self>(bias))
    }

    /// One Adam(W) update of a parameter from its gradient and both moments (see
    /// [`AdamStep`]); returns the parameter and the moments after the step. Not
    /// differentiable: optimizers call it on the inner backend's tensors.
    fn fused_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        reference::adam::<Self>(param, grad, moment_1, moment_2, &step)
    }
}
