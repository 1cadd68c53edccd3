//! The VAE-GAN trains as two players: one backward pass gives each its own gradients (and
//! only its own), the discriminator learns to tell data from reconstructions with its own
//! optimizer and D:G ratio, the stages start when configured, reconstruction still drops,
//! and a resumed run (both optimizers in the checkpoint) continues exactly.

mod common;

use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
use aurl_model::loss::{FreeBits, KlSchedule, TokenLoss};
use aurl_model::train::{
    AdversaryTraining, Checkpointing, OptimizerKind, StepContext, StepMetrics, TokenWindows,
    TrainBatch, TrainConfig, TrainModel, Trainer, WindowTensors, load_checkpoint_as,
};
use aurl_model::vae::VaeLossConfig;
use aurl_model::{GanLossConfig, ModelError, VaeGan, VaeGanConfig};
use burn::prelude::*;
use common::{rng_guard, sequences};

fn vocab() -> Vocabulary {
    Vocabulary::remi(&TokenizerConfig::default()).unwrap()
}

fn config(vocab: &Vocabulary, gan: GanLossConfig) -> VaeGanConfig {
    let mut c = VaeGanConfig::tiny(vocab.len());
    c.vae.loss = VaeLossConfig {
        free_bits: FreeBits::Total { bits: 2.0 },
        kl: KlSchedule::Linear {
            beta: 0.2,
            steps: 10,
        },
        kl_start: 1,
    };
    c.gan = gan;
    c
}

#[test]
fn one_backward_pass_gives_each_player_only_its_own_gradients() {
    let _rng = rng_guard();
    let vocab = vocab();
    let device = Device::flex().autodiff();
    device.seed(1);
    let model = config(&vocab, GanLossConfig::default())
        .init(&device)
        .unwrap();
    let windows = TokenWindows::new(&sequences(2), 32, 16, 0);
    let (inputs, targets) = windows.batch(&[0, 1], &device);
    let batch = TrainBatch {
        inputs,
        targets,
        pad: 0,
    };
    let context = StepContext {
        step: 5,
        seed: 1,
        keep_logits: false,
        adversary: true,
    };
    let loss = model
        .train_loss(batch.clone(), &TokenLoss::new(vocab.len()), context)
        .unwrap();
    let names: Vec<&str> = loss.parts.iter().map(|(n, _)| *n).collect();
    for part in ["reconstruction", "kl", "adversarial", "feature_matching"] {
        assert!(names.contains(&part), "{names:?}");
    }
    let mut raw = loss.total.backward();
    assert!(model.adversary_grads(&mut raw).is_empty());
    assert!(!model.generator_grads(&mut raw).is_empty());
    let mut raw = loss.adversary.expect("the discriminator trains").backward();
    assert!(model.generator_grads(&mut raw).is_empty());
    assert!(!model.adversary_grads(&mut raw).is_empty());

    // Its own rounds reach the discriminator only, too.
    let alone = model.adversary_loss(batch, context).unwrap().unwrap();
    let mut raw = alone.backward();
    assert!(model.generator_grads(&mut raw).is_empty());
    assert!(!model.adversary_grads(&mut raw).is_empty());
}

