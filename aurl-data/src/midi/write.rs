//! Writing a score as a format-1 Standard MIDI File, with midly doing the byte encoding.

use std::io::Write as _;
use std::path::Path;

use aurl_core::{Channel, Score, TextKind, Tick, Track};
use midly::num::{u4, u7, u14, u15, u24, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::Error;

/// How to write a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Resolution of the file in ticks per quarter note; `None` keeps the score's own.
    /// The score is resampled when they differ ([`Score::resampled`]).
    pub ticks_per_quarter: Option<u16>,
}

impl Default for WriteOptions {
    /// 480 ticks per quarter, the resolution most DAWs use.
    fn default() -> Self {
        Self {
            ticks_per_quarter: Some(480),
        }
    }
}

impl WriteOptions {
    /// Write at the score's own resolution (so reading back gives the same ticks).
    #[must_use]
    pub fn keep_resolution() -> Self {
        Self {
            ticks_per_quarter: None,
        }
    }

    /// Write at the given resolution.
    #[must_use]
    pub fn with_ticks_per_quarter(mut self, ticks_per_quarter: u16) -> Self {
        self.ticks_per_quarter = Some(ticks_per_quarter);
        self
    }
}

/// The channel each track is written on.
///
/// * Drum tracks go to channel 10 (index 9).
/// * A melodic track keeps its own channel when that is not 9 and no earlier track with a
///   different program already holds it.
/// * Otherwise it shares the channel of an earlier track with the same program (no conflict:
///   same instrument), or takes the lowest free melodic channel.
/// * With more than 15 distinct melodic programs, the remaining tracks cycle through the 15
///   melodic channels; their program changes then conflict in players that merge tracks,
///   which is unavoidable in MIDI 1.0 without extra ports (DAWs keep tracks apart).
#[must_use]
pub fn allocate_channels(score: &Score) -> Vec<Channel> {
    let melodic: Vec<u8> = (0..16).filter(|&c| c != 9).collect();
    let mut owner: [Option<u8>; 16] = [None; 16]; // program holding each channel
    let mut out: Vec<Option<Channel>> = vec![None; score.tracks.len()];
    for (i, t) in score.tracks.iter().enumerate() {
        let c = t.channel.get();
        if t.is_drum {
            out[i] = Some(Channel::DRUMS);
        } else if c != 9 && owner[usize::from(c)].is_none_or(|p| p == t.program.get()) {
            owner[usize::from(c)] = Some(t.program.get());
            out[i] = Some(t.channel);
        }
    }
    let mut overflow = 0usize;
    for (i, t) in score.tracks.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let p = t.program.get();
        let same = melodic.iter().find(|&&c| owner[usize::from(c)] == Some(p));
        let free = melodic.iter().find(|&&c| owner[usize::from(c)].is_none());
        let c = match (same, free) {
            (Some(&c), _) | (None, Some(&c)) => c,
            (None, None) => {
                overflow += 1;
                melodic[(overflow - 1) % melodic.len()]
            }
        };
        owner[usize::from(c)].get_or_insert(p);
        out[i] = Some(Channel::saturating(c));
    }
    out.into_iter().map(|c| c.unwrap_or_default()).collect()
}

/// Sorting rank of events on the same tick: program first, then controllers and bends, then
/// note-offs of notes that had a length, note-ons, and last the note-offs of zero-length
/// notes (so they follow their own note-on).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Meta,
    Program,
    Control,
    Bend,
    NoteOff,
    NoteOn,
    ZeroLengthOff,
}

type Timed<'a> = (Tick, Rank, TrackEventKind<'a>);

