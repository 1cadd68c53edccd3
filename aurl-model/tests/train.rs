//! The training loop: global-norm clipping, learning, validation and refusals.

mod common;

use aurl_core::tokenize::TokenSequence;
use aurl_model::train::{TokenWindows, TrainConfig, clip_global_norm, global_grad_norm, train};
use aurl_model::{ModelError, TransformerConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use common::rng_guard;
use common::{ids, random_rows, sequences};

const VOCAB: usize = 30;

#[test]
fn clipping_scales_the_global_norm_down_to_the_limit() {
    let _rng = rng_guard();
    let device = Device::flex().autodiff();
    device.seed(1);
    let model = TransformerConfig::tiny(VOCAB).init(&device).unwrap();
    let logits = model
        .forward(ids(&random_rows(2, 10, VOCAB, 1), &device), 0, None)
        .unwrap();
    let loss = logits.powf_scalar(2.0).sum();
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    let norm = global_grad_norm(&model, &grads);
    assert!(norm > 1e-3, "{norm}");
    let factor = clip_global_norm(&model, &mut grads, norm, norm / 4.0);
    assert!((factor - 0.25).abs() < 1e-6);
    let after = global_grad_norm(&model, &grads);
    assert!(
        (after - norm / 4.0).abs() / after < 1e-4,
        "{after} vs {}",
        norm / 4.0
    );
    assert_eq!(
        clip_global_norm(&model, &mut grads, after, after * 2.0),
        1.0
    );
}

#[test]
fn training_lowers_loss_and_reports_validation() {
    let _rng = rng_guard();
    let device = Device::flex().autodiff();
    device.seed(2);
    let model = TransformerConfig::tiny(VOCAB).init(&device).unwrap();
    let train_w = TokenWindows::new(&sequences(4), 32, 16, 0);
    let valid_w = TokenWindows::new(&sequences(1), 32, 32, 0);
    let config = TrainConfig {
        steps: 60,
        batch_size: 8,
        warmup_steps: 5,
        eval_every: Some(30),
        ..TrainConfig::default()
    };
    let mut seen = Vec::new();
    let (_, report) = train(model, &config, &train_w, &valid_w, |m| seen.push(m.clone())).unwrap();
    assert_eq!(seen.len(), 60);
    assert_eq!(report.steps, 60);
    assert!(
        seen[59].loss < 0.5 * seen[0].loss,
        "{} → {}",
        seen[0].loss,
        seen[59].loss
    );
    let validated: Vec<usize> = seen
        .iter()
        .filter(|m| m.valid_nll.is_some())
        .map(|m| m.step)
        .collect();
    assert_eq!(validated, [30, 60]);
    assert!(report.valid_nll.unwrap() < 1.0, "{:?}", report.valid_nll);
    // The learning rate warmed up then decayed.
    assert!(seen[0].learning_rate < seen[4].learning_rate);
    assert!(seen[59].learning_rate < seen[4].learning_rate);
}

#[test]
fn every_optimizer_trains_and_a_resume_keeps_its_optimizer() {
    let _rng = rng_guard();
    use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
    use aurl_model::train::{Checkpointing, OptimizerKind, Trainer, load_checkpoint};
    let train_w = TokenWindows::new(&sequences(4), 32, 16, 0);
    for (optimizer, learning_rate) in [
        (OptimizerKind::AdamW, 1e-3),
        (OptimizerKind::Adam, 1e-3),
        (OptimizerKind::Lion, 1e-3),
    ] {
        let device = Device::flex().autodiff();
        device.seed(2);
        let model = TransformerConfig::tiny(VOCAB).init(&device).unwrap();
        let config = TrainConfig {
            steps: 60,
            batch_size: 8,
            warmup_steps: 5,
            eval_every: None,
            optimizer,
            learning_rate,
            min_learning_rate: learning_rate / 10.0,
            ..TrainConfig::default()
        };
        let mut losses = Vec::new();
        train(model, &config, &train_w, &train_w, |m| losses.push(m.loss)).unwrap();
        assert!(
            losses[59] < 0.5 * losses[0],
            "{optimizer:?}: {} → {}",
            losses[0],
            losses[59]
        );
    }
    // A checkpoint of a Lion run does not resume under AdamW.
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let model_config = TransformerConfig::tiny(vocab.len());
    let lion = TrainConfig {
        steps: 2,
        batch_size: 2,
        warmup_steps: 1,
        eval_every: None,
        optimizer: OptimizerKind::Lion,
        ..TrainConfig::default()
    };
    let root = std::env::temp_dir().join(format!("aurl-optim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let device = Device::flex().autodiff();
    Trainer::new(&lion, &train_w, &train_w)
        .with_checkpoints(Checkpointing {
            dir: root.clone(),
            every: 2,
            keep_last: 1,
            config: &model_config,
            vocabulary: &vocab,
        })
        .run(model_config.init(&device).unwrap(), None, |_| {})
        .unwrap();
    let r = load_checkpoint(&root.join("step-000002"), &device).unwrap();
    assert_eq!(r.state.optimizer, OptimizerKind::Lion);
    let adamw = TrainConfig {
        steps: 4,
        ..lion.clone()
    };
    let adamw = TrainConfig {
        optimizer: OptimizerKind::AdamW,
        ..adamw
    };
    let err = Trainer::new(&adamw, &train_w, &train_w)
        .run(r.model, Some((r.optimizer, r.state).into()), |_| {})
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::InvalidConfig { field, .. } if field == "train.optimizer"),
        "{err}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn nothing_to_train_on_or_no_autodiff_is_a_typed_error() {
    let _rng = rng_guard();
    let device = Device::flex();
    let model = TransformerConfig::tiny(VOCAB).init(&device).unwrap();
    let empty = TokenWindows::new(&[], 32, 16, 0);
    let config = TrainConfig::default();
    assert!(matches!(
        train(model.clone(), &config, &empty, &empty, |_| {}),
        Err(ModelError::Training(_))
    ));
    let windows = TokenWindows::new(&sequences(1), 32, 16, 0);
    let err = train(model, &config, &windows, &empty, |_| {}).unwrap_err();
    assert!(err.to_string().contains("autodiff"), "{err}");
    let bad = TrainConfig {
        batch_size: 0,
        ..TrainConfig::default()
    };
    let model = TransformerConfig::tiny(VOCAB)
        .init(&device.autodiff())
        .unwrap();
    let err = train(model, &bad, &windows, &empty, |_| {}).unwrap_err();
    assert!(err.to_string().contains("train.batch_size"), "{err}");
}

#[test]
fn a_resumed_run_continues_exactly_where_the_checkpoint_left_it() {
    let _rng = rng_guard();
    use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
    use aurl_model::train::{Checkpointing, Trainer, latest_checkpoint, load_checkpoint};
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let model_config = TransformerConfig {
        dropout: 0.1,
        ..TransformerConfig::tiny(vocab.len())
    };
    let config = TrainConfig {
        steps: 12,
        batch_size: 4,
        warmup_steps: 3,
        eval_every: None,
        checkpoint_every: 6,
        keep_checkpoints: 5,
        ..TrainConfig::default()
    };
    let windows = TokenWindows::new(&sequences(3), 32, 16, 0);
    let root = std::env::temp_dir().join(format!("aurl-resume-{}", std::process::id()));
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
    Trainer::new(&config, &windows, &windows)
        .with_checkpoints(policy("a"))
        .run(model, None, |m| full.push(m.loss))
        .unwrap();
    assert_eq!(
        latest_checkpoint(&root.join("a")).unwrap(),
        Some(root.join("a").join("step-000012"))
    );
    // As if killed after step 6: resume from that checkpoint.
    let r = load_checkpoint(&root.join("a").join("step-000006"), &device).unwrap();
    assert_eq!(r.state.step, 6);
    let mut resumed = Vec::new();
    let (_, report) = Trainer::new(&config, &windows, &windows)
        .with_checkpoints(policy("b"))
        .run(r.model, Some((r.optimizer, r.state).into()), |m| {
            resumed.push(m.loss)
        })
        .unwrap();
    assert_eq!((report.first_step, report.steps), (6, 6));
    assert_eq!(
        resumed,
        full[6..],
        "the resumed losses must equal the uninterrupted run's"
    );
    // A damaged checkpoint is a typed error.
    let optimizer = root.join("a").join("step-000012").join("optimizer.bpk");
    std::fs::write(&optimizer, b"not a record").unwrap();
    assert!(matches!(
        load_checkpoint(&root.join("a").join("step-000012"), &device),
        Err(ModelError::Checkpoint { .. })
    ));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn early_stopping_ends_a_worsening_run_and_the_best_weights_come_back() {
    let _rng = rng_guard();
    use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
    use aurl_model::train::{Checkpointing, Trainer, evaluate};
    use aurl_model::weights::load_model;
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let model_config = TransformerConfig::tiny(vocab.len());
    // Validation on uniformly random ids: the more the model learns the training pattern,
    // the worse it predicts them, so the best validation comes early.
    let noise = TokenSequence {
        ids: random_rows(1, 400, vocab.len(), 5)[0]
            .iter()
            .map(|&x| x as u16)
            .collect(),
        bars: Vec::new(),
    };
    let train_w = TokenWindows::new(&sequences(4), 32, 16, 0);
    let valid_w = TokenWindows::new(std::slice::from_ref(&noise), 32, 32, 0);
    let config = TrainConfig {
        steps: 400,
        batch_size: 8,
        learning_rate: 3e-3,
        warmup_steps: 2,
        eval_every: Some(5),
        early_stopping: Some(3),
        checkpoint_every: 0,
        ..TrainConfig::default()
    };
    let root = std::env::temp_dir().join(format!("aurl-best-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let policy = Checkpointing {
        dir: root.clone(),
        every: 0,
        keep_last: 1,
        config: &model_config,
        vocabulary: &vocab,
    };
    let device = Device::flex().autodiff();
    device.seed(4);
    let model = model_config.init(&device).unwrap();
    let mut validations = Vec::new();
    let (best, report) = Trainer::new(&config, &train_w, &valid_w)
        .with_checkpoints(policy)
        .run(model, None, |m| {
            validations.extend(m.valid_nll.map(|v| (m.step, v)))
        })
        .unwrap();
    assert!(report.stopped_early, "{report:?}");
    assert!(report.steps < 400);
    let (best_step, best_nll) = validations
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(report.best_step, Some(best_step));
    assert_eq!(report.best_valid_nll, Some(best_nll));
    // Three validations without improvement after the best, then the stop.
    assert_eq!(validations.last().unwrap().0, best_step + 3 * 5);
    assert!(report.restored_best);
    let returned = evaluate(&best.valid(), &valid_w, 8).unwrap();
    assert!(
        (returned - best_nll).abs() < 1e-5,
        "{returned} vs {best_nll}"
    );
    // The best model is also on disk.
    let saved = load_model(&root.join("best"), &Device::flex()).unwrap();
    let on_disk = evaluate(&saved.model, &valid_w, 8).unwrap();
    assert!((on_disk - best_nll).abs() < 1e-5, "{on_disk} vs {best_nll}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn per_epoch_windows_resume_exactly_mid_epoch() {
    let _rng = rng_guard();
    use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
    use aurl_model::train::{Checkpointing, Trainer, load_checkpoint};
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let model_config = TransformerConfig::tiny(vocab.len());
    let config = TrainConfig {
        steps: 10,
        batch_size: 4,
        warmup_steps: 2,
        eval_every: None,
        checkpoint_every: 5,
        keep_checkpoints: 5,
        ..TrainConfig::default()
    };
    // Step 6 (batch 4) spans epochs 1 and 2. Each epoch has other content and another number of windows (as augmented epochs do):
    // epoch e shifts every id by e % 3 and uses 1 + e % 2 sequences (7 or 14 windows), so
    // batches of 4 cross epoch boundaries.
    let per_epoch = |e: u64| {
        let mut seqs = sequences(1 + (e % 2) as usize);
        for s in &mut seqs {
            s.ids.iter_mut().for_each(|x| *x += (e % 3) as u16);
        }
        TokenWindows::new(&seqs, 32, 32, 0)
    };
    let fixed = TokenWindows::new(&sequences(1), 32, 32, 0);
    let root = std::env::temp_dir().join(format!("aurl-epochs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let policy = |dir: &str| Checkpointing {
        dir: root.join(dir),
        every: config.checkpoint_every,
        keep_last: config.keep_checkpoints,
        config: &model_config,
        vocabulary: &vocab,
    };
    let device = Device::flex().autodiff();
    device.seed(5);
    let model = model_config.init(&device).unwrap();
    let mut full = Vec::new();
    Trainer::new(&config, &fixed, &fixed)
        .with_epoch_windows(&per_epoch)
        .with_checkpoints(policy("a"))
        .run(model.clone(), None, |m| full.push(m.loss))
        .unwrap();
    let r = load_checkpoint(&root.join("a").join("step-000005"), &device).unwrap();
    let cursor = r.state.data.unwrap();
    // 20 windows used: epoch 0's 7, then 13 of epoch 1's 14.
    assert_eq!((per_epoch(0).count(), per_epoch(1).count()), (7, 14));
    assert_eq!((cursor.epoch, cursor.next), (1, 13));
    let mut resumed = Vec::new();
    Trainer::new(&config, &fixed, &fixed)
        .with_epoch_windows(&per_epoch)
        .with_checkpoints(policy("b"))
        .run(r.model, Some((r.optimizer, r.state).into()), |m| {
            resumed.push(m.loss)
        })
        .unwrap();
    assert_eq!(resumed, full[5..]);
    // The per-epoch data is what was trained on: the fixed windows give other losses.
    let mut plain = Vec::new();
    Trainer::new(&config, &fixed, &fixed)
        .run(model, None, |m| plain.push(m.loss))
        .unwrap();
    assert_ne!(plain[3..], full[3..]);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn accumulating_two_half_batches_matches_one_full_batch() {
    let _rng = rng_guard();
    // Sequences of 1 + 32·5 tokens: windows of 32 with stride 32 are all full (no padding),
    // so the mean over two micro-batches equals the mean over their union.
    let seqs: Vec<TokenSequence> = (0..2)
        .map(|k| TokenSequence {
            ids: (0..161).map(|i| 1 + ((i * 5 + k) % 11) as u16).collect(),
            bars: Vec::new(),
        })
        .collect();
    let windows = TokenWindows::new(&seqs, 32, 32, 0);
    assert!((0..windows.count()).all(|i| !windows.get(i).unwrap().contains(&0)));
    let model_config = TransformerConfig::tiny(VOCAB);
    let device = Device::flex().autodiff();
    let run = |batch_size: usize, grad_accumulation: usize| {
        let config = TrainConfig {
            steps: 6,
            batch_size,
            grad_accumulation,
            warmup_steps: 1,
            eval_every: None,
            ..TrainConfig::default()
        };
        device.seed(11);
        let model = model_config.init(&device).unwrap();
        let mut losses = Vec::new();
        let (_, report) =
            train(model, &config, &windows, &windows, |m| losses.push(m.loss)).unwrap();
        (losses, report.steps)
    };
    let (full, _) = run(4, 1);
    let (halves, steps) = run(2, 2);
    assert_eq!(steps, 6);
    for (a, b) in full.iter().zip(&halves) {
        assert!((a - b).abs() < 1e-4, "{full:?} vs {halves:?}");
    }
    let err = train(
        model_config.init(&device).unwrap(),
        &TrainConfig {
            grad_accumulation: 0,
            ..TrainConfig::default()
        },
        &windows,
        &windows,
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("train.grad_accumulation"), "{err}");
}

#[test]
fn the_plateau_schedule_halves_the_rate_after_validations_without_improvement() {
    let _rng = rng_guard();
    use aurl_model::train::LrSchedule;
    // Validation on random ids worsens as the model learns the training pattern.
    let noise = TokenSequence {
        ids: random_rows(1, 200, VOCAB, 9)[0]
            .iter()
            .map(|&x| x as u16)
            .collect(),
        bars: Vec::new(),
    };
    let train_w = TokenWindows::new(&sequences(4), 32, 16, 0);
    let valid_w = TokenWindows::new(std::slice::from_ref(&noise), 32, 32, 0);
    let config = TrainConfig {
        steps: 60,
        batch_size: 8,
        learning_rate: 3e-3,
        min_learning_rate: 1e-4,
        warmup_steps: 2,
        eval_every: Some(5),
        lr_schedule: LrSchedule::Plateau {
            factor: 0.5,
            patience: 2,
        },
        ..TrainConfig::default()
    };
    let device = Device::flex().autodiff();
    device.seed(4);
    let model = TransformerConfig::tiny(VOCAB).init(&device).unwrap();
    let mut seen = Vec::new();
    train(model, &config, &train_w, &valid_w, |m| {
        seen.push((m.learning_rate, m.valid_nll))
    })
    .unwrap();
    // Replay the rule on the validations the run saw.
    let (mut best, mut waiting, mut scale) = (f64::INFINITY, 0, 1.0f64);
    for (step, &(lr, valid)) in seen.iter().enumerate() {
        if step >= 2 {
            assert!(
                (lr - (3e-3 * scale).max(1e-4)).abs() < 1e-12,
                "step {step}: {lr} vs scale {scale}"
            );
        }
        if let Some(v) = valid {
            if v < best {
                best = v;
                waiting = 0;
            } else {
                waiting += 1;
                if waiting >= 2 {
                    scale *= 0.5;
                    waiting = 0;
                }
            }
        }
    }
    assert!(scale < 1.0, "the validation never stalled: {seen:?}");
}

#[test]
fn runs_of_bad_steps_roll_back_with_a_lower_rate_then_stop_with_a_typed_error() {
    let _rng = rng_guard();
    let windows = TokenWindows::new(&sequences(2), 32, 16, 0);
    let device = Device::flex().autodiff();
    device.seed(2);
    let model = TransformerConfig::tiny(VOCAB).init(&device).unwrap();
    // Every gradient counts as exploding: each run of 2 bad steps rolls back to the start,
    // twice, and the third run is an error that says so.
    let config = TrainConfig {
        steps: 50,
        batch_size: 4,
        eval_every: None,
        skip_grad_norm: Some(1e-9),
        max_bad_steps: 2,
        max_rollbacks: 2,
        ..TrainConfig::default()
    };
    let mut stepped = 0;
    let err = train(model.clone(), &config, &windows, &windows, |_| stepped += 1).unwrap_err();
    assert!(matches!(err, ModelError::Training(_)));
    assert!(err.to_string().contains("after 2 rollbacks"), "{err}");
    assert_eq!(stepped, 0, "no bad step is reported as trained");
    // Without rollbacks allowed, the first run of bad steps is already the error.
    let strict = TrainConfig {
        max_rollbacks: 0,
        ..config.clone()
    };
    let err = train(model, &strict, &windows, &windows, |_| {}).unwrap_err();
    assert!(err.to_string().contains("after 0 rollbacks"), "{err}");
    let bad = TrainConfig {
        rollback_lr_factor: 0.0,
        ..config
    };
    assert!(
        bad.validate()
            .unwrap_err()
            .to_string()
            .contains("rollback_lr_factor")
    );
}

#[test]
fn a_diverged_run_rolls_back_and_recovers_at_the_lower_rate() {
    let _rng = rng_guard();
    let windows = TokenWindows::new(&sequences(2), 32, 16, 0);
    let device = Device::flex().autodiff();
    device.seed(2);
    let model = TransformerConfig::tiny(VOCAB).init(&device).unwrap();
    // A rate of 1e30 sends the weights to ~1e30 after one step: the logits overflow and the
    // next losses are NaN. Two bad steps roll back to the start with the rate × 1e-33.
    let config = TrainConfig {
        steps: 20,
        batch_size: 4,
        learning_rate: 1e30,
        min_learning_rate: 0.0,
        warmup_steps: 0,
        grad_clip_norm: None,
        eval_every: None,
        max_bad_steps: 2,
        max_rollbacks: 1,
        rollback_lr_factor: 1e-33,
        ..TrainConfig::default()
    };
    let mut rates = Vec::new();
    let (_, report) = train(model, &config, &windows, &windows, |m| {
        rates.push(m.learning_rate);
    })
    .unwrap();
    assert_eq!(report.rollbacks, 1);
    assert_eq!(report.skipped_steps, 2);
    assert!(
        report.final_loss.is_finite() && report.final_loss < 4.0,
        "{report:?}"
    );
    // Step 1 ran at 1e30; after the rollback every step runs at about 1e-3.
    assert!(rates[0] > 1e29);
    assert!(rates[1..].iter().all(|&r| r < 2e-3), "{rates:?}");
}
