//! The VAE learns: it reconstructs a batch of real tokens from their codes, the code
//! matters to the decoder, cached decoding equals teacher forcing, and bad configs are
//! typed errors.

mod common;

use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl_core::{Note, Pitch, Score, Track, Velocity};
use aurl_model::ModelError;
use aurl_model::loss::{FreeBits, KlSchedule, TokenLoss};
use aurl_model::vae::{LatentRng, PriorKind, Vae, VaeConfig, VaeLossConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use common::{ids, max_diff};

/// REMI tokens of a two-bar run over `pitches` with a bass an octave and a half below.
fn tokens(pitches: &[u8]) -> (Vec<i64>, usize) {
    let mut s = Score::new(480);
    let mut t = Track::new("piano");
    for (i, &p) in pitches.iter().enumerate() {
        let start = i as u64 * 240;
        let note = |pitch, velocity, length| {
            Note::new(
                Pitch::new(pitch).unwrap(),
                Velocity::new(velocity).unwrap(),
                start,
                length,
            )
        };
        t.notes.push(note(p, 90, 240));
        t.notes.push(note(p - 19, 60, 120));
    }
    s.tracks.push(t);
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let ids = remi.encode(&s).unwrap().ids;
    (ids.into_iter().map(i64::from).collect(), remi.vocab().len())
}

const LEN: usize = 40;

/// Two different pieces, as inputs and targets of LEN tokens.
fn batch(device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2, Bool>, usize) {
    let (up, vocab) = tokens(&[60, 62, 64, 65, 67, 69, 71, 72]);
    let (down, _) = tokens(&[84, 81, 79, 76, 74, 72, 69, 67]);
    assert!(up.len() > LEN && down.len() > LEN);
    let rows = [&up[..=LEN], &down[..=LEN]];
    let inputs: Vec<Vec<i64>> = rows.iter().map(|r| r[..LEN].to_vec()).collect();
    let targets: Vec<Vec<i64>> = rows.iter().map(|r| r[1..].to_vec()).collect();
    let padding = Tensor::<2, Int>::zeros([2, LEN], device).equal_elem(1);
    (ids(&inputs, device), ids(&targets, device), padding, vocab)
}

fn train(config: &VaeConfig, steps: usize) -> (Vae, f32, f32) {
    let device = Device::flex().autodiff();
    device.seed(5);
    let (inputs, targets, padding, vocab) = batch(&device);
    assert_eq!(config.decoder.vocab_size, vocab);
    let mut vae = config.init(&device).unwrap();
    let mut optim = AdamConfig::new().init();
    let token_loss = TokenLoss::new(vocab);
    let loss_config = VaeLossConfig {
        free_bits: FreeBits::Total { bits: 8.0 },
        kl: KlSchedule::Linear {
            beta: 0.1,
            steps: 100,
        },
        kl_start: 0,
    };
    let mut rng = LatentRng::new(1);
    let (mut first, mut last) = (None, f32::INFINITY);
    for step in 0..steps {
        let loss = vae
            .loss(
                inputs.clone(),
                targets.clone(),
                padding.clone(),
                &token_loss,
                &loss_config,
                step as u64,
                &mut rng,
            )
            .unwrap();
        last = loss.reconstruction.clone().into_scalar::<f32>();
        assert!(loss.kl.clone().into_scalar::<f32>().is_finite());
        first.get_or_insert(last);
        let grads = GradientsParams::from_grads(loss.total.backward(), &vae);
        vae = optim.step(3e-3, vae, grads);
    }
    (vae, first.unwrap(), last)
}

#[test]
fn the_vae_reconstructs_a_batch_and_its_code_matters() {
    let (_, vocab) = tokens(&[60]);
    for prior in [PriorKind::Gaussian, PriorKind::Mixture { components: 3 }] {
        let config = VaeConfig {
            prior,
            ..VaeConfig::tiny(vocab)
        };
        let (vae, first, last) = train(&config, 400);
        assert!(
            first > 4.0,
            "{prior:?}: starts near ln({vocab}), was {first}"
        );
        assert!(last < 0.1 * first, "{prior:?}: {first} → {last}");

        // The pieces share their header; at the first token where they part, only the code
        // can tell the decoder which one it is: each piece's own code predicts it, the other
        // piece's code does not.
        let device = Device::flex();
        let vae = vae.valid();
        let (inputs, targets, padding, _) = batch(&device);
        let rows: Vec<i64> = targets
            .clone()
            .into_data()
            .convert::<i64>()
            .try_to_vec()
            .unwrap();
        let part = (0..LEN).find(|&k| rows[k] != rows[LEN + k]).unwrap();
        let own = vae.encode(inputs.clone(), padding.clone()).mode();
        let swapped = aurl_model::vae::Latent {
            global: Tensor::cat(vec![own.row(1).global, own.row(0).global], 0),
            local: own.local.as_ref().map(|l| {
                Tensor::cat(
                    vec![l.clone().narrow(0, 1, 1), l.clone().narrow(0, 0, 1)],
                    0,
                )
            }),
        };
        let nll_at_part = |latent| -> Vec<f32> {
            let logits = vae.decode(inputs.clone(), padding.clone(), latent).unwrap();
            let log_p = burn::tensor::activation::log_softmax(logits.narrow(1, part, 1), 2);
            (0..2)
                .map(|r| {
                    let target = rows[r * LEN + part] as usize;
                    -log_p
                        .clone()
                        .slice([r..r + 1, 0..1, target..target + 1])
                        .into_scalar::<f32>()
                })
                .collect()
        };
        let (own_nll, swapped_nll) = (nll_at_part(&own), nll_at_part(&swapped));
        for r in 0..2 {
            assert!(
                own_nll[r] < 0.5 && swapped_nll[r] > own_nll[r] + 1.0,
                "{prior:?} row {r} at {part}: own code {own_nll:?}, the other's {swapped_nll:?}"
            );
        }
    }
}

#[test]
fn cached_conditioned_decoding_equals_teacher_forcing() {
    let device = Device::flex();
    device.seed(9);
    let (inputs, _, padding, vocab) = batch(&device);
    // Segments of 16 positions in a 64-position frame: the 40 tokens cross three of them.
    let vae = VaeConfig::tiny(vocab).init(&device).unwrap();
    let latent = vae.sample_prior(2, &mut LatentRng::new(3), &device);
    let full = vae.decode(inputs.clone(), padding, &latent).unwrap();
    let mut cache = vae.new_cache(2);
    let mut at = 0;
    for len in [5, 1, 1, 12, 1, 20] {
        let part = vae
            .decode_step(inputs.clone().narrow(1, at, len), at, &mut cache, &latent)
            .unwrap();
        let d = max_diff(part, full.clone().narrow(1, at, len));
        assert!(d < 1e-4, "chunk at {at}+{len}: {d}");
        at += len;
    }
    assert_eq!(at, LEN);
}

#[test]
fn prior_samples_are_seeded_and_shaped() {
    let device = Device::flex();
    for prior in [PriorKind::Gaussian, PriorKind::Mixture { components: 2 }] {
        let vae = VaeConfig {
            prior,
            ..VaeConfig::tiny(30)
        }
        .init(&device)
        .unwrap();
        let a = vae.sample_prior(3, &mut LatentRng::new(4), &device);
        let b = vae.sample_prior(3, &mut LatentRng::new(4), &device);
        assert_eq!(a.global.dims(), [3, 16]);
        assert_eq!(a.local.as_ref().unwrap().dims(), [3, 4, 8]);
        assert_eq!(a.to_rows(), b.to_rows());
        assert_eq!(a.to_rows()[0].len(), 16 + 4 * 8);
    }
}

#[test]
fn bad_configs_and_shapes_are_typed_errors() {
    let device = Device::flex();
    let base = VaeConfig::tiny(30);
    for (bad, field) in [
        (
            VaeConfig {
                z_dim: 0,
                ..base.clone()
            },
            "z_dim",
        ),
        (
            VaeConfig {
                segments: 0,
                ..base.clone()
            },
            "local_z_dim",
        ),
        (
            VaeConfig {
                segments: 1000,
                ..base.clone()
            },
            "segments",
        ),
        (
            VaeConfig {
                prior: PriorKind::Mixture { components: 0 },
                ..base.clone()
            },
            "prior.components",
        ),
    ] {
        match bad.init(&device) {
            Err(ModelError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let vae = base.init(&device).unwrap();
    let tokens = Tensor::<2, Int>::zeros([1, 8], &device);
    let padding = tokens.clone().equal_elem(1);
    let err = vae.loss(
        tokens.clone(),
        Tensor::zeros([1, 7], &device),
        padding,
        &TokenLoss::new(30),
        &VaeLossConfig::default(),
        0,
        &mut LatentRng::new(0),
    );
    assert!(matches!(err, Err(ModelError::Shape(_))));
    let toml = "decoder = { vocab_size = 30, d_model = 32, n_layers = 1, n_heads = 2, d_ff = 64, \
                max_seq_len = 16, positions = \"sinusoidal\", attention = { kind = \"full\" }, \
                feed_forward = \"gelu\" }\nz_dim = 8\nbogus = 1";
    let err = toml::from_str::<VaeConfig>(toml).unwrap_err().to_string();
    assert!(err.contains("bogus"), "{err}");
}