/// Turns absolute-time events into a delta-timed midly track ending with end-of-track.
fn finish(mut events: Vec<Timed<'_>>, end: Tick) -> Result<Vec<TrackEvent<'_>>, Error> {
    events.sort_by_key(|e| (e.0, e.1)); // stable: same-rank events keep score order
    let mut out = Vec::with_capacity(events.len() + 1);
    let mut last = 0;
    let end_of_track = (
        end.max(events.last().map_or(0, |e| e.0)),
        Rank::Meta,
        TrackEventKind::Meta(MetaMessage::EndOfTrack),
    );
    for (tick, _, kind) in events.into_iter().chain(std::iter::once(end_of_track)) {
        let delta = tick - last;
        let delta = u32::try_from(delta)
            .ok()
            .filter(|&d| d <= u28::max_value().as_int())
            .ok_or_else(|| {
                Error::Unwritable(format!(
                    "a gap of {delta} ticks exceeds MIDI's largest delta time (2^28 - 1)"
                ))
            })?;
        out.push(TrackEvent {
            delta: u28::new(delta),
            kind,
        });
        last = tick;
    }
    Ok(out)
}

fn conductor(score: &Score, end: Tick) -> Result<Vec<TrackEvent<'_>>, Error> {
    let mut ev: Vec<Timed<'_>> = Vec::new();
    if !score.title.is_empty() {
        ev.push((
            0,
            Rank::Meta,
            TrackEventKind::Meta(MetaMessage::TrackName(&score.title)),
        ));
    }
    for t in &score.tempos {
        let m = MetaMessage::Tempo(u24::new(t.micros_per_quarter.min(0xFF_FFFF)));
        ev.push((t.tick, Rank::Meta, TrackEventKind::Meta(m)));
    }
    for ts in &score.time_signatures {
        let exp = ts.denominator.trailing_zeros() as u8;
        let m = MetaMessage::TimeSignature(ts.numerator, exp, 24, 8);
        ev.push((ts.tick, Rank::Meta, TrackEventKind::Meta(m)));
    }
    for k in &score.key_signatures {
        ev.push((
            k.tick,
            Rank::Meta,
            TrackEventKind::Meta(MetaMessage::KeySignature(k.sharps, k.minor)),
        ));
    }
    for t in &score.texts {
        let b = t.bytes.as_slice();
        let m = match t.kind {
            TextKind::Text => MetaMessage::Text(b),
            TextKind::Copyright => MetaMessage::Copyright(b),
            TextKind::InstrumentName => MetaMessage::InstrumentName(b),
            TextKind::Lyric => MetaMessage::Lyric(b),
            TextKind::Marker => MetaMessage::Marker(b),
            TextKind::CuePoint => MetaMessage::CuePoint(b),
        };
        ev.push((t.tick, Rank::Meta, TrackEventKind::Meta(m)));
    }
    finish(ev, end)
}

fn track_events(track: &Track, channel: Channel, end: Tick) -> Result<Vec<TrackEvent<'_>>, Error> {
    let ch = u4::new(channel.get());
    let midi = |message| TrackEventKind::Midi {
        channel: ch,
        message,
    };
    let mut ev: Vec<Timed<'_>> =
        Vec::with_capacity(track.notes.len() * 2 + track.controls.len() + 3);
    if !track.name.is_empty() {
        ev.push((
            0,
            Rank::Meta,
            TrackEventKind::Meta(MetaMessage::TrackName(&track.name)),
        ));
    }
    ev.push((
        0,
        Rank::Program,
        midi(MidiMessage::ProgramChange {
            program: u7::new(track.program.get()),
        }),
    ));
    for c in &track.controls {
        let m = MidiMessage::Controller {
            controller: u7::new(c.controller.get()),
            value: u7::new(c.value.get()),
        };
        ev.push((c.tick, Rank::Control, midi(m)));
    }
    for b in &track.pitch_bends {
        let raw = (i32::from(b.value.clamp(-8192, 8191)) + 8192) as u16;
        ev.push((
            b.tick,
            Rank::Bend,
            midi(MidiMessage::PitchBend {
                bend: midly::PitchBend(u14::new(raw)),
            }),
        ));
    }
    for n in &track.notes {
        let key = u7::new(n.pitch.get());
        ev.push((
            n.start,
            Rank::NoteOn,
            midi(MidiMessage::NoteOn {
                key,
                vel: u7::new(n.velocity.get()),
            }),
        ));
        let rank = if n.duration == 0 {
            Rank::ZeroLengthOff
        } else {
            Rank::NoteOff
        };
        // Note-on with velocity 0 as note-off keeps running status across on/off pairs,
        // which makes files about a third smaller.
        ev.push((
            n.end(),
            rank,
            midi(MidiMessage::NoteOn {
                key,
                vel: u7::new(0),
            }),
        ));
    }
    finish(ev, end)
}

