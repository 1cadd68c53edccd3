//! The configuration shared by every tokenization scheme.

use serde::{Deserialize, Serialize};

use crate::Error;

/// A range of note lengths (in quarter notes, `start..end`) and the resolution used to encode
/// durations inside it, like MidiTok's `beat_res`: fine steps for short notes, coarser for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeatRange {
    /// First quarter note of the range.
    pub start: u8,
    /// End of the range (exclusive), in quarter notes.
    pub end: u8,
    /// Steps per quarter note within the range (8 = 32nd notes).
    pub positions_per_beat: u8,
}

/// How tokenizers see time, pitch, dynamics and structure. Shared by every scheme so a
/// vocabulary can be rebuilt from it; serialised with every checkpoint.
///
/// Time is measured on a grid of [`TokenizerConfig::grid_resolution`] steps per quarter note
/// (the least common multiple of the `beat_res` resolutions, times 3 with `triplets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenizerConfig {
    /// Lowest and highest pitch kept (inclusive); notes outside are dropped.
    pub pitch_range: [u8; 2],
    /// Lowest and highest drum note kept (General MIDI percussion keys); the pitch tokens
    /// cover both ranges.
    pub drum_pitch_range: [u8; 2],
    /// Fold the sustain pedal into note durations before quantising (notes released while
    /// the pedal is down last until it lifts; see [`crate::Track::apply_sustain_pedal`]).
    pub sustain_pedal: bool,
    /// Duration resolution per range of lengths; the first range's resolution also sets how
    /// finely onsets are placed. Durations longer than the last range are clamped to it.
    pub beat_res: Vec<BeatRange>,
    /// Add triplet positions (3 steps per eighth note) to the grid.
    pub triplets: bool,
    /// Number of velocity bins, spread evenly over 1..=127.
    pub num_velocities: u8,
    /// Put a program token before every note and keep instruments apart when decoding.
    pub use_programs: bool,
    /// Keep the voices of one instrument apart: with `voices = n` (1..=16), every note's
    /// program token is followed by a `Voice_k` token, k being the index of its track among
    /// the tracks of the same program (soprano, alto, tenor and bass of a chorale are voices
    /// 0–3 of one program; tracks beyond the n-th share voice n − 1), and decoding writes one
    /// track per (program, voice). 0, the default, leaves voices out (vocabularies and
    /// sequences are as without the field). REMI and TSD only.
    #[serde(skip_serializing_if = "is_zero")]
    pub voices: u8,
    /// Keep drum tracks (as the drum "program").
    pub use_drums: bool,
    /// Encode tempo changes.
    pub use_tempos: bool,
    /// Number of tempo bins. When 120 BPM (MIDI's default) lies in `tempo_range`, the bin
    /// nearest to it is exactly 120 BPM, so files without a tempo event keep their tempo.
    pub num_tempos: u8,
    /// Slowest and fastest tempo in quarter notes per minute.
    pub tempo_range: [f64; 2],
    /// Space tempo bins geometrically (equal ratios, the default) rather than linearly.
    pub log_tempos: bool,
    /// Encode time-signature changes (only those listed in `time_signatures`).
    pub use_time_signatures: bool,
    /// Time signatures the vocabulary knows, as `[numerator, denominator]`. Others become
    /// the nearest known bar length in quarter notes.
    pub time_signatures: Vec<[u8; 2]>,
    /// REMI+: a chord token after the position of notes whose pitch classes form a known
    /// chord ([`crate::analysis::Chord::recognize`]); annotation only, ignored when decoding.
    pub use_chords: bool,
    /// Encode pitch bends of melodic tracks, binned into `num_pitch_bends` values.
    pub use_pitch_bends: bool,
    /// Number of pitch-bend bins over −8192..=8191 (one of them is exactly 0).
    pub num_pitch_bends: u8,
    /// Mark silences with `Rest` tokens (MidiTok's `use_rests`). In TSD and event
    /// sequences a rest is a whole number of quarter notes during which nothing sounds
    /// (shorter silences stay time shifts); in REMI a rest is a run of whole bars with no
    /// onset and nothing sounding, written instead of their `Bar` tokens.
    pub use_rests: bool,
    /// Longest rest token: quarter notes (TSD, event) or bars (REMI); longer silences take
    /// several rests. The default, 12, matches the longest default time shift.
    pub max_rest: u8,
}

