//! Training windows cut from the middle of a piece stand on their own: each one validates
//! with no grammar error and decodes with nothing skipped, for every scheme.

use aurl_core::tokenize::{Grammar, SCHEMES, TokenizerConfig, by_name};
use aurl_core::{Note, Pitch, Score, Tempo, TimeSignature, Track, Velocity};
use aurl_model::train::TokenWindows;

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
            .filter(|&i| grammar.validate(plain.get(i).unwrap()).error_count() > 0)
            .count();
        assert!(broken > 0, "{scheme}");
    }
}
