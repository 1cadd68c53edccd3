//! The trainer trains a VAE like a language model: its loss parts reach the metrics, its
//! checkpoints hold a VAE, and a resumed run continues exactly.

mod common;

use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
use aurl_model::loss::{FreeBits, KlSchedule};
use aurl_model::train::{
    Checkpointing, TokenWindows, TrainConfig, Trainer, load_checkpoint, load_checkpoint_as,
};
use aurl_model::vae::{Vae, VaeConfig, VaeLossConfig};
use aurl_model::weights::{load_model, load_model_as};
use aurl_model::{ModelError, TransformerConfig};
use burn::prelude::*;
use common::sequences;

#[test]
fn a_vae_trains_checkpoints_and_resumes_exactly() {
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let model_config = VaeConfig {
        decoder: TransformerConfig {
            dropout: 0.1,
            ..TransformerConfig::tiny(vocab.len())
        },
        loss: VaeLossConfig {
            free_bits: FreeBits::Total { bits: 2.0 },
            kl: KlSchedule::Linear {
                beta: 0.5,
                steps: 10,
            },
            kl_start: 0,
        },
        ..VaeConfig::tiny(vocab.len())
    };
    let config = TrainConfig {
        steps: 12,
        batch_size: 4,
        warmup_steps: 3,
        eval_every: Some(6),
        checkpoint_every: 6,
        keep_checkpoints: 5,
        ..TrainConfig::default()
    };
    let windows = TokenWindows::new(&sequences(3), 32, 16, 0);
    let root = std::env::temp_dir().join(format!("aurl-vae-resume-{}", std::process::id()));
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
    assert_eq!(report.steps, 12);
    assert!(report.valid_nll.is_some_and(f64::is_finite));
    // The parts of the VAE's loss are logged: reconstruction, KL and the ramping β.
    let betas: Vec<f64> = full.iter().map(|m| m.components["beta"]).collect();
    assert_eq!(betas[0], 0.0);
    assert!((betas[5] - 0.25).abs() < 1e-12, "{betas:?}");
    assert!(
        full.iter()
            .all(|m| m.components["kl"].is_finite() && m.components["reconstruction"].is_finite())
    );
    assert!(full[11].components["reconstruction"] < full[0].components["reconstruction"]);

    // The checkpoint holds a VAE; loading it as a transformer is a clear error.
    let at6 = root.join("a").join("step-000006");
    assert!(matches!(
        load_checkpoint(&at6, &device),
        Err(ModelError::Checkpoint { .. })
    ));
    assert!(load_model(&at6.join("model"), &device).is_err());
    let saved = load_model_as::<Vae>(&at6.join("model"), &device).unwrap();
    assert_eq!(saved.config, model_config);

    // As if killed after step 6: the resumed run repeats the uninterrupted one.
    let r = load_checkpoint_as::<Vae>(&at6, &device).unwrap();
    let mut resumed = Vec::new();
    Trainer::new(&config, &windows, &windows)
        .with_checkpoints(policy("b"))
        .run(r.model, Some((r.optimizer, r.state).into()), |m| {
            resumed.push(m.loss)
        })
        .unwrap();
    let expected: Vec<f64> = full[6..].iter().map(|m| m.loss).collect();
    assert_eq!(
        resumed, expected,
        "resumed losses equal the uninterrupted run's"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
