//! The project's own MIDI fixtures, generated deterministically. The bytes are committed
//! under `fixtures/`; `tests/fixtures.rs` checks they still match this generator and, with
//! `AURL_WRITE_FIXTURES=1`, rewrites them.
#![allow(dead_code)]

use super::smf_builder::{Trk, smf};

mod damaged;

pub use damaged::*;

/// Every fixture: file name and bytes.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("format0_multichannel.mid", format0_multichannel()),
        ("format1_gm_drums.mid", format1_gm_drums()),
        ("tempo_timesig_changes.mid", tempo_timesig_changes()),
        ("running_status.mid", running_status()),
        ("sysex.mid", sysex()),
        ("sustain_pedal.mid", sustain_pedal()),
        ("pitch_bends.mid", pitch_bends()),
        ("triplets.mid", triplets()),
        ("overlapping_same_pitch.mid", overlapping_same_pitch()),
        ("performance_high_ppq.mid", performance_high_ppq()),
        ("smpte_timing.mid", smpte_timing()),
        ("rmid_wrapped.rmi", rmid_wrapped()),
        ("names_non_ascii.mid", names_non_ascii()),
        ("format2_low_ppq.mid", format2_low_ppq()),
        ("malformed_truncated_track.mid", malformed_truncated_track()),
        (
            "malformed_truncated_varint.mid",
            malformed_truncated_varint(),
        ),
        (
            "malformed_bad_chunk_length.mid",
            malformed_bad_chunk_length(),
        ),
        ("malformed_missing_eot.mid", malformed_missing_eot()),
        (
            "malformed_running_status_without_status.mid",
            malformed_running_status_without_status(),
        ),
        (
            "malformed_running_status_across_meta.mid",
            malformed_running_status_across_meta(),
        ),
        ("malformed_wrong_magic.mid", malformed_wrong_magic()),
        ("malformed_size_bomb.mid", malformed_size_bomb()),
        ("malformed_trailing_bytes.mid", malformed_trailing_bytes()),
        (
            "malformed_data_byte_is_status.mid",
            malformed_data_byte_is_status(),
        ),
        (
            "malformed_events_after_eot.mid",
            malformed_events_after_eot(),
        ),
        (
            "irregular_orphans_and_dangling.mid",
            irregular_orphans_and_dangling(),
        ),
        ("irregular_key_signature.mid", irregular_key_signature()),
        (
            "irregular_grace_note_off_first.mid",
            irregular_grace_note_off_first(),
        ),
        ("unknown_chunk.mid", unknown_chunk()),
        ("malformed_two_songs.mid", malformed_two_songs()),
        ("malformed_data_bytes_0xff.mid", malformed_data_bytes_0xff()),
    ]
}

fn conductor(name: &[u8], micros: u32) -> Trk {
    let mut t = Trk::new();
    t.name(name).tempo(0, micros).time_sig(0, 4, 2).eot(0);
    t
}

/// Format 0, one chunk with two channels; channel 0 changes program after playing notes and
/// later changes back.
pub fn format0_multichannel() -> Vec<u8> {
    let mut t = Trk::new();
    t.name(b"Format 0 mix").tempo(0, 500_000).time_sig(0, 4, 2);
    t.cc(0, 0, 7, 100) // volume before the program change: relabelled, not a new track
        .program(0, 0, 0)
        .program(0, 1, 33)
        .on(0, 0, 60, 90)
        .on(0, 0, 64, 80)
        .on(0, 1, 36, 100)
        .off(96, 0, 60)
        .off(0, 0, 64)
        .on(0, 0, 67, 70)
        .off(96, 0, 67)
        .off(0, 1, 36)
        .program(0, 0, 40) // after notes: a new (channel 0, violin) track
        .on(0, 0, 72, 60)
        .off(96, 0, 72)
        .program(0, 0, 0) // back to the piano track
        .on(0, 0, 60, 50)
        .off(96, 0, 60)
        .eot(0);
    smf(0, 96, &[t])
}

/// Format 1 General MIDI song: piano, bass and drums on channel 10.
pub fn format1_gm_drums() -> Vec<u8> {
    let mut piano = Trk::new();
    piano.name(b"Piano").program(0, 0, 0);
    let mut now = 0;
    for (i, chord) in [[60u8, 64, 67], [62, 65, 69], [59, 62, 67], [60, 64, 67]]
        .iter()
        .enumerate()
    {
        let start = i as u32 * 480;
        piano
            .on(start - now, 0, chord[0], 80)
            .on(0, 0, chord[1], 80)
            .on(0, 0, chord[2], 80);
        piano
            .off(480, 0, chord[0])
            .off(0, 0, chord[1])
            .off(0, 0, chord[2]);
        now = start + 480;
    }
    piano.eot(0);
    let mut bass = Trk::new();
    bass.name(b"Bass").program(0, 1, 33);
    let mut now = 0;
    for (i, key) in [36u8, 38, 31, 36].iter().enumerate() {
        bass.note_at(&mut now, 1, *key, 100, i as u32 * 480, 240);
    }
    bass.eot(0);
    let mut drums = Trk::new();
    drums.name(b"Drums").program(0, 9, 0);
    for step in 0..8u32 {
        let delta = if step == 0 { 0 } else { 120 };
        drums.on(delta, 9, 42, 70); // closed hi-hat every eighth
        if step % 4 == 0 {
            drums.on(0, 9, 36, 110); // kick
        }
        if step % 4 == 2 {
            drums.on(0, 9, 38, 100); // snare
        }
        drums.off(120, 9, 42);
        if step % 4 == 0 {
            drums.off(0, 9, 36);
        }
        if step % 4 == 2 {
            drums.off(0, 9, 38);
        }
    }
    drums.eot(0);
    smf(
        1,
        480,
        &[conductor(b"GM Song", 500_000), piano, bass, drums],
    )
}

