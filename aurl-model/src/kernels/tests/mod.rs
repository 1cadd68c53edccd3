//! The fused kernels against their generic bodies (the oracle): values and gradients, on
//! random shapes — odd lengths, lengths that are not a multiple of a tile, one batch row,
//! 1–8 heads, head widths 32/64/128, padding, every mask the attention kernel serves.
//!
//! Gradients of the oracle come from Burn's autodiff through the generic body; gradients of
//! the kernels from their hand-written backward passes. The generic backward bodies (what
//! other backends run under autodiff) are checked against Burn's autodiff too.

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::Distribution;

use super::{AttentionOptions, AurlOps, Dropout, reference};

/// Passes when `max |a − b| ≤ 1e-4 · max |b| + 1e-6`.
fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let scale = b.clone().abs().max().into_scalar::<f32>();
    let diff = (a - b).abs().max().into_scalar::<f32>();
    assert!(
        diff <= 1e-4 * scale + 1e-6,
        "{what}: max |Δ| {diff} against max |reference| {scale}"
    );
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// `[b, h, t, d]` views of `[b, t, h, d]` tensors, as the model passes them.
fn heads(b: usize, h: usize, t: usize, d: usize, device: &Device) -> Tensor<4> {
    random([b, t, h, d], device).swap_dims(1, 2)
}

#[derive(Debug, Clone, Copy)]
struct Case {
    b: usize,
    h: usize,
    tq: usize,
    tk: usize,
    d: usize,
    causal: bool,
    window: Option<usize>,
    padding: bool,
    dropout: Option<f32>,
}

impl Case {
    fn options(&self) -> AttentionOptions {
        AttentionOptions {
            causal: self.causal,
            offset: self.tk - self.tq,
            window: self.window,
            scale: 1.0 / (self.d as f32).sqrt(),
            dropout: self.dropout.map(|prob| Dropout { prob, seed: 0xA0B1 }),
        }
    }
}

const CASES: [Case; 9] = [
    // Training shapes: causal, tq = tk, lengths off the tile sizes.
    Case {
        b: 2,
        h: 2,
        tq: 77,
        tk: 77,
        d: 32,
        causal: true,
        window: None,
        padding: false,
        dropout: None,
    },
    Case {
        b: 1,
        h: 3,
        tq: 130,
        tk: 130,
        d: 64,
        causal: true,
        window: None,
        padding: true,
        dropout: None,
    },
    Case {
        b: 1,
        h: 1,
        tq: 200,
        tk: 200,
        d: 128,
        causal: true,
        window: None,
        padding: false,
        dropout: None,
    },
    // Sliding window, with and without padding.
    Case {
        b: 2,
        h: 4,
        tq: 150,
        tk: 150,
        d: 32,
        causal: true,
        window: Some(40),
        padding: true,
        dropout: None,
    },
    // A cache: queries after earlier keys (prefill chunk, one decoding step).
    Case {
        b: 2,
        h: 2,
        tq: 37,
        tk: 170,
        d: 64,
        causal: true,
        window: None,
        padding: false,
        dropout: None,
    },
    Case {
        b: 3,
        h: 8,
        tq: 1,
        tk: 93,
        d: 32,
        causal: true,
        window: None,
        padding: false,
        dropout: None,
    },
    // Bidirectional (the VAE encoder) with padding.
    Case {
        b: 2,
        h: 2,
        tq: 70,
        tk: 70,
        d: 32,
        causal: false,
        window: None,
        padding: true,
        dropout: None,
    },
    // Dropout on the attention weights.
    Case {
        b: 2,
        h: 2,
        tq: 90,
        tk: 90,
        d: 32,
        causal: true,
        window: None,
        padding: true,
        dropout: Some(0.1),
    },
    Case {
        b: 1,
        h: 2,
        tq: 20,
        tk: 45,
        d: 64,
        causal: true,
        window: Some(16),
        padding: false,
        dropout: Some(0.3),
    },
];

struct Inputs {
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: Option<Tensor<2>>,
    weight: Tensor<4>,
}

