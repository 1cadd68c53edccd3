//! The augmentation transforms, each a deterministic function of a score and its
//! parameters (the random choices are made by [`augment`](super::augment)).

use aurl_core::{Family, Program, Score, Tempo, Tick, Velocity};

use super::SeedRng;

/// The pitch offsets that keep every pitched note of `score` within `low..=high`, as an
/// inclusive interval, or `None` when the piece spans more than the range already allows.
/// A score without pitched notes allows any offset (`i32::MIN..=i32::MAX` clipped to ±127).
#[must_use]
pub fn transposition_room(score: &Score, low: u8, high: u8) -> Option<(i32, i32)> {
    let pitches = score
        .tracks
        .iter()
        .filter(|t| !t.is_drum)
        .flat_map(|t| t.notes.iter().map(|n| i32::from(n.pitch.get())));
    let (min, max) = pitches.fold((i32::MAX, i32::MIN), |(a, b), p| (a.min(p), b.max(p)));
    if min > max {
        return Some((-127, 127));
    }
    let (down, up) = (i32::from(low) - min, i32::from(high) - max);
    (down <= up).then_some((down, up))
}

/// Transposes every pitched (non-drum) note by `semitones`, **clipped** so that no note
/// leaves `low..=high` (and never beyond 0..=127). Returns the offset applied: a request of
/// +12 on a piece whose top note is 100 with `high = 108` applies +8. A piece already wider
/// than the range is not moved; one that fits the range but lies partly outside it is moved
/// the least needed to bring it inside.
///
/// [`augment`](super::augment) does not clip: it draws the offset uniformly from the
/// offsets that fit ([`transposition_room`]), so the range edges are not over-represented.
pub fn transpose(score: &mut Score, semitones: i32, low: u8, high: u8) -> i32 {
    let Some((down, up)) = transposition_room(score, low, high) else {
        return 0;
    };
    let offset = semitones.clamp(down, up);
    if offset == 0 {
        return 0;
    }
    for track in score.tracks.iter_mut().filter(|t| !t.is_drum) {
        for n in &mut track.notes {
            // In range by construction of `offset`.
            if let Some(p) = n.pitch.transposed(offset) {
                n.pitch = p;
            }
        }
    }
    offset
}

/// Changes the tempo by `factor` (1.2 = 20% slower, 0.8 = 20% faster) by scaling every
/// tempo event; ticks do not move, so bars, beats and the tokens' positions stay as they
/// are and only the tempo (and the piece's duration in seconds) changes. A score without
/// tempo events gets one at tick 0 (from MIDI's default 120 bpm).
pub fn time_stretch(score: &mut Score, factor: f64) {
    let scale = |micros: u32| -> u32 {
        let v = (f64::from(micros) * factor).round();
        v.clamp(1.0, f64::from(Tempo::MAX_MICROS_PER_QUARTER)) as u32
    };
    if score.tempos.is_empty() {
        if let Ok(t) = Tempo::new(0, scale(Tempo::DEFAULT_MICROS_PER_QUARTER)) {
            score.tempos.push(t);
        }
        return;
    }
    for t in &mut score.tempos {
        t.micros_per_quarter = scale(t.micros_per_quarter);
    }
}

/// Reshapes velocities with a power curve and a gain: `v' = 127 · (v / 127)^gamma · gain`,
/// rounded into 1..=127. `gamma < 1` lifts soft notes more than loud ones (compression),
/// `gamma > 1` spreads them (expansion); the order of velocities never changes.
pub fn velocity_curve(score: &mut Score, gamma: f64, gain: f64) {
    let mut table = [0u8; 128];
    for (v, out) in table.iter_mut().enumerate().skip(1) {
        let x = 127.0 * (v as f64 / 127.0).powf(gamma) * gain;
        *out = x.round().clamp(1.0, 127.0) as u8;
    }
    for track in &mut score.tracks {
        for n in &mut track.notes {
            n.velocity = Velocity::saturating(table[usize::from(n.velocity.get())]);
        }
    }
}

