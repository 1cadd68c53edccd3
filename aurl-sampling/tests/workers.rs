//! Decoding on several threads splits a batch into shards, each with its own KV cache: the
//! pieces are the ones one thread makes, and every token is streamed once, to its request.

use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl_model::TransformerConfig;
use aurl_sampling::{GenerationConfig, Generator, Request, SamplingError};
use burn::prelude::*;

/// REMI and an untrained tiny model for it.
fn tiny_model() -> (Remi, aurl_model::Transformer) {
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let model = TransformerConfig::tiny(remi.vocab().len())
        .init(&Device::flex())
        .unwrap();
    (remi, model)
}

fn requests() -> Vec<Request> {
    // Two prompt lengths, so there are batches of two sizes to split.
    (0..7u64)
        .map(|seed| Request {
            prompt: if seed % 3 == 0 { vec![1, 4] } else { vec![] },
            max_new_tokens: 60 + 10 * seed as usize,
            seed,
            ..Request::default()
        })
        .collect()
}

#[test]
fn several_workers_make_the_pieces_one_worker_makes() {
    let device = Device::flex();
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    device.seed(3);
    let model = TransformerConfig::tiny(remi.vocab().len())
        .init(&device)
        .unwrap();
    let requests = requests();
    // The prompts above are arbitrary ids, fine without the grammar; with it, no prompts.
    let mut unprompted = requests.clone();
    for r in &mut unprompted {
        r.prompt.clear();
    }
    let generate = |workers: usize, constrained: bool, requests: &[Request]| {
        let config = GenerationConfig {
            batch_size: 4,
            workers,
            constrained,
            min_new_tokens: 40,
            ..GenerationConfig::default()
        };
        let generator = Generator::new(&model, remi.vocab(), config).unwrap();
        let mut events = Vec::new();
        let pieces = generator
            .generate_streaming(requests, |e| events.push(e))
            .unwrap();
        (pieces, events)
    };
    let per_request = |events: &[aurl_sampling::TokenEvent], i: usize| -> Vec<u16> {
        events
            .iter()
            .filter(|e| e.request == i)
            .map(|e| e.token)
            .collect()
    };
    for (constrained, requests) in [(false, &requests), (true, &unprompted)] {
        let (one, one_events) = generate(1, constrained, requests);
        for workers in [2, 3] {
            let (many, events) = generate(workers, constrained, requests);
            assert_eq!(one, many, "{workers} workers");
            // Every sampled token streamed once, in order within its request (a
            // constrained piece cut by its limit is then closed, so its stream may run
            // past its final tokens).
            for (i, piece) in many.iter().enumerate() {
                let streamed = per_request(&events, i);
                assert_eq!(streamed, per_request(&one_events, i));
                assert!(streamed.starts_with(&piece.tokens[piece.prompt_len..]));
                if !constrained {
                    assert_eq!(streamed, piece.tokens[piece.prompt_len..]);
                }
            }
        }
    }
}

#[test]
fn zero_workers_is_a_config_error() {
    let (remi, model) = tiny_model();
    let config = GenerationConfig {
        workers: 0,
        ..GenerationConfig::default()
    };
    let error = Generator::new(&model, remi.vocab(), config).unwrap_err();
    assert!(
        matches!(&error, SamplingError::InvalidConfig { field, .. } if field == "workers"),
        "{error}"
    );
}

#[test]
fn a_failing_shard_fails_the_call() {
    let (remi, model) = tiny_model();
    let config = GenerationConfig {
        workers: 2,
        batch_size: 1,
        ..GenerationConfig::default()
    };
    let generator = Generator::new(&model, remi.vocab(), config).unwrap();
    let mut requests = vec![Request::default(); 3];
    for r in &mut requests {
        r.max_new_tokens = 5;
    }
    // An id the vocabulary does not have: the grammar refuses this prompt.
    requests[1].prompt = vec![u16::MAX];
    let error = generator.generate(&requests).unwrap_err();
    assert!(
        matches!(error, SamplingError::InvalidPrompt { .. }),
        "{error}"
    );
}