fn inputs(case: &Case, device: &Device) -> Inputs {
    let Case {
        b, h, tq, tk, d, ..
    } = *case;
    let bias = case.padding.then(|| {
        // The last fifth of every row's keys padded (as the model's padding bias does).
        let data: Vec<f32> = (0..b * tk)
            .map(|i| {
                if i % tk >= tk - tk / 5 {
                    crate::mask::MASKED
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::<2>::from_data(TensorData::new(data, [b, tk]), device)
    });
    Inputs {
        q: heads(b, h, tq, d, device),
        k: heads(b, h, tk, d, device),
        v: heads(b, h, tk, d, device),
        bias,
        weight: random([b, h, tq, d], device),
    }
}

fn fused(x: &Inputs, options: AttentionOptions) -> Tensor<4> {
    let device = x.q.device();
    let bias = x
        .bias
        .clone()
        .unwrap_or_else(|| Tensor::empty([0, 0], &device));
    let (out, _) = <Dispatch as AurlOps>::fused_attention(
        x.q.clone().into_dispatch(),
        x.k.clone().into_dispatch(),
        x.v.clone().into_dispatch(),
        bias.into_dispatch(),
        options,
    );
    Tensor::from_dispatch(out)
}

fn generic(x: &Inputs, options: AttentionOptions) -> Tensor<4> {
    let q = x.q.clone().into_dispatch();
    let k = x.k.clone().into_dispatch();
    let keep = reference::keep_mask::<Dispatch>(&q, &k, &options);
    let (out, _) = reference::attention::<Dispatch>(
        q,
        k,
        x.v.clone().into_dispatch(),
        x.bias.clone().map(Tensor::into_dispatch),
        &options,
        keep,
    );
    Tensor::from_dispatch(out)
}

/// Gradients of `Σ out ⊙ weight` with respect to q, k and v.
fn gradients(x: &Inputs, f: impl Fn(&Inputs) -> Tensor<4>) -> [Tensor<4>; 3] {
    let tracked = Inputs {
        q: x.q.clone().require_grad(),
        k: x.k.clone().require_grad(),
        v: x.v.clone().require_grad(),
        bias: x.bias.clone(),
        weight: x.weight.clone(),
    };
    let grads = (f(&tracked) * tracked.weight.clone()).sum().backward();
    [&tracked.q, &tracked.k, &tracked.v].map(|t| t.grad(&grads).expect("tracked input"))
}

#[test]
fn fused_attention_equals_the_generic_body() {
    let device = Device::flex();
    device.seed(11);
    for case in CASES {
        let x = inputs(&case, &device);
        let options = case.options();
        assert_close(
            fused(&x, options),
            generic(&x, options),
            &format!("{case:?}"),
        );
    }
}

#[test]
fn fused_attention_gradients_equal_autodiff_through_the_generic_body() {
    let device = Device::flex().autodiff();
    device.seed(12);
    for case in CASES {
        let x = inputs(&case, &device);
        let options = case.options();
        let ours = gradients(&x, |x| fused(x, options));
        let oracle = gradients(&x, |x| generic(x, options));
        for (name, (a, b)) in ["dq", "dk", "dv"].iter().zip(ours.into_iter().zip(oracle)) {
            assert_close(a, b, &format!("{name} {case:?}"));
        }
    }
}

#[test]
fn generic_attention_backward_equals_autodiff() {
    // The backward other backends run under `Autodiff<B>`.
    let device = Device::flex();
    device.seed(13);
    for case in CASES {
        let x = inputs(&case, &device);
        let options = case.options();
        let oracle = gradients(&inputs_on(&x, &device.clone().autodiff()), |x| {
            generic(x, options)
        });
        let q = x.q.clone().into_dispatch();
        let k = x.k.clone().into_dispatch();
        let keep = reference::keep_mask::<Dispatch>(&q, &k, &options);
        let bias = x.bias.clone().map(Tensor::into_dispatch);
        let (out, lse) = reference::attention::<Dispatch>(
            q.clone(),
            k.clone(),
            x.v.clone().into_dispatch(),
            bias.clone(),
            &options,
            keep.clone(),
        );
        let (dq, dk, dv) = reference::attention_backward::<Dispatch>(
            q,
            k,
            x.v.clone().into_dispatch(),
            bias,
            out,
            lse,
            x.weight.clone().into_dispatch(),
            &options,
            keep,
        );
        let ours = [dq, dk, dv].map(Tensor::<4>::from_dispatch);
        for (name, (a, b)) in ["dq", "dk", "dv"].iter().zip(ours.into_iter().zip(oracle)) {
            assert_close(a, b, &format!("{name} {case:?}"));
        }
    }
}

/// The same inputs on another device (values copied).
fn inputs_on(x: &Inputs, device: &Device) -> Inputs {
    let move_to = |t: &Tensor<4>| Tensor::<4>::from_data(t.to_data(), device);
    Inputs {
        q: move_to(&x.q),
        k: move_to(&x.k),
        v: move_to(&x.v),
        bias: x
            .bias
            .as_ref()
            .map(|b| Tensor::from_data(b.to_data(), device)),
        weight: move_to(&x.weight),
    }
}

#[test]
fn fused_attention_is_bit_identical_from_run_to_run() {
    let device = Device::flex().autodiff();
    device.seed(14);
    let case = CASES[7];
    let x = inputs(&case, &device);
    let run = || {
        let [dq, dk, dv] = gradients(&x, |x| fused(x, case.options()));
        (
            fused(&x, case.options()).into_data(),
            dq.into_data(),
            dk.into_data(),
            dv.into_data(),
        )
    };
    assert_eq!(run(), run());
}

mod layers;
