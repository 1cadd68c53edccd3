//! Generated tokens → score → MIDI file, with what it took.

use std::path::Path;

use aurl_core::tokenize::{TokenId, Tokenizer};
use aurl_data::{Mode, WriteOptions, read_midi, write_atomically, write_midi};
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
    let (bytes, summary) = piece_midi(piece, tokenizer)?;
    write_atomically(path, &bytes).map_err(|e| SamplingError::Export(e.into()))?;
    Ok(summary)
}

/// Decodes `piece` with `tokenizer`: the bytes of its standard MIDI file, and what they
/// hold (for a server, say).
///
/// # Errors
/// [`SamplingError::Export`] if the score cannot be written as MIDI.
pub fn piece_midi(
    piece: &Generated,
    tokenizer: &dyn Tokenizer,
) -> Result<(Vec<u8>, PieceSummary), SamplingError> {
    let (score, report) = tokenizer.decode(&piece.tokens);
    let bytes = write_midi(&score, &WriteOptions::default())
        .map_err(|e| SamplingError::Export(e.into()))?;
    let summary = PieceSummary {
        tokens: piece.tokens.len(),
        new_tokens: piece.tokens.len() - piece.prompt_len,
        notes: score.note_count(),
        tracks: score.tracks.iter().filter(|t| !t.notes.is_empty()).count(),
        seconds: score.duration_seconds(),
        grammar_errors: piece.grammar.error_count(),
        decode_skipped: report.skipped(),
        ended: piece.ended,
    };
    Ok((bytes, summary))
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
    let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    prompt_from_midi_bytes(&bytes, tokenizer, limit).map_err(|e| match e {
        SamplingError::InvalidMidi { reason, .. } => failed(reason),
        other => other,
    })
}

/// [`prompt_from_midi`] for the bytes of a MIDI file (an upload, say).
///
/// # Errors
/// [`SamplingError::InvalidMidi`] when the bytes cannot be read (leniently) or tokenized.
pub fn prompt_from_midi_bytes(
    bytes: &[u8],
    tokenizer: &dyn Tokenizer,
    limit: usize,
) -> Result<Vec<TokenId>, SamplingError> {
    let failed = |reason: String| SamplingError::InvalidMidi {
        what: "prompt".into(),
        reason,
    };
    let (score, _) = read_midi(bytes, Mode::Lenient).map_err(|e| failed(e.to_string()))?;
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
