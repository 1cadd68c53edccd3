//! Training through the fused kernels follows the generic bodies step for step.
//!
//! One test in its own binary: it switches the process-wide kernel mode.

mod common;

use aurl_model::TransformerConfig;
use aurl_model::kernels::{KernelMode, set_kernel_mode};
use aurl_model::train::{TokenWindows, TrainConfig, train};
use burn::prelude::*;
use common::sequences;

const VOCAB: usize = 30;

fn losses(mode: KernelMode) -> Vec<f64> {
    set_kernel_mode(mode);
    let device = Device::flex().autodiff();
    device.seed(7);
    let config = TransformerConfig {
        dropout: 0.0,
        ..TransformerConfig::tiny(VOCAB)
    };
    let model = config.init(&device).expect("tiny() is valid");
    let train_w = TokenWindows::new(&sequences(4), 48, 24, 0);
    let valid_w = TokenWindows::new(&sequences(1), 48, 48, 0);
    let config = TrainConfig {
        steps: 200,
        batch_size: 4,
        warmup_steps: 10,
        eval_every: Some(100),
        ..TrainConfig::default()
    };
    let mut seen = Vec::new();
    train(model, &config, &train_w, &valid_w, |m| seen.push(m.loss)).expect("trains");
    seen
}

#[test]
fn two_hundred_fused_steps_log_the_generic_losses_and_repeat_exactly() {
    let fused = losses(KernelMode::Fused);
    let generic = losses(KernelMode::Generic);
    assert_eq!(fused.len(), 200);
    assert!(fused[199] < 0.5 * fused[0], "{} → {}", fused[0], fused[199]);
    for (step, (a, b)) in fused.iter().zip(&generic).enumerate() {
        let relative = (a - b).abs() / b.abs().max(1e-6);
        assert!(
            relative <= 1e-3,
            "step {}: fused {a}, generic {b}",
            step + 1
        );
    }
    // Parallel reductions do not depend on scheduling: a second run is bit-identical.
    assert_eq!(losses(KernelMode::Fused), fused);
}
