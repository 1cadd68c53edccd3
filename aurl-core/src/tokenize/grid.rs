//! The value grids shared by every scheme: time steps, allowed durations, velocity, tempo and
//! time-signature bins, with nearest-value lookups.

use super::TokenizerConfig;

/// The finite value sets a vocabulary is built from, derived once from a
/// [`TokenizerConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Steps per quarter note.
    pub resolution: u32,
    /// Allowed note lengths in steps, ascending.
    pub durations: Vec<u32>,
    /// Time-shift values in steps, ascending: every step count up to one quarter note, then
    /// the longer durations, so any gap is an exact sum of shifts.
    pub time_shifts: Vec<u32>,
    /// Velocity of each bin, ascending.
    pub velocities: Vec<u8>,
    /// Bin of every velocity 0..=127.
    velocity_bins: [u8; 128],
    /// Microseconds per quarter of each tempo bin, from slow to fast.
    pub tempos: Vec<u32>,
    /// Known time signatures, in config order.
    pub time_signatures: Vec<(u8, u8)>,
    /// Longest bar in steps (the number of position tokens).
    pub max_bar_steps: u32,
    /// Pitch-bend value of each bin, ascending; one bin is exactly 0.
    pub pitch_bends: Vec<i16>,
}

impl Grid {
    /// Builds the grids. The config should be valid ([`TokenizerConfig::validate`]).
    #[must_use]
    pub fn new(config: &TokenizerConfig) -> Self {
        let resolution = config.grid_resolution();
        let mut durations = Vec::new();
        for r in &config.beat_res {
            let step = (resolution / u32::from(r.positions_per_beat.max(1))).max(1);
            let mut d = u32::from(r.start) * resolution + step;
            while d <= u32::from(r.end) * resolution {
                durations.push(d);
                d += step;
            }
        }
        durations.sort_unstable();
        durations.dedup();
        let mut time_shifts: Vec<u32> = (1..=resolution).collect();
        time_shifts.extend(durations.iter().copied().filter(|&d| d > resolution));
        let n = u32::from(config.num_velocities.max(1));
        let velocities: Vec<u8> = (1..=n)
            .map(|i| ((i * 127 + n / 2) / n).clamp(1, 127) as u8)
            .collect();
        let tempos = if config.use_tempos {
            tempo_bins(config.tempo_range, config.num_tempos, config.log_tempos)
        } else {
            Vec::new()
        };
        let time_signatures: Vec<(u8, u8)> = if config.use_time_signatures {
            config
                .time_signatures
                .iter()
                .map(|&[n, d]| (n, d))
                .collect()
        } else {
            vec![(4, 4)]
        };
        let max_bar_steps = time_signatures
            .iter()
            .map(|&(n, d)| config.bar_steps(n, d))
            .max()
            .unwrap_or(4 * resolution);
        let pitch_bends = if config.use_pitch_bends {
            let n = i32::from(config.num_pitch_bends.max(2));
            let mut v: Vec<i16> = (0..n)
                .map(|i| (-8192 + (16383 * i + (n - 1) / 2) / (n - 1)) as i16)
                .collect();
            let zero = v
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.unsigned_abs())
                .map_or(0, |(i, _)| i);
            v[zero] = 0;
            v
        } else {
            Vec::new()
        };
        let velocity_bins = std::array::from_fn(|v| {
            let mut best = 0;
            for (i, &b) in velocities.iter().enumerate() {
                if b.abs_diff(v as u8) < velocities[best].abs_diff(v as u8) {
                    best = i;
                }
            }
            best as u8
        });
        Self {
            velocity_bins,
            pitch_bends,
            resolution,
            durations,
            time_shifts,
            velocities,
            tempos,
            time_signatures,
            max_bar_steps,
        }
    }

    /// Grid step nearest to `tick` at `ticks_per_quarter` (half rounds up).
    #[must_use]
    pub fn step(&self, tick: u64, ticks_per_quarter: u16) -> u64 {
        let tpq = u128::from(ticks_per_quarter.max(1));
        let v = (u128::from(tick) * u128::from(self.resolution) * 2 + tpq) / (2 * tpq);
        u64::try_from(v).unwrap_or(u64::MAX)
    }

    /// Index of the allowed duration nearest to `steps` (ties go to the shorter one; zero and
    /// anything shorter than the shortest map to the shortest, so no note vanishes).
    #[must_use]
    pub fn duration_index(&self, steps: u64) -> usize {
        nearest(&self.durations, steps)
    }

    /// Splits a gap of `steps` into time-shift bin indices, longest first; exact because every
    /// step count up to a quarter note is a shift value.
    pub fn time_shift_indices(&self, mut steps: u64, out: &mut Vec<usize>) {
        while steps > 0 {
            let i = self.time_shifts.partition_point(|&v| u64::from(v) <= steps) - 1;
            out.push(i);
            steps -= u64::from(self.time_shifts[i]);
        }
    }

    /// Index of the pitch-bend bin nearest to `value` (ties: the lower bin).
    #[must_use]
    pub fn pitch_bend_index(&self, value: i16) -> usize {
        let mut best = 0;
        for (i, &b) in self.pitch_bends.iter().enumerate() {
            if (i32::from(b) - i32::from(value)).abs()
                < (i32::from(self.pitch_bends[best]) - i32::from(value)).abs()
            {
                best = i;
            }
        }
        best
    }

    /// The pitch-bend bin of value 0.
    #[must_use]
    pub fn pitch_bend_center(&self) -> usize {
        self.pitch_bend_index(0)
    }

    /// Index of the velocity bin nearest to `velocity` (ties go to the softer bin); a table
    /// lookup, since it runs once per note.
    #[must_use]
    pub fn velocity_index(&self, velocity: u8) -> usize {
        usize::from(self.velocity_bins[usize::from(velocity.min(127))])
    }

    /// Index of the tempo bin nearest to `micros_per_quarter` on a logarithmic scale.
    #[must_use]
    pub fn tempo_index(&self, micros_per_quarter: u32) -> usize {
        let x = f64::from(micros_per_quarter.max(1)).ln();
        let mut best = 0;
        let mut best_d = f64::INFINITY;
        for (i, &t) in self.tempos.iter().enumerate() {
            let d = (f64::from(t).ln() - x).abs();
            if d < best_d {
                best = i;
                best_d = d;
            }
        }
        best
    }

    /// Index of the known time signature equal to `n/d`, else the one whose bar length in
    /// quarter notes is nearest (ties: the first listed).
    #[must_use]
    pub fn time_signature_index(&self, numerator: u8, denominator: u8) -> usize {
        if let Some(i) = self
            .time_signatures
            .iter()
            .position(|&ts| ts == (numerator, denominator))
        {
            return i;
        }
        let quarters = |n: u8, d: u8| f64::from(n) * 4.0 / f64::from(d.max(1));
        let target = quarters(numerator, denominator);
        let mut best = 0;
        for (i, &(n, d)) in self.time_signatures.iter().enumerate() {
            let (bn, bd) = self.time_signatures[best];
            if (quarters(n, d) - target).abs() < (quarters(bn, bd) - target).abs() {
                best = i;
            }
        }
        best
    }

    /// Length of a bar of the `index`-th time signature, in steps.
    #[must_use]
    pub fn bar_steps(&self, index: usize) -> u32 {
        let (n, d) = self.time_signatures[index];
        self.resolution * 4 * u32::from(n) / u32::from(d.max(1))
    }
}

