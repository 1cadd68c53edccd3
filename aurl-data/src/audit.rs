//! Corpus audits: read every MIDI file under some folders and report what was found.
//!
//! ```
//! use aurl_data::audit::{audit_files, discover};
//! let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"));
//! let found = discover(&[fixtures.to_path_buf()]);
//! let summary = audit_files(&found.files, 1, &[], || {});
//! assert_eq!(summary.files, found.files.len());
//! assert!(summary.notes > 0);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aurl_core::Score;
use aurl_core::tokenize::{Grammar, Tokenizer, TokenizerConfig};
use rayon::prelude::*;
use serde::Serialize;

use crate::{Mode, read_midi};

mod roundtrip;

pub use roundtrip::{RoundTrip, round_trip};

/// File extensions read as MIDI (compared case-insensitively).
pub const MIDI_EXTENSIONS: [&str; 4] = ["mid", "midi", "kar", "rmi"];

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// MIDI files, sorted by path.
    pub files: Vec<PathBuf>,
    /// Paths that could not be listed, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Whether a path has one of the [`MIDI_EXTENSIONS`].
#[must_use]
pub fn is_midi_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MIDI_EXTENSIONS.iter().any(|m| e.eq_ignore_ascii_case(m)))
}

/// Lists the MIDI files under `paths` (files are taken as given when they have a MIDI
/// extension; folders are walked recursively), sorted. Symbolic links to folders are not
/// followed, so link cycles cannot hang the walk. [`crate::walk::walk`] finds the same
/// files lazily.
#[must_use]
pub fn discover(paths: &[PathBuf]) -> Discovered {
    let mut out = Discovered::default();
    for item in crate::walk::walk(paths) {
        match item {
            Ok(file) => out.files.push(file),
            Err(unreadable) => out.unreadable.push(unreadable),
        }
    }
    // Sorted already, unless roots overlap.
    out.files.sort();
    out
}

/// How one file fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Well-formed: read with nothing to repair (strict mode accepts it as is).
    StrictOk,
    /// Read only thanks to repairs (see the repair counts).
    Repaired,
    /// No usable content: a typed error.
    Failed,
}

/// A tokenization scheme to check on every file: round trip and grammar validity.
pub struct TokenizerCheck {
    tokenizer: Box<dyn Tokenizer + Send + Sync>,
    grammar: Grammar,
}

impl TokenizerCheck {
    /// Checks for the named scheme (see [`aurl_core::tokenize::SCHEMES`]).
    ///
    /// # Errors
    /// An unknown scheme or invalid config.
    pub fn new(scheme: &str, config: &TokenizerConfig) -> Result<Self, aurl_core::Error> {
        let tokenizer = aurl_core::tokenize::by_name(scheme, config)?;
        let grammar = Grammar::new(tokenizer.vocab());
        Ok(Self { tokenizer, grammar })
    }

    fn check(&self, score: &Score) -> FileTokens {
        let t = Instant::now();
        let encoded = self.tokenizer.encode(score);
        let encode_ms = t.elapsed().as_secs_f64() * 1e3;
        let Ok(seq) = encoded else {
            return FileTokens {
                tokens: 0,
                roundtrip_exact: false,
                grammar_valid: false,
                encode_ms,
                decode_ms: 0.0,
            };
        };
        let t = Instant::now();
        let (decoded, report) = self.tokenizer.decode(&seq.ids);
        let decode_ms = t.elapsed().as_secs_f64() * 1e3;
        FileTokens {
            tokens: seq.ids.len(),
            roundtrip_exact: report.skipped() == 0 && decoded == self.tokenizer.quantize(score),
            grammar_valid: self.grammar.validate(&seq.ids).error_count() == 0,
            encode_ms,
            decode_ms,
        }
    }
}

/// One file under one tokenizer.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FileTokens {
    /// Tokens in the encoding.
    pub tokens: usize,
    /// Whether decode(encode(x)) == quantize(x).
    pub roundtrip_exact: bool,
    /// Whether the encoding passes the grammar with no error.
    pub grammar_valid: bool,
    /// Time to encode (including quantisation), ms.
    pub encode_ms: f64,
    /// Time to decode, ms.
    pub decode_ms: f64,
}

