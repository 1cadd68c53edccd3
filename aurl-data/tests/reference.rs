//! Cross-check against midly, an independent parser: on every well-formed file, Aurl reads
//! exactly the notes midly's events give under the same pairing rule (first in, first out per
//! track chunk, channel and pitch). Set `AURL_CORPUS_DIR` to also check a corpus of your own.

mod common;

use std::path::{Path, PathBuf};

use aurl_data::audit::discover;
use aurl_data::{Mode, read_midi};
use common::fixtures_dir;
use midly::{MidiMessage, Smf, TrackEventKind};

/// (channel, pitch, velocity, start, duration), sorted.
type Key = (u8, u8, u8, u64, u64);

/// Notes from midly's events, paired FIFO; dangling notes closed at their chunk's end.
fn reference_notes(smf: &Smf<'_>) -> Vec<Key> {
    let mut out = Vec::new();
    for track in &smf.tracks {
        let mut open: Vec<std::collections::VecDeque<(u64, u8)>> =
            vec![Default::default(); 16 * 128];
        let mut orphans: Vec<(usize, u64)> = Vec::new();
        let mut tick = 0u64;
        for ev in track {
            tick += u64::from(ev.delta.as_int());
            if let TrackEventKind::Midi { channel, message } = ev.kind {
                let ch = channel.as_int();
                let (key, on_vel) = match message {
                    MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int()),
                    MidiMessage::NoteOff { key, .. } => (key.as_int(), 0),
                    _ => continue,
                };
                let k = usize::from(ch) * 128 + usize::from(key);
                let q = &mut open[k];
                if on_vel > 0 {
                    q.push_back((tick, on_vel));
                } else if let Some(mut head) = q.pop_front() {
                    // A note whose own note-off came first on its tick is zero-length, when a
                    // later note of the pitch is sounding to take this note-off.
                    while !q.is_empty() {
                        let Some(j) = orphans.iter().position(|&o| o == (k, head.0)) else {
                            break;
                        };
                        orphans.swap_remove(j);
                        out.push((ch, key, head.1, head.0, 0));
                        head = q.pop_front().expect("not empty");
                    }
                    out.push((ch, key, head.1, head.0, tick - head.0));
                } else {
                    orphans.push((k, tick));
                }
            }
        }
        // Dangling notes end with the track, unless their own note-off came just before
        // them on the same tick (a zero-length note).
        for (i, q) in open.iter().enumerate() {
            for &(start, vel) in q {
                let own_off = orphans.iter().position(|&o| o == (i, start));
                let len = match own_off {
                    Some(j) => {
                        orphans.swap_remove(j);
                        0
                    }
                    None => tick - start,
                };
                out.push(((i / 128) as u8, (i % 128) as u8, vel, start, len));
            }
        }
    }
    out.sort_unstable();
    out
}

fn aurl_notes(bytes: &[u8]) -> Option<Vec<Key>> {
    let (score, report) = read_midi(bytes, Mode::Lenient).ok()?;
    if !report.is_well_formed() {
        return None;
    }
    let mut out: Vec<Key> = score
        .tracks
        .iter()
        .flat_map(|t| {
            t.notes.iter().map(move |n| {
                (
                    t.channel.get(),
                    n.pitch.get(),
                    n.velocity.get(),
                    n.start,
                    n.duration,
                )
            })
        })
        .collect();
    out.sort_unstable();
    Some(out)
}

/// Compares on every file midly parses and Aurl finds well-formed; returns how many.
fn cross_check(files: &[PathBuf]) -> usize {
    let mut compared = 0;
    for path in files {
        let bytes = std::fs::read(path).unwrap();
        let Ok(smf) = Smf::parse(&bytes) else {
            continue;
        };
        let Some(ours) = aurl_notes(&bytes) else {
            continue;
        };
        let theirs = reference_notes(&smf);
        assert_eq!(ours.len(), theirs.len(), "{}: note count", path.display());
        assert!(
            ours == theirs,
            "{}: notes differ from midly's",
            path.display()
        );
        compared += 1;
    }
    compared
}

#[test]
fn fixtures_match_midly_note_for_note() {
    let files = discover(&[fixtures_dir()]).files;
    let compared = cross_check(&files);
    assert!(compared >= 12, "only {compared} fixtures compared");
}

#[test]
#[ignore = "needs a corpus of your own: AURL_CORPUS_DIR=/path/to/midi cargo test --test reference -- --ignored"]
fn user_corpus_matches_midly_note_for_note() {
    let dir = std::env::var_os("AURL_CORPUS_DIR")
        .expect("set AURL_CORPUS_DIR to a folder of MIDI files to compare with midly");
    let files = discover(&[Path::new(&dir).to_path_buf()]).files;
    let compared = cross_check(&files);
    eprintln!("compared {compared} of {} files with midly", files.len());
    assert!(
        compared > 0,
        "no file under AURL_CORPUS_DIR could be compared"
    );
}
