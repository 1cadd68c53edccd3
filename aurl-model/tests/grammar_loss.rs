//! The grammar loss in the trainer: the probability mass on forbidden tokens falls when it
//! is weighted in, and asking for it without a vocabulary is a typed error.

use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl_core::{Note, Pitch, Score, Track, Velocity};
use aurl_model::train::{TokenWindows, TrainConfig, Trainer};
use aurl_model::{ModelError, TransformerConfig};
use burn::prelude::*;

fn windows() -> (TokenWindows, aurl_core::tokenize::Vocabulary) {
    let mut s = Score::new(480);
    let mut t = Track::new("piano");
    for i in 0..32u64 {
        let pitch = Pitch::new(60 + (i * 5 % 12) as u8).unwrap();
        t.notes
            .push(Note::new(pitch, Velocity::new(80).unwrap(), i * 240, 240));
    }
    s.tracks.push(t);
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let vocab = remi.vocab().clone();
    let sequence = remi.encode(&s).unwrap().framed(&vocab);
    (
        TokenWindows::with_headers(&[sequence], 32, 16, &vocab),
        vocab,
    )
}

fn config(grammar_loss: f32) -> TrainConfig {
    TrainConfig {
        steps: 200,
        batch_size: 4,
        warmup_steps: 2,
        learning_rate: 3e-3,
        eval_every: None,
        grammar_loss,
        ..TrainConfig::default()
    }
}

/// The forbidden mass of every step of a run with the grammar loss weighted by `weight`.
fn forbidden_mass(weight: f32) -> Vec<f64> {
    let (windows, vocab) = windows();
    let device = Device::flex().autodiff();
    device.seed(6);
    let model = TransformerConfig::tiny(vocab.len()).init(&device).unwrap();
    let config = config(weight);
    let mut mass = Vec::new();
    Trainer::new(&config, &windows, &windows)
        .with_grammar(&vocab)
        .run(model, None, |m| mass.push(m.components["grammar"]))
        .unwrap();
    mass
}

#[test]
fn the_grammar_loss_lowers_the_forbidden_mass_beyond_cross_entropy() {
    // Cross entropy alone (a negligible weight: the mass is measured, not trained) already
    // lowers the mass as the model learns the targets, which are always allowed; weighted
    // in, the grammar loss takes it much further.
    let measured = forbidden_mass(1e-6);
    let weighted = forbidden_mass(10.0);
    assert!(
        measured[0] > 0.5,
        "an untrained model spreads its mass: {}",
        measured[0]
    );
    let tail = |m: &[f64]| m[100..].iter().sum::<f64>() / (m.len() - 100) as f64;
    let (plain, with) = (tail(&measured), tail(&weighted));
    assert!(
        with < 0.5 * plain,
        "mean forbidden mass over the last 100 steps: {plain} vs {with}"
    );
}

#[test]
fn the_grammar_loss_needs_the_vocabulary() {
    let (windows, vocab) = windows();
    let device = Device::flex().autodiff();
    let model = TransformerConfig::tiny(vocab.len()).init(&device).unwrap();
    let config = config(0.5);
    let err = Trainer::new(&config, &windows, &windows)
        .run(model, None, |_| {})
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::InvalidConfig { field, .. } if field == "train.grammar_loss"),
        "{err}"
    );
}