/// One tokenizer over the whole audit.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct TokenizerSummary {
    /// Total tokens.
    pub tokens: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Files whose round trip was exact.
    pub roundtrip_exact: usize,
    /// Files whose encoding is grammar-valid.
    pub grammar_valid: usize,
    /// Total encode time, ms.
    pub encode_ms: f64,
    /// Total decode time, ms.
    pub decode_ms: f64,
}

/// The audit of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileAudit {
    /// The path as given.
    pub file: String,
    /// Outcome.
    pub status: FileStatus,
    /// Notes read.
    pub notes: usize,
    /// Tracks (instruments) read.
    pub tracks: usize,
    /// Duration in seconds.
    pub seconds: f64,
    /// Repairs by kind.
    pub repairs: BTreeMap<&'static str, u32>,
    /// Whether Score → MIDI bytes → Score gave the same score.
    pub roundtrip_ok: bool,
    /// Whether it gave the same music: notes, programs, drums, controls and bends per track
    /// (channels may differ; see [`RoundTrip::music`]).
    pub roundtrip_music_ok: bool,
    /// What differed in the round trip, when it was not exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roundtrip_difference: Option<String>,
    /// Time spent reading and parsing, in milliseconds.
    #[serde(skip)]
    pub parse_ms: f64,
    /// The error, for failed files.
    #[serde(skip)]
    pub error: Option<String>,
    /// Results per tokenizer checked.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tokenizers: BTreeMap<&'static str, FileTokens>,
}

/// Audits MIDI bytes: lenient read, classification, a write/read round trip, and each
/// tokenizer check. `file` names them in the report.
#[must_use]
pub fn audit_bytes(file: String, bytes: &[u8], checks: &[TokenizerCheck]) -> FileAudit {
    let t = Instant::now();
    let result = read_midi(bytes, Mode::Lenient);
    let parse_ms = t.elapsed().as_secs_f64() * 1e3;
    match result {
        Ok((score, report)) => {
            let roundtrip = round_trip(&score);
            FileAudit {
                file,
                status: if report.is_clean() {
                    FileStatus::StrictOk
                } else {
                    FileStatus::Repaired
                },
                notes: score.note_count(),
                tracks: score.tracks.len(),
                seconds: score.duration_seconds(),
                repairs: report.repair_map(),
                roundtrip_ok: roundtrip.exact,
                roundtrip_music_ok: roundtrip.music,
                roundtrip_difference: roundtrip.difference,
                parse_ms,
                error: None,
                tokenizers: checks
                    .iter()
                    .map(|c| (c.tokenizer.vocab().scheme().name(), c.check(&score)))
                    .collect(),
            }
        }
        Err(e) => failed(file, e.to_string(), parse_ms),
    }
}

fn failed(file: String, error: String, parse_ms: f64) -> FileAudit {
    FileAudit {
        file,
        status: FileStatus::Failed,
        notes: 0,
        tracks: 0,
        seconds: 0.0,
        repairs: BTreeMap::new(),
        roundtrip_ok: false,
        roundtrip_music_ok: false,
        roundtrip_difference: None,
        parse_ms,
        error: Some(error),
        tokenizers: BTreeMap::new(),
    }
}

/// Audits one file from disk; reading the file counts towards its parse time.
#[must_use]
pub fn audit_file(path: &Path, checks: &[TokenizerCheck]) -> FileAudit {
    let name = path.display().to_string();
    let t = Instant::now();
    match crate::midi::read_file_bytes(path) {
        Ok(bytes) => {
            let read_ms = t.elapsed().as_secs_f64() * 1e3;
            let mut audit = audit_bytes(name, &bytes, checks);
            audit.parse_ms += read_ms;
            audit
        }
        Err(e) => failed(name, e.to_string(), t.elapsed().as_secs_f64() * 1e3),
    }
}

/// A failed file and why.
#[derive(Debug, Clone, Serialize)]
pub struct FileError {
    /// The path.
    pub file: String,
    /// The error message.
    pub error: String,
}

