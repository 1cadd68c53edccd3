//! Melody lines and their statistics: the skyline (the highest note at each onset), the
//! interval sequence, melodic contour and interval statistics.

use serde::Serialize;

use crate::{Note, Score};

/// The skyline of some notes (Uitdenbogerd & Zobel, 1999): at every onset the highest
/// note starting there, unless a higher note is still sounding — then the onset belongs to
/// an inner voice and is skipped. Each kept note is cut where the next one starts, so the
/// line is monophonic and in time order.
///
/// ```
/// use aurl_core::{Note, Pitch, Velocity};
/// use aurl_core::analysis::skyline;
/// let n = |p, s, d| Note::new(Pitch::new(p).unwrap(), Velocity::new(80).unwrap(), s, d);
/// // E over C, then G; an alto D moving under the held G is not melody.
/// let line = skyline(&[n(48, 0, 480), n(64, 0, 480), n(67, 240, 480), n(62, 480, 240)]);
/// assert_eq!(line.iter().map(|n| n.pitch.get()).collect::<Vec<_>>(), [64, 67]);
/// assert_eq!(line[0].duration, 240, "cut where the next note starts");
/// ```
#[must_use]
pub fn skyline(notes: &[Note]) -> Vec<Note> {
    let mut sorted: Vec<Note> = notes.to_vec();
    // Highest first within an onset, so the first of each onset is kept.
    sorted.sort_unstable_by(|a, b| a.start.cmp(&b.start).then(b.pitch.cmp(&a.pitch)));
    sorted.dedup_by_key(|n| n.start);
    let mut line: Vec<Note> = Vec::with_capacity(sorted.len());
    // End of the last kept note as written, before it is cut.
    let mut held_until = 0;
    for n in sorted {
        if let Some(last) = line.last_mut() {
            if n.start < held_until && n.pitch < last.pitch {
                continue;
            }
            last.duration = last.duration.min(n.start - last.start).max(1);
        }
        held_until = n.start + n.duration.max(1);
        line.push(n);
    }
    line
}

/// The melody of a score: the skyline of all its pitched (non-drum) notes.
#[must_use]
pub fn melody(score: &Score) -> Vec<Note> {
    let notes: Vec<Note> = crate::metrics::pitched_notes(score).copied().collect();
    skyline(&notes)
}

/// Semitone steps between consecutive notes (transposition-invariant).
#[must_use]
pub fn intervals(line: &[Note]) -> Vec<i8> {
    line.windows(2)
        .map(|w| (i16::from(w[1].pitch.get()) - i16::from(w[0].pitch.get())) as i8)
        .collect()
}

/// The direction of one melodic step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Contour {
    /// Higher than the previous note.
    Up,
    /// Lower.
    Down,
    /// The same pitch.
    Same,
}

/// The contour of a line, one symbol per interval.
#[must_use]
pub fn contour(line: &[Note]) -> Vec<Contour> {
    intervals(line)
        .into_iter()
        .map(|i| match i.signum() {
            1 => Contour::Up,
            -1 => Contour::Down,
            _ => Contour::Same,
        })
        .collect()
}

/// Interval and contour statistics of a melody line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MelodyStats {
    /// Notes in the line.
    pub notes: usize,
    /// Count per interval from −12 to +12 semitones (index `i + 12`); larger leaps are
    /// counted in the outermost bins.
    pub interval_histogram: [u32; 25],
    /// Mean absolute interval in semitones.
    pub mean_abs_interval: f64,
    /// Share of steps (1 or 2 semitones).
    pub step_rate: f64,
    /// Share of leaps (more than a major third: 5 semitones or more).
    pub leap_rate: f64,
    /// Share of repeated pitches.
    pub repeat_rate: f64,
    /// Share of rising intervals.
    pub up_rate: f64,
    /// Share of falling intervals.
    pub down_rate: f64,
    /// Direction changes (up → down or down → up, ignoring repeats) per interval: how
    /// often the line turns.
    pub turn_rate: f64,
    /// Highest minus lowest pitch of the line.
    pub range: u8,
}

impl MelodyStats {
    /// The statistics of `line` (`None` with fewer than two notes).
    ///
    /// ```
    /// use aurl_core::{Note, Pitch, Velocity};
    /// use aurl_core::analysis::{MelodyStats, skyline};
    /// let n = |p, s| Note::new(Pitch::new(p).unwrap(), Velocity::new(80).unwrap(), s, 1);
    /// // C D E C: +2 +2 −4.
    /// let stats = MelodyStats::of(&[n(60, 0), n(62, 1), n(64, 2), n(60, 3)]).unwrap();
    /// assert!((stats.mean_abs_interval - 8.0 / 3.0).abs() < 1e-12);
    /// assert!((stats.step_rate - 2.0 / 3.0).abs() < 1e-12);
    /// assert_eq!(stats.range, 4);
    /// ```
    #[must_use]
    pub fn of(line: &[Note]) -> Option<MelodyStats> {
        let iv = intervals(line);
        if iv.is_empty() {
            return None;
        }
        let n = iv.len() as f64;
        let share = |f: &dyn Fn(i8) -> bool| iv.iter().filter(|&&i| f(i)).count() as f64 / n;
        let mut interval_histogram = [0u32; 25];
        for &i in &iv {
            interval_histogram[(i.clamp(-12, 12) + 12) as usize] += 1;
        }
        let directions: Vec<i8> = iv.iter().map(|i| i.signum()).filter(|&d| d != 0).collect();
        let turns = directions.windows(2).filter(|w| w[0] != w[1]).count();
        let (lo, hi) = line.iter().fold((u8::MAX, 0), |(lo, hi), x| {
            (lo.min(x.pitch.get()), hi.max(x.pitch.get()))
        });
        Some(MelodyStats {
            notes: line.len(),
            interval_histogram,
            mean_abs_interval: iv.iter().map(|&i| f64::from(i).abs()).sum::<f64>() / n,
            step_rate: share(&|i| (1..=2).contains(&i.unsigned_abs())),
            leap_rate: share(&|i| i.unsigned_abs() >= 5),
            repeat_rate: share(&|i| i == 0),
            up_rate: share(&|i| i > 0),
            down_rate: share(&|i| i < 0),
            turn_rate: turns as f64 / n,
            range: hi - lo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pitch, Velocity};

    fn n(p: u8, s: u64) -> Note {
        Note::new(Pitch::new(p).unwrap(), Velocity::new(80).unwrap(), s, 4)
    }

    #[test]
    fn contour_and_turns_by_hand() {
        // 60 64 64 62 67 55: +4 0 −2 +5 −12 → Up Same Down Up Down; non-zero directions
        // + − + − turn 3 times over 5 intervals.
        let line = skyline(&[
            n(60, 0),
            n(64, 4),
            n(64, 8),
            n(62, 12),
            n(67, 16),
            n(55, 20),
        ]);
        use Contour::*;
        assert_eq!(contour(&line), [Up, Same, Down, Up, Down]);
        let s = MelodyStats::of(&line).unwrap();
        assert!((s.turn_rate - 0.6).abs() < 1e-12);
        assert!((s.leap_rate - 0.4).abs() < 1e-12, "+5 and −12 are leaps");
        assert!((s.repeat_rate - 0.2).abs() < 1e-12);
        assert_eq!(s.interval_histogram[0], 1, "−12 in the lowest bin");
        assert_eq!(s.range, 12);
        assert!(MelodyStats::of(&line[..1]).is_none());
    }
}
