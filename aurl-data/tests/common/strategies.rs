//! Proptest strategies for scores.
#![allow(dead_code)]

use aurl_core::{
    Channel, ControlChange, ControlValue, KeySignature, Note, Pitch, PitchBend, Program, Score,
    Tempo, TextEvent, TextKind, TimeSignature, Track, Velocity,
};
use proptest::prelude::*;

const MAX_TICK: u64 = 200_000;

fn note() -> impl Strategy<Value = Note> {
    (
        0u8..=127,
        1u8..=127,
        0..MAX_TICK,
        prop_oneof![Just(0u64), 1u64..5_000],
    )
        .prop_map(|(p, v, start, duration)| {
            Note::new(
                Pitch::new(p).unwrap(),
                Velocity::new(v).unwrap(),
                start,
                duration,
            )
        })
}

fn track() -> impl Strategy<Value = Track> {
    (
        prop::collection::vec(any::<u8>(), 0..8),
        0u8..=127,
        0u8..16,
        prop::collection::vec(note(), 0..40),
        prop::collection::vec((0..MAX_TICK, 0u8..=127, 0u8..=127), 0..8),
        prop::collection::vec((0..MAX_TICK, -8192i16..=8191), 0..5),
    )
        .prop_map(|(name, program, channel, notes, controls, bends)| Track {
            name,
            program: Program::new(program).unwrap(),
            is_drum: channel == 9,
            channel: Channel::new(channel).unwrap(),
            notes,
            controls: controls
                .into_iter()
                .map(|(tick, c, v)| ControlChange {
                    tick,
                    controller: ControlValue::new(c).unwrap(),
                    value: ControlValue::new(v).unwrap(),
                })
                .collect(),
            pitch_bends: bends
                .into_iter()
                .map(|(tick, value)| PitchBend { tick, value })
                .collect(),
        })
}

fn text_kind() -> impl Strategy<Value = TextKind> {
    prop_oneof![
        Just(TextKind::Text),
        Just(TextKind::Copyright),
        Just(TextKind::InstrumentName),
        Just(TextKind::Lyric),
        Just(TextKind::Marker),
        Just(TextKind::CuePoint),
    ]
}

/// Any score MIDI can hold (not yet canonical).
pub fn score() -> impl Strategy<Value = Score> {
    (
        1u16..=30_000,
        prop::collection::vec(any::<u8>(), 0..10),
        prop::collection::vec((0..MAX_TICK, 1u32..=0xFF_FFFF), 0..5),
        prop::collection::vec((0..MAX_TICK, 1u8..=32, 0u32..=7), 0..4),
        prop::collection::vec((0..MAX_TICK, -7i8..=7, any::<bool>()), 0..3),
        prop::collection::vec(
            (
                0..MAX_TICK,
                text_kind(),
                prop::collection::vec(any::<u8>(), 0..12),
            ),
            0..4,
        ),
        prop::collection::vec(track(), 0..6),
    )
        .prop_map(|(tpq, title, tempos, sigs, keys, texts, tracks)| {
            let mut s = Score::new(tpq);
            s.title = title;
            s.tempos = tempos
                .into_iter()
                .map(|(t, m)| Tempo::new(t, m).unwrap())
                .collect();
            s.time_signatures = sigs
                .into_iter()
                .map(|(t, n, e)| TimeSignature::new(t, n, 1 << e).unwrap())
                .collect();
            s.key_signatures = keys
                .into_iter()
                .map(|(tick, sharps, minor)| KeySignature {
                    tick,
                    sharps,
                    minor,
                })
                .collect();
            s.texts = texts
                .into_iter()
                .map(|(tick, kind, bytes)| TextEvent { tick, kind, bytes })
                .collect();
            s.tracks = tracks;
            s
        })
}

/// The score exactly as a MIDI round trip returns it: canonical order and pairing, and each
/// track on the channel the writer gives it.
pub fn as_midi_returns_it(mut s: Score) -> Score {
    let channels = aurl_data::allocate_channels(&s);
    for (t, c) in s.tracks.iter_mut().zip(channels) {
        t.channel = c;
    }
    s.canonicalize();
    s
}
