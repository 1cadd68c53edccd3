//! The model can learn: a tiny transformer drives its loss on one batch of real tokens far
//! down in a few hundred steps, for every position encoding.

mod common;

use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl_core::{Note, Pitch, Score, Track, Velocity};
use aurl_model::loss::TokenLoss;
use aurl_model::{AttentionKind, PositionEncoding, TransformerConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use common::ids;

/// REMI tokens of a two-bar C-major run with an accompaniment.
fn tokens() -> (Vec<i64>, usize) {
    let mut s = Score::new(480);
    let mut t = Track::new("piano");
    for (i, p) in [60u8, 62, 64, 65, 67, 69, 71, 72].into_iter().enumerate() {
        let start = i as u64 * 240;
        t.notes.push(Note::new(
            Pitch::new(p).unwrap(),
            Velocity::new(90).unwrap(),
            start,
            240,
        ));
        t.notes.push(Note::new(
            Pitch::new(p - 24).unwrap(),
            Velocity::new(60).unwrap(),
            start,
            120,
        ));
    }
    s.tracks.push(t);
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let ids = remi.encode(&s).unwrap().ids;
    (ids.into_iter().map(i64::from).collect(), remi.vocab().len())
}

#[test]
fn training_on_one_batch_drives_the_loss_down() {
    let (seq, vocab) = tokens();
    assert!(seq.len() > 40, "{}", seq.len());
    let seq = &seq[..41];
    let variants = [
        (PositionEncoding::Sinusoidal, AttentionKind::Full),
        (PositionEncoding::Rotary, AttentionKind::Full),
        (PositionEncoding::Relative, AttentionKind::Full),
        (
            PositionEncoding::Sinusoidal,
            AttentionKind::Hierarchical {
                window: 8,
                block: 4,
            },
        ),
        (
            PositionEncoding::Rotary,
            AttentionKind::MultiScale {
                window: 8,
                block: 4,
            },
        ),
    ];
    for (positions, attention) in variants {
        let device = Device::flex().autodiff();
        device.seed(11);
        let config = TransformerConfig {
            positions,
            attention,
            ..TransformerConfig::tiny(vocab)
        };
        let mut model = config.init(&device).unwrap();
        let mut optim = AdamConfig::new().init();
        let loss = TokenLoss::new(vocab).with_padding(0);
        let inputs = ids(&[seq[..40].to_vec()], &device);
        let targets = ids(&[seq[1..].to_vec()], &device);
        let mut first = None;
        let mut last = f32::INFINITY;
        for _ in 0..150 {
            let logits = model.forward(inputs.clone(), 0, None).unwrap();
            let l = loss.forward(logits, targets.clone());
            last = l.clone().into_scalar::<f32>();
            first.get_or_insert(last);
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
        let first = first.unwrap();
        assert!(
            first > 4.0,
            "{positions:?} {attention:?}: starts near ln({vocab}) but was {first}"
        );
        assert!(
            last < 0.1 * first,
            "{positions:?} {attention:?}: {first} → {last}"
        );
    }
}
