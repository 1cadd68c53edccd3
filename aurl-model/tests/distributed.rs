//! Data-parallel training: ranks that each train on their share of every batch and sum their
//! gradients log the losses of one process training on the whole batch, and stay identical.

mod common;

use std::time::Duration;

use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
use aurl_model::train::distributed::{
    Collective, CollectiveError, GradientPacking, ThreadGroup, ThreadRank, shard,
};
use aurl_model::train::{
    Checkpointing, DistributedTraining, StepMetrics, TokenWindows, TrainConfig, Trainer,
    load_checkpoint,
};
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
        distributed: DistributedTraining {
            check_every: Some(1),
            ..DistributedTraining::default()
        },
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
    // 17 validation windows: each rank evaluates its shard (9 and 8 windows).
    let valid = TokenWindows::new(&sequences(2), 24, 24, 0);
    assert!(valid.count() > 8);
    let device = Device::flex().autodiff();
    let (losses, nlls, weights) = run(model(7, &device), &train, &valid, None).unwrap();
    let ranks: Vec<Recording> = ThreadGroup::ranks(2, Duration::from_secs(120))
        .into_iter()
        .map(|r| Recording(r, std::sync::Mutex::default()))
        .collect();
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
    // Each rank validated its shard only: its sums [nats, tokens, failed] count the
    // targets of its windows.
    for (rank, r) in ranks.iter().enumerate() {
        let rows: Vec<usize> = shard(valid.count(), rank, 2).collect();
        let tokens = valid.target_tokens(&rows) as f64;
        let sent = r.1.lock().unwrap();
        let validations = sent
            .iter()
            .filter(|b| b.len() == 3 && b[1] == tokens && b[2] == 0.0)
            .count();
        assert_eq!(validations, 2, "rank {rank} sent {sent:?}");
    }
    for (rank, (l, n, w)) in runs.iter().enumerate() {
        assert_eq!(l.len(), losses.len());
        for (step, (a, b)) in l.iter().zip(&losses).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs(),
                "rank {rank} step {step}: {a} vs {b}"
            );
        }
        assert_eq!(
            nlls.iter().flatten().count(),
            2,
            "validated at steps 6 and 12"
        );
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

/// A rank that records what it sends to `f64` all-reduces.
#[derive(Debug)]
struct Recording(ThreadRank, std::sync::Mutex<Vec<Vec<f64>>>);

impl Collective for Recording {
    fn rank(&self) -> usize {
        self.0.rank()
    }
    fn world(&self) -> usize {
        self.0.world()
    }
    fn all_reduce_f32(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        self.0.all_reduce_f32(values)
    }
    fn all_reduce_f64(&self, values: &mut [f64]) -> Result<(), CollectiveError> {
        self.1.lock().unwrap().push(values.to_vec());
        self.0.all_reduce_f64(values)
    }
    fn broadcast_f32(&self, values: &mut [f32], root: usize) -> Result<(), CollectiveError> {
        self.0.broadcast_f32(values, root)
    }
}

/// A rank whose all-reduced gradients are slightly off: its replica drifts.
#[derive(Debug)]
struct Corrupting(ThreadRank);

impl Collective for Corrupting {
    fn rank(&self) -> usize {
        self.0.rank()
    }
    fn world(&self) -> usize {
        self.0.world()
    }
    fn all_reduce_f32(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        self.0.all_reduce_f32(values)?;
        if let Some(v) = values.first_mut() {
            *v += 1e-3;
        }
        Ok(())
    }
    fn all_reduce_f64(&self, values: &mut [f64]) -> Result<(), CollectiveError> {
        self.0.all_reduce_f64(values)
    }
    fn broadcast_f32(&self, values: &mut [f32], root: usize) -> Result<(), CollectiveError> {
        self.0.broadcast_f32(values, root)
    }
}

