//! Streaming reports every note as its last token is generated — the same notes, at the same
//! times, as decoding the finished piece — and control tokens forced at bar boundaries land
//! in their bars while the pieces stay grammar-valid.

use aurl_core::tokenize::{SCHEMES, Token, TokenizerConfig, by_name};
use aurl_core::{Note, Pitch, Score, Track, Velocity};
use aurl_model::TransformerConfig;
use aurl_sampling::{BarControl, GenerationConfig, Generator, Request, SamplingError};
use burn::prelude::*;

#[test]
fn streamed_notes_are_the_decoded_notes_of_the_piece() {
    let device = Device::flex();
    for scheme in SCHEMES {
        let tokenizer = by_name(scheme, &TokenizerConfig::default()).unwrap();
        device.seed(9);
        let model = TransformerConfig::tiny(tokenizer.vocab().len())
            .init(&device)
            .unwrap();
        let generator = Generator::new(
            &model,
            tokenizer.vocab(),
            GenerationConfig {
                batch_size: 3,
                // An untrained model would often end at once.
                min_new_tokens: 150,
                ..GenerationConfig::default()
            },
        )
        .unwrap();
        let requests: Vec<Request> = (0..3)
            .map(|seed| Request {
                max_new_tokens: 200,
                seed,
                ..Request::default()
            })
            .collect();
        let mut events = Vec::new();
        let pieces = generator
            .generate_streaming(&requests, |e| events.push(e))
            .unwrap();
        let mut notes = 0;
        for (i, piece) in pieces.iter().enumerate() {
            let (score, _) = tokenizer.decode(&piece.tokens);
            let tempo = score.tempo_map();
            let mut decoded: Vec<(u8, i64, u8)> = score
                .tracks
                .iter()
                .flat_map(|t| &t.notes)
                .map(|n| {
                    let start = tempo.seconds(n.start);
                    (
                        n.pitch.get(),
                        (start * 1e4).round() as i64,
                        n.velocity.get(),
                    )
                })
                .collect();
            let mut streamed: Vec<(u8, i64, u8)> = events
                .iter()
                .filter(|e| e.request == i)
                .filter_map(|e| e.note)
                .map(|n| (n.pitch, (n.start_seconds * 1e4).round() as i64, n.velocity))
                .collect();
            decoded.sort_unstable();
            streamed.sort_unstable();
            // A piece cut by its limit is closed after streaming: the event scheme's closing
            // NoteOffs complete notes the stream never saw end.
            if piece.closed > 0 && scheme == "event" {
                assert!(
                    streamed.iter().all(|n| decoded.contains(n)),
                    "{scheme} {i}: {:?} not in {decoded:?}",
                    streamed
                        .iter()
                        .filter(|n| !decoded.contains(n))
                        .collect::<Vec<_>>()
                );
            } else {
                assert_eq!(streamed, decoded, "{scheme} piece {i}");
            }
            notes += decoded.len();
        }
        assert!(notes > 0, "{scheme}: the pieces have notes");
    }
}

#[test]
fn controls_are_forced_into_their_bars_and_pieces_stay_valid() {
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let vocab = tokenizer.vocab();
    device.seed(4);
    let model = TransformerConfig::tiny(vocab.len()).init(&device).unwrap();
    let config = GenerationConfig {
        min_new_tokens: 100,
        ..GenerationConfig::default()
    };
    let generator = Generator::new(&model, vocab, config).unwrap();
    let id = |t| vocab.id(t).unwrap();
    let (tempo, chord) = (id(Token::Tempo(3)), id(Token::Tempo(7)));
    let three_four = id(Token::TimeSig(vocab.grid().time_signature_index(3, 4) as u8));
    let controls = vec![
        BarControl {
            bar: 0,
            tokens: vec![three_four, tempo],
        },
        BarControl {
            bar: 2,
            tokens: vec![chord],
        },
    ];
    let requests: Vec<Request> = (0..6)
        .map(|seed| Request {
            max_new_tokens: 400,
            max_bars: Some(4),
            seed,
            controls: controls.clone(),
            ..Request::default()
        })
        .collect();
    for piece in generator.generate(&requests).unwrap() {
        assert_eq!(piece.grammar.error_count(), 0, "{:?}", piece.grammar);
        let bars = generator_bars(&piece.tokens, vocab);
        let in_bar = |bar: usize, token: u16| {
            bars.get(bar)
                .is_some_and(|range| piece.tokens[range.clone()].contains(&token))
        };
        let dropped = piece.controls_dropped;
        assert!(in_bar(0, three_four), "the time signature opens bar 0");
        assert!(in_bar(0, tempo) || dropped > 0, "the tempo lands in bar 0");
        if bars.len() > 2 {
            assert!(in_bar(2, chord) || dropped > 0, "the chord lands in bar 2");
        }
        let (score, report) = tokenizer.decode(&piece.tokens);
        assert_eq!(report.skipped(), 0);
        assert_eq!(
            (
                score.time_signatures[0].numerator,
                score.time_signatures[0].denominator
            ),
            (3, 4)
        );
    }
    // A piece cut by its limit just after the `Bar` token opening bar 2 leaves bar 2's
    // control unplaced: it is counted; the control of a bar never begun is not.
    let mut track = Track::new("piano");
    for bar in 0..4u64 {
        let pitch = Pitch::new(60 + bar as u8).unwrap();
        track.notes.push(Note::new(
            pitch,
            Velocity::new(80).unwrap(),
            bar * 1920,
            480,
        ));
    }
    let mut score = Score::new(480);
    score.tracks.push(track);
    let four_bars = tokenizer.encode(&score).unwrap().framed(vocab).ids;
    let bar_two = generator_bars(&four_bars, vocab)[2].start;
    let cut = generator
        .generate(&[Request {
            prompt: four_bars[..=bar_two].to_vec(),
            max_new_tokens: 1,
            controls: vec![
                BarControl {
                    bar: 2,
                    tokens: vec![chord],
                },
                BarControl {
                    bar: 9,
                    tokens: vec![tempo],
                },
            ],
            ..Request::default()
        }])
        .unwrap()
        .remove(0);
    assert!(!cut.tokens[cut.prompt_len..].contains(&chord));
    assert_eq!(cut.controls_dropped, 1);
    // Only control tokens may be forced.
    let bad = Request {
        max_new_tokens: 10,
        controls: vec![BarControl {
            bar: 0,
            tokens: vec![id(Token::Pitch(60))],
        }],
        ..Request::default()
    };
    assert!(matches!(
        generator.generate(&[bad]),
        Err(SamplingError::InvalidConfig { field, .. }) if field == "controls"
    ));
}

/// Token ranges of each bar (from each Bar token to the next).
fn generator_bars(
    tokens: &[u16],
    vocab: &aurl_core::tokenize::Vocabulary,
) -> Vec<std::ops::Range<usize>> {
    let bar = vocab.id(Token::Bar).unwrap();
    let starts: Vec<usize> = (0..tokens.len()).filter(|&i| tokens[i] == bar).collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| s..starts.get(k + 1).copied().unwrap_or(tokens.len()))
        .collect()
}
