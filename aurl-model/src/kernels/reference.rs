//! The generic bodies of the fused operations, built from Burn's backend operations only:
//! what every backend without a specialised kernel runs, what [`super::attention`] and its
//! siblings run when fused kernels are off, and the oracle the kernels' tests compare with.
//!
//! Written for clarity, not speed: each materialises what the kernels avoid (the
//! `[b, h, tq, tk]` scores and probabilities, the normalised rows, the probabilities of
//! every class).

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, TensorMetadata};
use burn::tensor::{FloatDType, IntDType, Shape, TensorData};

use super::random::{bits, stream_keys, threshold};
use super::{AdamStep, AttentionOptions, Dropout};

/// `key_bias` unless it is empty (how [`AurlOps`](super::AurlOps) passes "no bias").
pub(crate) fn bias<B: Backend>(key_bias: FloatTensor<B>) -> Option<FloatTensor<B>> {
    (key_bias.shape().num_elements() > 0).then_some(key_bias)
}

fn dims<B: Backend>(t: &FloatTensor<B>) -> Vec<usize> {
    t.shape().to_vec()
}

/// The additive causal/window mask `[1, 1, tq, tk]` of `options`, or `None` when every
/// query sees every key.
fn position_mask<B: Backend>(
    tq: usize,
    tk: usize,
    options: &AttentionOptions,
    device: &B::Device,
) -> Option<FloatTensor<B>> {
    if !options.causal && options.window.is_none() {
        return None;
    }
    let data: Vec<f32> = (0..tq)
        .flat_map(|i| (0..tk).map(move |j| options.visible(i, j)))
        .map(|visible| if visible { 0.0 } else { f32::NEG_INFINITY })
        .collect();
    Some(B::float_from_data(
        TensorData::new(data, [1, 1, tq, tk]),
        device,
    ))
}

/// The dropout mask of [`AurlOps::fused_attention`](super::AurlOps::attention) `[b, h, tq, tk]`:
/// `1 / (1 − p)` where an attention weight is kept, 0 where dropped, exactly as the fused
/// kernels draw it (stream `b·h + head`, element `i·tk + j`); `None` without dropout.
pub(crate) fn keep_mask<B: Backend>(
    q: &FloatTensor<B>,
    k: &FloatTensor<B>,
    options: &AttentionOptions,
) -> Option<FloatTensor<B>> {
    let dropout = options.dropout?;
    let [b, h, tq, _] = dims::<B>(q)[..] else {
        unreachable!("attention inputs are rank 4")
    };
    let tk = dims::<B>(k)[2];
    let scale = 1.0 / (1.0 - dropout.prob);
    let t = threshold(dropout.prob);
    let mut data = Vec::with_capacity(b * h * tq * tk);
    for stream in 0..b * h {
        let keys = stream_keys(dropout.seed, stream as u64);
        for index in 0..tq * tk {
            let kept = bits(keys, index as u32) >= t;
            data.push(if kept { scale } else { 0.0 });
        }
    }
    Some(B::float_from_data(
        TensorData::new(data, [b, h, tq, tk]),
        &q.device(),
    ))
}

/// Scaled, masked and biased scores `[b, h, tq, tk]`.
fn scores<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    key_bias: Option<FloatTensor<B>>,
    options: &AttentionOptions,
) -> FloatTensor<B> {
    let [b, _, tq, _] = dims::<B>(&q)[..] else {
        unreachable!("attention inputs are rank 4")
    };
    let tk = dims::<B>(&k)[2];
    let device = q.device();
    let s = B::float_matmul(q, B::float_swap_dims(k, 2, 3));
    let mut s = B::float_mul_scalar(s, f64::from(options.scale).into());
    if let Some(mask) = position_mask::<B>(tq, tk, options, &device) {
        s = B::float_add(s, mask);
    }
    if let Some(bias) = key_bias {
        s = B::float_add(s, B::float_reshape(bias, Shape::from([b, 1, 1, tk])));
    }
    s
}

