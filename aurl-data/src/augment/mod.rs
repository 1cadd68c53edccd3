//! Seeded data augmentation: transposition, time stretch, velocity curves, instrument
//! substitution, swing and humanization, each with a probability [`Schedule`] over epochs.
//!
//! [`augment`] never mutates its input (cached data stays as it is) and is a pure function
//! of (config, seed, epoch, sample index): the same triple gives the same variation on any
//! machine and in any worker, so a resumed run sees exactly the data it would have seen.
//!
//! ```
//! use aurl_data::augment::{augment, Augmentation, Schedule};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/format1_gm_drums.mid");
//! let (score, _) = aurl_data::read_midi_file(std::path::Path::new(path), aurl_data::Mode::Lenient)?;
//! let mut config = Augmentation::default();
//! config.transpose.probability = Schedule::Constant(1.0);
//! let (a, applied) = augment(&score, &config, 42, 0, 7)?;
//! let (b, _) = augment(&score, &config, 42, 0, 7)?;
//! assert_eq!(a, b);
//! assert!(applied.transpose.is_some());
//! # Ok::<(), aurl_data::Error>(())
//! ```

mod schedule;
mod transforms;

pub use aurl_core::rng::SeedRng;
pub use schedule::Schedule;
pub use transforms::{
    SwingUnit, humanize, substitute_instruments, swing, time_stretch, transpose,
    transposition_room, velocity_curve,
};

use aurl_core::Score;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Random transposition; see [`transpose`] and [`transposition_room`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Transpose {
    /// Probability per sample.
    pub probability: Schedule,
    /// Largest offset in semitones either way (at most 12).
    pub max_semitones: u8,
    /// Lowest pitch a transposed note may have (the tokenizer's range).
    pub low: u8,
    /// Highest pitch a transposed note may have.
    pub high: u8,
}

impl Default for Transpose {
    fn default() -> Self {
        Self {
            probability: Schedule::default(),
            max_semitones: 6,
            low: 21,
            high: 108,
        }
    }
}

/// Random tempo change; see [`time_stretch`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeStretch {
    /// Probability per sample.
    pub probability: Schedule,
    /// Smallest factor (faster).
    pub min: f64,
    /// Largest factor (slower).
    pub max: f64,
}

impl Default for TimeStretch {
    fn default() -> Self {
        Self {
            probability: Schedule::default(),
            min: 0.8,
            max: 1.2,
        }
    }
}

/// Random velocity curve; see [`velocity_curve`]. `gamma` and `gain` are drawn
/// log-uniformly, so compression and expansion are equally likely.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VelocityCurve {
    /// Probability per sample.
    pub probability: Schedule,
    /// Largest curve exponent (its inverse is the smallest).
    pub max_gamma: f64,
    /// Largest gain (its inverse is the smallest).
    pub max_gain: f64,
}

impl Default for VelocityCurve {
    fn default() -> Self {
        Self {
            probability: Schedule::default(),
            max_gamma: 1.5,
            max_gain: 1.2,
        }
    }
}

/// Random program within each track's General MIDI family; see [`substitute_instruments`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Instruments {
    /// Probability per sample.
    pub probability: Schedule,
}

/// Random swing; see [`swing`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Swing {
    /// Probability per sample.
    pub probability: Schedule,
    /// Which note pairs swing.
    pub unit: SwingUnit,
    /// Smallest swing ratio (0.5 = straight).
    pub min_ratio: f64,
    /// Largest swing ratio (2/3 = triplet feel).
    pub max_ratio: f64,
}

impl Default for Swing {
    fn default() -> Self {
        Self {
            probability: Schedule::default(),
            unit: SwingUnit::Eighth,
            min_ratio: 0.5,
            max_ratio: 2.0 / 3.0,
        }
    }
}

/// Random timing and velocity jitter; see [`humanize`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Humanize {
    /// Probability per sample.
    pub probability: Schedule,
    /// Standard deviation of onset shifts, in quarter notes.
    pub timing_sd: f64,
    /// Standard deviation of velocity changes.
    pub velocity_sd: f64,
}

impl Default for Humanize {
    fn default() -> Self {
        Self {
            probability: Schedule::default(),
            timing_sd: 0.01,
            velocity_sd: 4.0,
        }
    }
}

/// The augmentation settings: every transform off by default (probability 0).
///
/// In TOML (unknown keys are errors naming the field):
/// ```toml
/// [transpose]
/// probability = 1.0
/// max_semitones = 6
/// [time_stretch]
/// probability = { from = 0.0, to = 0.5, epochs = 10 }
/// [humanize]
/// probability = { start_epoch = 5, probability = 0.3 }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augmentation {
    /// Pitch transposition.
    pub transpose: Transpose,
    /// Tempo change.
    pub time_stretch: TimeStretch,
    /// Velocity curve.
    pub velocity: VelocityCurve,
    /// Instrument substitution.
    pub instruments: Instruments,
    /// Swing.
    pub swing: Swing,
    /// Humanization.
    pub humanize: Humanize,
}

/// The transforms [`augment`] applied to one sample, with their drawn parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Applied {
    /// Semitones.
    pub transpose: Option<i32>,
    /// Tempo factor.
    pub time_stretch: Option<f64>,
    /// (gamma, gain).
    pub velocity: Option<(f64, f64)>,
    /// Whether programs were substituted.
    pub instruments: bool,
    /// Swing ratio.
    pub swing: Option<f64>,
    /// Whether humanization ran.
    pub humanize: bool,
}

