//! Polyphony reduction with musical priorities, and monophonic melody extraction.

use aurl_core::analysis::skyline;
use aurl_core::{Note, Score, Tick, Track};

/// Limits `track` to at most `max_voices` simultaneous notes (`max_voices = 0` is treated
/// as 1). Returns how many notes were removed.
///
/// Notes are considered onset by onset. When an onset would make more than `max_voices`
/// notes sound, the ones to keep are chosen from the sounding notes and the new ones by
/// musical priority: the lowest (the bass) and the highest (the top line) first, then the
/// loudest, then the longest (remaining) ones. A new note not chosen is dropped; a held
/// note not chosen is cut where the onset happens (it keeps the part already played, so it
/// never becomes zero-length).
///
/// ```
/// use aurl_core::{Note, Pitch, Track, Velocity};
/// use aurl_data::preprocess::reduce_polyphony;
/// let mut track = Track::new("piano");
/// for (pitch, velocity) in [(48, 60), (60, 50), (64, 90), (67, 40), (72, 70)] {
///     track.notes.push(Note::new(Pitch::saturating(pitch), Velocity::saturating(velocity), 0, 480));
/// }
/// assert_eq!(reduce_polyphony(&mut track, 3), 2);
/// let kept: Vec<u8> = track.notes.iter().map(|n| n.pitch.get()).collect();
/// assert_eq!(kept, [48, 64, 72]); // bass, top, then the loudest inner voice
/// ```
pub fn reduce_polyphony(track: &mut Track, max_voices: usize) -> usize {
    let max_voices = max_voices.max(1);
    let before = track.notes.len();
    let mut notes = std::mem::take(&mut track.notes);
    notes.sort_by_key(|n| (n.start, n.pitch));
    let mut kept: Vec<Note> = Vec::with_capacity(notes.len());
    // Indices into `kept` of the notes still sounding.
    let mut sounding: Vec<usize> = Vec::with_capacity(max_voices * 2);
    let mut candidates: Vec<(usize, Option<Note>)> = Vec::new();
    let mut i = 0;
    while i < notes.len() {
        let t = notes[i].start;
        let mut j = i;
        while j < notes.len() && notes[j].start == t {
            j += 1;
        }
        sounding.retain(|&k| kept[k].end() > t);
        if sounding.len() + (j - i) <= max_voices {
            for n in &notes[i..j] {
                sounding.push(kept.len());
                kept.push(*n);
            }
        } else {
            // Candidates: held notes (by index into `kept`) and new ones (by value).
            candidates.clear();
            candidates.extend(sounding.iter().map(|&k| (k, None)));
            candidates.extend(notes[i..j].iter().map(|n| (usize::MAX, Some(*n))));
            let note_of = |c: &(usize, Option<Note>)| c.1.unwrap_or_else(|| kept[c.0]);
            choose(&mut candidates, max_voices, t, note_of);
            let mut still = Vec::with_capacity(max_voices);
            for (rank, c) in candidates.iter().enumerate() {
                match (rank < max_voices, c.1) {
                    (true, Some(n)) => {
                        still.push(kept.len());
                        kept.push(n);
                    }
                    (true, None) => still.push(c.0),
                    // A held note loses its voice: it stops here. It started before `t`
                    // (held notes come from earlier onsets), so it keeps at least a tick.
                    (false, None) => kept[c.0].duration = t - kept[c.0].start,
                    (false, Some(_)) => {}
                }
            }
            sounding = still;
        }
        i = j;
    }
    kept.sort_by_key(|n| (n.start, n.pitch));
    let removed = before - kept.len();
    track.notes = kept;
    removed
}

/// Orders `candidates` so the first `max_voices` are the ones to keep: lowest pitch, highest
/// pitch, then by velocity and remaining length (both descending), then by pitch.
fn choose<F>(candidates: &mut [(usize, Option<Note>)], max_voices: usize, t: Tick, note_of: F)
where
    F: Fn(&(usize, Option<Note>)) -> Note,
{
    let remaining = |n: &Note| n.end().saturating_sub(t);
    candidates.sort_by(|a, b| {
        let (na, nb) = (note_of(a), note_of(b));
        nb.velocity
            .cmp(&na.velocity)
            .then(remaining(&nb).cmp(&remaining(&na)))
            .then(na.pitch.cmp(&nb.pitch))
    });
    let position = |candidates: &[(usize, Option<Note>)], better: fn(&Note, &Note) -> bool| {
        (0..candidates.len()).reduce(|best, k| {
            if better(&note_of(&candidates[k]), &note_of(&candidates[best])) {
                k
            } else {
                best
            }
        })
    };
    if let Some(low) = position(candidates, |a, b| a.pitch < b.pitch) {
        candidates[..=low].rotate_right(1);
    }
    if max_voices >= 2
        && let Some(high) = position(candidates, |a, b| a.pitch > b.pitch)
    {
        candidates[1..=high.max(1)].rotate_right(1);
    }
}

