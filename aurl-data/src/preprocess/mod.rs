//! Preprocessing: `Score -> Score` cleaning before tokenization, each step with a config
//! struct and a report of what it changed.
//!
//! [`preprocess`] runs the steps a [`Preprocessing`] config enables, in this order:
//! sustain pedal → track filter/merge → duplicate notes → pitch range → quantization →
//! duplicates again (quantization can make two notes coincide) → polyphony limit → melody
//! extraction → velocity normalization. Each step is also a public function.
//!
//! ```
//! use aurl_data::preprocess::{preprocess, Preprocessing, QuantizeConfig};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/format1_gm_drums.mid");
//! let (mut score, _) = aurl_data::read_midi_file(std::path::Path::new(path), aurl_data::Mode::Lenient)?;
//! let config = Preprocessing { quantize: Some(QuantizeConfig::default()), max_voices: Some(3), ..Preprocessing::default() };
//! let report = preprocess(&mut score, &config)?;
//! assert!(report.notes_after <= report.notes_before);
//! # Ok::<(), aurl_data::Error>(())
//! ```

mod polyphony;
mod quantize;
mod tracks;
mod velocity;

pub use polyphony::{extract_melody, max_polyphony, reduce_polyphony};
pub use quantize::{GridChoice, QuantizeConfig, QuantizeReport, quantize};
pub use tracks::{
    ClampReport, OutOfRange, PitchRange, TrackFilter, clamp_pitches, dedup_notes, filter_tracks,
};
pub use velocity::{VelocityNorm, normalize_velocities};

use aurl_core::Score;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Which preprocessing steps run, with their settings. The default only removes empty
/// tracks and duplicate notes, so a default-preprocessed score keeps all its music.
///
/// In TOML (every key optional; unknown keys are errors naming the field):
/// ```toml
/// sustain_pedal = true
/// max_voices = 4
/// [tracks]
/// drums = false
/// [quantize]
/// grid = "adaptive"
/// strength = 1.0
/// [pitch_range]
/// low = 21
/// high = 108
/// [velocity]
/// mode = "per_track"
/// mean = 80.0
/// spread = 16.0
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Preprocessing {
    /// Fold the sustain pedal into note lengths ([`aurl_core::Track::apply_sustain_pedal`]).
    pub sustain_pedal: bool,
    /// Track filtering and merging.
    pub tracks: TrackFilter,
    /// Remove duplicate notes ([`dedup_notes`]); on by default.
    pub dedup: bool,
    /// Bring pitched notes into a range, if set.
    pub pitch_range: Option<PitchRange>,
    /// Quantize onsets and ends, if set.
    pub quantize: Option<QuantizeConfig>,
    /// At most this many simultaneous notes per track, if set ([`reduce_polyphony`]).
    pub max_voices: Option<usize>,
    /// Keep only the melody ([`extract_melody`]).
    pub melody_only: bool,
    /// Velocity normalization.
    pub velocity: VelocityNorm,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Self {
            sustain_pedal: false,
            tracks: TrackFilter::default(),
            dedup: true,
            pitch_range: None,
            quantize: None,
            max_voices: None,
            melody_only: false,
            velocity: VelocityNorm::Keep,
        }
    }
}

impl Preprocessing {
    /// Parses a TOML table.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the unknown or invalid field.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| Error::InvalidConfig {
            field: "preprocess".into(),
            reason: e.message().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first invalid field.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(q) = &self.quantize {
            q.validate()?;
        }
        if let Some(r) = &self.pitch_range {
            r.validate()?;
        }
        if self.max_voices == Some(0) {
            return Err(Error::InvalidConfig {
                field: "max_voices".into(),
                reason: "must be at least 1".into(),
            });
        }
        self.velocity.validate()
    }
}

/// What [`preprocess`] changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PreprocessReport {
    /// Notes before.
    pub notes_before: usize,
    /// Notes after.
    pub notes_after: usize,
    /// Tracks removed or merged away.
    pub tracks_removed: usize,
    /// Duplicate notes removed.
    pub duplicates_removed: usize,
    /// Pitch-range changes.
    pub pitch_range: ClampReport,
    /// Quantization, if it ran.
    pub quantize: Option<QuantizeReport>,
    /// Notes removed by the polyphony limit.
    pub polyphony_removed: usize,
}

/// Runs the enabled steps on `score` in place (see the module docs for the order).
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid config, before anything changes.
pub fn preprocess(score: &mut Score, config: &Preprocessing) -> Result<PreprocessReport, Error> {
    config.validate()?;
    let mut report = PreprocessReport {
        notes_before: score.note_count(),
        ..PreprocessReport::default()
    };
    if config.sustain_pedal {
        score
            .tracks
            .iter_mut()
            .for_each(aurl_core::Track::apply_sustain_pedal);
    }
    report.tracks_removed = filter_tracks(score, &config.tracks);
    let dedup = |score: &mut Score| -> usize {
        if config.dedup {
            score.tracks.iter_mut().map(dedup_notes).sum()
        } else {
            0
        }
    };
    report.duplicates_removed = dedup(score);
    if let Some(range) = &config.pitch_range {
        report.pitch_range = clamp_pitches(score, range)?;
    }
    if let Some(q) = &config.quantize {
        report.quantize = Some(quantize(score, q)?);
        report.duplicates_removed += dedup(score);
    }
    if let Some(n) = config.max_voices {
        report.polyphony_removed = score
            .tracks
            .iter_mut()
            .filter(|t| !t.is_drum)
            .map(|t| reduce_polyphony(t, n))
            .sum();
    }
    if config.melody_only {
        *score = extract_melody(score);
    }
    normalize_velocities(score, &config.velocity)?;
    score.canonicalize();
    report.notes_after = score.note_count();
    Ok(report)
}

/// A note from plain numbers, for the tests of this module's steps.
#[cfg(test)]
pub(crate) fn test_note(pitch: u8, velocity: u8, start: u64, duration: u64) -> aurl_core::Note {
    aurl_core::Note::new(
        aurl_core::Pitch::saturating(pitch),
        aurl_core::Velocity::saturating(velocity),
        start,
        duration,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_names_unknown_and_invalid_fields() {
        let ok = Preprocessing::from_toml("max_voices = 2\n[quantize]\nstrength = 0.5\n").unwrap();
        assert_eq!(ok.max_voices, Some(2));
        assert!(ok.dedup && Preprocessing::default().dedup);
        let unknown = Preprocessing::from_toml("[quantize]\nstrenght = 0.5\n")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("strenght"), "{unknown}");
        let invalid = Preprocessing::from_toml("[quantize]\nstrength = 2.0\n")
            .unwrap_err()
            .to_string();
        assert!(invalid.contains("quantize.strength"), "{invalid}");
        let zero = Preprocessing::from_toml("max_voices = 0")
            .unwrap_err()
            .to_string();
        assert!(zero.contains("max_voices"), "{zero}");
    }
}
