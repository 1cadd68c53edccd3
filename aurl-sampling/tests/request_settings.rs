//! Per-request settings: a request's own strategy, grammar switch and minimum length win over
//! the generator's, so requests with different settings share a batch (as a server's do);
//! and a cancelled request stops while the rest of its batch goes on.

use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl_model::TransformerConfig;
use aurl_sampling::{CancelToken, GenerationConfig, Generator, Request, Strategy};
use burn::prelude::*;

fn setup() -> (Remi, aurl_model::Transformer) {
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let device = Device::flex();
    device.seed(5);
    let model = TransformerConfig::tiny(remi.vocab().len())
        .init(&device)
        .unwrap();
    (remi, model)
}

fn cold() -> Strategy {
    Strategy {
        temperature: 0.7,
        top_k: Some(12),
        top_p: None,
        ..Strategy::default()
    }
}

#[test]
fn a_requests_own_settings_give_the_piece_a_generator_with_them_gives() {
    let (remi, model) = setup();
    let config = |strategy: Strategy, constrained: bool, min_new_tokens: usize| GenerationConfig {
        strategy,
        constrained,
        min_new_tokens,
        batch_size: 8,
        ..GenerationConfig::default()
    };
    let default =
        Generator::new(&model, remi.vocab(), config(Strategy::default(), true, 0)).unwrap();
    let own = Request {
        max_new_tokens: 50,
        seed: 3,
        strategy: Some(cold()),
        constrained: Some(false),
        min_new_tokens: Some(50),
        ..Request::default()
    };
    let plain = Request {
        max_new_tokens: 50,
        seed: 4,
        ..Request::default()
    };
    let batch = default.generate(&[plain.clone(), own.clone()]).unwrap();
    let configured = Generator::new(&model, remi.vocab(), config(cold(), false, 50)).unwrap();
    let alone = configured
        .generate(&[Request {
            strategy: None,
            constrained: None,
            min_new_tokens: None,
            ..own
        }])
        .unwrap();
    assert_eq!(batch[1], alone[0], "the request's settings won");
    assert_eq!(
        batch[1].tokens.len() - batch[1].prompt_len,
        50,
        "no EOS before 50"
    );
    assert_eq!(batch[0], default.generate(&[plain]).unwrap()[0]);
}

#[test]
fn a_bad_strategy_of_one_request_is_refused_naming_the_field() {
    let (remi, model) = setup();
    let generator = Generator::new(&model, remi.vocab(), GenerationConfig::default()).unwrap();
    let bad = Request {
        max_new_tokens: 5,
        strategy: Some(Strategy {
            temperature: -1.0,
            ..Strategy::default()
        }),
        ..Request::default()
    };
    let e = generator.generate(&[bad]).unwrap_err();
    assert!(e.to_string().contains("temperature"), "{e}");
}

#[test]
fn a_cancelled_request_stops_and_its_batch_goes_on() {
    let (remi, model) = setup();
    let generator = Generator::new(&model, remi.vocab(), GenerationConfig::default()).unwrap();
    // Events reach the callback through a channel, a few steps behind the decoder, so a
    // cancel from the callback lands a few tokens late; a token cancelled before the call
    // stops its row before its first token.
    let cancel = CancelToken::default();
    cancel.cancel();
    let requests: Vec<Request> = (0..3)
        .map(|seed| Request {
            max_new_tokens: 80,
            min_new_tokens: Some(80),
            seed,
            cancel: (seed == 1).then(|| cancel.clone()),
            ..Request::default()
        })
        .collect();
    let mut seen = [0usize; 3];
    let pieces = generator
        .generate_streaming(&requests, |e| seen[e.request] += 1)
        .unwrap();
    assert_eq!(seen, [80, 0, 80]);
    assert_eq!(pieces[1].tokens.len(), pieces[1].prompt_len);
    assert!(!pieces[1].ended);
    // The others are the pieces they are without the cancelled row beside them.
    let alone = generator.generate(&[requests[0].clone()]).unwrap();
    assert_eq!(pieces[0], alone[0]);
}
