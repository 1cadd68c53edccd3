//! Every fixture the reader accepts round-trips exactly through every tokenization scheme,
//! and its encoding is grammar-valid — checked through the audit, as users run it.

mod common;

use aurl_core::tokenize::{SCHEMES, TokenizerConfig};
use aurl_data::audit::{TokenizerCheck, audit_files, discover};
use common::fixtures_dir;

#[test]
fn every_readable_fixture_round_trips_and_is_grammar_valid_for_every_scheme() {
    for config in [
        TokenizerConfig::default(),
        TokenizerConfig {
            use_chords: true,
            use_pitch_bends: true,
            sustain_pedal: true,
            triplets: true,
            use_rests: true,
            max_rest: 2,
            use_programs: false,
            ..TokenizerConfig::default()
        },
        TokenizerConfig {
            use_tempos: false,
            use_time_signatures: false,
            ..TokenizerConfig::default()
        },
    ] {
        let checks: Vec<TokenizerCheck> = SCHEMES
            .iter()
            .map(|s| TokenizerCheck::new(s, &config).unwrap())
            .collect();
        let files = discover(&[fixtures_dir()]).files;
        let summary = audit_files(&files, 1, &checks, || {});
        let readable = summary.files - summary.failed;
        assert!(readable >= 25);
        for (scheme, t) in &summary.tokenizers {
            assert_eq!(t.roundtrip_exact, readable, "{scheme} with {config:?}");
            assert_eq!(t.grammar_valid, readable, "{scheme} with {config:?}");
            assert!(t.tokens > 0);
        }
        let files_with_checks = summary.per_file.unwrap();
        assert!(
            files_with_checks
                .iter()
                .filter(|f| f.error.is_none())
                .all(|f| f.tokenizers.len() == SCHEMES.len())
        );
    }
}
