//! The score corpus on the fixtures: preprocessing at read time, tokenization, and
//! per-epoch augmented training splits.

mod common;

use aurl_core::tokenize::{Grammar, Remi, Tokenizer, TokenizerConfig};
use aurl_data::augment::{Augmentation, Schedule};
use aurl_data::corpus::{SplitRule, read_corpus, tokenize_corpus_with};
use aurl_data::preprocess::{Preprocessing, max_polyphony};
use common::fixtures_dir;

#[test]
fn without_preprocessing_the_score_corpus_tokenizes_like_tokenize_corpus() {
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let rule = SplitRule::Hash(20);
    let roots = [fixtures_dir()];
    let direct = tokenize_corpus_with(&roots, &remi, &rule);
    let via = read_corpus(&roots, &rule, None).unwrap().tokenize(&remi);
    assert_eq!(direct.train.len(), via.train.len());
    assert_eq!(direct.valid_notes, via.valid_notes);
    assert!(
        direct
            .train
            .iter()
            .zip(&via.train)
            .all(|(a, b)| a.ids == b.ids)
    );
    assert_eq!(direct.failed.len(), via.failed.len());
}

#[test]
fn preprocessing_applies_to_every_file_and_a_bad_config_is_refused_up_front() {
    let config = Preprocessing {
        max_voices: Some(1),
        ..Preprocessing::default()
    };
    let corpus = read_corpus(&[fixtures_dir()], &SplitRule::Hash(10), Some(&config)).unwrap();
    assert!(corpus.train.len() >= 15);
    for f in corpus.train.iter().chain(&corpus.valid) {
        for t in f.score.tracks.iter().filter(|t| !t.is_drum) {
            assert!(max_polyphony(t) <= 1, "{}", f.path.display());
        }
    }
    let bad = Preprocessing {
        max_voices: Some(0),
        ..Preprocessing::default()
    };
    let err = read_corpus(&[fixtures_dir()], &SplitRule::Hash(10), Some(&bad)).unwrap_err();
    assert!(err.to_string().contains("max_voices"), "{err}");
}

#[test]
fn augmented_epochs_are_reproducible_distinct_and_grammar_valid() {
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let grammar = Grammar::new(remi.vocab());
    let corpus = read_corpus(&[fixtures_dir()], &SplitRule::Hash(10), None).unwrap();
    let plain = corpus.tokenize(&remi);
    let mut config = Augmentation::default();
    config.transpose.probability = Schedule::Constant(1.0);
    config.velocity.probability = Schedule::Constant(0.5);
    let e0 = corpus.augmented_train(&remi, &config, 1, 0).unwrap();
    let again = corpus.augmented_train(&remi, &config, 1, 0).unwrap();
    let e1 = corpus.augmented_train(&remi, &config, 1, 1).unwrap();
    assert_eq!(e0.len(), plain.train.len());
    assert!(e0.iter().zip(&again).all(|(a, b)| a.ids == b.ids));
    assert!(e0.iter().zip(&e1).any(|(a, b)| a.ids != b.ids));
    for s in e0.iter().chain(&e1) {
        assert_eq!(grammar.validate(&s.ids).error_count(), 0);
    }
    // With augmentation off, every epoch is the plain training split.
    let off = corpus
        .augmented_train(&remi, &Augmentation::default(), 1, 3)
        .unwrap();
    assert!(off.iter().zip(&plain.train).all(|(a, b)| a.ids == b.ids));
}
