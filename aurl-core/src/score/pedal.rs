//! Applying the sustain pedal: notes released while the pedal is down keep sounding.

use super::{ControlChange, Tick, Track};

impl Track {
    /// Time spans `[down, up)` during which the sustain pedal (controller 64, down at values
    /// ≥ 64) is held. A pedal still down at the end is released at the track's end.
    #[must_use]
    pub fn sustain_spans(&self) -> Vec<(Tick, Tick)> {
        let mut controls: Vec<&ControlChange> = self
            .controls
            .iter()
            .filter(|c| c.controller.get() == ControlChange::SUSTAIN)
            .collect();
        controls.sort_by_key(|c| c.tick);
        let mut spans = Vec::new();
        let mut down: Option<Tick> = None;
        for c in controls {
            match (down, c.value.get() >= 64) {
                (None, true) => down = Some(c.tick),
                (Some(at), false) => {
                    if c.tick > at {
                        spans.push((at, c.tick));
                    }
                    down = None;
                }
                _ => {}
            }
        }
        if let Some(at) = down {
            let end = self
                .notes
                .iter()
                .map(|n| n.end())
                .max()
                .unwrap_or(at)
                .max(at);
            if end > at {
                spans.push((at, end));
            }
        }
        spans
    }

    /// Lengthens notes released while the sustain pedal is down until the pedal is lifted,
    /// as a piano does. A note is cut short again where the same pitch is struck anew
    /// (re-striking a sustained key restarts it), but never below its own length.
    /// The pedal events themselves are kept.
    pub fn apply_sustain_pedal(&mut self) {
        let spans = self.sustain_spans();
        if spans.is_empty() {
            return;
        }
        // Next onset of the same pitch after each note (notes grouped by pitch, then time).
        let mut order: Vec<usize> = (0..self.notes.len()).collect();
        order.sort_by_key(|&i| (self.notes[i].pitch, self.notes[i].start, i));
        let mut next_onset: Vec<Option<Tick>> = vec![None; self.notes.len()];
        for w in order.windows(2) {
            let (a, b) = (&self.notes[w[0]], &self.notes[w[1]]);
            if a.pitch == b.pitch && b.start > a.start {
                next_onset[w[0]] = Some(b.start);
            }
        }
        for (i, note) in self.notes.iter_mut().enumerate() {
            let end = note.end();
            let span = spans.partition_point(|&(down, _)| down <= end);
            let Some(&(down, up)) = span.checked_sub(1).and_then(|s| spans.get(s)) else {
                continue;
            };
            if !(down <= end && end < up) {
                continue;
            }
            let released = next_onset[i].map_or(up, |n| n.min(up)).max(end);
            note.duration = released - note.start;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{ControlChange, ControlValue, Note, Pitch, Track, Velocity};

    fn note(pitch: u8, start: u64, duration: u64) -> Note {
        Note::new(
            Pitch::new(pitch).unwrap(),
            Velocity::new(80).unwrap(),
            start,
            duration,
        )
    }

    fn pedal(tick: u64, value: u8) -> ControlChange {
        ControlChange {
            tick,
            controller: ControlValue::new(64).unwrap(),
            value: ControlValue::new(value).unwrap(),
        }
    }

    #[test]
    fn notes_released_under_the_pedal_sound_until_it_lifts() {
        let mut t = Track::new("p");
        t.notes = vec![
            note(48, 0, 100),
            note(52, 100, 100),
            note(55, 400, 50),
            note(60, 0, 500),
        ];
        t.controls = vec![pedal(0, 127), pedal(300, 0)];
        t.apply_sustain_pedal();
        let d: Vec<u64> = t.notes.iter().map(|n| n.duration).collect();
        // 48 and 52 end under the pedal → 300; 55 starts after the release; 60 outlasts it.
        assert_eq!(d, vec![300, 200, 50, 500]);
    }

    #[test]
    fn re_striking_a_sustained_key_ends_the_previous_note() {
        let mut t = Track::new("p");
        t.notes = vec![note(60, 0, 50), note(60, 120, 50)];
        t.controls = vec![pedal(10, 100), pedal(400, 10)];
        t.apply_sustain_pedal();
        assert_eq!(
            t.notes[0].duration, 120,
            "cut where the key is struck again"
        );
        assert_eq!(t.notes[1].duration, 280, "held until the pedal lifts");
    }

    #[test]
    fn a_pedal_never_lifted_holds_to_the_end_of_the_track() {
        let mut t = Track::new("p");
        t.notes = vec![note(60, 0, 10), note(64, 0, 900)];
        t.controls = vec![pedal(0, 127), pedal(5, 127)];
        assert_eq!(t.sustain_spans(), vec![(0, 900)]);
        t.apply_sustain_pedal();
        assert_eq!(t.notes[0].duration, 900);
    }
}
