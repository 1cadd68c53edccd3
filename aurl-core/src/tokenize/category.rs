//! What each token is about, so losses and metrics can weigh or count them by kind.

use serde::{Deserialize, Serialize};

use super::{Token, TokenId, Vocabulary};

/// The broad role of a token, used for per-kind loss weights (notes, timing, velocity,
/// structure) and per-kind metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenGroup {
    /// Which notes sound: Pitch, NoteOn, NoteOff, PitchBend.
    Notes,
    /// When and how long: Position, TimeShift, Rest, Duration.
    Timing,
    /// How loud: Velocity.
    Velocity,
    /// Everything else: specials, Bar, TimeSig, Tempo, Chord, Program.
    Structure,
}

impl TokenGroup {
    /// Every group, in order.
    pub const ALL: [TokenGroup; 4] = [Self::Notes, Self::Timing, Self::Velocity, Self::Structure];
}

impl Token {
    /// The group this token belongs to.
    #[must_use]
    pub fn group(self) -> TokenGroup {
        match self {
            Token::Pitch(_) | Token::NoteOn(_) | Token::NoteOff(_) | Token::PitchBend(_) => {
                TokenGroup::Notes
            }
            Token::Position(_) | Token::TimeShift(_) | Token::Rest(_) | Token::Duration(_) => {
                TokenGroup::Timing
            }
            Token::Velocity(_) => TokenGroup::Velocity,
            Token::Pad
            | Token::Bos
            | Token::Eos
            | Token::Mask
            | Token::Bar
            | Token::TimeSig(_)
            | Token::Tempo(_)
            | Token::Chord(_)
            | Token::Program(_)
            | Token::Drums
            | Token::Voice(_) => TokenGroup::Structure,
        }
    }
}

impl Vocabulary {
    /// The group of every id, in id order (e.g. to build a per-class loss-weight vector).
    ///
    /// ```
    /// use aurl_core::tokenize::{TokenGroup, TokenizerConfig, Vocabulary};
    /// let v = Vocabulary::remi(&TokenizerConfig::default())?;
    /// let groups = v.groups();
    /// let notes = groups.iter().filter(|&&g| g == TokenGroup::Notes).count();
    /// assert_eq!(notes, 88, "one Pitch token per key of the default range");
    /// # Ok::<(), aurl_core::Error>(())
    /// ```
    #[must_use]
    pub fn groups(&self) -> Vec<TokenGroup> {
        (0..self.len())
            .map(|i| {
                self.token(i as TokenId)
                    .map_or(TokenGroup::Structure, Token::group)
            })
            .collect()
    }
}