/// 3/4 at 120 BPM, a slowdown to 90 BPM, then 6/8 at 140 BPM; key G major, then E minor.
pub fn tempo_timesig_changes() -> Vec<u8> {
    let mut c = Trk::new();
    c.tempo(0, 500_000).time_sig(0, 3, 2).key_sig(0, 1, false);
    c.tempo(1440, 666_667); // bar 2 at 90 BPM
    c.time_sig(1440, 6, 3).tempo(0, 428_571).key_sig(0, 1, true); // bar 3 (tick 2880)
    c.eot(0);
    let mut m = Trk::new();
    m.name(b"Melody").program(0, 0, 73);
    let mut now = 0;
    for beat in 0..12u32 {
        m.note_at(&mut now, 0, 67 + (beat % 5) as u8, 64, beat * 360, 300);
    }
    m.eot(0);
    smf(1, 480, &[c, m])
}

/// Running status throughout, note-on with velocity 0 as note-off.
pub fn running_status() -> Vec<u8> {
    let mut t = Trk::new();
    t.name(b"Running")
        .ev(0, &[0xC0, 24])
        .ev(0, &[0x90, 60, 100]);
    t.ev(120, &[60, 0])
        .ev(0, &[62, 90])
        .ev(120, &[62, 0])
        .ev(0, &[64, 80])
        .ev(120, &[64, 0]);
    t.ev(0, &[0xB0, 7, 100]).ev(0, &[10, 64]); // running status on controllers too
    t.ev(0, &[0x90, 65, 70]).ev(240, &[65, 0]).eot(0);
    smf(1, 120, &[conductor(b"", 500_000), t])
}

/// A GM-reset sysex, a sysex escape, and notes around them.
pub fn sysex() -> Vec<u8> {
    let mut t = Trk::new();
    t.name(b"Sysex")
        .raw(&[0x00, 0xF0, 0x05, 0x7E, 0x7F, 0x09, 0x01, 0xF7]);
    t.on(0, 0, 60, 100)
        .raw(&[0x10, 0xF7, 0x02, 0xF3, 0x01])
        .off(50, 0, 60);
    t.raw(&[0x00, 0xF0, 0x03, 0x43, 0x12, 0x00])
        .raw(&[0x00, 0xF7, 0x01, 0xF7]);
    t.on(0, 0, 62, 100).off(60, 0, 62).eot(0);
    smf(1, 96, &[conductor(b"Sysex test", 500_000), t])
}

/// Notes under a sustain pedal.
pub fn sustain_pedal() -> Vec<u8> {
    let mut t = Trk::new();
    t.name(b"Pedal").program(0, 0, 0).cc(0, 0, 64, 127);
    t.on(0, 0, 48, 80)
        .off(100, 0, 48)
        .on(0, 0, 52, 80)
        .off(100, 0, 52);
    t.cc(0, 0, 64, 0)
        .cc(10, 0, 64, 127)
        .on(0, 0, 55, 90)
        .off(200, 0, 55)
        .cc(0, 0, 64, 0)
        .eot(0);
    smf(1, 100, &[conductor(b"", 600_000), t])
}

/// Pitch bends over the full range.
pub fn pitch_bends() -> Vec<u8> {
    let mut t = Trk::new();
    t.name(b"Bends").program(0, 2, 80).on(0, 2, 69, 100);
    t.bend(10, 2, -8192)
        .bend(10, 2, 0)
        .bend(10, 2, 8191)
        .bend(10, 2, 4096)
        .bend(10, 2, 0);
    t.off(50, 2, 69).eot(0);
    smf(1, 96, &[conductor(b"", 500_000), t])
}

/// Eighth-note triplets (160 ticks at 480 per quarter) against straight quarters.
pub fn triplets() -> Vec<u8> {
    let mut a = Trk::new();
    a.name(b"Triplets").program(0, 0, 0);
    let mut now = 0;
    for i in 0..6u32 {
        a.note_at(&mut now, 0, 72 + (i % 3) as u8, 80, i * 160, 160);
    }
    a.eot(0);
    let mut b = Trk::new();
    b.name(b"Quarters").program(0, 1, 32);
    let mut now = 0;
    for i in 0..2u32 {
        b.note_at(&mut now, 1, 48, 80, i * 480, 480);
    }
    b.eot(0);
    smf(1, 480, &[conductor(b"", 500_000), a, b])
}