impl Augmentation {
    /// Parses a TOML table.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the unknown or invalid field.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| Error::InvalidConfig {
            field: "augment".into(),
            reason: e.message().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Whether no transform can ever apply.
    #[must_use]
    pub fn is_off(&self) -> bool {
        self.schedules()
            .iter()
            .all(|(_, s)| *s == Schedule::Constant(0.0))
    }

    fn schedules(&self) -> [(&'static str, Schedule); 6] {
        [
            ("transpose", self.transpose.probability),
            ("time_stretch", self.time_stretch.probability),
            ("velocity", self.velocity.probability),
            ("instruments", self.instruments.probability),
            ("swing", self.swing.probability),
            ("humanize", self.humanize.probability),
        ]
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first invalid field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &str, reason: &str| {
            Err(Error::InvalidConfig {
                field: format!("augment.{field}"),
                reason: reason.into(),
            })
        };
        for (name, s) in self.schedules() {
            if !s.is_valid() {
                return bad(&format!("{name}.probability"), "must lie in 0..=1");
            }
        }
        let t = &self.transpose;
        if t.max_semitones > 12 {
            return bad("transpose.max_semitones", "must be at most 12");
        }
        if t.low > t.high || t.high > 127 {
            return bad("transpose.high", "must be in low..=127");
        }
        let s = &self.time_stretch;
        if !(s.min > 0.0 && s.min <= s.max && s.max <= 10.0) {
            return bad("time_stretch.max", "need 0 < min <= max <= 10");
        }
        let v = &self.velocity;
        if !(v.max_gamma >= 1.0 && v.max_gamma <= 10.0) {
            return bad("velocity.max_gamma", "must be in 1..=10");
        }
        if !(v.max_gain >= 1.0 && v.max_gain <= 10.0) {
            return bad("velocity.max_gain", "must be in 1..=10");
        }
        let w = &self.swing;
        if !(0.5 <= w.min_ratio && w.min_ratio <= w.max_ratio && w.max_ratio < 1.0) {
            return bad("swing.max_ratio", "need 0.5 <= min_ratio <= max_ratio < 1");
        }
        let h = &self.humanize;
        if !(0.0..=1.0).contains(&h.timing_sd) {
            return bad("humanize.timing_sd", "must be in 0..=1 quarter notes");
        }
        if !(0.0..=64.0).contains(&h.velocity_sd) {
            return bad("humanize.velocity_sd", "must be in 0..=64");
        }
        Ok(())
    }
}

/// A variation of `score` for sample `index` in `epoch` of a run seeded with `seed`.
///
/// Each transform is decided in a fixed order (transpose, stretch, velocity, instruments,
/// swing, humanize) with its schedule's probability at `epoch`; the input is not touched.
/// The transposition offset is drawn uniformly from `±max_semitones` intersected with the
/// offsets that keep the piece inside `low..=high` (resampled, not clipped: the range
/// edges are not over-represented); a piece with no room is not transposed.
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid config.
pub fn augment(
    score: &Score,
    config: &Augmentation,
    seed: u64,
    epoch: u64,
    index: u64,
) -> Result<(Score, Applied), Error> {
    config.validate()?;
    let mut out = score.clone();
    let mut applied = Applied::default();
    let mut rng = SeedRng::derive(seed, &[epoch, index]);
    let t = &config.transpose;
    if rng.chance(t.probability.probability(epoch))
        && let Some((down, up)) = transposition_room(&out, t.low, t.high)
    {
        let m = i32::from(t.max_semitones);
        let (lo, hi) = (down.max(-m), up.min(m));
        if lo <= hi {
            let k = rng.int_in(i64::from(lo), i64::from(hi)) as i32;
            applied.transpose = Some(transpose(&mut out, k, t.low, t.high));
        }
    }
    let s = &config.time_stretch;
    if rng.chance(s.probability.probability(epoch)) {
        let f = rng.uniform(s.min, s.max);
        time_stretch(&mut out, f);
        applied.time_stretch = Some(f);
    }
    let v = &config.velocity;
    if rng.chance(v.probability.probability(epoch)) {
        let gamma = v.max_gamma.powf(rng.uniform(-1.0, 1.0));
        let gain = v.max_gain.powf(rng.uniform(-1.0, 1.0));
        velocity_curve(&mut out, gamma, gain);
        applied.velocity = Some((gamma, gain));
    }
    if rng.chance(config.instruments.probability.probability(epoch)) {
        substitute_instruments(&mut out, &mut rng);
        applied.instruments = true;
    }
    let w = &config.swing;
    if rng.chance(w.probability.probability(epoch)) {
        let ratio = rng.uniform(w.min_ratio, w.max_ratio);
        swing(&mut out, w.unit, ratio);
        applied.swing = Some(ratio);
    }
    let h = &config.humanize;
    if rng.chance(h.probability.probability(epoch)) {
        humanize(&mut out, &mut rng, h.timing_sd, h.velocity_sd);
        applied.humanize = true;
    }
    Ok((out, applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_shapes_and_field_names() {
        let c = Augmentation::from_toml(
            "[transpose]\nprobability = 1.0\n[time_stretch]\nprobability = { from = 0.0, to = 0.5, epochs = 10 }\n[humanize]\nprobability = { start_epoch = 5, probability = 0.3 }\n",
        )
        .unwrap();
        assert_eq!(c.transpose.probability, Schedule::Constant(1.0));
        assert_eq!(c.time_stretch.probability.probability(5), 0.25);
        assert_eq!(c.humanize.probability.probability(4), 0.0);
        assert!(!c.is_off());
        assert!(Augmentation::default().is_off());
        let e = Augmentation::from_toml("[transpose]\nmax_semitone = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_semitone"), "{e}");
        let e = Augmentation::from_toml("[swing]\nprobability = 2.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("augment.swing.probability"), "{e}");
    }
}