/// Generic [`AurlOps::fused_attention`](super::AurlOps::attention) with an explicit dropout mask.
pub(crate) fn attention<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    key_bias: Option<FloatTensor<B>>,
    options: &AttentionOptions,
    keep: Option<FloatTensor<B>>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let [b, h, tq, _] = dims::<B>(&q)[..] else {
        unreachable!("attention inputs are rank 4")
    };
    let s = scores::<B>(q, k, key_bias, options);
    let max = B::float_max_dim(s.clone(), 3);
    let e = B::float_exp(B::float_sub(s, max.clone()));
    let sum = B::float_sum_dim(e.clone(), 3);
    let lse = B::float_add(max, B::float_log(sum.clone()));
    let mut p = B::float_div(e, sum);
    if let Some(keep) = keep {
        p = B::float_mul(p, keep);
    }
    let out = B::float_matmul(p, v);
    (out, B::float_reshape(lse, Shape::from([b, h, tq])))
}

/// Generic [`AurlOps::fused_attention_backward`](super::AurlOps::attention_backward) with an
/// explicit dropout mask: recomputes the probabilities from the log-sum-exp.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_backward<B: Backend>(
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    key_bias: Option<FloatTensor<B>>,
    out: FloatTensor<B>,
    lse: FloatTensor<B>,
    grad: FloatTensor<B>,
    options: &AttentionOptions,
    keep: Option<FloatTensor<B>>,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let [b, h, tq, _] = dims::<B>(&q)[..] else {
        unreachable!("attention inputs are rank 4")
    };
    let s = scores::<B>(q.clone(), k.clone(), key_bias, options);
    let lse = B::float_reshape(lse, Shape::from([b, h, tq, 1]));
    let p = B::float_exp(B::float_sub(s, lse));
    let dropped = match &keep {
        Some(keep) => B::float_mul(p.clone(), keep.clone()),
        None => p.clone(),
    };
    let dv = B::float_matmul(B::float_swap_dims(dropped, 2, 3), grad.clone());
    let mut dp = B::float_matmul(grad.clone(), B::float_swap_dims(v, 2, 3));
    if let Some(keep) = keep {
        dp = B::float_mul(dp, keep);
    }
    // Σ_j p_ij · dp_ij = dO_i · O_i (dropout included).
    let row = B::float_sum_dim(B::float_mul(grad, out), 3);
    let ds = B::float_mul(p, B::float_sub(dp, row));
    let ds = B::float_mul_scalar(ds, f64::from(options.scale).into());
    let dq = B::float_matmul(ds.clone(), k);
    let dk = B::float_matmul(B::float_swap_dims(ds, 2, 3), q);
    (dq, dk, dv)
}

/// Generic [`AurlOps::fused_layer_norm`](super::AurlOps::layer_norm).
pub(crate) fn layer_norm<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f32,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let shape = dims::<B>(&x);
    let last = shape.len() - 1;
    let broadcast: Vec<usize> = (0..shape.len())
        .map(|i| if i == last { shape[last] } else { 1 })
        .collect();
    let gamma = B::float_reshape(gamma, Shape::from(broadcast.clone()));
    let beta = B::float_reshape(beta, Shape::from(broadcast));
    let mean = B::float_mean_dim(x.clone(), last);
    let centered = B::float_sub(x, mean.clone());
    let var = B::float_mean_dim(B::float_mul(centered.clone(), centered.clone()), last);
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(
        var,
        f64::from(epsilon).into(),
    )));
    let y = B::float_add(
        B::float_mul(B::float_mul(centered, rstd.clone()), gamma),
        beta,
    );
    (y, mean, rstd)
}

/// Generic [`AurlOps::fused_layer_norm_backward`](super::AurlOps::layer_norm_backward):
/// `dx = rstd · (g·γ − mean(g·γ) − x̂ · mean(g·γ·x̂))`, `dγ = Σ g·x̂`, `dβ = Σ g` over rows.
pub(crate) fn layer_norm_backward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    rstd: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let shape = dims::<B>(&x);
    let last = shape.len() - 1;
    let d = shape[last];
    let rows: usize = shape[..last].iter().product();
    let broadcast: Vec<usize> = (0..shape.len())
        .map(|i| if i == last { d } else { 1 })
        .collect();
    let gamma = B::float_reshape(gamma, Shape::from(broadcast));
    let normalized = B::float_mul(B::float_sub(x, mean), rstd.clone());
    let scaled = B::float_mul(grad.clone(), gamma);
    let mean_scaled = B::float_mean_dim(scaled.clone(), last);
    let mean_projection = B::float_mean_dim(B::float_mul(scaled.clone(), normalized.clone()), last);
    let dx = B::float_mul(
        B::float_sub(
            B::float_sub(scaled, mean_scaled),
            B::float_mul(normalized.clone(), mean_projection),
        ),
        rstd,
    );
    let flat = |t: FloatTensor<B>| B::float_reshape(t, Shape::from([rows, d]));
    let dgamma = B::float_sum_dim(flat(B::float_mul(grad.clone(), normalized)), 0);
    let dbeta = B::float_sum_dim(flat(grad), 0);
    (
        dx,
        B::float_reshape(dgamma, Shape::from([d])),
        B::float_reshape(dbeta, Shape::from([d])),
    )
}

