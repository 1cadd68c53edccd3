//! How likely a transform is at a given epoch.

use serde::{Deserialize, Serialize};

/// A transform's probability as a function of the epoch (counted from 0).
///
/// In TOML a bare number is a constant; tables give the other shapes:
/// ```
/// use aurl_data::augment::Schedule;
/// let s: Schedule = toml::from_str::<toml::Table>("p = { from = 0.0, to = 0.8, epochs = 4 }")?
///     ["p"].clone().try_into()?;
/// assert_eq!(s.probability(0), 0.0);
/// assert_eq!(s.probability(2), 0.4);
/// assert_eq!(s.probability(9), 0.8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Schedule {
    /// The same probability every epoch.
    Constant(f64),
    /// A linear ramp from `from` at epoch 0 to `to` at epoch `epochs`, constant after.
    Linear {
        /// Probability at epoch 0.
        from: f64,
        /// Probability from epoch `epochs` on.
        to: f64,
        /// Length of the ramp in epochs.
        epochs: u64,
    },
    /// A curriculum: off until `start_epoch`, then `probability` (first learn the data as
    /// it is, then its variations).
    Curriculum {
        /// First epoch at which the transform may apply.
        start_epoch: u64,
        /// Probability from then on.
        probability: f64,
    },
}

impl Default for Schedule {
    /// Never.
    fn default() -> Self {
        Self::Constant(0.0)
    }
}

impl Schedule {
    /// The probability at `epoch`, in 0..=1.
    #[must_use]
    pub fn probability(&self, epoch: u64) -> f64 {
        let p = match *self {
            Self::Constant(p) => p,
            Self::Linear { from, to, epochs } => {
                if epoch >= epochs {
                    to
                } else {
                    from + (to - from) * epoch as f64 / epochs as f64
                }
            }
            Self::Curriculum {
                start_epoch,
                probability,
            } => {
                if epoch >= start_epoch {
                    probability
                } else {
                    0.0
                }
            }
        };
        if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
    }

    /// Whether every probability the schedule can give lies in 0..=1.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        let ok = |p: f64| (0.0..=1.0).contains(&p);
        match *self {
            Self::Constant(p) => ok(p),
            Self::Linear { from, to, .. } => ok(from) && ok(to),
            Self::Curriculum { probability, .. } => ok(probability),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(Schedule::Constant(0.3).probability(100), 0.3);
        let c = Schedule::Curriculum {
            start_epoch: 2,
            probability: 0.5,
        };
        assert_eq!((c.probability(1), c.probability(2)), (0.0, 0.5));
        let down = Schedule::Linear {
            from: 1.0,
            to: 0.0,
            epochs: 0,
        };
        assert_eq!(
            down.probability(0),
            0.0,
            "a zero-length ramp is already at its end"
        );
        assert!(!Schedule::Constant(1.5).is_valid());
    }
}
