//! Generation speed through `aurl_sampling::Generator`, on the fixed shape: a
//! 774-token vocabulary, d_model 256, 4 layers, 4 heads, feed-forward 1024, random weights,
//! a 16-token prompt and 512 new tokens per sequence, top-p 0.9 at temperature 1.
//!
//! - `sampling/cached/b1`, `sampling/cached/b16`: KV-cached decoding, unconstrained (one
//!   iteration = one whole generation; elem/s = generated tokens/s);
//! - `sampling/cached_half/{b1,b16}`, `sampling/cached_int8/{b1,b16}`: the same with the
//!   projection weights in f16 or int8 (`GenerationConfig::weights`);
//! - `sampling/uncached/b1`: recomputing the whole prefix every step;
//! - `sampling/constrained/b16`: cached, under the token grammar's mask;
//! - `sampling/token_latency/{128,1024,4096}`: one decoding step (B = 1, sampled, cached)
//!   with that many positions already in the cache; `sampling/token_latency_window512/…`
//!   the same with 512-position sliding-window attention.
//!
//! The vocabulary is a real one of exactly 774 tokens — REMI+ over all 128 pitches with 127
//! velocities, chords and 52 pitch-bend bins — so the constrained case masks with a real
//! grammar. `AURL_BACKEND` picks the backend; `AURL_WORKERS` the decoding threads (default:
//! `aurl::backend::decode_workers`); `AURL_BENCH_QUICK=1` runs fewer samples.

use std::time::Duration;

use aurl::burn::prelude::*;
use aurl::core::tokenize::{Remi, TokenId, Tokenizer, TokenizerConfig, Vocabulary};
use aurl::core::{Note, Pitch, Score, Track, Velocity};
use aurl::model::{AttentionKind, Transformer, TransformerConfig, WeightFormat};
use aurl::sampling::{GenerationConfig, Generator, Request, Strategy};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// mimalloc, keeping freed memory for the next step.
#[path = "../examples/support/alloc.rs"]
mod alloc;

const NEW_TOKENS: usize = 512;
const PROMPT: usize = 16;

fn device() -> Device {
    match std::env::var("AURL_BACKEND") {
        Ok(name) => aurl::backend::device(&name).expect("AURL_BACKEND names a compiled backend"),
        Err(_) => aurl::backend::default_device(),
    }
}

fn tokenizer() -> Remi {
    let config = TokenizerConfig {
        pitch_range: [0, 127],
        num_velocities: 127,
        use_chords: true,
        use_pitch_bends: true,
        num_pitch_bends: 52,
        ..TokenizerConfig::default()
    };
    let remi = Remi::new(&config).expect("a valid config");
    assert_eq!(
        remi.vocab().len(),
        774,
        "the benchmark shape's vocabulary size"
    );
    remi
}

fn model(device: &Device, vocab: usize) -> Transformer {
    model_with(device, vocab, AttentionKind::Full)
}

fn model_with(device: &Device, vocab: usize, attention: AttentionKind) -> Transformer {
    device.seed(2);
    TransformerConfig {
        attention,
        vocab_size: vocab,
        d_model: 256,
        n_layers: 4,
        n_heads: 4,
        d_ff: 1024,
        max_seq_len: 512,
        max_positions: 8192,
        dropout: 0.0,
        ..TransformerConfig::small(vocab)
    }
    .init(device)
    .expect("the benchmark shape is valid")
}

/// A grammar-valid prompt of `len` tokens: BOS, then the start of a real encoding (a long
/// arpeggio, so even 4,096 tokens are music).
fn prompt(remi: &Remi, len: usize) -> Vec<TokenId> {
    let mut track = Track::new("piano");
    for i in 0..4096u64 {
        let pitch = Pitch::new(48 + ((i * 7) % 36) as u8).expect("in range");
        track.notes.push(Note::new(
            pitch,
            Velocity::new(80).expect("in range"),
            120 * i,
            240,
        ));
    }
    let mut score = Score::new(480);
    score.tracks.push(track);
    let mut ids = remi
        .encode(&score)
        .expect("encodes")
        .framed(remi.vocab())
        .ids;
    ids.truncate(len);
    ids
}

fn samples(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let quick = std::env::var_os("AURL_BENCH_QUICK").is_some();
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(if quick { 1 } else { 3 }));
    group.measurement_time(Duration::from_secs(if quick { 8 } else { 30 }));
}