/// Overlapping notes of one pitch on one channel (paired first in, first out).
pub fn overlapping_same_pitch() -> Vec<u8> {
    let mut t = Trk::new();
    t.name(b"Overlap")
        .on(0, 0, 60, 100)
        .on(100, 0, 60, 50)
        .off(50, 0, 60)
        .off(250, 0, 60);
    t.on(0, 0, 64, 70).off(0, 0, 64).eot(0); // a zero-length note
    smf(1, 100, &[conductor(b"", 500_000), t])
}

/// A deterministic linear-congruential generator, so the "performance" is the same bytes
/// on every machine.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

/// An expressive piano performance: 19,200 ticks per quarter, unquantised onsets and
/// lengths, varied velocities, pedalling, and running status.
pub fn performance_high_ppq() -> Vec<u8> {
    const TPQ: u32 = 19_200;
    let mut rng = Lcg(0xA0_71);
    // (tick, status, d1, d2) events, then sorted and delta-encoded.
    let mut events: Vec<(u32, u8, u8, u8)> = Vec::new();
    let mut t = 0u32;
    for i in 0..240u32 {
        t += TPQ / 4 + rng.below(TPQ / 8) - TPQ / 16; // jittered sixteenths
        let key = 48 + rng.below(36) as u8;
        let vel = 30 + rng.below(90) as u8;
        let len = TPQ / 8 + rng.below(TPQ);
        events.push((t, 0x90, key, vel));
        events.push((t + len, 0x80, key, 40));
        if i % 16 == 0 {
            events.push((t + 7, 0xB0, 64, 127));
            events.push((t + 4 * TPQ - 11, 0xB0, 64, 0));
        }
    }
    events.sort_by_key(|e| (e.0, e.1 != 0x80));
    let mut tr = Trk::new();
    tr.name(b"Performance").program(0, 0, 0);
    let (mut now, mut running) = (0u32, 0u8);
    for (tick, status, d1, d2) in events {
        if status == running {
            tr.ev(tick - now, &[d1, d2]);
        } else {
            tr.ev(tick - now, &[status, d1, d2]);
            running = status;
        }
        now = tick;
    }
    tr.eot(0);
    smf(1, TPQ as u16, &[conductor(b"Performance", 652_174), tr])
}

/// SMPTE timing: 25 frames per second × 40 ticks per frame = 1,000 ticks per second.
pub fn smpte_timing() -> Vec<u8> {
    let mut t = Trk::new();
    t.name(b"SMPTE")
        .on(0, 0, 60, 100)
        .off(500, 0, 60)
        .on(500, 0, 67, 100)
        .off(1500, 0, 67)
        .eot(0);
    let division = ((-25i8 as u8 as u16) << 8) | 40;
    smf(0, division, &[t])
}

/// A RIFF `RMID` wrapper around a small song.
pub fn rmid_wrapped() -> Vec<u8> {
    let mut t = Trk::new();
    t.name(b"Inside RIFF").program(0, 0, 11);
    let mut now = 0;
    t.note_at(&mut now, 0, 72, 90, 0, 240)
        .note_at(&mut now, 0, 76, 90, 240, 240)
        .eot(0);
    let inner = smf(1, 480, &[conductor(b"RMID", 500_000), t]);
    let mut data = b"data".to_vec();
    data.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    data.extend_from_slice(&inner);
    if inner.len() % 2 == 1 {
        data.push(0);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((data.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"RMID");
    out.extend(data);
    out
}

/// Track names in Latin-1 and UTF-8, lyrics and a marker.
pub fn names_non_ascii() -> Vec<u8> {
    let mut c = Trk::new();
    c.name("Chanson d'été".as_bytes())
        .tempo(0, 500_000)
        .meta(0, 0x06, b"Couplet")
        .eot(0);
    let mut a = Trk::new();
    a.name(b"Fl\xfbte")
        .program(0, 0, 73)
        .meta(0, 0x05, b"La")
        .on(0, 0, 69, 80)
        .off(96, 0, 69);
    a.meta(0, 0x05, "là".as_bytes())
        .on(0, 0, 71, 80)
        .off(96, 0, 71)
        .eot(0);
    let mut b = Trk::new();
    b.name("ピアノ".as_bytes())
        .program(0, 1, 0)
        .on(0, 1, 57, 70)
        .off(192, 1, 57)
        .eot(0);
    smf(1, 96, &[c, a, b])
}

/// Format 2 (independent patterns) at 24 ticks per quarter, the lowest common division.
pub fn format2_low_ppq() -> Vec<u8> {
    let mut a = Trk::new();
    a.name(b"Pattern A")
        .tempo(0, 500_000)
        .on(0, 0, 60, 100)
        .off(24, 0, 60)
        .eot(0);
    let mut b = Trk::new();
    b.name(b"Pattern B")
        .on(0, 0, 62, 100)
        .off(12, 0, 62)
        .on(0, 0, 64, 100)
        .off(12, 0, 64)
        .eot(0);
    smf(2, 24, &[a, b])
}
