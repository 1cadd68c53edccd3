//! Onset and duration quantization: strict, groove-preserving, and adaptive (straight or
//! triplet grid chosen per piece).

use aurl_core::{Score, Tick};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Which grid notes are moved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GridChoice {
    /// The straight grid of [`QuantizeConfig::steps_per_quarter`].
    Straight,
    /// The triplet grid of [`QuantizeConfig::triplet_steps_per_quarter`].
    Triplet,
    /// The union of both: each time goes to the nearer of the two grid points.
    Both,
    /// Per piece, whichever of `Straight` and `Triplet` moves the onsets least in total
    /// (straight on a tie): swung and triplet pieces get the triplet grid, the rest the
    /// straight one.
    Adaptive,
}

/// How [`quantize`] moves notes.
///
/// The defaults snap to 32nd notes or triplet 16ths, whichever grid fits the piece.
///
/// ```
/// use aurl_core::{Note, Pitch, Score, Track, Velocity};
/// use aurl_data::preprocess::{quantize, GridChoice, QuantizeConfig};
/// let mut score = Score::new(480);
/// let mut track = Track::new("piano");
/// track.notes.push(Note::new(Pitch::MIDDLE_C, Velocity::saturating(80), 131, 7));
/// score.tracks.push(track);
/// let config = QuantizeConfig { grid: GridChoice::Straight, steps_per_quarter: 4, ..QuantizeConfig::default() };
/// let report = quantize(&mut score, &config)?;
/// let n = score.tracks[0].notes[0];
/// assert_eq!((n.start, n.duration), (120, 120)); // a 16th-note grid; never zero length
/// assert_eq!(report.lengthened, 1);
/// # Ok::<(), aurl_data::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantizeConfig {
    /// Straight grid steps per quarter note: 8 = 32nd notes, 4 = 16ths.
    pub steps_per_quarter: u16,
    /// Triplet grid steps per quarter note: 6 = triplet 16ths, 3 = triplet 8ths.
    pub triplet_steps_per_quarter: u16,
    /// Which grid to use.
    pub grid: GridChoice,
    /// How far onsets and ends move toward the grid, 0..=1. 1 is strict quantization; below
    /// 1 the groove is kept: every note keeps `1 − strength` of its offset from the grid, so
    /// the pattern of micro-timing (which notes are early, which late, by how much relative
    /// to each other) survives, only smaller.
    pub strength: f64,
}

impl Default for QuantizeConfig {
    fn default() -> Self {
        Self {
            steps_per_quarter: 8,
            triplet_steps_per_quarter: 6,
            grid: GridChoice::Adaptive,
            strength: 1.0,
        }
    }
}

impl QuantizeConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field (under `quantize.`).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &str, reason: String| {
            Err(Error::InvalidConfig {
                field: format!("quantize.{field}"),
                reason,
            })
        };
        if self.steps_per_quarter == 0 {
            return bad("steps_per_quarter", "must be at least 1".into());
        }
        if self.triplet_steps_per_quarter == 0 {
            return bad("triplet_steps_per_quarter", "must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.strength) {
            return bad(
                "strength",
                format!("must be in 0..=1, got {}", self.strength),
            );
        }
        Ok(())
    }
}

/// What [`quantize`] did.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct QuantizeReport {
    /// The grid used (for [`GridChoice::Adaptive`], the one chosen).
    pub grid: Option<GridChoice>,
    /// Notes whose onset moved.
    pub moved: usize,
    /// Mean absolute onset shift over all notes, in ticks.
    pub mean_shift_ticks: f64,
    /// Notes that would have become zero-length and were extended to the next grid point (or
    /// kept their own length up to one step, under a groove strength).
    pub lengthened: usize,
}

/// A regular grid of `steps` points per quarter at a resolution of `tpq` ticks per quarter.
#[derive(Debug, Clone, Copy)]
struct Grid {
    steps: u64,
    tpq: u64,
}

impl Grid {
    fn new(steps: u16, tpq: u16) -> Self {
        let tpq = u64::from(tpq.max(1));
        // A grid finer than the ticks is the ticks themselves.
        Self {
            steps: u64::from(steps).clamp(1, tpq),
            tpq,
        }
    }

    /// The nearest grid point (ties go up), in ticks. Idempotent because steps ≤ tpq.
    fn snap(self, t: Tick) -> Tick {
        let (s, q) = (u128::from(self.steps), u128::from(self.tpq));
        let k = (u128::from(t) * s * 2 + q) / (q * 2);
        Tick::try_from((k * q * 2 + s) / (s * 2)).unwrap_or(Tick::MAX)
    }

