//! Continuous batching: requests that join a running batch at different steps, and leave
//! it at different steps, get the pieces they get alone — with a sliding context, a VAE's
//! codes, controls and per-request settings — and a windowed model is refused.

use std::collections::HashMap;

use aurl_core::tokenize::{Remi, TokenId, Tokenizer, TokenizerConfig};
use aurl_model::vae::{LatentRng, VaeConfig};
use aurl_model::{AttentionKind, PositionEncoding, TransformerConfig};
use aurl_sampling::{
    CancelToken, Continuous, Generated, GenerationConfig, Generator, Request, SamplingError,
    Strategy,
};
use burn::prelude::*;

fn remi() -> Remi {
    Remi::new(&TokenizerConfig::default()).unwrap()
}

/// The tiny transformer over REMI, initialised from `seed`.
fn tiny(remi: &Remi, seed: u64) -> aurl_model::Transformer {
    let device = Device::flex();
    device.seed(seed);
    TransformerConfig::tiny(remi.vocab().len())
        .init(&device)
        .unwrap()
}

/// Requests of several prompt lengths, settings and lengths.
fn requests(remi: &Remi) -> Vec<Request> {
    let vocab = remi.vocab();
    let prompt: Vec<TokenId> = vec![vocab.bos(), 1, 2];
    (0..7u64)
        .map(|i| Request {
            prompt: if i % 3 == 1 {
                prompt.clone()
            } else {
                Vec::new()
            },
            max_new_tokens: 20 + 9 * i as usize,
            seed: 40 + i,
            min_new_tokens: Some(10),
            strategy: (i % 2 == 0).then(|| Strategy {
                temperature: 0.8,
                top_k: Some(20),
                ..Strategy::default()
            }),
            constrained: Some(i != 3),
            ..Request::default()
        })
        .collect()
}

/// Decodes `requests` through a continuous batch, the `i`-th joining at step `3 · (i / 2)`
/// (at most `max_rows` at once, the rest waiting), and returns the pieces by request.
fn continuous(generator: &Generator<'_>, requests: &[Request], max_rows: usize) -> Vec<Generated> {
    let mut batch = Continuous::new(generator).unwrap();
    let mut done: HashMap<u64, Generated> = HashMap::new();
    let mut tokens: HashMap<u64, Vec<TokenId>> = HashMap::new();
    let mut waiting: Vec<usize> = (0..requests.len()).collect();
    let mut step = 0;
    let mut most = 0;
    while done.len() < requests.len() {
        // Requests arrive in pairs (prefilled together when their prompts are as long).
        let mut due = Vec::new();
        while let Some(&i) = waiting.first() {
            if 3 * (i / 2) > step || batch.len() + due.len() >= max_rows {
                break;
            }
            due.push((i as u64, requests[i].clone()));
            waiting.remove(0);
        }
        for (_, joined) in batch.join_all(due) {
            joined.unwrap();
        }
        most = most.max(batch.len());
        let result = batch.step().unwrap();
        for t in result.tokens {
            tokens.entry(t.key).or_default().push(t.token);
        }
        for (key, piece) in result.finished {
            done.insert(key, piece);
        }
        step += 1;
        assert!(step < 10_000, "the batch ends");
    }
    assert!(most > 1, "rows shared steps");
    let pieces: Vec<Generated> = (0..requests.len() as u64)
        .map(|k| done[&k].clone())
        .collect();
    for (k, piece) in pieces.iter().enumerate() {
        // The reported tokens are the new ones (before a constrained piece's repair).
        let reported = &tokens[&(k as u64)];
        let new = &piece.tokens[piece.prompt_len..];
        let shared = reported.len().min(new.len());
        assert_eq!(
            reported[..shared.saturating_sub(4)],
            new[..shared.saturating_sub(4)]
        );
    }
    pieces
}

#[test]
fn rows_joining_at_different_steps_get_the_pieces_they_get_alone() {
    let remi = remi();
    let device = Device::flex();
    for positions in [PositionEncoding::Rotary, PositionEncoding::Learned] {
        device.seed(5);
        let model = TransformerConfig {
            positions,
            ..TransformerConfig::tiny(remi.vocab().len())
        }
        .init(&device)
        .unwrap();
        let generator = Generator::new(&model, remi.vocab(), GenerationConfig::default()).unwrap();
        let requests = requests(&remi);
        let pieces = continuous(&generator, &requests, 4);
        for (i, request) in requests.iter().enumerate() {
            let alone = generator.generate(std::slice::from_ref(request)).unwrap();
            assert_eq!(pieces[i], alone[0], "{positions:?} request {i}");
        }
    }
}

#[test]
fn a_row_past_the_context_slides_as_a_lone_request_does() {
    let remi = remi();
    let device = Device::flex();
    device.seed(6);
    let model = TransformerConfig::tiny(remi.vocab().len())
        .init(&device)
        .unwrap();
    let config = GenerationConfig {
        context: Some(24),
        ..GenerationConfig::default()
    };
    let generator = Generator::new(&model, remi.vocab(), config).unwrap();
    let requests: Vec<Request> = (0..3u64)
        .map(|i| Request {
            max_new_tokens: 30 + 20 * i as usize,
            min_new_tokens: Some(70),
            seed: i,
            ..Request::default()
        })
        .collect();
    let pieces = continuous(&generator, &requests, 3);
    for (i, request) in requests.iter().enumerate() {
        let alone = generator.generate(std::slice::from_ref(request)).unwrap();
        assert_eq!(pieces[i], alone[0], "request {i}");
        assert!(pieces[i].tokens.len() > 24, "it went past the context");
    }
}

