//! The tokenization schemes, by name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Event, Remi, Tokenizer, TokenizerConfig, Tsd};
use crate::Error;

/// A tokenization scheme: how a score becomes tokens.
///
/// ```
/// use aurl_core::tokenize::{Scheme, TokenizerConfig};
///
/// let scheme: Scheme = "tsd".parse().unwrap();
/// assert_eq!(scheme, Scheme::Tsd);
/// assert_eq!(scheme.to_string(), "tsd");
/// let tokenizer = scheme.tokenizer(&TokenizerConfig::default()).unwrap();
/// assert_eq!(tokenizer.vocab().scheme(), Scheme::Tsd);
/// assert!("midi".parse::<Scheme>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scheme {
    /// REMI / REMI+: bars, positions, pitch, velocity and duration tokens.
    #[default]
    Remi,
    /// Time-Shift-Duration: time shifts instead of bars and positions.
    Tsd,
    /// MIDI-like note-on/note-off with time shifts.
    Event,
}

impl Scheme {
    /// Every scheme this version implements.
    pub const ALL: [Scheme; 3] = [Scheme::Remi, Scheme::Tsd, Scheme::Event];

    /// The scheme's name in configs, vocabulary files and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Remi => "remi",
            Self::Tsd => "tsd",
            Self::Event => "event",
        }
    }

    /// Whether the scheme marks bars (REMI): what bar-aligned windows and controls need.
    #[must_use]
    pub fn has_bars(self) -> bool {
        self == Self::Remi
    }

    /// A tokenizer of this scheme under `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a config the scheme refuses.
    pub fn tokenizer(
        self,
        config: &TokenizerConfig,
    ) -> Result<Box<dyn Tokenizer + Send + Sync>, Error> {
        Ok(match self {
            Self::Remi => Box::new(Remi::new(config)?),
            Self::Tsd => Box::new(Tsd::new(config)?),
            Self::Event => Box::new(Event::new(config)?),
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = Error;

    /// # Errors
    /// [`Error::InvalidConfig`] (field `scheme`) for a name no scheme has.
    fn from_str(name: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| Error::InvalidConfig {
                field: "scheme".into(),
                reason: format!(
                    "unknown scheme `{name}` (available: {})",
                    Self::ALL.map(Scheme::name).join(", ")
                ),
            })
    }
}