    /// One step in ticks, rounded, at least 1.
    fn step(self) -> Tick {
        ((self.tpq + self.steps / 2) / self.steps).max(1)
    }

    /// The first grid point after `t`.
    fn next_after(self, t: Tick) -> Tick {
        let (s, q) = (u128::from(self.steps), u128::from(self.tpq));
        let point = |k: u128| Tick::try_from((k * q * 2 + s) / (s * 2)).unwrap_or(Tick::MAX);
        let mut k = u128::from(t) * s / q;
        while point(k) <= t && point(k) < Tick::MAX {
            k += 1;
        }
        point(k)
    }
}

/// The grid (or pair of grids) in use for one piece.
#[derive(Debug, Clone, Copy)]
struct Snapper {
    first: Grid,
    second: Option<Grid>,
}

impl Snapper {
    fn snap(self, t: Tick) -> Tick {
        let a = self.first.snap(t);
        match self.second {
            Some(g) => {
                let b = g.snap(t);
                if b.abs_diff(t) < a.abs_diff(t) { b } else { a }
            }
            None => a,
        }
    }

    fn step(self) -> Tick {
        self.second
            .map_or(self.first.step(), |g| g.step().min(self.first.step()))
    }

    /// The first grid point after `t` (of either grid).
    fn next_after(self, t: Tick) -> Tick {
        let a = self.first.next_after(t);
        self.second.map_or(a, |g| g.next_after(t).min(a))
    }
}

/// `t` moved toward `target` by `strength` (1 = all the way), rounded to the nearest tick.
fn toward(t: Tick, target: Tick, strength: f64) -> Tick {
    if strength >= 1.0 {
        return target;
    }
    let shift = (target as f64 - t as f64) * strength;
    (t as f64 + shift).round().max(0.0) as Tick
}