/// Gives every pitched track a program drawn uniformly from its own General MIDI family
/// (a violin may become a viola or a cello; a piano stays a keyboard). Drum tracks keep
/// theirs.
pub fn substitute_instruments(score: &mut Score, rng: &mut SeedRng) {
    for track in score.tracks.iter_mut().filter(|t| !t.is_drum) {
        let family: Family = track.program.family();
        let first = i64::from(family.programs().next().map_or(0, Program::get));
        track.program = Program::saturating(rng.int_in(first, first + 7) as u8);
    }
}

/// Note values that swing is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwingUnit {
    /// Pairs of 8th notes (one pair per quarter).
    #[default]
    Eighth,
    /// Pairs of 16th notes (one pair per 8th).
    Sixteenth,
}

/// Swings the score: within each pair of `unit` notes, the off-beat moves from the middle
/// of the pair to `ratio` of it (0.5 = straight, 2/3 = triplet swing, 0.75 = dotted).
/// Time inside each pair is warped piecewise linearly, so every event (notes, controllers,
/// bends, tempo and meter changes) moves consistently, order is kept, downbeats stay put,
/// and notes keep at least one tick.
pub fn swing(score: &mut Score, unit: SwingUnit, ratio: f64) {
    let tpq = u64::from(score.ticks_per_quarter.max(1));
    let pair = match unit {
        SwingUnit::Eighth => tpq,
        SwingUnit::Sixteenth => tpq / 2,
    };
    if pair < 2 {
        return;
    }
    let ratio = ratio.clamp(0.05, 0.95);
    let half = pair as f64 / 2.0;
    let off = ratio * pair as f64;
    let warp = |t: Tick| -> Tick {
        let base = t - t % pair;
        let x = (t % pair) as f64;
        let y = if x <= half {
            x * off / half
        } else {
            off + (x - half) * (pair as f64 - off) / half
        };
        base + (y.round() as Tick).min(pair)
    };
    for track in &mut score.tracks {
        for n in &mut track.notes {
            let (start, end) = (warp(n.start), warp(n.end()));
            n.start = start;
            n.duration = if n.duration == 0 {
                0
            } else {
                end.saturating_sub(start).max(1)
            };
        }
        track.notes.sort_by_key(|n| n.start);
        track
            .controls
            .iter_mut()
            .for_each(|c| c.tick = warp(c.tick));
        track
            .pitch_bends
            .iter_mut()
            .for_each(|b| b.tick = warp(b.tick));
    }
    score.tempos.iter_mut().for_each(|e| e.tick = warp(e.tick));
    score
        .time_signatures
        .iter_mut()
        .for_each(|e| e.tick = warp(e.tick));
    score
        .key_signatures
        .iter_mut()
        .for_each(|e| e.tick = warp(e.tick));
    score.texts.iter_mut().for_each(|e| e.tick = warp(e.tick));
}

/// Small random timing and velocity deviations, as a player makes: each note's onset moves
/// by a normal deviate of `timing_sd` quarter notes (its length is kept; never before tick
/// 0), and its velocity by one of `velocity_sd` (kept in 1..=127).
pub fn humanize(score: &mut Score, rng: &mut SeedRng, timing_sd: f64, velocity_sd: f64) {
    let sd_ticks = timing_sd * f64::from(score.ticks_per_quarter);
    for track in &mut score.tracks {
        for n in &mut track.notes {
            let shift = (rng.normal() * sd_ticks).round();
            n.start = (n.start as f64 + shift).max(0.0) as Tick;
            let v = f64::from(n.velocity.get()) + rng.normal() * velocity_sd;
            n.velocity = Velocity::saturating(v.round().clamp(1.0, 127.0) as u8);
        }
        track.notes.sort_by_key(|n| n.start);
    }
}

#[cfg(test)]
mod tests {
    use aurl_core::{Note, Pitch, Track};

    use super::*;

