//! Saved models load back identical, and a mismatched vocabulary or damaged file is a clear
//! error.

mod common;

use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
use aurl_model::weights::{MODEL_FILE, WEIGHTS_FILE, load_model, load_model_for, save_model};
use aurl_model::{ModelError, PositionEncoding, TransformerConfig};
use burn::prelude::*;
use common::{ids, max_diff, random_rows};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("aurl-weights-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn a_saved_model_loads_back_with_identical_outputs() {
    let _guard = common::rng_guard();
    let device = Device::flex();
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let config = TransformerConfig {
        positions: PositionEncoding::Learned,
        ..TransformerConfig::tiny(vocab.len())
    };
    device.seed(4);
    let model = config.init(&device).unwrap();
    let dir = temp_dir("roundtrip");
    save_model(&dir, &model, &config, &vocab).unwrap();
    let loaded = load_model_for(&dir, &device, &vocab).unwrap();
    assert_eq!(loaded.config, config);
    let tokens = ids(&random_rows(2, 12, vocab.len(), 5), &device);
    let a = model.forward(tokens.clone(), 0, None).unwrap();
    let b = loaded.model.forward(tokens, 0, None).unwrap();
    assert_eq!(max_diff(a, b), 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_built_model_keeps_the_weights_of_its_seed_whatever_draws_next() {
    let _guard = common::rng_guard();
    let device = Device::flex();
    let config = TransformerConfig::tiny(40);
    let tokens = ids(&random_rows(2, 12, 40, 5), &device);
    device.seed(7);
    let first = config.init(&device).unwrap();
    // Something else draws from the generator before the weights are first used.
    device.seed(99);
    let _: Tensor<1> = Tensor::random([8], burn::tensor::Distribution::Default, &device);
    let a = first.forward(tokens.clone(), 0, None).unwrap();
    device.seed(7);
    let second = config.init(&device).unwrap();
    let b = second.forward(tokens, 0, None).unwrap();
    assert_eq!(max_diff(a, b), 0.0);
}

#[test]
fn a_half_weight_decoding_copy_is_refused_and_nothing_is_written() {
    // Every test of this file draws from the one generator.
    let _guard = common::rng_guard();
    let device = Device::flex();
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let config = TransformerConfig::tiny(vocab.len());
    let half = config.init(&device).unwrap().with_half_weights();
    let dir = temp_dir("half");
    let err = save_model(&dir, &half, &config, &vocab).unwrap_err();
    assert!(
        matches!(&err, ModelError::InvalidConfig { field, .. } if field == "weights"),
        "{err}"
    );
    assert!(!dir.exists());
}

#[test]
fn mismatches_and_damage_are_typed_errors() {
    // Every test of this file draws from the one generator.
    let _guard = common::rng_guard();
    let device = Device::flex();
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let config = TransformerConfig::tiny(vocab.len());
    let model = config.init(&device).unwrap();
    let dir = temp_dir("errors");
    // Config and vocabulary disagree.
    let wrong = TransformerConfig::tiny(vocab.len() + 1);
    assert!(matches!(
        save_model(&dir, &model, &wrong, &vocab),
        Err(ModelError::InvalidConfig { .. })
    ));
    save_model(&dir, &model, &config, &vocab).unwrap();
    // Another vocabulary is refused.
    let tsd = Vocabulary::tsd(&TokenizerConfig::default()).unwrap();
    assert!(matches!(
        load_model_for(&dir, &device, &tsd),
        Err(ModelError::Vocabulary(_))
    ));
    // Truncated weights and a missing file are errors, not panics.
    let weights = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        load_model(&dir, &device),
        Err(ModelError::Checkpoint { .. })
    ));
    std::fs::remove_file(dir.join(MODEL_FILE)).unwrap();
    assert!(matches!(
        load_model(&dir, &device),
        Err(ModelError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