/// Encodes a score as a format-1 Standard MIDI File: a conductor track (title, tempos, time
/// and key signatures, texts) and one track per [`Track`] with its name and program, on the
/// channel chosen by [`allocate_channels`]. Running status keeps the file small, and the
/// output is valid for strict readers.
///
/// # Errors
/// [`Error::Unwritable`] for more than 65,534 tracks or a silence longer than MIDI's largest
/// delta time (2²⁸ − 1 ticks).
pub fn write_midi(score: &Score, options: &WriteOptions) -> Result<Vec<u8>, Error> {
    let resampled;
    let score = match options.ticks_per_quarter {
        Some(tpq) if tpq != score.ticks_per_quarter => {
            resampled = score.resampled(tpq);
            &resampled
        }
        _ => score,
    };
    if score.tracks.len() >= usize::from(u16::MAX) {
        return Err(Error::Unwritable(format!(
            "{} tracks exceed a MIDI header's count",
            score.tracks.len()
        )));
    }
    let end = score.duration_ticks();
    let channels = allocate_channels(score);
    let mut tracks = Vec::with_capacity(score.tracks.len() + 1);
    tracks.push(conductor(score, end)?);
    for (t, &c) in score.tracks.iter().zip(&channels) {
        tracks.push(track_events(t, c, end)?);
    }
    let tpq = score
        .ticks_per_quarter
        .clamp(1, Score::MAX_TICKS_PER_QUARTER);
    let smf = Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(tpq))),
        tracks,
    };
    let mut out = Vec::with_capacity(64 + score.note_count() * 8);
    smf.write_std(&mut out)
        .map_err(|e| Error::Unwritable(e.to_string()))?;
    Ok(out)
}

/// Writes a score to `path` atomically: the bytes go to a temporary file in the same folder,
/// which is synced and then renamed over `path`, so a crash never leaves a half-written file.
///
/// # Errors
/// As [`write_midi`], plus [`Error::Io`].
pub fn write_midi_file(
    score: &Score,
    path: impl AsRef<Path>,
    options: &WriteOptions,
) -> Result<(), Error> {
    let path = path.as_ref();
    let bytes = write_midi(score, options)?;
    write_atomically(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary sibling file (flushed to disk) and a rename,
/// so a reader never sees a half-written file and a killed writer leaves the old one intact.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("path has no file name")))?;
    // Unique per process and per call, so concurrent writers of one path (threads or
    // processes) never share a temporary file; the last rename wins, whole.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}-{n}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurl_core::Program;

    fn melodic(channel: u8, program: u8) -> Track {
        Track {
            channel: Channel::new(channel).unwrap(),
            program: Program::new(program).unwrap(),
            ..Track::default()
        }
    }

    #[test]
    fn channels_are_kept_when_free_and_drums_go_to_ten() {
        let mut s = Score::new(480);
        s.tracks = vec![
            melodic(3, 40),
            Track::drums("kit"),
            melodic(9, 0),
            melodic(3, 41),
        ];
        let c: Vec<u8> = allocate_channels(&s).iter().map(|c| c.get()).collect();
        assert_eq!(c, vec![3, 9, 0, 1]);
    }

    #[test]
    fn more_than_fifteen_melodic_tracks_share_channels_by_program() {
        let mut s = Score::new(480);
        s.tracks = (0..20).map(|i| melodic(0, (i % 15) as u8)).collect();
        let c: Vec<u8> = allocate_channels(&s).iter().map(|c| c.get()).collect();
        for (i, t) in s.tracks.iter().enumerate() {
            for (j, u) in s.tracks.iter().enumerate() {
                if c[i] == c[j] {
                    assert_eq!(
                        t.program, u.program,
                        "tracks {i} and {j} share channel {}",
                        c[i]
                    );
                }
            }
        }
        assert!(c.iter().all(|&c| c != 9));
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("aurl-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.mid");
        write_midi_file(&Score::new(96), &path, &WriteOptions::default()).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.mid")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
