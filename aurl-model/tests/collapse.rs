//! Sampling during training: checks reach the metrics, and a collapse of the samples rolls
//! the run back like a run of bad steps, then stops it with a typed error.

mod common;

use aurl_core::tokenize::{Grammar, TokenizerConfig, Vocabulary};
use aurl_model::train::{SampleCheck, TokenWindows, TrainConfig, Trainer};
use aurl_model::{ModelError, Transformer, TransformerConfig};
use burn::prelude::*;
use common::sequences;

fn windows() -> TokenWindows {
    TokenWindows::new(&sequences(3), 32, 16, 0)
}

fn check(longest_repeat: usize) -> SampleCheck {
    SampleCheck {
        pieces: 2,
        tokens: 64,
        grammar_error_rate: 0.0,
        note_pairing_rate: 1.0,
        longest_repeat,
    }
}

#[test]
fn a_collapse_of_the_samples_rolls_back_then_stops() {
    let windows = windows();
    let config = TrainConfig {
        steps: 10,
        batch_size: 4,
        warmup_steps: 2,
        eval_every: Some(2),
        sample_every: Some(3),
        collapse_repeat: Some(20),
        max_rollbacks: 1,
        ..TrainConfig::default()
    };
    let device = Device::flex().autodiff();
    device.seed(2);
    let model = TransformerConfig::tiny(30).init(&device).unwrap();
    // The samples at step 6 collapse once: back to step 4 (the last validation), then on.
    let mut calls = 0;
    let mut logged = Vec::new();
    let (_, report) = Trainer::new(&config, &windows, &windows)
        .run_sampled(
            model,
            None,
            |m| logged.push((m.step, m.samples.clone())),
            |_: &Transformer| {
                calls += 1;
                Some(check(if calls == 2 { 50 } else { 3 }))
            },
        )
        .unwrap();
    assert_eq!(report.rollbacks, 1);
    let steps: Vec<usize> = logged.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, [1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9, 10]);
    let sampled: Vec<usize> = logged
        .iter()
        .filter(|(_, c)| c.is_some())
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(sampled, [3, 6, 6, 9]);

    // Samples that always collapse: one rollback, then a typed error naming the collapse.
    let model = TransformerConfig::tiny(30).init(&device).unwrap();
    let err = Trainer::new(&config, &windows, &windows)
        .run_sampled(model, None, |_| {}, |_: &Transformer| Some(check(50)))
        .unwrap_err();
    assert!(matches!(err, ModelError::Training(_)), "{err}");
    assert!(err.to_string().contains("collapsed"), "{err}");
}

#[test]
fn sample_checks_measure_errors_pairing_and_repeats() {
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let grammar = Grammar::new(&vocab);
    let pad = vocab.id(aurl_core::tokenize::Token::Pad).unwrap();
    let bos = vocab.id(aurl_core::tokenize::Token::Bos).unwrap();
    // BOS then four padding tokens: the grammar refuses every padding token.
    let c = SampleCheck::of(&grammar, &[vec![bos, pad, pad, pad, pad]]);
    assert_eq!((c.pieces, c.tokens, c.longest_repeat), (1, 5, 4));
    assert!((c.grammar_error_rate - 0.8).abs() < 1e-12, "{c:?}");
    let config = TrainConfig {
        collapse_error_rate: Some(0.5),
        ..TrainConfig::default()
    };
    assert!(c.collapse(&config).unwrap().contains("grammar error rate"));
    assert!(
        TrainConfig {
            collapse_repeat: Some(1),
            ..TrainConfig::default()
        }
        .validate()
        .is_err()
    );
}