    fn score(pitches: &[u8]) -> Score {
        let mut s = Score::new(480);
        let mut t = Track::new("t");
        for (i, &p) in pitches.iter().enumerate() {
            t.notes.push(Note::new(
                Pitch::saturating(p),
                Velocity::saturating(64),
                i as u64 * 240,
                240,
            ));
        }
        let mut d = Track::drums("d");
        d.notes.push(Note::new(
            Pitch::saturating(36),
            Velocity::saturating(64),
            0,
            120,
        ));
        s.tracks = vec![t, d];
        s
    }

    #[test]
    fn transposition_is_clipped_to_the_range_and_skips_drums() {
        let mut s = score(&[60, 100]);
        assert_eq!(transposition_room(&s, 21, 108), Some((-39, 8)));
        assert_eq!(transpose(&mut s, 12, 21, 108), 8);
        assert_eq!(s.tracks[0].notes[1].pitch.get(), 108);
        assert_eq!(
            s.tracks[1].notes[0].pitch.get(),
            36,
            "drums keep their keys"
        );
        let mut wide = score(&[10, 120]);
        assert_eq!(transposition_room(&wide, 21, 108), None);
        assert_eq!(transpose(&mut wide, 3, 21, 108), 0);
    }

    #[test]
    fn stretch_scales_tempi_and_keeps_ticks() {
        let mut s = score(&[60]);
        time_stretch(&mut s, 1.2);
        assert_eq!(s.tempos[0].micros_per_quarter, 600_000);
        s.tempos.push(Tempo::new(960, 400_000).unwrap());
        time_stretch(&mut s, 0.5);
        let m: Vec<u32> = s.tempos.iter().map(|t| t.micros_per_quarter).collect();
        assert_eq!(m, [300_000, 200_000]);
        assert_eq!(s.tracks[0].notes[0].start, 0);
    }

    #[test]
    fn velocity_curve_compresses_and_keeps_order() {
        // gamma 0.5: 127·√(32/127) = 63.75 → 64; 127·√(1/127) = 11.27 → 11; 127 → 127.
        let mut s = score(&[60, 62, 64]);
        let vs = [32, 1, 127];
        for (n, v) in s.tracks[0].notes.iter_mut().zip(vs) {
            n.velocity = Velocity::saturating(v);
        }
        velocity_curve(&mut s, 0.5, 1.0);
        let out: Vec<u8> = s.tracks[0].notes.iter().map(|n| n.velocity.get()).collect();
        assert_eq!(out, [64, 11, 127]);
    }

    #[test]
    fn swing_moves_offbeats_only() {
        // 8th-note swing at 2/3: the off-beat 8th (240 of a 480 pair) moves to 320;
        // downbeats (0, 480) stay; a note 240..480 becomes 320..480.
        let mut s = score(&[60, 62, 64]);
        swing(&mut s, SwingUnit::Eighth, 2.0 / 3.0);
        let spans: Vec<(u64, u64)> = s.tracks[0]
            .notes
            .iter()
            .map(|n| (n.start, n.duration))
            .collect();
        assert_eq!(spans, [(0, 320), (320, 160), (480, 320)]);
        // The drum note 0..120: 120 is in the first half → 120·320/240 = 160.
        assert_eq!(s.tracks[1].notes[0].duration, 160);
    }

    #[test]
    fn instruments_stay_in_their_family() {
        let mut s = score(&[60]);
        s.tracks[0].program = Program::saturating(41);
        let mut rng = SeedRng::new(3);
        for _ in 0..50 {
            substitute_instruments(&mut s, &mut rng);
            assert_eq!(s.tracks[0].program.family(), Family::Strings);
        }
    }

    #[test]
    fn humanize_with_zero_spread_changes_nothing() {
        let mut s = score(&[60, 62]);
        let before = s.clone();
        humanize(&mut s, &mut SeedRng::new(1), 0.0, 0.0);
        assert_eq!(s, before);
        humanize(&mut s, &mut SeedRng::new(1), 0.05, 8.0);
        assert_ne!(s, before);
        assert_eq!(s.note_count(), before.note_count());
    }
}
