//! With the grammar constraint, every generated piece is grammar-valid and decodes with
//! nothing skipped — even from an untrained model, for every scheme, batch and seed.

use aurl_core::tokenize::{SCHEMES, TokenizerConfig, by_name};
use aurl_model::{Transformer, TransformerConfig, WeightFormat};
use aurl_sampling::{BeamConfig, GenerationConfig, Generator, Request, Strategy, write_piece};
use burn::prelude::*;

#[test]
fn constrained_pieces_are_always_valid_and_decode_cleanly() {
    let device = Device::flex();
    for scheme in SCHEMES {
        let tokenizer = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let model = tiny_model(&device, tokenizer.vocab().len(), 3);
        for strategy in [
            Strategy::default(),
            Strategy {
                temperature: 2.0,
                top_p: None,
                ..Strategy::default()
            },
        ] {
            let config = GenerationConfig {
                strategy,
                constrained: true,
                batch_size: 4,
                ..GenerationConfig::default()
            };
            let generator = Generator::new(&model, tokenizer.vocab(), config).unwrap();
            let requests: Vec<Request> = (0..10)
                .map(|seed| Request {
                    prompt: vec![],
                    max_new_tokens: 30 + 7 * seed as usize,
                    seed,
                    ..Request::default()
                })
                .collect();
            let pieces = generator.generate(&requests).unwrap();
            assert_eq!(pieces.len(), 10);
            for (i, piece) in pieces.iter().enumerate() {
                assert_eq!(
                    piece.grammar.error_count(),
                    0,
                    "{scheme} piece {i}: {:?}",
                    piece.grammar
                );
                // At most the limit, plus the Program + NoteOff pairs that close an event-scheme piece.
                assert!(
                    piece.tokens.len() <= 1 + requests[i].max_new_tokens + 2 * piece.closed,
                    "{scheme} {i}: {} tokens, limit {}, closed {}",
                    piece.tokens.len(),
                    requests[i].max_new_tokens,
                    piece.closed
                );
                let (_, report) = tokenizer.decode(&piece.tokens);
                assert_eq!(report.skipped(), 0, "{scheme} piece {i}: {report:?}");
            }
        }
    }
}

