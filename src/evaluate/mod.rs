//! Set-level evaluation: a folder of generated MIDI files against a reference folder, as in
//! MusPy and mgeval — the per-piece metrics of [`piece_metrics`], each set's mean and
//! deviation, their overlap and KL divergence, token diversity, and for every generated
//! piece the longest melodic passage it shares with the reference (a plagiarism check
//! through one [`MelodyIndex`], not an all-pairs scan). `examples/evaluate.rs` prints it.
//!
//! ```
//! use aurl::core::tokenize::{Remi, TokenizerConfig};
//! use aurl::evaluate::{PieceSet, evaluate_sets};
//! let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
//! let set = PieceSet::read(&[fixtures.to_path_buf()]);
//! let remi = Remi::new(&TokenizerConfig::default())?;
//! let eval = evaluate_sets(&set, &set, &remi);
//! // A set compared with itself overlaps fully on every defined metric …
//! assert!(eval.rows.iter().filter_map(|r| r.overlap).all(|o| o > 0.99));
//! // … and each piece with a melody (two notes or more) finds it in the reference.
//! assert!(eval.passages.iter().filter(|p| p.shared.is_some()).count() >= set.len() / 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod plot;

use std::fmt::Write as _;
use std::path::PathBuf;

use aurl_core::Score;
use aurl_core::metrics::{
    MelodyIndex, PIECE_METRICS, Summary, compare_sets, distinct_n, piece_metrics, repetition_rate,
};
use aurl_core::tokenize::{TokenId, Tokenizer};
use aurl_data::audit::discover;
use aurl_data::{Mode, read_midi_file};
use rayon::prelude::*;
use serde::Serialize;

/// A checkpoint's NLL per token, perplexity and bits per note on some pieces.
pub use aurl_model::train::{NllReport, negative_log_likelihood};

/// The n of the token n-gram diversity figures.
pub const TOKEN_NGRAM: usize = 4;

/// The readable pieces of some folders or files.
#[derive(Debug, Clone, Default)]
pub struct PieceSet {
    /// Files read, in path order.
    pub files: Vec<PathBuf>,
    /// Their scores (same order).
    pub scores: Vec<Score>,
    /// Files or folders that could not be read, with the reason; they are skipped.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl PieceSet {
    /// Reads every MIDI file under `paths` leniently, in parallel. Files without notes are
    /// reported as unreadable: no metric is defined on them.
    #[must_use]
    pub fn read(paths: &[PathBuf]) -> PieceSet {
        let found = discover(paths);
        let results: Vec<_> = found
            .files
            .par_iter()
            .map(|p| {
                read_midi_file(p, Mode::Lenient)
                    .map(|(s, _)| s)
                    .map_err(|e| e.to_string())
            })
            .collect();
        let mut set = PieceSet {
            unreadable: found.unreadable,
            ..PieceSet::default()
        };
        for (path, result) in found.files.into_iter().zip(results) {
            match result {
                Ok(score) if score.note_count() > 0 => {
                    set.files.push(path);
                    set.scores.push(score);
                }
                Ok(_) => set.unreadable.push((path, "no notes".to_owned())),
                Err(e) => set.unreadable.push((path, e)),
            }
        }
        set
    }

    /// Number of readable pieces.
    #[must_use]
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether no piece was readable.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

/// One metric over both sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    /// Metric name (see [`PIECE_METRICS`]).
    pub metric: String,
    /// Summary over the generated pieces where the metric is defined.
    pub generated: Option<Summary>,
    /// Summary over the reference pieces.
    pub reference: Option<Summary>,
    /// Overlapping area of the two distributions (1 = indistinguishable).
    pub overlap: Option<f64>,
    /// KL(reference ‖ generated) in nats.
    pub kl_divergence: Option<f64>,
}

/// The plagiarism check of one generated piece.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassageRow {
    /// The generated file.
    pub file: PathBuf,
    /// Notes in its longest passage shared with a reference piece, and that piece's file.
    pub shared: Option<(usize, PathBuf)>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Readable generated pieces.
    pub generated_pieces: usize,
    /// Readable reference pieces.
    pub reference_pieces: usize,
    /// Per-metric rows: [`PIECE_METRICS`], then `token_repetition_rate`.
    pub rows: Vec<MetricRow>,
    /// Share of distinct token [`TOKEN_NGRAM`]-grams in the generated pieces (1 = none
    /// repeats), measured on as many tokens as the smaller set has.
    pub generated_distinct: Option<f64>,
    /// The same over the reference pieces, on the same number of tokens.
    pub reference_distinct: Option<f64>,
    /// Longest shared passage per generated piece.
    pub passages: Vec<PassageRow>,
    /// Summary of the shared-passage lengths in notes.
    pub shared_notes: Option<Summary>,
    /// The defined values of each row's metric over the generated pieces (same order as
    /// `rows`), for plots; not serialized.
    #[serde(skip)]
    pub generated_values: Vec<Vec<f64>>,
    /// The same over the reference pieces.
    #[serde(skip)]
    pub reference_values: Vec<Vec<f64>>,
}

