//! Velocity normalization that keeps the relative dynamics of each track.

use aurl_core::{Score, Velocity};
use serde::{Deserialize, Serialize};

use crate::Error;

/// How [`normalize_velocities`] treats velocities.
///
/// ```
/// use aurl_core::{Note, Pitch, Score, Track, Velocity};
/// use aurl_data::preprocess::{normalize_velocities, VelocityNorm};
/// let mut score = Score::new(480);
/// let mut track = Track::new("quiet take");
/// for (i, v) in [20, 30, 40].into_iter().enumerate() {
///     track.notes.push(Note::new(Pitch::MIDDLE_C, Velocity::saturating(v), i as u64 * 480, 480));
/// }
/// score.tracks.push(track);
/// normalize_velocities(&mut score, &VelocityNorm::PerTrack { mean: 80.0, spread: 20.0 })?;
/// let v: Vec<u8> = score.tracks[0].notes.iter().map(|n| n.velocity.get()).collect();
/// assert_eq!(v, [56, 80, 104]); // same shape, louder: mean 80, standard deviation ≈ 20
/// # Ok::<(), aurl_data::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", deny_unknown_fields)]
pub enum VelocityNorm {
    /// Velocities are left as they are.
    #[default]
    Keep,
    /// Each track is rescaled by one affine map so that its velocities have this mean and
    /// standard deviation (clamped to 1..=127). An affine map keeps the order of velocities
    /// and the ratios of their differences, so accents, crescendos and the balance inside a
    /// phrase survive; only the track's overall level and range change. A track played at
    /// one velocity gets `mean`.
    PerTrack {
        /// Target mean velocity.
        mean: f64,
        /// Target standard deviation.
        spread: f64,
    },
}

impl VelocityNorm {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field (under `velocity.`).
    pub fn validate(&self) -> Result<(), Error> {
        if let Self::PerTrack { mean, spread } = *self {
            if !(1.0..=127.0).contains(&mean) {
                return Err(Error::InvalidConfig {
                    field: "velocity.mean".into(),
                    reason: format!("must be in 1..=127, got {mean}"),
                });
            }
            if !(0.0..=127.0).contains(&spread) {
                return Err(Error::InvalidConfig {
                    field: "velocity.spread".into(),
                    reason: format!("must be in 0..=127, got {spread}"),
                });
            }
        }
        Ok(())
    }
}

/// Applies `norm` to every track of `score` (drums included: their dynamics are relative
/// too).
///
/// # Errors
/// [`Error::InvalidConfig`] for invalid values (the score is unchanged).
pub fn normalize_velocities(score: &mut Score, norm: &VelocityNorm) -> Result<(), Error> {
    norm.validate()?;
    let VelocityNorm::PerTrack { mean, spread } = *norm else {
        return Ok(());
    };
    for track in &mut score.tracks {
        let n = track.notes.len();
        if n == 0 {
            continue;
        }
        let values = || track.notes.iter().map(|n| f64::from(n.velocity.get()));
        let m = values().sum::<f64>() / n as f64;
        let sd = (values().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64).sqrt();
        let scale = if sd > 0.0 { spread / sd } else { 0.0 };
        for note in &mut track.notes {
            let v = mean + (f64::from(note.velocity.get()) - m) * scale;
            note.velocity = Velocity::saturating(v.round().clamp(1.0, 127.0) as u8);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aurl_core::{Note, Pitch, Track};

    use super::*;

    fn track(velocities: &[u8]) -> Track {
        let mut t = Track::new("t");
        for (i, &v) in velocities.iter().enumerate() {
            t.notes.push(Note::new(
                Pitch::MIDDLE_C,
                Velocity::saturating(v),
                i as u64,
                1,
            ));
        }
        t
    }

    fn velocities(t: &Track) -> Vec<u8> {
        t.notes.iter().map(|n| n.velocity.get()).collect()
    }

    #[test]
    fn each_track_is_rescaled_on_its_own() {
        // Track a: 40, 60 (mean 50, sd 10) → mean 64, sd 8: 56, 72.
        // Track b: constant 100 → the target mean 64.
        let mut s = Score::new(480);
        s.tracks.push(track(&[40, 60]));
        s.tracks.push(track(&[100, 100, 100]));
        let norm = VelocityNorm::PerTrack {
            mean: 64.0,
            spread: 8.0,
        };
        normalize_velocities(&mut s, &norm).unwrap();
        assert_eq!(velocities(&s.tracks[0]), [56, 72]);
        assert_eq!(velocities(&s.tracks[1]), [64, 64, 64]);
    }

    #[test]
    fn keep_leaves_velocities_and_extremes_are_clamped() {
        let mut s = Score::new(480);
        s.tracks.push(track(&[1, 127]));
        normalize_velocities(&mut s, &VelocityNorm::Keep).unwrap();
        assert_eq!(velocities(&s.tracks[0]), [1, 127]);
        // mean 100, sd 63 → 100 ± 63: 37 and 163, the latter clamped.
        let norm = VelocityNorm::PerTrack {
            mean: 100.0,
            spread: 63.0,
        };
        normalize_velocities(&mut s, &norm).unwrap();
        assert_eq!(velocities(&s.tracks[0]), [37, 127]);
        let bad = VelocityNorm::PerTrack {
            mean: 0.0,
            spread: 1.0,
        };
        assert!(
            normalize_velocities(&mut s, &bad)
                .unwrap_err()
                .to_string()
                .contains("velocity.mean")
        );
    }
}
