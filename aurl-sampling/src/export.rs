//! Generated tokens → score → MIDI file, with what it took.

use std::path::Path;

use aurl_core::tokenize::{TokenId, Tokenizer};
use aurl_data::{Mode, WriteOptions, read_midi_file, write_midi_file};
use serde::Serialize;

use crate::{Generated, SamplingError};

/// What was written for one piece.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PieceSummary {
    /// Tokens including the prompt.
    pub tokens: usize,
    /// Tokens the model added.
    pub new_tokens: usize,
    /// Notes in the written file.
    pub notes: usize,
    /// Tracks with notes in the written file (one per program, or per voice of a program
    /// when the vocabulary keeps voices).
    pub tracks: usize,
    /// Length of the piece in seconds.
    pub seconds: f64,
    /// Tokens the grammar refused.
    pub grammar_errors: usize,
    /// Tokens the decoder had to skip.
    pub decode_skipped: usize,
    /// Whether the model ended the piece itself.
    pub ended: bool,
}

/// Decodes `piece` with `tokenizer` and writes it as a standard MIDI file at `path`
/// (atomically).
///
/// # Errors
/// [`SamplingError::Export`] if the file cannot be written.
pub fn write_piece(
    piece: &Generated,
    tokenizer: &dyn Tokenizer,
    path: &Path,
) -> Result<PieceSummary, SamplingError> {
    let (score, report) = tokenizer.decode(&piece.tokens);
    write_midi_file(&score, path, &WriteOptions::default())
        .map_err(|e| SamplingError::Export(e.into()))?;
    Ok(PieceSummary {
        tokens: piece.tokens.len(),
        new_tokens: piece.tokens.len() - piece.prompt_len,
        notes: score.note_count(),
        tracks: score.tracks.iter().filter(|t| !t.notes.is_empty()).count(),
        seconds: score.duration_seconds(),
        grammar_errors: piece.grammar.error_count(),
        decode_skipped: report.skipped(),
        ended: piece.ended,
    })
}

/// The tokens of the MIDI file at `path` as a prompt: framed like a training piece (BOS
/// first), cut to its first `limit` tokens (at least the BOS), without a closing EOS, so
/// generation continues the piece.
///
/// # Errors
/// [`SamplingError::PromptFile`] when the file cannot be read (leniently) or tokenized.
pub fn prompt_from_midi(
    path: &Path,
    tokenizer: &dyn Tokenizer,
    limit: usize,
) -> Result<Vec<TokenId>, SamplingError> {
    let failed = |reason: String| SamplingError::PromptFile {
        path: path.to_owned(),
        reason,
    };
    let (score, _) = read_midi_file(path, Mode::Lenient).map_err(|e| failed(e.to_string()))?;
    let vocabulary = tokenizer.vocab();
    let mut ids = tokenizer
        .encode(&score)
        .map_err(|e| failed(e.to_string()))?
        .framed(vocabulary)
        .ids;
    ids.truncate(limit.max(1));
    ids.pop_if(|&mut last| last == vocabulary.eos());
    Ok(ids)
}