/// A one-track score holding the melody of `score`: the skyline of all its pitched notes
/// (the highest sounding note at each onset; see [`aurl_core::analysis::skyline`]), as a
/// monophonic line on the program of the first pitched track. Tempo, meter and key maps
/// are kept; drum tracks are left out.
#[must_use]
pub fn extract_melody(score: &Score) -> Score {
    let mut out = Score {
        tracks: Vec::new(),
        ..score.clone()
    };
    let pitched: Vec<Note> = score
        .tracks
        .iter()
        .filter(|t| !t.is_drum)
        .flat_map(|t| t.notes.iter().copied())
        .collect();
    let Some(first) = score.tracks.iter().find(|t| !t.is_drum) else {
        return out;
    };
    let mut melody = Track {
        name: b"melody".to_vec(),
        program: first.program,
        channel: first.channel,
        ..Track::default()
    };
    melody.notes = skyline(&pitched);
    out.tracks.push(melody);
    out
}

/// The largest number of notes of `track` sounding at once (zero-length notes count at
/// their onset).
#[must_use]
pub fn max_polyphony(track: &Track) -> usize {
    let mut events: Vec<(Tick, i32)> = Vec::with_capacity(track.notes.len() * 2);
    for n in &track.notes {
        events.push((n.start, 1));
        events.push((n.end().max(n.start + 1), -1));
    }
    // Ends before starts at the same tick: a note ending where another begins is not overlap.
    events.sort_unstable();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    most as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::test_note as note;

    #[test]
    fn held_notes_lose_their_voice_to_a_louder_chord_but_the_bass_stays() {
        // A bass C2 held 0..960 and an E4 held 0..960; at 480 a loud G4 and B4 arrive.
        // With 3 voices: bass C2 (lowest), B4 (highest), then the loudest: G4 (100) over E4 (50).
        let mut t = Track::new("t");
        t.notes = vec![
            note(36, 80, 0, 960),
            note(64, 50, 0, 960),
            note(67, 100, 480, 480),
            note(71, 90, 480, 480),
        ];
        assert_eq!(reduce_polyphony(&mut t, 3), 0, "E4 is cut, not removed");
        let spans: Vec<(u8, u64, u64)> = t
            .notes
            .iter()
            .map(|n| (n.pitch.get(), n.start, n.duration))
            .collect();
        assert_eq!(
            spans,
            vec![(36, 0, 960), (64, 0, 480), (67, 480, 480), (71, 480, 480)]
        );
        assert_eq!(max_polyphony(&t), 3);
    }

    #[test]
    fn one_voice_keeps_the_lowest_note() {
        // With one voice the bass has priority (the top line is the melody extractor's job).
        let mut t = Track::new("t");
        t.notes = vec![
            note(60, 127, 0, 100),
            note(40, 10, 0, 100),
            note(72, 127, 0, 100),
        ];
        assert_eq!(reduce_polyphony(&mut t, 1), 2);
        assert_eq!(t.notes[0].pitch.get(), 40);
    }

    #[test]
    fn melody_is_the_skyline_of_pitched_tracks() {
        let mut s = Score::new(480);
        let mut a = Track::new("a");
        a.notes = vec![note(60, 64, 0, 480), note(64, 64, 480, 480)];
        let mut b = Track::new("b");
        b.notes = vec![note(67, 64, 0, 240)];
        let mut d = Track::drums("d");
        d.notes = vec![note(90, 64, 0, 480)];
        s.tracks = vec![d, a, b];
        let m = extract_melody(&s);
        assert_eq!(m.tracks.len(), 1);
        let pitches: Vec<u8> = m.tracks[0].notes.iter().map(|n| n.pitch.get()).collect();
        assert_eq!(pitches, [67, 64]);
        assert_eq!(max_polyphony(&m.tracks[0]), 1);
    }
}
