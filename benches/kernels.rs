//! Each fused kernel against its generic body, forward + backward, at the shapes of a
//! `small()` B8 × 512 training step (flex, 2 threads): what `aurl_model::kernels` gains, one
//! kernel at a time.
//!
//! - `kernels/attention/{fused,generic}`: causal attention, `[8, 4, 512, 64]`;
//! - `kernels/attention_dropout/{fused,generic}`: the same with dropout 0.1 on the weights;
//! - `kernels/linear/{fused,generic}`: `[4096, 256] → 1024` with bias;
//! - `kernels/layer_norm/…`: `[4096, 256]`; `kernels/gelu/…`: `[4096, 1024]`;
//!   `kernels/dropout/…`: `[4096, 256]` at 0.1; `kernels/token_nll/…`: `[4096, 431]`;
//! - `kernels/adam/…`: one AdamW update (decay 0.01) of every parameter tensor of `small()`
//!   (3.5 M values in 41 tensors).
//!
//! One iteration = forward, then backward of a weighted sum of the output (for `adam`: the
//! update of every tensor). `AURL_BENCH_QUICK=1`
//! runs fewer samples.

use std::time::Duration;

use aurl::burn::nn::{DropoutConfig, LayerNormConfig, LinearConfig};
use aurl::burn::prelude::*;
use aurl::burn::tensor::Distribution;
use aurl::model::kernels::{self, AttentionOptions, KernelMode};
use criterion::{Criterion, criterion_group, criterion_main};

/// mimalloc, keeping freed memory for the next step.
#[path = "../examples/support/alloc.rs"]
mod alloc;

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Runs `step` under each kernel mode as `kernels/<name>/<mode>`.
fn both(c: &mut Criterion, name: &str, mut step: impl FnMut()) {
    let quick = std::env::var_os("AURL_BENCH_QUICK").is_some();
    let mut group = c.benchmark_group(format!("kernels/{name}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(if quick { 3 } else { 10 }));
    for (mode, label) in [
        (KernelMode::Fused, "fused"),
        (KernelMode::Generic, "generic"),
    ] {
        kernels::set_kernel_mode(mode);
        group.bench_function(label, |bench| bench.iter(&mut step));
    }
    kernels::set_kernel_mode(KernelMode::Fused);
    group.finish();
}

fn bench_kernels(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    device.seed(3);
    let heads = |t: usize| {
        random([8, t, 4, 64], &device)
            .swap_dims(1, 2)
            .require_grad()
    };
    let (q, k, v) = (heads(512), heads(512), heads(512));
    let weight = random([8, 4, 512, 64], &device);
    let options = AttentionOptions {
        causal: true,
        offset: 0,
        window: None,
        scale: 0.125,
        dropout: None,
    };
    let dropout = Some(kernels::Dropout {
        prob: 0.1,
        seed: 11,
    });
    for (name, dropout) in [("attention", None), ("attention_dropout", dropout)] {
        let options = AttentionOptions { dropout, ..options };
        both(c, name, || {
            let out = kernels::attention(q.clone(), k.clone(), v.clone(), None, options);
            let _ = (out * weight.clone()).sum().backward();
        });
    }
    let x = random([4096, 256], &device).require_grad();
    let linear = LinearConfig::new(256, 1024).init(&device);
    let w1024 = random([4096, 1024], &device);
    both(c, "linear", || {
        let _ = (kernels::linear(&linear, x.clone()) * w1024.clone())
            .sum()
            .backward();
    });
    let norm = LayerNormConfig::new(256).init(&device);
    let w256 = random([4096, 256], &device);
    both(c, "layer_norm", || {
        let _ = (kernels::layer_norm(&norm, x.clone()) * w256.clone())
            .sum()
            .backward();
    });
    let wide = random([4096, 1024], &device).require_grad();
    both(c, "gelu", || {
        let _ = (kernels::gelu(wide.clone()) * w1024.clone())
            .sum()
            .backward();
    });
    let dropout = DropoutConfig::new(0.1).init();
    both(c, "dropout", || {
        let _ = (kernels::dropout(&dropout, x.clone()) * w256.clone())
            .sum()
            .backward();
    });
    let logits = random([4096, 431], &device).require_grad();
    let targets: Vec<i64> = (0..4096).map(|i| (i * 37 % 431) as i64).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [4096]), &device);
    both(c, "token_nll", || {
        let _ = kernels::token_nll(logits.clone(), targets.clone(), 0.0)
            .sum()
            .backward();
    });
    bench_adam(c);
}

/// The parameter shapes of `TransformerConfig::small(431)`: embedding and head, and per
/// layer the attention and feed-forward projections with their biases and two layer norms.
fn small_parameter_shapes() -> Vec<Vec<usize>> {
    let mut shapes = vec![
        vec![431, 256],
        vec![256, 431],
        vec![431],
        vec![256],
        vec![256],
    ];
    for _ in 0..4 {
        shapes.extend([
            vec![256, 768],
            vec![768],
            vec![256, 256],
            vec![256],
            vec![256, 1024],
            vec![1024],
            vec![1024, 256],
            vec![256],
        ]);
        shapes.extend([vec![256], vec![256], vec![256], vec![256]]);
    }
    shapes
}

fn bench_adam(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(5);
    let grads: Vec<Tensor<1>> = small_parameter_shapes()
        .iter()
        .map(|shape| random([shape.iter().product()], &device))
        .collect();
    let mut state: Option<Vec<[Tensor<1>; 3]>> = Some(
        grads
            .iter()
            .map(|g| [g.clone() * 0.1, g.zeros_like(), g.zeros_like()])
            .collect(),
    );
    let mut time = 0;
    both(c, "adam", || {
        time += 1;
        let step = kernels::AdamStep {
            lr: 3e-4,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-5,
            decay: 0.01,
            penalty: 0.0,
            time,
        };
        let tensors = state.take().unwrap_or_default();
        state = Some(
            tensors
                .into_iter()
                .zip(&grads)
                .map(|([p, m, v], g)| {
                    let (p, m, v) = kernels::adam(p, g.clone(), m, v, &step);
                    [p, m, v]
                })
                .collect(),
        );
    });
}

criterion_group! {
    name = benches;
    config = {
        alloc::keep_freed_memory();
        Criterion::default()
    };
    targets = bench_kernels
}
criterion_main!(benches);
