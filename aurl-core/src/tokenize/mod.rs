//! Tokenizers: scores to token ids and back.
//!
//! Three schemes — [`Remi`] (bars and positions), [`Tsd`] (time shifts and durations) and
//! [`Event`] (note-on/note-off) — share one [`TokenizerConfig`], one value [`Grid`] and one
//! normal form: [`Tokenizer::quantize`] returns exactly what `decode(encode(score))`
//! returns, so round trips are testable for equality. Decoding is total: any id sequence decodes, and what had to be
//! skipped is counted in a [`DecodeReport`].
//!
//! ```
//! use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
//! use aurl_core::{Note, Pitch, Score, Track, Velocity};
//!
//! let mut score = Score::new(480);
//! let mut piano = Track::new("piano");
//! piano.notes.push(Note::new(Pitch::new(60)?, Velocity::new(90)?, 0, 480));
//! score.tracks.push(piano);
//!
//! let remi = Remi::new(&TokenizerConfig::default())?;
//! let tokens = remi.encode(&score)?;
//! let names: Vec<String> = tokens.ids.iter().map(|&id| remi.vocab().name(id)).collect();
//! assert_eq!(names, ["Bar", "TimeSig_4/4", "Position_0", "Tempo_120.0", "Program_0",
//!                    "Pitch_60", "Velocity_91", "Duration_1.0.8"]);
//! let (back, report) = remi.decode(&tokens.ids);
//! assert_eq!(back, remi.quantize(&score));
//! assert_eq!(report.skipped(), 0);
//! # Ok::<(), aurl_core::Error>(())
//! ```

mod category;
mod config;
mod event;
mod grammar;
mod grid;
mod mask;
mod note_reader;
mod piece;
mod remi;
mod scheme;
mod source;
mod timeline;
mod tsd;
mod vocab;

pub use category::TokenGroup;
pub use config::{BeatRange, TokenizerConfig};
pub use event::Event;
pub use grammar::{
    Grammar, GrammarError, GrammarErrorKind, GrammarReport, GrammarState, RepairReport,
};
pub use grid::Grid;
pub use mask::TokenMask;
pub use remi::Remi;
pub use scheme::Scheme;
pub use source::SequenceSource;
pub use tsd::Tsd;
pub use vocab::{Token, TokenId, Vocabulary};

use serde::Serialize;

use crate::{Error, Score};

/// Token ids plus the structure needed to cut windows that decode on their own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenSequence {
    /// The ids.
    pub ids: Vec<TokenId>,
    /// One entry per bar, in order.
    pub bars: Vec<BarStart>,
}

impl TokenSequence {
    /// The sequence framed by BOS and EOS (what a language model trains on, so it learns
    /// how pieces start and end); bar starts move with their tokens.
    ///
    /// ```
    /// use aurl_core::tokenize::{Remi, Token, Tokenizer, TokenizerConfig, TokenSequence};
    /// let remi = Remi::new(&TokenizerConfig::default())?;
    /// let s = TokenSequence { ids: vec![9, 10], bars: vec![] }.framed(remi.vocab());
    /// assert_eq!(s.ids.first().copied(), remi.vocab().id(Token::Bos));
    /// assert_eq!(s.ids.last().copied(), remi.vocab().id(Token::Eos));
    /// # Ok::<(), aurl_core::Error>(())
    /// ```
    #[must_use]
    pub fn framed(mut self, vocab: &Vocabulary) -> Self {
        self.ids.insert(0, vocab.bos());
        self.ids.push(vocab.eos());
        for b in &mut self.bars {
            b.token_index += 1;
        }
        self
    }
}

/// Where a bar starts in a [`TokenSequence`] and the header state in force there, so a window
/// starting at this bar can re-emit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarStart {
    /// Index of the bar's first token in `ids`.
    pub token_index: usize,
    /// The time-signature token in force (when the scheme has them).
    pub time_signature: Option<TokenId>,
    /// The tempo token in force (when the scheme has them).
    pub tempo: Option<TokenId>,
}

/// What decoding had to skip. Decoding never fails; a sequence from `encode` skips nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DecodeReport {
    /// Ids outside the vocabulary.
    pub unknown_ids: usize,
    /// Tokens where the scheme does not allow them (a pitch before any position, a position
    /// beyond the bar, a time signature in the middle of a bar, …).
    pub misplaced: usize,
    /// Notes started but not finished (a pitch without its velocity or duration).
    pub incomplete_notes: usize,
    /// Tokens other than padding after an end-of-sequence token.
    pub after_eos: usize,
}

impl DecodeReport {
    /// Adds another report's counts to this one.
    pub fn absorb(&mut self, other: &DecodeReport) {
        self.unknown_ids += other.unknown_ids;
        self.misplaced += other.misplaced;
        self.incomplete_notes += other.incomplete_notes;
        self.after_eos += other.after_eos;
    }

    /// Total number of skipped tokens.
    #[must_use]
    pub fn skipped(&self) -> usize {
        self.unknown_ids + self.misplaced + self.incomplete_notes + self.after_eos
    }
}

/// A tokenization scheme.
pub trait Tokenizer {
    /// The vocabulary (ids and their meaning).
    fn vocab(&self) -> &Vocabulary;

    /// Encodes a score (quantising it first: see [`Tokenizer::quantize`]).
    ///
    /// # Errors
    /// [`Error::SequenceTooLong`] when the score spans more bars than the scheme encodes.
    fn encode(&self, score: &Score) -> Result<TokenSequence, Error>;

    /// Decodes any id sequence; never panics. Decoding `encode(x)` gives `quantize(x)`.
    fn decode(&self, ids: &[TokenId]) -> (Score, DecodeReport);

    /// The score as the scheme sees it: what `decode(encode(score))` returns.
    fn quantize(&self, score: &Score) -> Score;

    /// Encodes one sequence per instrument stream (each program, and drums) instead of one
    /// stream for the whole score; every sequence carries the global tempo and
    /// time-signature changes. `decode_streams(encode_streams(x)) == quantize(x)`.
    ///
    /// # Errors
    /// As [`Tokenizer::encode`].
    fn encode_streams(&self, score: &Score) -> Result<Vec<TokenSequence>, Error>;

    /// Decodes the sequences of [`Tokenizer::encode_streams`] back into one score.
    fn decode_streams(&self, sequences: &[Vec<TokenId>]) -> (Score, DecodeReport);
}

/// The names of the schemes this version implements, for command-line choices
/// ([`Scheme::ALL`]'s names).
pub const SCHEMES: [&str; 3] = ["remi", "tsd", "event"];

/// A tokenizer by scheme name (one of [`SCHEMES`]); [`Scheme::tokenizer`] when the scheme is
/// already known.
///
/// # Errors
/// [`Error::InvalidConfig`] for an unknown name (field `scheme`) or an invalid config.
pub fn by_name(
    scheme: &str,
    config: &TokenizerConfig,
) -> Result<Box<dyn Tokenizer + Send + Sync>, Error> {
    scheme.parse::<Scheme>()?.tokenizer(config)
}

/// The normal form shared by the schemes (what [`Tokenizer::quantize`] returns for REMI and
/// TSD; the event scheme additionally re-pairs overlapping notes of one pitch):
/// onsets on the grid, durations, velocities and tempos binned, time signatures moved to
/// bar starts, one track per program (drums last), no names, controllers or text.
#[must_use]
pub fn quantize(score: &Score, vocab: &Vocabulary) -> Score {
    piece::Piece::from_score(score, vocab).to_score(vocab)
}