/// Index of the value in ascending `values` nearest to `x` (ties: the smaller value).
fn nearest(values: &[u32], x: u64) -> usize {
    let i = values.partition_point(|&v| u64::from(v) < x);
    if i == 0 {
        return 0;
    }
    if i == values.len() {
        return values.len() - 1;
    }
    if x - u64::from(values[i - 1]) <= u64::from(values[i]) - x {
        i - 1
    } else {
        i
    }
}

/// MIDI's default tempo (120 BPM), in microseconds per quarter: a file without a tempo event
/// plays at it, so the grid holds it exactly.
pub const DEFAULT_TEMPO: u32 = 500_000;

/// `count` tempo bins over `[lo, hi]` BPM (equal ratios when `log`, else equal steps), slow
/// to fast, in microseconds per quarter. When 120 BPM lies in the range, the bin nearest to it
/// (on a log scale) is moved onto it, so untimed files come back at MIDI's default tempo
/// instead of the nearest bin (123 BPM on the default grid).
fn tempo_bins([lo, hi]: [f64; 2], count: u8, log: bool) -> Vec<u32> {
    let k = usize::from(count.max(1));
    let mut bins: Vec<u32> = (0..k)
        .map(|i| {
            let f = if k == 1 {
                0.0
            } else {
                i as f64 / (k - 1) as f64
            };
            let bpm = if log {
                lo * (hi / lo).powf(f)
            } else {
                lo + (hi - lo) * f
            };
            (60_000_000.0 / bpm).round() as u32
        })
        .collect();
    let range = bins.iter().copied().min().unwrap_or(0)..=bins.iter().copied().max().unwrap_or(0);
    if k > 1 && range.contains(&DEFAULT_TEMPO) {
        let target = f64::from(DEFAULT_TEMPO).ln();
        let nearest = (0..k).min_by(|&a, &b| {
            let da = (f64::from(bins[a]).ln() - target).abs();
            let db = (f64::from(bins[b]).ln() - target).abs();
            da.total_cmp(&db)
        });
        if let Some(i) = nearest {
            bins[i] = DEFAULT_TEMPO;
        }
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_matches_miditok_remi() {
        let g = Grid::new(&TokenizerConfig::default());
        assert_eq!(g.resolution, 8);
        // 0–4 quarters in 32nds (32 values), 4–12 in 16ths (32 values).
        assert_eq!(g.durations.len(), 64);
        assert_eq!((g.durations[0], *g.durations.last().unwrap()), (1, 96));
        assert_eq!(g.velocities.len(), 32);
        assert_eq!((g.velocities[0], g.velocities[31]), (4, 127));
        assert_eq!(g.tempos.len(), 32);
        assert_eq!(g.tempos[0], 1_500_000, "40 BPM");
        assert_eq!(g.tempos[31], 240_000, "250 BPM");
        let linear = Grid::new(&TokenizerConfig {
            log_tempos: false,
            num_tempos: 3,
            ..TokenizerConfig::default()
        });
        assert_eq!(
            linear.tempos,
            vec![1_500_000, 500_000, 240_000],
            "40, 145 moved onto MIDI's default 120, 250 BPM"
        );
    }

    #[test]
    fn nearest_values_round_sensibly() {
        let g = Grid::new(&TokenizerConfig::default());
        assert_eq!(
            g.durations[g.duration_index(0)],
            1,
            "zero-length notes keep one step"
        );
        assert_eq!(g.durations[g.duration_index(31)], 31);
        assert_eq!(
            g.durations[g.duration_index(33)],
            32,
            "past 4 quarters the step is a 16th"
        );
        assert_eq!(
            g.durations[g.duration_index(35)],
            34,
            "tie between 34 and 36 goes short"
        );
        assert_eq!(g.durations[g.duration_index(10_000)], 96);
        assert_eq!(g.velocities[g.velocity_index(64)], 64);
        assert_eq!(
            g.velocities[g.velocity_index(62)],
            60,
            "tie between 60 and 64 goes soft"
        );
        assert_eq!(g.tempo_index(500_000), g.tempo_index(499_000));
        assert_eq!(
            g.tempos[g.tempo_index(DEFAULT_TEMPO)],
            DEFAULT_TEMPO,
            "MIDI's default 120 BPM is a bin of its own"
        );
        assert!(
            g.tempos.windows(2).all(|w| w[0] > w[1]),
            "bins stay ordered slow to fast"
        );
        assert_eq!(g.time_signatures[g.time_signature_index(3, 4)], (3, 4));
        assert_eq!(
            g.time_signatures[g.time_signature_index(15, 16)],
            (4, 4),
            "3.75 quarters ~ 4"
        );
        assert_eq!(g.step(480, 960), 4);
        assert_eq!(g.step(59, 480), 1);
    }
}
