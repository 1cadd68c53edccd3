//! Model speed on the CPU benchmark shape (`TransformerConfig::small`, ≈3.5 M parameters
//! with a 431-token vocabulary):
//!
//! - `model/train_step/small_b8x512`: forward + backward + AdamW step (weight decay 0.01, the
//!   trainer's fused optimizer, as PyTorch's reference steps `torch.optim.AdamW`) at batch 8 × 512
//!   (elem/s = training tokens/s), dropout 0.1; `…_attention_dropout0` the same with the
//!   attention weights' dropout off (`TransformerConfig::attention_dropout`); `…_dropout0`
//!   with no dropout at all, as PyTorch's reference script (`../shared/bench-ref`) trains;
//! - `model/decode_step`: one cached decoding step (B = 1) with 128, 1024 and 4096 positions
//!   already in the cache (time per token);
//! - `model/generate`: a 16-token prompt then 512 greedy tokens through the cache, B = 1 and
//!   B = 16 (elem/s = generated tokens/s).
//!
//! `AURL_BACKEND` picks the backend (default: the first compiled in); `AURL_BENCH_QUICK=1`
//! runs fewer samples.

use std::time::{Duration, Instant};

use aurl::burn::optim::GradientsParams;
use aurl::burn::prelude::*;
use aurl::model::loss::TokenLoss;
use aurl::model::train::OptimizerKind;
use aurl::model::{Transformer, TransformerConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// mimalloc, keeping freed memory for the next step.
#[path = "../examples/support/alloc.rs"]
mod alloc;

const VOCAB: usize = 431;

fn device() -> Device {
    match std::env::var("AURL_BACKEND") {
        Ok(name) => aurl::backend::device(&name).expect("AURL_BACKEND names a compiled backend"),
        Err(_) => aurl::backend::default_device(),
    }
}

fn random_ids(batch: usize, t: usize, seed: u64, device: &Device) -> Tensor<2, Int> {
    let mut s = seed | 1;
    let data: Vec<i64> = (0..batch * t)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % VOCAB as u64) as i64
        })
        .collect();
    Tensor::from_data(TensorData::new(data, [batch, t]), device)
}

fn samples(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let quick = std::env::var_os("AURL_BENCH_QUICK").is_some();
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(if quick { 1 } else { 3 }));
    group.measurement_time(Duration::from_secs(if quick { 10 } else { 40 }));
}

fn bench_train(c: &mut Criterion) {
    let device = device().autodiff();
    let loss = TokenLoss::new(VOCAB);
    let (b, t) = (8, 512);
    let all = random_ids(b, t + 1, 7, &device);
    let inputs = all.clone().narrow(1, 0, t);
    let targets = all.narrow(1, 1, t);
    let mut group = c.benchmark_group("model");
    samples(&mut group);
    group.throughput(Throughput::Elements((b * t) as u64));
    // `small()` as is (dropout 0.1 everywhere), with the attention weights' dropout off,
    // and with no dropout at all (the configuration of PyTorch's reference script).
    for (name, dropout, attention_dropout) in [
        ("train_step/small_b8x512", 0.1, None),
        ("train_step/small_b8x512_attention_dropout0", 0.1, Some(0.0)),
        ("train_step/small_b8x512_dropout0", 0.0, Some(0.0)),
    ] {
        device.seed(1);
        let config = TransformerConfig {
            dropout,
            attention_dropout,
            ..TransformerConfig::small(VOCAB)
        };
        let mut model = Some(config.init(&device).expect("small() is valid"));
        eprintln!(
            "small(): {} parameters",
            model.as_ref().map_or(0, |m| m.num_params())
        );
        let mut optim = OptimizerKind::AdamW.init(0.01);
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let m = model.take().expect("model is put back every iteration");
                let logits = m.forward(inputs.clone(), 0, None).expect("fits");
                let l = loss.forward(logits, targets.clone());
                let grads = GradientsParams::from_grads(l.backward(), &m);
                model = Some(optim.step(3e-4, m, grads));
            });
        });
    }
    group.finish();
}

fn greedy(logits: Tensor<3>) -> Tensor<2, Int> {
    let [b, t, v] = logits.dims();
    logits.narrow(1, t - 1, 1).reshape([b, v]).argmax(1)
}

fn inference_model(device: &Device) -> Transformer {
    device.seed(2);
    let config = TransformerConfig {
        dropout: 0.0,
        ..TransformerConfig::small(VOCAB)
    };
    config.init(device).expect("small() is valid")
}

fn bench_decode_step(c: &mut Criterion) {
    let device = device();
    let model = inference_model(&device);
    let mut group = c.benchmark_group("model/decode_step");
    samples(&mut group);
    for position in [128usize, 1024, 4096] {
        group.bench_with_input(
            BenchmarkId::from_parameter(position),
            &position,
            |bench, &position| {
                bench.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        // Fill the cache to `position` (untimed), then time up to 32 steps.
                        let mut cache = model.new_cache(1);
                        let prompt = random_ids(1, position, 3, &device);
                        let mut next =
                            greedy(model.forward(prompt, 0, Some(&mut cache)).expect("fits"));
                        let steps = (iters - done).min(32);
                        let start = Instant::now();
                        for i in 0..steps {
                            let at = position + i as usize;
                            let logits = model.forward(next, at, Some(&mut cache)).expect("fits");
                            next = greedy(logits);
                            let _ = next.clone().into_data();
                        }
                        total += start.elapsed();
                        done += steps;
                    }
                    total
                });
            },
        );
    }
    group.finish();
}

fn bench_generate(c: &mut Criterion) {
    let device = device();
    let model = inference_model(&device);
    let mut group = c.benchmark_group("model/generate");
    samples(&mut group);
    for batch in [1usize, 16] {
        group.throughput(Throughput::Elements((batch * 512) as u64));
        group.bench_with_input(
            BenchmarkId::new("prompt16_new512", batch),
            &batch,
            |bench, &batch| {
                bench.iter(|| {
                    let mut cache = model.new_cache(batch);
                    let prompt = random_ids(batch, 16, 5, &device);
                    let mut next =
                        greedy(model.forward(prompt, 0, Some(&mut cache)).expect("fits"));
                    for i in 0..512 {
                        let logits = model.forward(next, 16 + i, Some(&mut cache)).expect("fits");
                        next = greedy(logits);
                        let _ = next.clone().into_data();
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = {
        alloc::keep_freed_memory();
        Criterion::default()
    };
    targets = bench_train, bench_decode_step, bench_generate
}
criterion_main!(benches);
