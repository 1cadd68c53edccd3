//! Newtypes for MIDI values, so an invalid pitch or velocity cannot be represented.

use serde::{Deserialize, Serialize};

use crate::Error;

/// A position in time, in ticks from the start of the score. `u64` so that even absurdly
/// long files (hostile or not) never overflow.
pub type Tick = u64;

macro_rules! bounded_u8 {
    ($(#[$doc:meta])* $name:ident, $what:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "u8", into = "u8")]
        pub struct $name(u8);

        impl $name {
            /// Smallest valid value.
            pub const MIN: Self = Self($min);
            /// Largest valid value.
            pub const MAX: Self = Self($max);

            /// Checks that `value` is in range.
            ///
            /// # Errors
            /// [`Error::OutOfRange`] when it is not.
            #[allow(unused_comparisons, clippy::manual_range_contains)]
            pub const fn new(value: u8) -> Result<Self, Error> {
                if value >= $min && value <= $max {
                    Ok(Self(value))
                } else {
                    Err(Error::OutOfRange {
                        what: $what,
                        value: value as i64,
                        min: $min as i64,
                        max: $max as i64,
                    })
                }
            }

            /// Clamps `value` into range.
            #[must_use]
            #[allow(unused_comparisons, clippy::absurd_extreme_comparisons)]
            pub const fn saturating(value: u8) -> Self {
                if value < $min {
                    Self($min)
                } else if value > $max {
                    Self($max)
                } else {
                    Self(value)
                }
            }

            /// The raw value.
            #[must_use]
            pub const fn get(self) -> u8 {
                self.0
            }
        }

        impl TryFrom<u8> for $name {
            type Error = Error;
            fn try_from(value: u8) -> Result<Self, Error> {
                Self::new(value)
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded_u8!(
    /// A MIDI note number, 0..=127 (60 is middle C).
    Pitch, "pitch", 0, 127
);
bounded_u8!(
    /// A note's attack velocity, 1..=127. Zero is excluded: a MIDI note-on with velocity 0
    /// means note-off, so a zero-velocity note could not be written.
    Velocity, "velocity", 1, 127
);
bounded_u8!(
    /// A MIDI channel, 0..=15 (channel 9, shown as "10" in most software, is drums in General MIDI).
    Channel, "channel", 0, 15
);
bounded_u8!(
    /// A General MIDI program (instrument), 0..=127 (0 is Acoustic Grand Piano).
    Program, "program", 0, 127
);
bounded_u8!(
    /// A 7-bit controller number or controller value, 0..=127.
    ControlValue, "control value", 0, 127
);

impl Default for Program {
    /// Acoustic Grand Piano, what players assume before any program change.
    fn default() -> Self {
        Self::MIN
    }
}

impl Default for Channel {
    /// The first channel.
    fn default() -> Self {
        Self::MIN
    }
}

impl Channel {
    /// The General MIDI percussion channel (shown as channel 10).
    pub const DRUMS: Self = Self(9);
}

impl Pitch {
    /// Middle C (C4).
    pub const MIDDLE_C: Self = Self(60);

    /// Moves the pitch by `semitones`, or `None` if that leaves 0..=127.
    #[must_use]
    pub fn transposed(self, semitones: i32) -> Option<Self> {
        let p = i32::from(self.0) + semitones;
        u8::try_from(p).ok().and_then(|p| Self::new(p).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_rejected_with_their_range() {
        assert_eq!(
            Pitch::new(128),
            Err(Error::OutOfRange {
                what: "pitch",
                value: 128,
                min: 0,
                max: 127
            })
        );
        assert!(Velocity::new(0).is_err());
        assert!(Channel::new(16).is_err());
        assert_eq!(Velocity::saturating(0).get(), 1);
        assert_eq!(Pitch::saturating(200).get(), 127);
    }

    #[test]
    fn transposition_stays_in_range_or_says_no() {
        assert_eq!(Pitch::MIDDLE_C.transposed(12).map(Pitch::get), Some(72));
        assert_eq!(Pitch::new(120).unwrap().transposed(12), None);
        assert_eq!(Pitch::new(3).unwrap().transposed(-4), None);
    }

    #[test]
    fn serde_refuses_invalid_values() {
        let v: Result<Velocity, _> = serde_json_like("0");
        assert!(v.is_err());
        let p: Pitch = serde_json_like("64").unwrap();
        assert_eq!(p.get(), 64);
    }

    /// Minimal deserializer from a decimal string, so this crate needs no JSON dependency.
    fn serde_json_like<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error as DeError, U8Deserializer};
        let n: u8 = s.parse().map_err(|e| format!("{e}"))?;
        let d: U8Deserializer<DeError> = n.into_deserializer();
        T::deserialize(d).map_err(|e| e.to_string())
    }
}