/// Quantizes the onsets and ends of every note of `score` in place (controllers, pitch
/// bends and meta events keep their ticks). Notes keep their order; a note whose end would
/// fall on or before its onset ends on the next grid point (strict), or keeps its own length
/// up to one step (groove), so no note becomes zero-length.
///
/// Quantizing twice with the same strict config changes nothing the second time.
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid config (the score is unchanged).
pub fn quantize(score: &mut Score, config: &QuantizeConfig) -> Result<QuantizeReport, Error> {
    config.validate()?;
    let tpq = score.ticks_per_quarter;
    let straight = Grid::new(config.steps_per_quarter, tpq);
    let triplet = Grid::new(config.triplet_steps_per_quarter, tpq);
    let grid = match config.grid {
        GridChoice::Adaptive => {
            let error = |g: Grid| -> u128 {
                let onsets = score.tracks.iter().flat_map(|t| &t.notes);
                onsets
                    .map(|n| u128::from(g.snap(n.start).abs_diff(n.start)))
                    .sum()
            };
            if error(triplet) < error(straight) {
                GridChoice::Triplet
            } else {
                GridChoice::Straight
            }
        }
        g => g,
    };
    let snapper = match grid {
        GridChoice::Triplet => Snapper {
            first: triplet,
            second: None,
        },
        GridChoice::Both => Snapper {
            first: straight,
            second: Some(triplet),
        },
        _ => Snapper {
            first: straight,
            second: None,
        },
    };
    let step = snapper.step();
    let mut report = QuantizeReport {
        grid: Some(grid),
        ..QuantizeReport::default()
    };
    let mut total_shift: u128 = 0;
    let mut count: usize = 0;
    for track in &mut score.tracks {
        for n in &mut track.notes {
            let start = toward(n.start, snapper.snap(n.start), config.strength);
            let mut end = toward(n.end(), snapper.snap(n.end()), config.strength);
            if end <= start {
                end = if config.strength >= 1.0 {
                    snapper.next_after(start)
                } else {
                    start + n.duration.clamp(1, step)
                };
                report.lengthened += 1;
            }
            total_shift += u128::from(start.abs_diff(n.start));
            count += 1;
            if start != n.start {
                report.moved += 1;
            }
            n.start = start;
            n.duration = end - start;
        }
        track.notes.sort_by_key(|n| n.start);
    }
    if count > 0 {
        report.mean_shift_ticks = total_shift as f64 / count as f64;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use aurl_core::{Note, Pitch, Track, Velocity};

    use super::*;

    fn score(notes: &[(u64, u64)]) -> Score {
        let mut s = Score::new(480);
        let mut t = Track::new("t");
        for &(start, duration) in notes {
            t.notes.push(Note::new(
                Pitch::MIDDLE_C,
                Velocity::saturating(64),
                start,
                duration,
            ));
        }
        s.tracks.push(t);
        s
    }

    fn spans(s: &Score) -> Vec<(u64, u64)> {
        s.tracks[0]
            .notes
            .iter()
            .map(|n| (n.start, n.duration))
            .collect()
    }

    #[test]
    fn strict_straight_grid_snaps_to_the_nearest_32nd() {
        // 32nd = 60 ticks at 480 tpq. 29 → 0, 31 → 60 (nearest), 90 → 120 (tie goes up).
        let mut s = score(&[(29, 200), (31, 100), (90, 30)]);
        let config = QuantizeConfig {
            grid: GridChoice::Straight,
            ..QuantizeConfig::default()
        };
        quantize(&mut s, &config).unwrap();
        // Ends: 229 → 240, 131 → 120, 120 → 120: the last would be empty, so one step.
        assert_eq!(spans(&s), vec![(0, 240), (60, 60), (120, 60)]);
    }

    #[test]
    fn adaptive_picks_triplets_for_a_triplet_piece_and_straight_otherwise() {
        // Triplet 8ths at 480 tpq: every 160 ticks. Straight 32nds (60) miss 160 by 20.
        let mut triplets = score(&[(0, 160), (160, 160), (320, 160), (480, 160)]);
        let r = quantize(&mut triplets, &QuantizeConfig::default()).unwrap();
        assert_eq!(r.grid, Some(GridChoice::Triplet));
        assert_eq!(r.moved, 0);
        // Straight 16ths (120): the triplet-16th grid (80) misses 120 by 40.
        let mut straight = score(&[(0, 120), (120, 120), (240, 120), (363, 120)]);
        let r = quantize(&mut straight, &QuantizeConfig::default()).unwrap();
        assert_eq!(r.grid, Some(GridChoice::Straight));
        assert_eq!(r.moved, 1);
        assert_eq!(spans(&straight)[3], (360, 120));
    }

    #[test]
    fn both_grids_take_the_nearer_point() {
        // 150: straight points 120/180 (30 away), triplet 160 (10 away) → 160.
        let mut s = score(&[(150, 300)]);
        let config = QuantizeConfig {
            grid: GridChoice::Both,
            ..QuantizeConfig::default()
        };
        quantize(&mut s, &config).unwrap();
        assert_eq!(s.tracks[0].notes[0].start, 160);
    }

    #[test]
    fn groove_strength_keeps_the_offset_pattern_scaled() {
        // Offsets from the 16th grid: +20, −10, +40 ticks. Strength 0.5 halves each.
        let mut s = score(&[(20, 100), (110, 100), (280, 100)]);
        let config = QuantizeConfig {
            grid: GridChoice::Straight,
            steps_per_quarter: 4,
            strength: 0.5,
            ..QuantizeConfig::default()
        };
        quantize(&mut s, &config).unwrap();
        let starts: Vec<u64> = spans(&s).iter().map(|p| p.0).collect();
        assert_eq!(starts, vec![10, 115, 260]);
    }

    #[test]
    fn zero_strength_changes_nothing_and_bad_values_name_the_field() {
        let mut s = score(&[(13, 7), (100, 0)]);
        let before = s.clone();
        let config = QuantizeConfig {
            strength: 0.0,
            ..QuantizeConfig::default()
        };
        let r = quantize(&mut s, &config).unwrap();
        // A zero-length note in the input gets one tick; nothing else moves.
        assert_eq!(r.moved, 0);
        assert_eq!(s.tracks[0].notes[0], before.tracks[0].notes[0]);
        assert_eq!(s.tracks[0].notes[1].duration, 1);
        let bad = QuantizeConfig {
            strength: 1.5,
            ..QuantizeConfig::default()
        };
        let err = quantize(&mut s, &bad).unwrap_err().to_string();
        assert!(err.contains("quantize.strength"), "{err}");
    }

    #[test]
    fn coarse_files_keep_their_ticks() {
        // 4 ticks per quarter with a 32nd-note grid: the grid is the ticks.
        let mut s = score(&[(1, 1), (3, 2)]);
        s.ticks_per_quarter = 4;
        quantize(&mut s, &QuantizeConfig::default()).unwrap();
        assert_eq!(spans(&s), vec![(1, 1), (3, 2)]);
    }
}
