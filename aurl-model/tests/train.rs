//! The training loop: global-norm clipping, learning, validation and refusals.

mod common;

use aurl_core::tokenize::{BarStart, TokenSequence};
use aurl_model::train::{TokenWindows, TrainConfig, clip_global_norm, global_grad_norm, train};
use aurl_model::{ModelError, TransformerConfig};
use burn::optim::GradientsParams;
use burn::prelude::*;
use common::{ids, random_rows};

const VOCAB: usize = 30;

/// A repetitive "piece": the model can learn it.
fn sequences(n: usize) -> Vec<TokenSequence> {
    (0..n)
        .map(|k| TokenSequence {
            ids: (0..200).map(|i| 1 + ((i * 3 + k) % 7) as u16).collect(),
            bars: vec![BarStart {
                token_index: 0,
                time_signature: None,
                tempo: None,
            }],
        })
        .collect()
}

#[test]
fn clipping_scales_the_global_norm_down_to_the_limit() {
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
    let device = Device::flex().autodiff();
    device.seed(2);
    let model = TransformerConfig::tiny(VOCAB).init(&device).unwrap();
    let train_w = TokenWindows::new(&sequences(4), 32, 16, 0);
    let valid_w = TokenWindows::new(&sequences(1), 32, 32, 0);
    let config = TrainConfig {
        steps: 60,
        batch_size: 8,
        warmup_steps: 5,
        eval_every: 30,
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
fn nothing_to_train_on_or_no_autodiff_is_a_typed_error() {
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