/// The summary of an audit, serialisable as the `--json` output of the audit example.
/// Field names are stable: later versions only add fields.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    /// Files examined.
    pub files: usize,
    /// Files read with nothing to repair.
    pub strict_ok: usize,
    /// Files read only leniently.
    pub repaired: usize,
    /// Files with no usable content.
    pub failed: usize,
    /// Total notes read.
    pub notes: usize,
    /// Total tracks read.
    pub tracks: usize,
    /// Total duration in seconds.
    pub seconds: f64,
    /// Files whose Score → MIDI → Score round trip was identical.
    pub roundtrip_ok: usize,
    /// Files whose round trip kept the music (channels may differ).
    pub roundtrip_music_ok: usize,
    /// Time spent reading and parsing, summed over files (ms).
    pub parse_ms: f64,
    /// Wall time of the whole run (ms).
    pub elapsed_ms: f64,
    /// The failed files.
    pub errors: Vec<FileError>,
    /// Repair kind → count, over all files.
    pub repairs: BTreeMap<&'static str, u64>,
    /// Per tokenizer checked (absent when none was).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tokenizers: BTreeMap<&'static str, TokenizerSummary>,
    /// Per-file details, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_file: Option<Vec<FileAudit>>,
}

impl AuditSummary {
    /// Sums per-file audits (kept in `per_file`; drop them with `per_file = None`).
    #[must_use]
    pub fn from_files(audits: Vec<FileAudit>, elapsed_ms: f64, checks: &[TokenizerCheck]) -> Self {
        let mut s = AuditSummary {
            files: audits.len(),
            strict_ok: 0,
            repaired: 0,
            failed: 0,
            notes: 0,
            tracks: 0,
            seconds: 0.0,
            roundtrip_ok: 0,
            roundtrip_music_ok: 0,
            parse_ms: 0.0,
            elapsed_ms,
            errors: Vec::new(),
            repairs: BTreeMap::new(),
            tokenizers: checks
                .iter()
                .map(|c| {
                    let v = c.tokenizer.vocab();
                    (
                        v.scheme().name(),
                        TokenizerSummary {
                            vocab_size: v.len(),
                            ..TokenizerSummary::default()
                        },
                    )
                })
                .collect(),
            per_file: None,
        };
        for a in &audits {
            match a.status {
                FileStatus::StrictOk => s.strict_ok += 1,
                FileStatus::Repaired => s.repaired += 1,
                FileStatus::Failed => s.failed += 1,
            }
            s.notes += a.notes;
            s.tracks += a.tracks;
            s.seconds += a.seconds;
            s.roundtrip_ok += usize::from(a.roundtrip_ok);
            s.roundtrip_music_ok += usize::from(a.roundtrip_music_ok);
            s.parse_ms += a.parse_ms;
            if let Some(e) = &a.error {
                s.errors.push(FileError {
                    file: a.file.clone(),
                    error: e.clone(),
                });
            }
            for (k, n) in &a.repairs {
                *s.repairs.entry(*k).or_default() += u64::from(*n);
            }
            for (scheme, f) in &a.tokenizers {
                if let Some(t) = s.tokenizers.get_mut(scheme) {
                    t.tokens += f.tokens;
                    t.roundtrip_exact += usize::from(f.roundtrip_exact);
                    t.grammar_valid += usize::from(f.grammar_valid);
                    t.encode_ms += f.encode_ms;
                    t.decode_ms += f.decode_ms;
                }
            }
        }
        s.per_file = Some(audits);
        s
    }
}

/// Audits `files` on `threads` worker threads (0 = all cores) with the given tokenizer
/// checks, calling `on_file` after each file (for progress bars). Results keep the order of
/// `files`.
#[must_use]
pub fn audit_files(
    files: &[PathBuf],
    threads: usize,
    checks: &[TokenizerCheck],
    on_file: impl Fn() + Sync,
) -> AuditSummary {
    let start = Instant::now();
    let run = || -> Vec<FileAudit> {
        files
            .par_iter()
            .map(|p| {
                let a = audit_file(p, checks);
                on_file();
                a
            })
            .collect()
    };
    let audits = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    };
    AuditSummary::from_files(audits, start.elapsed().as_secs_f64() * 1e3, checks)
}