#[test]
fn a_vae_gan_trains_in_stages_checkpoints_both_optimizers_and_resumes_exactly() {
    let _rng = rng_guard();
    let vocab = vocab();
    let model_config = config(
        &vocab,
        GanLossConfig {
            start: 2,
            ramp: 4,
            r1: 0.1,
            ..GanLossConfig::default()
        },
    );
    let config = TrainConfig {
        steps: 10,
        batch_size: 4,
        warmup_steps: 2,
        eval_every: Some(5),
        checkpoint_every: 5,
        keep_checkpoints: 5,
        discriminator: AdversaryTraining {
            steps: 2,
            optimizer: OptimizerKind::Adam,
            ..AdversaryTraining::default()
        },
        ..TrainConfig::default()
    };
    let windows = TokenWindows::new(&sequences(3), 32, 16, 0);
    let root = std::env::temp_dir().join(format!("aurl-vae-gan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let policy = |dir: &str| Checkpointing {
        dir: root.join(dir),
        every: config.checkpoint_every,
        keep_last: config.keep_checkpoints,
        config: &model_config,
        vocabulary: &vocab,
    };
    let device = Device::flex().autodiff();
    device.seed(3);
    let model = model_config.init(&device).unwrap();
    let mut full = Vec::new();
    let (_, report) = Trainer::new(&config, &windows, &windows)
        .with_checkpoints(policy("a"))
        .run(model, None, |m| full.push(m.clone()))
        .unwrap();
    assert_eq!(report.steps, 10);
    assert!(report.valid_nll.is_some_and(f64::is_finite));
    // Stage one: reconstruction only; the KL from step 1; the adversary from step 2.
    assert_eq!(full[0].components["beta"], 0.0);
    assert!(full[2].components["beta"] > 0.0);
    for m in &full[..2] {
        assert_eq!(m.components["adversarial_weight"], 0.0);
        assert!(!m.components.contains_key("discriminator"));
    }
    for m in &full[2..] {
        assert!(m.components["adversarial_weight"] > 0.0);
        for part in ["discriminator", "adversarial", "feature_matching", "r1"] {
            assert!(m.components[part].is_finite(), "{part} at step {}", m.step);
        }
        assert!(m.components["discriminator_lr"] > 0.0);
    }
    assert_eq!(full[9].components["adversarial_weight"], 0.1);

    // Both optimizers are in the checkpoint, and resuming repeats the uninterrupted run.
    let at5 = root.join("a").join("step-000005");
    assert!(at5.join("optimizer-adversary.bpk").is_file());
    let r = load_checkpoint_as::<VaeGan>(&at5, &device).unwrap();
    assert!(r.adversary_optimizer.is_some());
    assert_eq!(r.state.adversary_optimizer, Some(OptimizerKind::Adam));
    let (model, resume) = r.into_resume();
    let mut resumed = Vec::new();
    Trainer::new(&config, &windows, &windows)
        .with_checkpoints(policy("b"))
        .run(model, Some(resume), |m| resumed.push(m.clone()))
        .unwrap();
    let pick = |ms: &[StepMetrics]| -> Vec<(f64, f64)> {
        ms.iter()
            .map(|m| (m.loss, m.components["discriminator"]))
            .collect()
    };
    assert_eq!(pick(&resumed), pick(&full[5..]));

    // Another discriminator optimizer cannot take the saved state.
    let r = load_checkpoint_as::<VaeGan>(&at5, &device).unwrap();
    let (model, resume) = r.into_resume();
    let lion = TrainConfig {
        discriminator: AdversaryTraining {
            optimizer: OptimizerKind::Lion,
            ..config.discriminator
        },
        ..config.clone()
    };
    let err = Trainer::new(&lion, &windows, &windows)
        .run(model, Some(resume), |_| {})
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::InvalidConfig { field, .. } if field == "train.discriminator.optimizer"),
        "{err}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

fn train_log(gan: GanLossConfig, config: &TrainConfig) -> Vec<StepMetrics> {
    let _rng = rng_guard();
    let vocab = vocab();
    let model_config = self::config(&vocab, gan);
    let windows = TokenWindows::new(&sequences(4), 32, 32, 0);
    let device = Device::flex().autodiff();
    device.seed(5);
    let model = model_config.init(&device).unwrap();
    let mut log = Vec::new();
    Trainer::new(config, &windows, &windows)
        .run(model, None, |m| log.push(m.clone()))
        .unwrap();
    log
}

fn mean(ms: &[StepMetrics], key: &str) -> f64 {
    ms.iter().map(|m| m.components[key]).sum::<f64>() / ms.len() as f64
}

fn quick(steps: usize, learning_rate: f64) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 4,
        learning_rate,
        min_learning_rate: learning_rate / 10.0,
        warmup_steps: 10,
        eval_every: None,
        sample_every: None,
        discriminator: AdversaryTraining {
            learning_rate: 2e-3,
            ..AdversaryTraining::default()
        },
        ..TrainConfig::default()
    }
}

#[test]
fn reconstruction_still_drops_with_the_adversary_on() {
    let log = train_log(
        GanLossConfig {
            ramp: 20,
            ..GanLossConfig::default()
        },
        &quick(150, 3e-3),
    );
    let (first, last) = (&log[..10], &log[log.len() - 10..]);
    assert!(mean(last, "adversarial_weight") > 0.0);
    assert!(
        mean(last, "reconstruction") < mean(first, "reconstruction") / 10.0,
        "reconstruction must drop more than 10×: {:.3} -> {:.3}",
        mean(first, "reconstruction"),
        mean(last, "reconstruction")
    );
}

#[test]
fn the_discriminator_learns_to_tell_data_from_an_untrained_decoder() {
    // The generator does not move (learning rate 0): only the discriminator learns.
    let log = train_log(
        GanLossConfig {
            weight: 0.0,
            ..GanLossConfig::default()
        },
        &quick(60, 0.0),
    );
    let margin = |ms: &[StepMetrics]| mean(ms, "d_real_logit") - mean(ms, "d_fake_logit");
    let (first, last) = (&log[..5], &log[log.len() - 5..]);
    assert!(
        margin(last) > margin(first) + 1.0
            && mean(last, "discriminator") < mean(first, "discriminator"),
        "margin {:.3} -> {:.3}, loss {:.3} -> {:.3}",
        margin(first),
        margin(last),
        mean(first, "discriminator"),
        mean(last, "discriminator")
    );
}

#[test]
fn bad_gan_settings_are_errors_naming_the_field() {
    let vocab = vocab();
    let device = Device::flex();
    let mut c = VaeGanConfig::tiny(vocab.len());
    c.gan.temperature = 0.0;
    assert!(matches!(
        c.init(&device),
        Err(ModelError::InvalidConfig { field, .. }) if field == "gan.temperature"
    ));
    let mut t = TrainConfig::default();
    t.discriminator.steps = 0;
    assert!(matches!(
        t.validate(),
        Err(ModelError::InvalidConfig { field, .. }) if field == "train.discriminator.steps"
    ));
}