impl Default for TokenizerConfig {
    /// MidiTok's REMI defaults where they exist: pitches 21–108 (drums 27–88), `beat_res`
    /// {0–4 quarters: 8 steps, 4–12: 4 steps}, 32 velocities, 32 tempos from 40 to 250 BPM,
    /// programs on, the common time signatures, no chords, sustain pedal not applied.
    fn default() -> Self {
        let mut time_signatures: Vec<[u8; 2]> = (1..=8).map(|n| [n, 4]).collect();
        time_signatures.extend([
            [2, 2],
            [3, 2],
            [4, 2],
            [3, 8],
            [5, 8],
            [6, 8],
            [7, 8],
            [9, 8],
            [12, 8],
        ]);
        Self {
            pitch_range: [21, 108],
            drum_pitch_range: [27, 88],
            sustain_pedal: false,
            beat_res: vec![
                BeatRange {
                    start: 0,
                    end: 4,
                    positions_per_beat: 8,
                },
                BeatRange {
                    start: 4,
                    end: 12,
                    positions_per_beat: 4,
                },
            ],
            triplets: false,
            num_velocities: 32,
            use_programs: true,
            voices: 0,
            use_drums: true,
            use_tempos: true,
            num_tempos: 32,
            tempo_range: [40.0, 250.0],
            log_tempos: true,
            use_time_signatures: true,
            time_signatures,
            use_chords: false,
            use_pitch_bends: false,
            num_pitch_bends: 32,
            use_rests: false,
            max_rest: 12,
        }
    }
}

/// Most voices per program [`TokenizerConfig::voices`] may ask for.
pub const MAX_VOICES: u8 = 16;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field: field.into(),
        reason: reason.into(),
    }
}

const fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl TokenizerConfig {
    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<(), Error> {
        let [lo, hi] = self.pitch_range;
        if lo > hi || hi > 127 {
            return Err(invalid(
                "pitch_range",
                format!("[{lo}, {hi}] must satisfy low <= high <= 127"),
            ));
        }
        let [dlo, dhi] = self.drum_pitch_range;
        if dlo > dhi || dhi > 127 {
            return Err(invalid(
                "drum_pitch_range",
                format!("[{dlo}, {dhi}] must satisfy low <= high <= 127"),
            ));
        }
        if self.beat_res.is_empty() {
            return Err(invalid("beat_res", "needs at least one range"));
        }
        let mut expected_start = 0;
        for (i, r) in self.beat_res.iter().enumerate() {
            if r.start != expected_start {
                return Err(invalid(
                    format!("beat_res[{i}].start"),
                    format!(
                        "is {} but must continue the previous range at {expected_start}",
                        r.start
                    ),
                ));
            }
            if r.end <= r.start {
                return Err(invalid(
                    format!("beat_res[{i}].end"),
                    "must be greater than start",
                ));
            }
            if r.positions_per_beat == 0 || r.positions_per_beat > 64 {
                return Err(invalid(
                    format!("beat_res[{i}].positions_per_beat"),
                    "must be in 1..=64",
                ));
            }
            expected_start = r.end;
        }
        if self.num_velocities == 0 || self.num_velocities > 127 {
            return Err(invalid("num_velocities", "must be in 1..=127"));
        }
        if self.use_tempos {
            let [a, b] = self.tempo_range;
            if !(a.is_finite() && b.is_finite() && a > 3.6 && a <= b) {
                return Err(invalid(
                    "tempo_range",
                    "must be finite with 3.6 < slowest <= fastest",
                ));
            }
            if self.num_tempos == 0 {
                return Err(invalid("num_tempos", "must be at least 1"));
            }
        }
        if self.use_time_signatures {
            if self.time_signatures.is_empty() {
                return Err(invalid(
                    "time_signatures",
                    "must list at least one signature",
                ));
            }
            for (i, &[n, d]) in self.time_signatures.iter().enumerate() {
                if n == 0 || !d.is_power_of_two() || d > 16 {
                    return Err(invalid(
                        format!("time_signatures[{i}]"),
                        format!(
                            "{n}/{d}: numerator must be >= 1, denominator a power of two <= 16"
                        ),
                    ));
                }
                if self.bar_steps(n, d) > 4096 {
                    return Err(invalid(
                        format!("time_signatures[{i}]"),
                        "bar is too long for the grid",
                    ));
                }
            }
        }
        if self.voices > MAX_VOICES {
            return Err(invalid(
                "voices",
                format!("{} voices: at most {MAX_VOICES}", self.voices),
            ));
        }
        if self.use_rests && self.max_rest == 0 {
            return Err(invalid("max_rest", "must be at least 1"));
        }
        if self.use_pitch_bends && self.num_pitch_bends < 2 {
            return Err(invalid("num_pitch_bends", "must be at least 2"));
        }
        if self.grid_resolution() > 480 {
            return Err(invalid(
                "beat_res",
                "grid resolution (LCM of resolutions) exceeds 480 steps per quarter",
            ));
        }
        Ok(())
    }

    /// Reads a config from TOML (missing fields take their defaults) and validates it.
    ///
    /// ```
    /// use aurl_core::tokenize::TokenizerConfig;
    /// let c = TokenizerConfig::from_toml("num_velocities = 16\ntriplets = true")?;
    /// assert_eq!((c.num_velocities, c.grid_resolution()), (16, 24));
    /// let err = TokenizerConfig::from_toml("num_velocity = 16").unwrap_err();
    /// assert!(err.to_string().contains("num_velocity"));
    /// # Ok::<(), aurl_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for unknown keys, wrong types or invalid values, naming the field.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let reason = e.message().to_owned();
            let field = match e.span() {
                Some(span) => text.get(span).unwrap_or("?").trim().to_owned(),
                None => "?".to_owned(),
            };
            invalid(field, reason)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML.
    #[must_use]
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Grid steps per quarter note: the LCM of the `beat_res` resolutions (×3 with triplets,
    /// unless already divisible by 3).
    #[must_use]
    pub fn grid_resolution(&self) -> u32 {
        let mut r = 1u32;
        for b in &self.beat_res {
            let p = u32::from(b.positions_per_beat.max(1));
            r = r / gcd(r, p) * p;
        }
        if self.triplets && !r.is_multiple_of(3) {
            r *= 3;
        }
        r
    }

    /// Length of a bar of `numerator/denominator` in grid steps.
    #[must_use]
    pub fn bar_steps(&self, numerator: u8, denominator: u8) -> u32 {
        self.grid_resolution() * 4 * u32::from(numerator) / u32::from(denominator.max(1))
    }
}

impl TokenizerConfig {
    /// The pitches the vocabulary needs tokens for: `pitch_range`, widened to the drum range
    /// when drums are kept.
    #[must_use]
    pub fn token_pitch_range(&self) -> (u8, u8) {
        let [lo, hi] = self.pitch_range;
        if self.use_drums {
            let [dlo, dhi] = self.drum_pitch_range;
            (lo.min(dlo), hi.max(dhi))
        } else {
            (lo, hi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_with_a_32nd_note_grid() {
        let c = TokenizerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.grid_resolution(), 8);
        assert_eq!(c.bar_steps(4, 4), 32);
        assert_eq!(c.bar_steps(6, 8), 24);
        let t = TokenizerConfig {
            triplets: true,
            ..c
        };
        assert_eq!(t.grid_resolution(), 24);
    }

    #[test]
    fn toml_round_trips_and_rejects_bad_values() {
        let c = TokenizerConfig::default();
        assert_eq!(TokenizerConfig::from_toml(&c.to_toml()).unwrap(), c);
        let e = TokenizerConfig::from_toml("pitch_range = [100, 20]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pitch_range"), "{e}");
        let e = TokenizerConfig::from_toml("num_tempos = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("many"), "{e}");
    }

    #[test]
    fn errors_name_the_offending_field() {
        let mut c = TokenizerConfig::default();
        c.beat_res[1].start = 5;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("beat_res[1].start"), "{e}");
        let c = TokenizerConfig {
            pitch_range: [90, 10],
            ..TokenizerConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("pitch_range")
        );
        let c = TokenizerConfig {
            time_signatures: vec![[3, 3]],
            ..TokenizerConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("time_signatures[0]")
        );
    }
}