/// Generic [`AurlOps::fused_gelu`](super::AurlOps::gelu): `x/2 · (1 + erf(x/√2))`.
pub(crate) fn gelu<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let cdf = B::float_mul_scalar(
        B::float_add_scalar(
            B::float_erf(B::float_mul_scalar(
                x.clone(),
                std::f64::consts::FRAC_1_SQRT_2.into(),
            )),
            1.0.into(),
        ),
        0.5.into(),
    );
    B::float_mul(x, cdf)
}

/// Generic [`AurlOps::fused_gelu_backward`](super::AurlOps::gelu_backward):
/// `grad · (Φ(x) + x·φ(x))`.
pub(crate) fn gelu_backward<B: Backend>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let cdf = B::float_mul_scalar(
        B::float_add_scalar(
            B::float_erf(B::float_mul_scalar(
                x.clone(),
                std::f64::consts::FRAC_1_SQRT_2.into(),
            )),
            1.0.into(),
        ),
        0.5.into(),
    );
    let inv_sqrt_2pi = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
    let pdf = B::float_mul_scalar(
        B::float_exp(B::float_mul_scalar(
            B::float_mul(x.clone(), x.clone()),
            (-0.5).into(),
        )),
        inv_sqrt_2pi.into(),
    );
    B::float_mul(grad, B::float_add(cdf, B::float_mul(x, pdf)))
}

/// Generic [`AurlOps::fused_dropout`](super::AurlOps::dropout): the mask is drawn on the host
/// (stream `index / 2³²`, element `index mod 2³²`), as the fused kernel draws it.
pub(crate) fn dropout<B: Backend>(x: FloatTensor<B>, dropout: Dropout) -> FloatTensor<B> {
    let shape = dims::<B>(&x);
    let n: usize = shape.iter().product();
    let scale = 1.0 / (1.0 - dropout.prob);
    let t = threshold(dropout.prob);
    let data: Vec<f32> = (0..n)
        .map(|i| {
            let keys = stream_keys(dropout.seed, (i as u64) >> 32);
            if bits(keys, i as u32) >= t {
                scale
            } else {
                0.0
            }
        })
        .collect();
    let keep = B::float_from_data(TensorData::new(data, shape), &x.device());
    B::float_mul(x, keep)
}

/// Generic [`AurlOps::fused_residual`](super::AurlOps::fused_residual).
pub(crate) fn residual<B: Backend>(
    x: FloatTensor<B>,
    a: FloatTensor<B>,
    dropout_: Option<Dropout>,
) -> FloatTensor<B> {
    match dropout_ {
        Some(d) => B::float_add(x, dropout::<B>(a, d)),
        None => B::float_add(x, a),
    }
}

/// Generic [`AurlOps::fused_token_nll`](super::AurlOps::token_nll).
pub(crate) fn token_nll<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    smoothing: f32,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let [n, v] = dims::<B>(&logits)[..] else {
        unreachable!("token_nll logits are rank 2")
    };
    let max = B::float_max_dim(logits.clone(), 1);
    let sum = B::float_sum_dim(B::float_exp(B::float_sub(logits.clone(), max.clone())), 1);
    let lse = B::float_add(max, B::float_log(sum));
    let picked = B::float_gather(
        1,
        logits.clone(),
        B::int_reshape(targets, Shape::from([n, 1])),
    );
    let nll = B::float_sub(lse.clone(), picked);
    let loss = if smoothing > 0.0 {
        let uniform = B::float_sub(lse.clone(), B::float_mean_dim(logits, 1));
        B::float_add(
            B::float_mul_scalar(nll, f64::from(1.0 - smoothing).into()),
            B::float_mul_scalar(uniform, f64::from(smoothing).into()),
        )
    } else {
        nll
    };
    let _ = v;
    (
        B::float_reshape(loss, Shape::from([n])),
        B::float_reshape(lse, Shape::from([n])),
    )
}

