//! Exact conversion between ticks and seconds.

use crate::{Tempo, Tick};

/// One constant-tempo stretch of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    /// First tick of the stretch.
    tick: Tick,
    /// Tempo in force.
    micros_per_quarter: u32,
    /// Time at `tick`, in units of 1 / (ticks_per_quarter · 10⁶) seconds: an exact integer.
    start: u128,
}

/// Converts between ticks and seconds across any number of tempo changes.
///
/// Times are accumulated as exact integers (microseconds × ticks per quarter), so a
/// conversion is exact until the final division to `f64`; no error builds up over long
/// pieces. Several tempo events on one tick: the last one wins, as in MIDI players.
///
/// ```
/// use aurl_core::{Tempo, TempoMap};
/// // 120 BPM, then 60 BPM from beat 4 on.
/// let map = TempoMap::new(480, &[Tempo::new(1920, 1_000_000)?]);
/// assert_eq!(map.seconds(1920), 2.0);
/// assert_eq!(map.seconds(2400), 3.0);
/// assert_eq!(map.ticks(3.0), 2400);
/// # Ok::<(), aurl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempoMap {
    ticks_per_quarter: u16,
    segments: Vec<Segment>,
}

impl TempoMap {
    /// Builds the map. `tempos` need not be sorted; before the first one, 120 BPM applies.
    #[must_use]
    pub fn new(ticks_per_quarter: u16, tempos: &[Tempo]) -> Self {
        let ticks_per_quarter = ticks_per_quarter.max(1);
        let mut sorted: Vec<Tempo> = tempos.to_vec();
        sorted.sort_by_key(|t| t.tick);
        let mut segments = vec![Segment {
            tick: 0,
            micros_per_quarter: Tempo::DEFAULT_MICROS_PER_QUARTER,
            start: 0,
        }];
        for t in sorted {
            let last = *segments.last().expect("segments starts non-empty");
            let mpq = t.micros_per_quarter.max(1);
            if t.tick == last.tick {
                segments.last_mut().expect("non-empty").micros_per_quarter = mpq;
                continue;
            }
            let start =
                last.start + u128::from(t.tick - last.tick) * u128::from(last.micros_per_quarter);
            segments.push(Segment {
                tick: t.tick,
                micros_per_quarter: mpq,
                start,
            });
        }
        Self {
            ticks_per_quarter,
            segments,
        }
    }

    /// The stretch containing `tick`.
    fn segment_at(&self, tick: Tick) -> &Segment {
        let i = self.segments.partition_point(|s| s.tick <= tick);
        &self.segments[i.saturating_sub(1)]
    }

    /// Exact time of `tick` in units of 1 / (ticks_per_quarter · 10⁶) seconds.
    fn scaled_time(&self, tick: Tick) -> u128 {
        let s = self.segment_at(tick);
        s.start + u128::from(tick - s.tick) * u128::from(s.micros_per_quarter)
    }

    /// Seconds from the start of the score to `tick`.
    #[must_use]
    pub fn seconds(&self, tick: Tick) -> f64 {
        self.scaled_time(tick) as f64 / (f64::from(self.ticks_per_quarter) * 1e6)
    }

    /// The tick nearest to `seconds` (negative or NaN times map to tick 0). Inverse of
    /// [`TempoMap::seconds`]: `ticks(seconds(t)) == t` for every tick a score can hold.
    #[must_use]
    pub fn ticks(&self, seconds: f64) -> Tick {
        if seconds.is_nan() || seconds <= 0.0 {
            return 0;
        }
        let target = seconds * f64::from(self.ticks_per_quarter) * 1e6;
        let i = self
            .segments
            .partition_point(|s| (s.start as f64) <= target);
        let s = &self.segments[i.saturating_sub(1)];
        let delta = ((target - s.start as f64) / f64::from(s.micros_per_quarter)).round();
        s.tick.saturating_add(if delta >= Tick::MAX as f64 {
            Tick::MAX
        } else {
            delta as Tick
        })
    }

    /// Tempo in force at `tick`, in microseconds per quarter note.
    #[must_use]
    pub fn micros_per_quarter_at(&self, tick: Tick) -> u32 {
        self.segment_at(tick).micros_per_quarter
    }

    /// Resolution the map was built for.
    #[must_use]
    pub fn ticks_per_quarter(&self) -> u16 {
        self.ticks_per_quarter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn without_tempo_events_a_quarter_lasts_half_a_second() {
        let map = TempoMap::new(96, &[]);
        assert_eq!(map.seconds(96), 0.5);
        assert_eq!(map.micros_per_quarter_at(10_000), 500_000);
    }

    #[test]
    fn the_last_tempo_on_a_tick_wins() {
        let t = |tick, mpq| Tempo::new(tick, mpq).unwrap();
        let map = TempoMap::new(100, &[t(0, 1_000_000), t(0, 2_000_000), t(100, 500_000)]);
        assert_eq!(map.seconds(100), 2.0);
        assert_eq!(map.seconds(200), 2.5);
    }

    fn tempos() -> impl Strategy<Value = Vec<Tempo>> {
        prop::collection::vec((0u64..1_000_000, 1u32..=0xFF_FFFF), 0..20).prop_map(|v| {
            v.into_iter()
                .map(|(t, m)| Tempo::new(t, m).unwrap())
                .collect()
        })
    }

    proptest! {
        #[test]
        fn seconds_are_monotone_in_ticks(tpq in 1u16..=30_000, tempos in tempos(),
                                         a in 0u64..2_000_000, b in 0u64..2_000_000) {
            let map = TempoMap::new(tpq, &tempos);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(map.seconds(lo) <= map.seconds(hi));
        }

        #[test]
        fn ticks_invert_seconds_within_one_tick(tpq in 1u16..=30_000, tempos in tempos(),
                                                 t in 0u64..2_000_000) {
            let map = TempoMap::new(tpq, &tempos);
            let back = map.ticks(map.seconds(t));
            prop_assert!(back.abs_diff(t) <= 1, "{t} -> {} -> {back}", map.seconds(t));
        }
    }
}