fn generator<'a>(
    model: &'a Transformer,
    vocab: &Vocabulary,
    batch: usize,
    constrained: bool,
    use_cache: bool,
    weights: WeightFormat,
) -> Generator<'a> {
    let config = GenerationConfig {
        strategy: Strategy {
            temperature: 1.0,
            top_p: Some(0.9),
            ..Strategy::default()
        },
        constrained,
        batch_size: batch,
        min_new_tokens: NEW_TOKENS,
        use_cache,
        // The fixed shape decodes within the model's positions: no sliding.
        context: None,
        // As many decoding threads as the backend's pool (2 on the reference machine), or
        // `AURL_WORKERS`.
        workers: std::env::var("AURL_WORKERS")
            .ok()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| {
                aurl::backend::decode_workers(std::env::var("AURL_BACKEND").ok().as_deref())
            }),
        weights,
    };
    Generator::new(model, vocab, config).expect("a valid config")
}

/// EOS is held back until the limit (`min_new_tokens`), so every row produces 512 tokens.
fn requests(remi: &Remi, batch: usize) -> Vec<Request> {
    (0..batch as u64)
        .map(|seed| Request {
            prompt: prompt(remi, PROMPT),
            max_new_tokens: NEW_TOKENS,
            seed,
            ..Request::default()
        })
        .collect()
}

fn bench_generation(c: &mut Criterion) {
    let device = device();
    let remi = tokenizer();
    let vocab = remi.vocab();
    let model = model(&device, vocab.len());
    let mut group = c.benchmark_group("sampling");
    samples(&mut group);
    let (f32, f16, int8) = (WeightFormat::F32, WeightFormat::F16, WeightFormat::Int8);
    for (name, batch, constrained, use_cache, weights) in [
        ("cached/b1", 1usize, false, true, f32),
        ("cached_half/b1", 1, false, true, f16),
        ("cached_int8/b1", 1, false, true, int8),
        ("cached/b16", 16, false, true, f32),
        ("cached_half/b16", 16, false, true, f16),
        ("cached_int8/b16", 16, false, true, int8),
        ("constrained/b16", 16, true, true, f32),
        ("uncached/b1", 1, false, false, f32),
    ] {
        let generator = generator(&model, vocab, batch, constrained, use_cache, weights);
        let requests = requests(&remi, batch);
        let produced = || -> usize {
            generator
                .generate(&requests)
                .expect("generation works")
                .iter()
                .map(|g| g.tokens.len() - g.prompt_len)
                .sum()
        };
        // Unconstrained, `min_new_tokens` holds EOS back, so every row makes exactly
        // NEW_TOKENS: checked once inside the routine, so a filtered-out id costs nothing.
        // Under the grammar a piece cut at the limit is closed (a half-written note
        // removed), so its count is measured up front.
        let expected = if constrained {
            produced()
        } else {
            batch * NEW_TOKENS
        };
        group.throughput(Throughput::Elements(expected as u64));
        let mut checked = false;
        group.bench_function(name, |bench| {
            if !checked {
                assert_eq!(produced(), expected, "{name}: new tokens per iteration");
                checked = true;
            }
            bench.iter(|| generator.generate(&requests).expect("generation works"));
        });
    }
    group.finish();
}

fn bench_token_latency(c: &mut Criterion) {
    let device = device();
    let remi = tokenizer();
    // Full attention reads every cached position (cost grows with the position); a
    // 512-position sliding window bounds it, so its latency stays flat.
    for (group_name, attention) in [
        ("sampling/token_latency", AttentionKind::Full),
        (
            "sampling/token_latency_window512",
            AttentionKind::Sliding { window: 512 },
        ),
    ] {
        let model = model_with(&device, remi.vocab().len(), attention);
        let generator = generator(&model, remi.vocab(), 1, false, true, WeightFormat::F32);
        let mut group = c.benchmark_group(group_name);
        samples(&mut group);
        for position in [128usize, 1024, 4096] {
            group.bench_with_input(
                BenchmarkId::from_parameter(position),
                &position,
                |bench, &position| {
                    // A prompt of `position` tokens (prefill untimed), then 33 tokens through the
                    // streaming callback: the mean step time of the last 32 is the latency.
                    let request = Request {
                        prompt: prompt(&remi, position),
                        max_new_tokens: 33,
                        seed: 1,
                        ..Request::default()
                    };
                    bench.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        let mut done = 0;
                        while done < iters {
                            let mut steps = Vec::new();
                            generator
                                .generate_streaming(std::slice::from_ref(&request), |e| {
                                    if e.new_tokens > 1 {
                                        steps.push(e.step_seconds);
                                    }
                                })
                                .expect("generation works");
                            for s in steps.into_iter().take((iters - done) as usize) {
                                total += Duration::from_secs_f64(s);
                                done += 1;
                            }
                        }
                        total
                    });
                },
            );
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = {
        alloc::keep_freed_memory();
        Criterion::default()
    };
    targets = bench_generation, bench_token_latency
}
criterion_main!(benches);