/// Generic [`AurlOps::fused_token_nll_backward`](super::AurlOps::token_nll_backward):
/// `grad · (softmax − (1 − ε)·onehot(target) − ε/v)`.
pub(crate) fn token_nll_backward<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    lse: FloatTensor<B>,
    grad: FloatTensor<B>,
    smoothing: f32,
) -> FloatTensor<B> {
    let [n, v] = dims::<B>(&logits)[..] else {
        unreachable!("token_nll logits are rank 2")
    };
    let device = logits.device();
    let dtype: FloatDType = logits.dtype().into();
    let p = B::float_exp(B::float_sub(
        logits,
        B::float_reshape(lse, Shape::from([n, 1])),
    ));
    let onehot = B::float_scatter(
        1,
        B::float_zeros(Shape::from([n, v]), &device, dtype),
        B::int_reshape(targets, Shape::from([n, 1])),
        B::float_full(
            Shape::from([n, 1]),
            f64::from(1.0 - smoothing).into(),
            &device,
            dtype,
        ),
        burn::tensor::IndexingUpdateOp::Add,
    );
    let target = B::float_add_scalar(onehot, f64::from(smoothing / v as f32).into());
    let _ = IntDType::I64;
    B::float_mul(
        B::float_sub(p, target),
        B::float_reshape(grad, Shape::from([n, 1])),
    )
}

/// Generic [`AurlOps::fused_linear`](super::AurlOps::fused_linear).
pub(crate) fn linear<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
) -> FloatTensor<B> {
    let y = B::float_matmul(x, weight);
    match bias {
        Some(bias) => {
            let d = bias.shape()[0];
            B::float_add(y, B::float_reshape(bias, Shape::from([1, d])))
        }
        None => y,
    }
}

/// Generic [`AurlOps::fused_linear_input_grad`](super::AurlOps::fused_linear_input_grad).
pub(crate) fn linear_input_grad<B: Backend>(
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    B::float_matmul(grad, B::float_swap_dims(weight, 0, 1))
}

/// Generic [`AurlOps::fused_linear_weight_grad`](super::AurlOps::fused_linear_weight_grad).
pub(crate) fn linear_weight_grad<B: Backend>(
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    B::float_matmul(B::float_swap_dims(x, 0, 1), grad)
}

/// Generic [`AurlOps::fused_linear_bias_grad`](super::AurlOps::fused_linear_bias_grad).
pub(crate) fn linear_bias_grad<B: Backend>(grad: FloatTensor<B>) -> FloatTensor<B> {
    let d = grad.shape()[1];
    B::float_reshape(B::float_sum_dim(grad, 0), Shape::from([d]))
}

/// Generic [`AurlOps::fused_adam`](super::AurlOps::fused_adam): with `g = grad + penalty·p`,
/// `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²`, `p ← keep·p − rate·m / (√v + ε′)`
/// (the constants of [`AdamStep`]'s bias corrections and decay folded in).
pub(crate) fn adam<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    moment_1: FloatTensor<B>,
    moment_2: FloatTensor<B>,
    step: &AdamStep,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let s = step.scalars();
    let scale = |t: FloatTensor<B>, by: f32| B::float_mul_scalar(t, f64::from(by).into());
    let grad = if s.penalty == 0.0 {
        grad
    } else {
        B::float_add(grad, scale(param.clone(), s.penalty))
    };
    let moment_1 = B::float_add(
        scale(moment_1, step.beta_1),
        scale(grad.clone(), 1.0 - step.beta_1),
    );
    let moment_2 = B::float_add(
        scale(moment_2, step.beta_2),
        scale(B::float_mul(grad.clone(), grad), 1.0 - step.beta_2),
    );
    let denominator =
        B::float_add_scalar(B::float_sqrt(moment_2.clone()), f64::from(s.epsilon).into());
    let delta = B::float_div(scale(moment_1.clone(), s.rate), denominator);
    let param = B::float_sub(scale(param, s.keep), delta);
    (param, moment_1, moment_2)
}
