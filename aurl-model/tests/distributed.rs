//! Data-parallel training: ranks that each train on their share of every batch and sum their
//! gradients log the losses of one process training on the whole batch, and stay identical.

mod common;

use std::time::Duration;

use aurl_model::train::distributed::{Collective, GradientPacking, ThreadGroup};
use aurl_model::train::{StepMetrics, TokenWindows, TrainConfig, Trainer};
use aurl_model::{ModelError, Transformer, TransformerConfig};
use burn::prelude::*;
use common::{rng_guard, sequences};

const VOCAB: usize = 30;

fn config() -> TrainConfig {
    TrainConfig {
        steps: 12,
        batch_size: 4,
        grad_accumulation: 2,
        warmup_steps: 2,
        learning_rate: 3e-3,
        eval_every: Some(6),
        sample_every: None,
        ..TrainConfig::default()
    }
}

fn model(seed: u64, device: &Device) -> Transformer {
    device.seed(seed);
    let mut config = TransformerConfig::tiny(VOCAB);
    config.dropout = 0.0;
    let model = config.init(device).unwrap();
    // Parameters initialise lazily, from the device's shared generator: draw them now,
    // on this thread, while the seed is this model's.
    let _ = GradientPacking::of(&model).weights(&model);
    model
}

/// One rank's run: its logged losses, validation NLLs and final weights.
type Run = (Vec<f64>, Vec<Option<f64>>, Vec<f32>);

fn run(
    model: Transformer,
    train: &TokenWindows,
    valid: &TokenWindows,
    collective: Option<&dyn Collective>,
) -> Result<Run, ModelError> {
    let config = config();
    let mut trainer = Trainer::new(&config, train, valid);
    if let Some(c) = collective {
        trainer = trainer.with_collective(c);
    }
    let mut seen: Vec<StepMetrics> = Vec::new();
    let (model, _) = trainer.run(model, None, |m| seen.push(m.clone()))?;
    let weights = GradientPacking::of(&model).weights(&model);
    Ok((
        seen.iter().map(|m| m.loss).collect(),
        seen.iter().map(|m| m.valid_nll).collect(),
        weights,
    ))
}

#[test]
fn two_ranks_log_the_losses_of_one_process_and_stay_identical() {
    let _rng = rng_guard();
    let train = TokenWindows::new(&sequences(6), 24, 12, 0);
    let valid = TokenWindows::new(&sequences(1), 24, 24, 0);
    let device = Device::flex().autodiff();
    let (losses, nlls, weights) = run(model(7, &device), &train, &valid, None).unwrap();
    let ranks = ThreadGroup::ranks(2, Duration::from_secs(120));
    // Different initial weights per rank (built here: the device's generator is shared):
    // rank 0's are broadcast.
    let models = [model(7, &device), model(107, &device)];
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .iter()
            .zip(models)
            .map(|(rank, m)| s.spawn(|| run(m, &train, &valid, Some(rank))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    for (rank, (l, n, w)) in runs.iter().enumerate() {
        assert_eq!(l.len(), losses.len());
        for (step, (a, b)) in l.iter().zip(&losses).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs(),
                "rank {rank} step {step}: {a} vs {b}"
            );
        }
        for (a, b) in n.iter().zip(&nlls) {
            match (a, b) {
                (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-4 * b.abs(), "{a} vs {b}"),
                (a, b) => assert_eq!(a.is_some(), b.is_some()),
            }
        }
        let close = w
            .iter()
            .zip(&weights)
            .all(|(a, b)| (a - b).abs() <= 1e-3 * (1.0 + b.abs()));
        assert!(close, "rank {rank}'s weights follow one process's");
    }
    assert_eq!(
        runs[0].2, runs[1].2,
        "the replicas are identical, bit for bit"
    );
}

#[test]
fn a_batch_that_does_not_divide_among_the_ranks_is_refused_naming_the_field() {
    let _rng = rng_guard();
    let train = TokenWindows::new(&sequences(2), 24, 12, 0);
    let ranks = ThreadGroup::ranks(3, Duration::from_secs(60));
    let device = Device::flex().autodiff();
    let models: Vec<Transformer> = (0..3).map(|_| model(1, &device)).collect();
    let errors: Vec<ModelError> = std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .iter()
            .zip(models)
            .map(|(rank, m)| s.spawn(|| run(m, &train, &train, Some(rank)).unwrap_err()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in errors {
        assert!(e.to_string().contains("train.batch_size"), "{e}");
    }
}