#[test]
fn a_vae_rows_follow_their_codes() {
    let remi = remi();
    let vocab = remi.vocab();
    let device = Device::flex();
    device.seed(8);
    let vae = VaeConfig::tiny(vocab.len()).init(&device).unwrap();
    let requests: Vec<Request> = vae
        .sample_prior(3, &mut LatentRng::new(2), &device)
        .to_rows()
        .into_iter()
        .enumerate()
        .map(|(i, code)| Request {
            max_new_tokens: 30,
            seed: i as u64,
            latent: Some(code.into_iter().map(|x| 4.0 * x).collect()),
            ..Request::default()
        })
        .collect();
    let generator = Generator::conditioned(&vae, vocab, GenerationConfig::default()).unwrap();
    let pieces = continuous(&generator, &requests, 3);
    for (i, request) in requests.iter().enumerate() {
        let alone = generator.generate(std::slice::from_ref(request)).unwrap();
        assert_eq!(pieces[i], alone[0], "piece {i}");
    }
    // A row without its code is refused and the batch goes on without it.
    let mut batch = Continuous::new(&generator).unwrap();
    let missing = Request {
        max_new_tokens: 5,
        ..Request::default()
    };
    assert!(matches!(
        batch.join(0, missing),
        Err(SamplingError::InvalidConfig { .. })
    ));
    assert!(batch.is_empty());
}

#[test]
fn a_cancelled_row_leaves_at_the_next_step() {
    let remi = remi();
    let model = tiny(&remi, 5);
    let generator = Generator::new(&model, remi.vocab(), GenerationConfig::default()).unwrap();
    let mut batch = Continuous::new(&generator).unwrap();
    let cancel = CancelToken::default();
    let long = |seed, cancel| Request {
        max_new_tokens: 200,
        min_new_tokens: Some(200),
        seed,
        cancel,
        ..Request::default()
    };
    batch.join(1, long(1, Some(cancel.clone()))).unwrap();
    batch.join(2, long(2, None)).unwrap();
    for _ in 0..3 {
        assert_eq!(batch.step().unwrap().tokens.len(), 2);
    }
    cancel.cancel();
    let step = batch.step().unwrap();
    assert_eq!(step.tokens.len(), 1);
    assert_eq!(step.finished.len(), 1);
    assert_eq!(step.finished[0].0, 1);
    assert_eq!(
        step.finished[0].1.tokens.len() - step.finished[0].1.prompt_len,
        3
    );
    assert_eq!(batch.len(), 1);
}

#[test]
fn models_with_per_batch_attention_state_are_refused() {
    let remi = remi();
    let device = Device::flex();
    let model = TransformerConfig {
        attention: AttentionKind::Sliding { window: 8 },
        ..TransformerConfig::tiny(remi.vocab().len())
    }
    .init(&device)
    .unwrap();
    let generator = Generator::new(&model, remi.vocab(), GenerationConfig::default()).unwrap();
    assert!(!Continuous::supports(&generator));
    assert!(matches!(
        Continuous::new(&generator),
        Err(SamplingError::InvalidConfig { .. })
    ));
    let model = TransformerConfig::tiny(remi.vocab().len())
        .init(&device)
        .unwrap();
    let uncached = GenerationConfig {
        use_cache: false,
        ..GenerationConfig::default()
    };
    let generator = Generator::new(&model, remi.vocab(), uncached).unwrap();
    assert!(Continuous::new(&generator).is_err());
}

#[test]
fn a_refused_request_of_a_burst_leaves_the_others_joined() {
    let remi = remi();
    let model = tiny(&remi, 5);
    let generator = Generator::new(&model, remi.vocab(), GenerationConfig::default()).unwrap();
    let mut batch = Continuous::new(&generator).unwrap();
    let good = |seed| Request {
        max_new_tokens: 6,
        min_new_tokens: Some(6),
        seed,
        ..Request::default()
    };
    let bad = Request {
        strategy: Some(Strategy {
            temperature: -1.0,
            ..Strategy::default()
        }),
        ..good(2)
    };
    let results = batch.join_all(vec![(1, good(1)), (2, bad), (3, good(3))]);
    let outcome: Vec<(u64, bool)> = results.iter().map(|(k, r)| (*k, r.is_ok())).collect();
    assert!(outcome.contains(&(1, true)) && outcome.contains(&(3, true)));
    assert!(outcome.contains(&(2, false)));
    assert_eq!(batch.len(), 2);
    // The two joined together decode the pieces they decode alone.
    let mut done = HashMap::new();
    while !batch.is_empty() {
        done.extend(batch.step().unwrap().finished);
    }
    for seed in [1, 3] {
        let alone = generator.generate(&[good(seed)]).unwrap();
        assert_eq!(done[&seed], alone[0]);
    }
}
