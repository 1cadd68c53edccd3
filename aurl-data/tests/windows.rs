//! Training windows cut from the middle of a piece stand on their own: each one validates
//! with no grammar error and decodes with nothing skipped, for every scheme.

use aurl_core::tokenize::{Grammar, SCHEMES, TokenizerConfig, by_name};
use aurl_core::{Note, Pitch, Score, Tempo, TimeSignature, Track, Velocity};
use aurl_data::windows::TokenWindows;

/// Eight bars: a melody and a bass, a tempo change in bar 3, 3/4 from bar 5, long notes
/// held across window cuts.
fn score() -> Score {
    let mut s = Score::new(480);
    s.tempos = vec![
        Tempo::new(0, 500_000).unwrap(),
        Tempo::new(480 * 8, 400_000).unwrap(),
    ];
    s.time_signatures = vec![
        TimeSignature::new(0, 4, 4).unwrap(),
        TimeSignature::new(480 * 16, 3, 4).unwrap(),
    ];
    let mut melody = Track::new("melody");
    let mut bass = Track::new("bass");
    bass.program = aurl_core::Program::new(32).unwrap();
    for beat in 0..28u64 {
        let p = 60 + (beat * 5 % 12) as u8;
        melody.notes.push(Note::new(
            Pitch::new(p).unwrap(),
            Velocity::new(80).unwrap(),
            beat * 480,
            360,
        ));
        if beat % 3 == 0 {
            bass.notes.push(Note::new(
                Pitch::new(p - 24).unwrap(),
                Velocity::new(70).unwrap(),
                beat * 480,
                480 * 5,
            ));
        }
    }
    s.tracks = vec![melody, bass];
    s
}

#[test]
fn every_window_validates_and_decodes_cleanly() {
    for scheme in SCHEMES {
        let tokenizer = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let vocab = tokenizer.vocab();
        let seq = tokenizer.encode(&score()).unwrap().framed(vocab);
        let grammar = Grammar::new(vocab);
        let pad = vocab.id(aurl_core::tokenize::Token::Pad).unwrap();
        let windows = TokenWindows::with_headers(std::slice::from_ref(&seq), 40, 17, vocab);
        assert!(windows.count() >= 4, "{scheme}: {}", windows.count());
        let mut notes = 0;
        for i in 0..windows.count() {
            let w: Vec<u16> = windows
                .get(i)
                .unwrap()
                .iter()
                .copied()
                .filter(|&t| t != pad)
                .collect();
            let report = grammar.validate(&w);
            assert_eq!(report.error_count(), 0, "{scheme} window {i}: {report:?}");
            let (decoded, skipped) = tokenizer.decode(&w);
            assert_eq!(skipped.skipped(), 0, "{scheme} window {i}: {skipped:?}");
            notes += decoded.note_count();
        }
        assert!(notes > 0, "{scheme}");
        // Without headers, windows from the middle do not validate.
        let plain = TokenWindows::new(&[seq], 40, 17, pad);
        let broken = (1..plain.count())
            .filter(|&i| grammar.validate(&plain.get(i).unwrap()).error_count() > 0)
            .count();
        assert!(broken > 0, "{scheme}");
    }
}

/// Windows cut on demand from the memory-mapped token cache of the fixtures are the
/// windows cut from the tokenized corpus in memory: with headers, plain and contiguous.
#[test]
fn lazy_windows_over_the_mapped_cache_equal_held_windows() {
    use std::sync::Arc;

    use aurl_core::tokenize::{Remi, SequenceSource, Token, Tokenizer};
    use aurl_data::cache::{CacheOptions, build_cache};
    use aurl_data::corpus::SplitRule;

    let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"));
    let dir = std::env::temp_dir().join(format!("aurl-lazy-windows-{}", std::process::id()));
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let vocab = remi.vocab();
    let pad = vocab.id(Token::Pad).unwrap();
    let corpus = build_cache(
        &[fixtures.to_path_buf()],
        &SplitRule::Hash(30),
        &remi,
        None,
        &CacheOptions::new(&dir),
        |_| {},
    )
    .unwrap();
    let memory = corpus.tokenized();
    let framed: Vec<_> = memory
        .train
        .iter()
        .cloned()
        .map(|s| s.framed(vocab))
        .collect();
    let (train, valid) = corpus.into_sources(Some(vocab));
    assert_eq!(train.count(), framed.len());
    assert_eq!(valid.count(), memory.valid.len());
    assert_eq!(train.notes(), memory.train_notes);
    assert_eq!(
        train.total_tokens(),
        framed.iter().map(|s| s.ids.len()).sum::<usize>()
    );
    let train: Arc<dyn SequenceSource> = Arc::new(train);
    for (len, stride) in [(32, 16), (64, 64), (17, 5)] {
        let cases = [
            (
                TokenWindows::with_headers(&framed, len, stride, vocab),
                TokenWindows::lazy(Arc::clone(&train), len, stride, 0, Some(vocab)),
            ),
            (
                TokenWindows::new(&framed, len, stride, pad),
                TokenWindows::lazy(Arc::clone(&train), len, stride, pad, None),
            ),
            (
                TokenWindows::contiguous(&framed, len, pad),
                TokenWindows::lazy_contiguous(Arc::clone(&train), len, pad),
            ),
        ];
        for (held, lazy) in cases {
            assert!(lazy.is_lazy() && !held.is_lazy());
            assert!(held.count() > 0);
            assert_eq!(lazy.count(), held.count(), "len {len} stride {stride}");
            assert_eq!(lazy.pad(), held.pad());
            for i in 0..held.count() {
                assert_eq!(lazy.get(i), held.get(i), "window {i}, len {len}");
            }
            assert!(lazy.get(held.count()).is_none());
            let all: Vec<usize> = (0..held.count()).collect();
            assert_eq!(lazy.target_tokens(&all), held.target_tokens(&all));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