#[test]
fn replicas_that_drift_stop_every_rank_with_an_error() {
    let _rng = rng_guard();
    let train = TokenWindows::new(&sequences(4), 24, 12, 0);
    let ranks = ThreadGroup::ranks(2, Duration::from_secs(60));
    let device = Device::flex().autodiff();
    let models = [model(1, &device), model(1, &device)];
    let mut ranks = ranks.into_iter();
    let honest = ranks.next().unwrap();
    let corrupt = Corrupting(ranks.next().unwrap());
    let errors: Vec<ModelError> = std::thread::scope(|s| {
        let [a, b] = models;
        let (train, honest, corrupt) = (&train, &honest, &corrupt);
        let handles = [
            s.spawn(move || run(a, train, train, Some(honest)).unwrap_err()),
            s.spawn(move || run(b, train, train, Some(corrupt)).unwrap_err()),
        ];
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in errors {
        let text = e.to_string();
        assert!(
            text.contains("after step 1") && text.contains("drifted"),
            "{text}"
        );
    }
}

/// Losses of a run of `config` from the checkpoint `from` (or from `model`) on `world`
/// ranks (threads); rank 0 writes checkpoints into `dir`.
fn resume_on(
    world: usize,
    start: &(dyn Fn() -> (Transformer, Option<aurl_model::train::Resume>) + Sync),
    config: &TrainConfig,
    windows: &TokenWindows,
    policy: &Checkpointing<'_, TransformerConfig>,
) -> Vec<Vec<f64>> {
    let run = |rank: Option<&dyn Collective>| {
        let mut trainer = Trainer::new(config, windows, windows).with_checkpoints(policy.clone());
        if let Some(c) = rank {
            trainer = trainer.with_collective(c);
        }
        let (model, resume) = start();
        let mut losses = Vec::new();
        trainer.run(model, resume, |m| losses.push(m.loss)).unwrap();
        losses
    };
    if world == 1 {
        return vec![run(None)];
    }
    let ranks = ThreadGroup::ranks(world, Duration::from_secs(120));
    std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .iter()
            .map(|rank| s.spawn(move || run(Some(rank))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn a_checkpoint_resumes_on_another_number_of_ranks() {
    let _rng = rng_guard();
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let mut model_config = TransformerConfig::tiny(vocab.len());
    model_config.dropout = 0.0;
    let config = TrainConfig {
        checkpoint_every: 6,
        keep_checkpoints: 5,
        ..config()
    };
    let windows = TokenWindows::new(&sequences(4), 24, 12, 0);
    let root = std::env::temp_dir().join(format!("aurl-dist-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let policy = |dir: &str| Checkpointing {
        dir: root.join(dir),
        every: config.checkpoint_every,
        keep_last: config.keep_checkpoints,
        config: &model_config,
        vocabulary: &vocab,
    };
    let device = Device::flex().autodiff();
    device.seed(11);
    let fresh = model_config.init(&device).unwrap();
    let _ = GradientPacking::of(&fresh).weights(&fresh);
    let from_scratch = || (fresh.clone(), None);
    let from = |dir: &str| {
        let path = root.join(dir).join("step-000006");
        let device = device.clone();
        move || {
            let r = load_checkpoint(&path, &device).unwrap();
            (r.model, Some((r.optimizer, r.state).into()))
        }
    };
    let full = resume_on(1, &from_scratch, &config, &windows, &policy("one")).remove(0);
    let close = |losses: &[f64], what: &str| {
        assert_eq!(losses.len(), 6, "{what}");
        for (a, b) in losses.iter().zip(&full[6..]) {
            assert!((a - b).abs() <= 1e-4 * b.abs(), "{what}: {a} vs {b}");
        }
    };
    // One process's checkpoint, resumed by two ranks: re-sharded, the same run.
    for losses in resume_on(2, &from("one"), &config, &windows, &policy("one-two")) {
        close(&losses, "1 → 2 ranks");
    }
    // Two ranks' checkpoint (rank 0 wrote it), resumed by one process.
    resume_on(2, &from_scratch, &config, &windows, &policy("two"));
    let losses = resume_on(1, &from("two"), &config, &windows, &policy("two-one")).remove(0);
    close(&losses, "2 ranks → 1");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_vae_gan_trains_both_players_on_two_ranks_and_its_replicas_stay_identical() {
    use aurl_model::{VaeGan, VaeGanConfig};
    let _rng = rng_guard();
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let train = TokenWindows::new(&sequences(4), 24, 12, 0);
    let config = TrainConfig {
        steps: 6,
        eval_every: Some(3),
        ..config()
    };
    let device = Device::flex().autodiff();
    let models: Vec<VaeGan> = (0..2)
        .map(|k| {
            device.seed(20 + k);
            let m = VaeGanConfig::tiny(vocab.len()).init(&device).unwrap();
            let _ = GradientPacking::of(&m).weights(&m);
            m
        })
        .collect();
    let ranks = ThreadGroup::ranks(2, Duration::from_secs(120));
    let runs: Vec<(Vec<StepMetrics>, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .iter()
            .zip(models)
            .map(|(rank, m)| {
                let (config, train) = (&config, &train);
                s.spawn(move || {
                    let mut seen = Vec::new();
                    let (m, _) = Trainer::new(config, train, train)
                        .with_collective(rank)
                        .run(m, None, |x| seen.push(x.clone()))
                        .unwrap();
                    (seen, GradientPacking::of(&m).weights(&m))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (metrics, weights) = &runs[0];
    assert_eq!(metrics.len(), 6);
    assert!(metrics.iter().all(|m| m.loss.is_finite()));
    let trained_discriminator = metrics
        .iter()
        .any(|m| m.components.contains_key("discriminator_grad_norm"));
    assert!(trained_discriminator, "{:?}", metrics[5].components);
    assert!(
        metrics
            .iter()
            .all(|m| m.components.get("allreduce_mb").is_some_and(|&mb| mb > 0.0)),
        "distributed steps log their all-reduce"
    );
    assert_eq!(
        weights, &runs[1].1,
        "the replicas are identical, bit for bit"
    );
    assert!(metrics[5].valid_nll.is_some_and(f64::is_finite));
}