/// Per-piece metrics, then the token repetition rate.
fn piece_rows(
    set: &PieceSet,
    tokenizer: &(dyn Tokenizer + Sync),
) -> (Vec<Vec<Option<f64>>>, Vec<Vec<TokenId>>) {
    set.scores
        .par_iter()
        .map(|score| {
            let ids = tokenizer.encode(score).map(|t| t.ids).unwrap_or_default();
            let mut m = piece_metrics(score);
            m.push(repetition_rate(&ids, TOKEN_NGRAM));
            (m, ids)
        })
        .unzip()
}

/// Distinct-n over `budget` tokens of `sequences` taken in a fixed pseudo-random order (the
/// last one cut), so that two sets of different sizes are compared at the same size —
/// distinct-n falls as a set grows.
fn distinct_at_budget(sequences: &[Vec<TokenId>], budget: usize) -> Option<f64> {
    let mut order: Vec<usize> = (0..sequences.len()).collect();
    // A fixed multiplicative hash: deterministic, and unrelated to file-name order.
    order.sort_by_key(|&i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut taken: Vec<&[TokenId]> = Vec::new();
    let mut left = budget;
    for i in order {
        if left == 0 {
            break;
        }
        let s = &sequences[i][..sequences[i].len().min(left)];
        left -= s.len();
        taken.push(s);
    }
    distinct_n(&taken, TOKEN_NGRAM)
}

/// Compares `generated` with `reference`; token metrics use `tokenizer` (the checkpoint's
/// vocabulary, or any scheme for model-free comparisons).
#[must_use]
pub fn evaluate_sets(
    generated: &PieceSet,
    reference: &PieceSet,
    tokenizer: &(dyn Tokenizer + Sync),
) -> Evaluation {
    let (gen_rows, gen_ids) = piece_rows(generated, tokenizer);
    let (ref_rows, ref_ids) = piece_rows(reference, tokenizer);
    let names = PIECE_METRICS
        .iter()
        .copied()
        .chain(["token_repetition_rate"]);
    let column = |rows: &[Vec<Option<f64>>], k: usize| -> Vec<f64> {
        rows.iter().filter_map(|r| r[k]).collect()
    };
    let generated_values: Vec<Vec<f64>> = (0..PIECE_METRICS.len() + 1)
        .map(|k| column(&gen_rows, k))
        .collect();
    let reference_values: Vec<Vec<f64>> = (0..PIECE_METRICS.len() + 1)
        .map(|k| column(&ref_rows, k))
        .collect();
    let rows = names
        .enumerate()
        .map(|(k, name)| {
            let (g, r) = (&generated_values[k], &reference_values[k]);
            let cmp = compare_sets(g, r);
            MetricRow {
                metric: name.to_owned(),
                generated: Summary::of(g),
                reference: Summary::of(r),
                overlap: cmp.map(|c| c.overlap),
                kl_divergence: cmp.map(|c| c.kl_divergence),
            }
        })
        .collect();
    let total = |ids: &[Vec<TokenId>]| ids.iter().map(Vec::len).sum::<usize>();
    let budget = total(&gen_ids).min(total(&ref_ids));
    let mut index = MelodyIndex::new();
    for (i, score) in reference.scores.iter().enumerate() {
        index.add(i.to_string(), score);
    }
    let passages: Vec<PassageRow> = generated
        .scores
        .par_iter()
        .zip(&generated.files)
        .map(|(score, file)| PassageRow {
            file: file.clone(),
            shared: index
                .longest_shared(score)
                .map(|p| (p.notes, reference.files[p.reference].clone())),
        })
        .collect();
    let lengths: Vec<f64> = passages
        .iter()
        .filter_map(|p| p.shared.as_ref())
        .map(|s| s.0 as f64)
        .collect();
    Evaluation {
        generated_pieces: generated.len(),
        reference_pieces: reference.len(),
        rows,
        generated_distinct: distinct_at_budget(&gen_ids, budget),
        reference_distinct: distinct_at_budget(&ref_ids, budget),
        passages,
        shared_notes: Summary::of(&lengths),
        generated_values,
        reference_values,
    }
}

fn mean_sd(s: Option<Summary>) -> String {
    s.map_or("—".to_owned(), |s| format!("{:.3} ± {:.3}", s.mean, s.sd))
}

fn opt(x: Option<f64>) -> String {
    x.map_or("—".to_owned(), |x| format!("{x:.3}"))
}

impl Evaluation {
    /// A plain-text table: metric, generated mean ± sd, reference mean ± sd, overlap, KL.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {:>20} {:>20} {:>8} {:>8}",
            format!(
                "metric ({} vs {})",
                self.generated_pieces, self.reference_pieces
            ),
            "generated",
            "reference",
            "overlap",
            "KL"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<28} {:>20} {:>20} {:>8} {:>8}",
                r.metric,
                mean_sd(r.generated),
                mean_sd(r.reference),
                opt(r.overlap),
                opt(r.kl_divergence)
            );
        }
        let _ = writeln!(
            out,
            "{:<28} {:>20} {:>20}",
            format!("distinct_{TOKEN_NGRAM}_tokens (set)"),
            opt(self.generated_distinct),
            opt(self.reference_distinct)
        );
        let _ = writeln!(
            out,
            "{:<28} {:>20}   (notes; max {})",
            "longest_shared_passage",
            mean_sd(self.shared_notes),
            self.passages
                .iter()
                .filter_map(|p| p.shared.as_ref())
                .map(|s| s.0)
                .max()
                .unwrap_or(0)
        );
        out
    }
}