#[test]
fn a_piece_is_written_as_a_midi_file_that_reads_back() {
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let model = tiny_model(&device, tokenizer.vocab().len(), 5);
    let generator = Generator::new(&model, tokenizer.vocab(), GenerationConfig::default()).unwrap();
    let piece = &generator
        .generate(&[Request {
            prompt: vec![],
            max_new_tokens: 120,
            seed: 2,
            ..Request::default()
        }])
        .unwrap()[0];
    let dir = std::env::temp_dir().join(format!("aurl-sampling-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("piece.mid");
    let summary = write_piece(piece, tokenizer.as_ref(), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (score, report) = aurl_data::read_midi(&bytes, aurl_data::Mode::Strict).unwrap();
    assert!(report.is_clean());
    assert_eq!(score.note_count(), summary.notes);
    assert_eq!((summary.grammar_errors, summary.decode_skipped), (0, 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batching_does_not_change_what_a_seed_generates() {
    let device = Device::flex();
    let tokenizer = by_name("tsd", &TokenizerConfig::default()).unwrap();
    let model = tiny_model(&device, tokenizer.vocab().len(), 8);
    let requests = seeded_requests(5, 40);
    let run = |batch_size| {
        let config = GenerationConfig {
            batch_size,
            ..GenerationConfig::default()
        };
        Generator::new(&model, tokenizer.vocab(), config)
            .unwrap()
            .generate(&requests)
            .unwrap()
            .into_iter()
            .map(|g| g.tokens)
            .collect::<Vec<_>>()
    };
    let one = run(1);
    assert_eq!(one, run(5));
    assert_eq!(one, run(2));
}

/// A prompt longer than the prefill chunk goes through the cache in several forward calls;
/// the tokens picked after it are those a full recomputation picks, for every kind of
/// attention and position the chunks must carry across (ring buffers, summaries, distances).
#[test]
fn a_long_prompt_prefilled_in_chunks_continues_as_a_full_recomputation_does() {
    use aurl_model::{AttentionKind, PositionEncoding};
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let vocab = tokenizer.vocab().len();
    // 600 tokens: two whole chunks of 256 and part of a third.
    let prompt: Vec<_> = (0..600u32)
        .map(|i| u16::try_from(4 + (i * 37) % (vocab as u32 - 4)).unwrap())
        .collect();
    let request = Request {
        prompt,
        max_new_tokens: 8,
        seed: 1,
        ..Request::default()
    };
    for (attention, positions) in [
        (AttentionKind::Full, PositionEncoding::Sinusoidal),
        (
            AttentionKind::Sliding { window: 48 },
            PositionEncoding::Rotary,
        ),
        (
            AttentionKind::Sliding { window: 40 },
            PositionEncoding::Relative,
        ),
        (
            AttentionKind::Hierarchical {
                window: 32,
                block: 16,
            },
            PositionEncoding::Learned,
        ),
    ] {
        device.seed(4);
        let model = TransformerConfig {
            attention,
            positions,
            max_relative: Some(64),
            max_positions: 1024,
            ..TransformerConfig::tiny(vocab)
        }
        .init(&device)
        .unwrap();
        let run = |use_cache| {
            let config = GenerationConfig {
                strategy: Strategy {
                    greedy: true,
                    ..Strategy::default()
                },
                constrained: false,
                use_cache,
                ..GenerationConfig::default()
            };
            Generator::new(&model, tokenizer.vocab(), config)
                .unwrap()
                .generate(std::slice::from_ref(&request))
                .unwrap()
                .remove(0)
                .tokens
        };
        let cached = run(true);
        assert_eq!(cached.len(), 608, "{attention:?}");
        assert_eq!(cached, run(false), "{attention:?} with {positions:?}");
    }
}

#[test]
fn recomputing_without_the_cache_picks_the_same_tokens_and_streaming_reports_each() {
    let device = Device::flex();
    let tokenizer = by_name("tsd", &TokenizerConfig::default()).unwrap();
    let model = tiny_model(&device, tokenizer.vocab().len(), 5);
    let requests: Vec<Request> = (0..3)
        .map(|seed| Request {
            prompt: vec![],
            max_new_tokens: 24 + 8 * seed as usize,
            seed,
            ..Request::default()
        })
        .collect();
    let run = |use_cache| {
        let config = GenerationConfig {
            strategy: Strategy {
                greedy: true,
                ..Strategy::default()
            },
            batch_size: 3,
            use_cache,
            ..GenerationConfig::default()
        };
        let generator = Generator::new(&model, tokenizer.vocab(), config).unwrap();
        let mut events = Vec::new();
        let pieces = generator
            .generate_streaming(&requests, |e| events.push(e))
            .unwrap();
        (pieces, events)
    };
    let (cached, events) = run(true);
    let (uncached, _) = run(false);
    for (a, b) in cached.iter().zip(&uncached) {
        assert_eq!(a.tokens, b.tokens);
    }
    for (i, piece) in cached.iter().enumerate() {
        let streamed: Vec<_> = events.iter().filter(|e| e.request == i).collect();
        let sampled = &piece.tokens[piece.prompt_len..];
        // Closing a piece cut by the limit may drop a half-written note after streaming.
        assert!(streamed.len() >= sampled.len() && streamed.len() <= requests[i].max_new_tokens);
        for (k, e) in streamed.iter().enumerate() {
            assert_eq!(e.new_tokens, k + 1);
            assert!(e.step_seconds >= 0.0);
        }
        let prefix: Vec<_> = streamed
            .iter()
            .map(|e| e.token)
            .take(sampled.len())
            .collect();
        assert_eq!(prefix, sampled, "tokens stream in order");
    }
}

#[test]
fn the_repetition_penalty_and_typical_sampling_keep_pieces_valid() {
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let model = tiny_model(&device, tokenizer.vocab().len(), 6);
    let config = GenerationConfig {
        strategy: Strategy {
            typical_p: Some(0.9),
            repetition_penalty: 1.3,
            repetition_window: 32,
            ..Strategy::default()
        },
        ..GenerationConfig::default()
    };
    let generator = Generator::new(&model, tokenizer.vocab(), config).unwrap();
    let requests = seeded_requests(4, 60);
    for piece in generator.generate(&requests).unwrap() {
        assert_eq!(piece.grammar.error_count(), 0, "{:?}", piece.grammar);
    }
}

#[test]
fn pieces_stop_at_their_bar_and_second_limits() {
    let device = Device::flex();
    for scheme in ["remi", "tsd", "event"] {
        let tokenizer = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let model = tiny_model(&device, tokenizer.vocab().len(), 9);
        let config = GenerationConfig {
            batch_size: 3,
            min_new_tokens: 250,
            ..GenerationConfig::default()
        };
        let generator = Generator::new(&model, tokenizer.vocab(), config).unwrap();
        let request = |seed, max_bars, max_seconds| Request {
            max_new_tokens: 250,
            max_bars,
            max_seconds,
            seed,
            ..Request::default()
        };
        let requests = [
            request(1, None, None),
            request(1, Some(1), None),
            request(1, None, Some(1.0)),
        ];
        let pieces = generator.generate(&requests).unwrap();
        let scores: Vec<_> = pieces
            .iter()
            .map(|p| tokenizer.decode(&p.tokens).0)
            .collect();
        let last_onset = |s: &aurl_core::Score| {
            s.tracks
                .iter()
                .flat_map(|t| t.notes.iter())
                .map(|n| n.start)
                .max()
                .unwrap_or(0)
        };
        for p in &pieces {
            assert_eq!(p.grammar.error_count(), 0, "{scheme}: {:?}", p.grammar);
        }
        // One bar: no onset after the first bar line.
        let first_bar = aurl_core::metrics::bars(&scores[1])
            .first()
            .map_or(0, |b| b.end);
        assert!(
            last_onset(&scores[1]) < first_bar.max(1),
            "{scheme}: {}",
            last_onset(&scores[1])
        );
        // One second at the piece's tempo.
        let seconds = scores[2].tempo_map().seconds(last_onset(&scores[2]));
        assert!(seconds <= 1.0 + 1e-9, "{scheme}: last onset at {seconds} s");
        // Where the unlimited piece goes on past a limit, the limited one is shorter.
        let first_bar_0 = aurl_core::metrics::bars(&scores[0])
            .first()
            .map_or(0, |b| b.end);
        if last_onset(&scores[0]) >= first_bar_0 {
            assert!(pieces[1].tokens.len() < pieces[0].tokens.len(), "{scheme}");
        }
        if scores[0].tempo_map().seconds(last_onset(&scores[0])) > 1.0 {
            assert!(pieces[2].tokens.len() < pieces[0].tokens.len(), "{scheme}");
        }
    }
}

#[test]
fn beam_search_of_width_one_is_greedy_and_wider_beams_stay_valid() {
    let device = Device::flex();
    for scheme in ["remi", "event"] {
        let tokenizer = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let model = tiny_model(&device, tokenizer.vocab().len(), 12);
        let config = GenerationConfig {
            strategy: Strategy {
                greedy: true,
                ..Strategy::default()
            },
            ..GenerationConfig::default()
        };
        let generator = Generator::new(&model, tokenizer.vocab(), config).unwrap();
        let request = Request {
            max_new_tokens: 40,
            ..Request::default()
        };
        let greedy = generator.generate(std::slice::from_ref(&request)).unwrap();
        let narrow = BeamConfig {
            width: 1,
            length_penalty: 0.0,
        };
        let beam1 = generator.beam_search(&request, &narrow).unwrap();
        assert_eq!(beam1.tokens, greedy[0].tokens, "{scheme}");
        for width in [2, 5] {
            let wide = BeamConfig {
                width,
                length_penalty: 1.0,
            };
            let piece = generator.beam_search(&request, &wide).unwrap();
            assert_eq!(piece.grammar.error_count(), 0, "{scheme} width {width}");
            assert!(piece.tokens.len() <= 1 + 40 + 2 * piece.closed);
            let (_, report) = tokenizer.decode(&piece.tokens);
            assert_eq!(report.skipped(), 0, "{scheme} width {width}");
        }
        assert!(
            generator
                .beam_search(
                    &request,
                    &BeamConfig {
                        width: 0,
                        length_penalty: 1.0
                    }
                )
                .is_err()
        );
    }
}

#[test]
fn a_piece_longer_than_the_context_slides_and_stays_valid() {
    let device = Device::flex();
    for scheme in SCHEMES {
        let tokenizer = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let model = tiny_model(&device, tokenizer.vocab().len(), 8);
        // A 48-position context and 400 new tokens: about 16 slides. EOS is held back so the
        // piece really is that long; a short request batched alongside is unaffected.
        let config = GenerationConfig {
            context: Some(48),
            min_new_tokens: 400,
            batch_size: 4,
            ..GenerationConfig::default()
        };
        let generator = Generator::new(&model, tokenizer.vocab(), config).unwrap();
        let requests = [
            Request {
                max_new_tokens: 400,
                seed: 1,
                ..Request::default()
            },
            Request {
                max_new_tokens: 20,
                seed: 2,
                ..Request::default()
            },
        ];
        let pieces = generator.generate(&requests).unwrap();
        let long = &pieces[0];
        assert!(
            long.tokens.len() >= 1 + 400 - 2 * long.closed.max(1),
            "{scheme}: {} tokens",
            long.tokens.len()
        );
        assert_eq!(
            long.grammar.error_count(),
            0,
            "{scheme}: {:?}",
            long.grammar
        );
        let (score, report) = tokenizer.decode(&long.tokens);
        assert_eq!(report.skipped(), 0, "{scheme}: {report:?}");
        assert!(score.note_count() > 0, "{scheme}");
        assert!(pieces[1].tokens.len() <= 1 + 20 + 2 * pieces[1].closed);
        // Alone, the short request generates the same tokens (batching is seed-stable).
        let alone = generator.generate(&requests[1..]).unwrap();
        assert_eq!(alone[0].tokens, pieces[1].tokens, "{scheme}");
        // A prompt longer than the context starts from its last bars and continues validly.
        let prompt: Vec<_> = long.tokens[..120].to_vec();
        let more = generator
            .generate(&[Request {
                prompt: prompt.clone(),
                max_new_tokens: 30,
                seed: 3,
                ..Request::default()
            }])
            .unwrap();
        assert_eq!(more[0].tokens[..120], prompt[..], "{scheme}");
        assert_eq!(
            more[0].grammar.error_count(),
            0,
            "{scheme}: {:?}",
            more[0].grammar
        );
    }
    // Without the cache nothing slides: the piece stops at the context.
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let model = TransformerConfig::tiny(tokenizer.vocab().len())
        .init(&device)
        .unwrap();
    let config = GenerationConfig {
        context: Some(48),
        use_cache: false,
        ..GenerationConfig::default()
    };
    let generator = Generator::new(&model, tokenizer.vocab(), config).unwrap();
    let piece = &generator
        .generate(&[Request {
            max_new_tokens: 400,
            ..Request::default()
        }])
        .unwrap()[0];
    assert!(piece.tokens.len() <= 48, "{}", piece.tokens.len());
}

#[test]
fn f16_and_int8_decoding_stay_valid_and_reproducible() {
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let model = tiny_model(&device, tokenizer.vocab().len(), 9);
    let requests = seeded_requests(6, 60);
    let generate = |weights: WeightFormat, batch_size: usize| {
        let config = GenerationConfig {
            weights,
            batch_size,
            ..GenerationConfig::default()
        };
        Generator::new(&model, tokenizer.vocab(), config)
            .unwrap()
            .generate(&requests)
            .unwrap()
    };
    for weights in [WeightFormat::F16, WeightFormat::Int8] {
        let pieces = generate(weights, 1);
        assert_eq!(
            pieces,
            generate(weights, 1),
            "{weights}: same seeds, same pieces"
        );
        for (i, piece) in pieces.iter().enumerate() {
            assert_eq!(
                piece.grammar.error_count(),
                0,
                "{weights} piece {i}: {:?}",
                piece.grammar
            );
            let (_, report) = tokenizer.decode(&piece.tokens);
            assert_eq!(report.skipped(), 0, "{weights} piece {i}: {report:?}");
        }
        // Batched rows take the few-row product; they stay valid too.
        for piece in generate(weights, 3) {
            assert_eq!(piece.grammar.error_count(), 0);
        }
    }
    // The f32 model is untouched by its generator's copies.
    assert_eq!(model.weight_format(), WeightFormat::F32);
}

/// An untrained `tiny()` model over `vocab` ids, its weights drawn after `device.seed(seed)`.
fn tiny_model(device: &Device, vocab: usize, seed: u64) -> Transformer {
    device.seed(seed);
    TransformerConfig::tiny(vocab).init(device).unwrap()
}

/// `n` requests from BOS, seeds `0..n`, at most `max_new_tokens` each.
fn seeded_requests(n: u64, max_new_tokens: usize) -> Vec<Request> {
    (0..n)
        .map(|seed| Request {
            prompt: vec![],
            max_new_tokens,
            seed,
            ..Request::default()
        })
        .collect()
}
