//! Score → MIDI bytes → score: whether a file survives our own writer and reader, exactly
//! or as music.

use aurl_core::{Score, Track};
use serde::Serialize;

use crate::{Mode, WriteOptions, read_midi, write_midi};

/// How a score read back from the MIDI bytes we write for it compares with the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundTrip {
    /// The score read back (strictly, with nothing to repair) equals the original.
    pub exact: bool,
    /// The same music: per track the same notes, program, drum flag, controls and pitch
    /// bends, and the same resolution, tempo and time-signature maps. Channels may differ
    /// (several tracks on one channel with different programs get channels of their own on
    /// write, as they must to keep their programs).
    pub music: bool,
    /// The first difference found, when not exact (`None` when exact).
    pub difference: Option<String>,
}

/// Writes `score` at its own resolution, reads it back strictly and compares.
///
/// ```
/// use aurl_core::{Note, Pitch, Score, Track, Velocity};
/// use aurl_data::audit::round_trip;
/// let mut score = Score::new(480);
/// let mut track = Track::new("Piano");
/// track.notes.push(Note::new(Pitch::saturating(60), Velocity::saturating(90), 0, 480));
/// score.tracks.push(track);
/// let rt = round_trip(&score);
/// assert!(rt.exact && rt.music && rt.difference.is_none());
/// ```
#[must_use]
pub fn round_trip(score: &Score) -> RoundTrip {
    let failed = |difference: String| RoundTrip {
        exact: false,
        music: false,
        difference: Some(difference),
    };
    let bytes = match write_midi(score, &WriteOptions::keep_resolution()) {
        Ok(bytes) => bytes,
        Err(e) => return failed(format!("write: {e}")),
    };
    let (back, report) = match read_midi(&bytes, Mode::Strict) {
        Ok(read) => read,
        Err(e) => return failed(format!("read back: {e}")),
    };
    let music = music_difference(score, &back);
    let exact = report.is_clean() && music.is_none() && back == *score;
    let difference = if exact {
        None
    } else if !report.is_clean() {
        Some(format!("read back with repairs: {:?}", report.repair_map()))
    } else {
        Some(
            music
                .clone()
                .unwrap_or_else(|| other_difference(score, &back)),
        )
    };
    RoundTrip {
        exact,
        music: music.is_none(),
        difference,
    }
}

/// The first musical difference between `a` and `b` (channels ignored), if any.
fn music_difference(a: &Score, b: &Score) -> Option<String> {
    if a.ticks_per_quarter != b.ticks_per_quarter {
        return Some(format!(
            "resolution {} → {}",
            a.ticks_per_quarter, b.ticks_per_quarter
        ));
    }
    if a.tempos != b.tempos {
        return Some(format!(
            "tempo map: {} → {} changes",
            a.tempos.len(),
            b.tempos.len()
        ));
    }
    if a.time_signatures != b.time_signatures {
        return Some(format!(
            "time signatures: {} → {} changes",
            a.time_signatures.len(),
            b.time_signatures.len()
        ));
    }
    if a.tracks.len() != b.tracks.len() {
        return Some(format!("tracks {} → {}", a.tracks.len(), b.tracks.len()));
    }
    a.tracks
        .iter()
        .zip(&b.tracks)
        .enumerate()
        .find_map(|(i, (x, y))| track_difference(x, y).map(|d| format!("track {i}: {d}")))
}

/// What differs musically between two tracks, if anything.
fn track_difference(a: &Track, b: &Track) -> Option<String> {
    if (a.program, a.is_drum) != (b.program, b.is_drum) {
        return Some(format!(
            "program {} drums {} → program {} drums {}",
            a.program.get(),
            a.is_drum,
            b.program.get(),
            b.is_drum
        ));
    }
    let first = |n: usize, same: &dyn Fn(usize) -> bool| (0..n).find(|&i| !same(i));
    if a.notes != b.notes {
        let at = first(a.notes.len().min(b.notes.len()), &|i| {
            a.notes[i] == b.notes[i]
        });
        return Some(format!(
            "notes {} → {} (first difference at note {})",
            a.notes.len(),
            b.notes.len(),
            at.unwrap_or(a.notes.len().min(b.notes.len()))
        ));
    }
    if a.controls != b.controls {
        return Some(format!(
            "controls {} → {}",
            a.controls.len(),
            b.controls.len()
        ));
    }
    if a.pitch_bends != b.pitch_bends {
        return Some(format!(
            "pitch bends {} → {}",
            a.pitch_bends.len(),
            b.pitch_bends.len()
        ));
    }
    None
}

/// Names what differs between two scores that are the same music: channels, names, key
/// signatures, texts or the title.
fn other_difference(a: &Score, b: &Score) -> String {
    let channels: Vec<String> = a
        .tracks
        .iter()
        .zip(&b.tracks)
        .enumerate()
        .filter(|(_, (x, y))| x.channel != y.channel)
        .map(|(i, (x, y))| format!("track {i} {} → {}", x.channel.get(), y.channel.get()))
        .collect();
    if !channels.is_empty() {
        return format!("channels: {}", channels.join(", "));
    }
    if let Some(i) = (0..a.tracks.len()).find(|&i| a.tracks[i].name != b.tracks[i].name) {
        return format!("track {i}: name");
    }
    if a.key_signatures != b.key_signatures {
        return "key signatures".to_owned();
    }
    if a.texts != b.texts {
        return format!("texts {} → {}", a.texts.len(), b.texts.len());
    }
    "title".to_owned()
}

#[cfg(test)]
mod tests {
    use aurl_core::{Channel, Note, Pitch, Program, Velocity};

    use super::*;

    fn track(channel: u8, program: u8, pitch: u8) -> Track {
        let mut t = Track::new(format!("ch{channel} p{program}"));
        t.channel = Channel::saturating(channel);
        t.program = Program::saturating(program);
        t.notes.push(Note::new(
            Pitch::saturating(pitch),
            Velocity::saturating(80),
            0,
            240,
        ));
        t
    }

    #[test]
    fn tracks_sharing_a_channel_with_different_programs_round_trip_as_music_only() {
        let mut score = Score::new(480);
        score.tracks = vec![track(0, 0, 60), track(0, 40, 64), track(1, 73, 67)];
        let rt = round_trip(&score);
        assert!(rt.music, "{rt:?}");
        assert!(!rt.exact);
        let difference = rt.difference.unwrap_or_default();
        assert!(
            difference.starts_with("channels: track 1 0 → "),
            "{difference}"
        );
    }

    #[test]
    fn a_score_on_distinct_channels_round_trips_exactly() {
        let mut score = Score::new(480);
        score.tracks = vec![track(0, 0, 60), track(1, 40, 64)];
        let rt = round_trip(&score);
        assert_eq!((rt.exact, rt.music, rt.difference), (true, true, None));
    }

    #[test]
    fn musical_differences_are_named() {
        let a = {
            let mut s = Score::new(480);
            s.tracks = vec![track(0, 0, 60)];
            s
        };
        let mut b = a.clone();
        b.tracks[0].notes[0].duration = 120;
        assert_eq!(
            music_difference(&a, &b).as_deref(),
            Some("track 0: notes 1 → 1 (first difference at note 0)")
        );
        b.tracks.push(track(2, 1, 70));
        assert_eq!(music_difference(&a, &b).as_deref(), Some("tracks 1 → 2"));
    }
}
