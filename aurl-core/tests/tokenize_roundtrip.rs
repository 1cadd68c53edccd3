//! Tokenizer invariants over random scores: lossless up to quantisation, total decoding,
//! determinism and independence from track order.

use aurl_core::tokenize::{
    Grammar, Remi, SCHEMES, TokenId, TokenMask, Tokenizer, TokenizerConfig, by_name,
};
use aurl_core::{Channel, Note, Pitch, Program, Score, Tempo, TimeSignature, Track, Velocity};
use proptest::prelude::*;

fn note(tpq: u64) -> impl Strategy<Value = Note> {
    (
        0u8..=127,
        1u8..=127,
        0..tpq * 64,
        prop_oneof![Just(0u64), 1..tpq * 4, 1..tpq * 40],
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

fn track(tpq: u64) -> impl Strategy<Value = Track> {
    (
        0u8..8,
        any::<bool>(),
        prop::collection::vec(note(tpq), 0..30),
        prop::collection::vec((0..tpq * 64, -8192i16..=8191), 0..6),
    )
        .prop_map(|(program, drum, notes, bends)| Track {
            program: Program::new(program).unwrap(),
            is_drum: drum,
            channel: if drum {
                Channel::DRUMS
            } else {
                Channel::new(program % 9).unwrap()
            },
            notes,
            pitch_bends: bends
                .into_iter()
                .map(|(tick, value)| aurl_core::PitchBend { tick, value })
                .collect(),
            ..Track::default()
        })
}

/// Scores with odd resolutions, non-4/4 and changing meters, tempo changes, drums, several
/// tracks sharing a program, empty tracks and very long notes.
fn score() -> impl Strategy<Value = Score> {
    prop_oneof![Just(480u16), Just(96u16), Just(1000u16), 24u16..=960].prop_flat_map(|tpq| {
        let t = u64::from(tpq);
        (
            Just(tpq),
            prop::collection::vec(track(t), 0..5),
            prop::collection::vec((0..t * 64, 200_000u32..2_000_000), 0..4),
            prop::collection::vec(
                (
                    0..t * 64,
                    1u8..=13,
                    prop_oneof![Just(2u8), Just(4), Just(8), Just(16)],
                ),
                0..4,
            ),
        )
            .prop_map(|(tpq, tracks, tempos, sigs)| {
                let mut s = Score::new(tpq);
                s.tracks = tracks;
                s.tempos = tempos
                    .into_iter()
                    .map(|(tick, m)| Tempo::new(tick, m).unwrap())
                    .collect();
                s.time_signatures = sigs
                    .into_iter()
                    .map(|(tick, n, d)| TimeSignature::new(tick, n, d).unwrap())
                    .collect();
                s
            })
    })
}

fn configs() -> impl Strategy<Value = TokenizerConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(1u8..=4),
        prop_oneof![3 => Just(0u8), 1 => 1u8..=4],
    )
        .prop_map(
            |(programs, tempos, sigs, triplets, drums, chords, bends, rests, voices)| {
                TokenizerConfig {
                    voices,
                    use_rests: rests.is_some(),
                    max_rest: rests.unwrap_or(8),
                    use_pitch_bends: bends,
                    use_chords: chords,
                    use_programs: programs,
                    use_tempos: tempos,
                    use_time_signatures: sigs,
                    triplets,
                    use_drums: drums,
                    ..TokenizerConfig::default()
                }
            },
        )
}

/// The schemes `config` applies to (the event scheme has no voices).
fn schemes(config: &TokenizerConfig) -> impl Iterator<Item = &'static str> {
    let voices = config.voices > 0;
    SCHEMES
        .into_iter()
        .filter(move |&s| !(voices && s == "event"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn decode_of_encode_is_the_quantized_score(s in score(), config in configs()) {
        for scheme in schemes(&config) {
            let tokenizer = by_name(scheme, &config).unwrap();
            let tokens = tokenizer.encode(&s).unwrap();
            let (back, report) = tokenizer.decode(&tokens.ids);
            prop_assert_eq!(report.skipped(), 0, "{}: {:?}", scheme, report);
            prop_assert_eq!(back, tokenizer.quantize(&s), "{}", scheme);
        }
    }

    #[test]
    fn one_sequence_per_stream_round_trips_and_each_is_grammar_valid(s in score(), config in configs()) {
        for scheme in schemes(&config) {
            let tokenizer = by_name(scheme, &config).unwrap();
            let grammar = Grammar::new(tokenizer.vocab());
            let streams = tokenizer.encode_streams(&s).unwrap();
            let ids: Vec<Vec<TokenId>> = streams.into_iter().map(|t| t.ids).collect();
            for seq in &ids {
                prop_assert_eq!(grammar.validate(seq).error_count(), 0, "{}", scheme);
            }
            let (back, report) = tokenizer.decode_streams(&ids);
            prop_assert_eq!(report.skipped(), 0, "{}: {:?}", scheme, report);
            prop_assert_eq!(back, tokenizer.quantize(&s), "{}", scheme);
        }
    }

    #[test]
    fn quantizing_twice_changes_nothing(s in score(), config in configs()) {
        let remi = by_name("remi", &config).unwrap();
        let q = remi.quantize(&s);
        prop_assert_eq!(remi.quantize(&q), q.clone());
        prop_assert!(q.tracks.iter().flat_map(|t| &t.notes).all(|n| n.duration > 0), "no note vanishes");
    }

    #[test]
    fn encoding_ignores_track_order(s in score()) {
        let mut reversed = s.clone();
        reversed.tracks.reverse();
        for scheme in SCHEMES {
            let tokenizer = by_name(scheme, &TokenizerConfig::default()).unwrap();
            prop_assert_eq!(tokenizer.encode(&s).unwrap(), tokenizer.encode(&reversed).unwrap());
        }
    }

    #[test]
    fn bar_starts_point_at_bar_tokens_with_their_header_state(s in score()) {
        let remi = Remi::new(&TokenizerConfig::default()).unwrap();
        let tokens = remi.encode(&s).unwrap();
        let bar = remi.vocab().id(aurl_core::tokenize::Token::Bar).unwrap();
        let bars = tokens.ids.iter().filter(|&&id| id == bar).count();
        prop_assert_eq!(bars, tokens.bars.len());
        for b in &tokens.bars {
            prop_assert_eq!(tokens.ids[b.token_index], bar);
            prop_assert!(b.time_signature.is_some());
        }
    }

    #[test]
    fn the_grammar_recovers_the_encoders_bar_starts(s in score(), config in configs()) {
        for scheme in schemes(&config) {
            let tokenizer = by_name(scheme, &config).unwrap();
            let tokens = tokenizer.encode(&s).unwrap();
            let grammar = Grammar::new(tokenizer.vocab());
            prop_assert_eq!(grammar.bar_starts(&tokens.ids), tokens.bars, "{}", scheme);
        }
    }

    #[test]
    fn decoding_any_ids_never_panics(ids in prop::collection::vec(any::<u16>(), 0..400),
                                     scheme in prop::sample::select(SCHEMES.to_vec())) {
        let remi = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let (_, report) = remi.decode(&ids);
        let eos = remi.vocab().id(aurl_core::tokenize::Token::Eos).unwrap();
        let unknown_before_eos = ids
            .iter()
            .take_while(|&&id| id != eos)
            .filter(|&&id| usize::from(id) >= remi.vocab().len())
            .count();
        prop_assert_eq!(report.unknown_ids, unknown_before_eos);
    }

    #[test]
    fn decoding_shuffled_or_truncated_sequences_never_panics(s in score(), cut in any::<prop::sample::Index>(),
                                                             seed in any::<u64>(),
                                                             scheme in prop::sample::select(SCHEMES.to_vec())) {
        let remi = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let ids = remi.encode(&s).unwrap().ids;
        let truncated: Vec<TokenId> = ids[..cut.index(ids.len() + 1)].to_vec();
        let _ = remi.decode(&truncated);
        let mut shuffled = ids.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let _ = remi.decode(&shuffled);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_encoding_is_grammar_valid(s in score(), config in configs()) {
        for scheme in schemes(&config) {
            let tokenizer = by_name(scheme, &config).unwrap();
            let grammar = Grammar::new(tokenizer.vocab());
            let report = grammar.validate(&tokenizer.encode(&s).unwrap().ids);
            prop_assert_eq!(report.error_count(), 0, "{}: {:?}", scheme, report);
            prop_assert_eq!(report.note_pairing_rate, 1.0);
        }
    }

    #[test]
    fn walks_through_allowed_sets_always_decode_cleanly(config in configs(), seed in any::<u64>(), steps in 1usize..400,
                                                        scheme in prop::sample::select(SCHEMES.to_vec())) {
        prop_assume!(config.voices == 0 || scheme != "event");
        let remi = by_name(scheme, &config).unwrap();
        let grammar = Grammar::new(remi.vocab());
        let mut state = grammar.start();
        let mut mask = TokenMask::new(remi.vocab().len());
        let mut ids: Vec<TokenId> = Vec::new();
        let mut x = seed | 1;
        for _ in 0..steps {
            grammar.allowed(&state, &mut mask);
            let allowed: Vec<usize> = mask.iter().collect();
            prop_assert!(!allowed.is_empty(), "dead end after {:?}", ids);
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            let id = allowed[(x % allowed.len() as u64) as usize] as TokenId;
            grammar.advance(&mut state, id).unwrap();
            ids.push(id);
        }
        prop_assert_eq!(grammar.validate(&ids).error_count(), 0);
        let (complete, _) = grammar.repair(&ids);
        let (_, report) = remi.decode(&complete);
        prop_assert_eq!(report.skipped(), 0, "{:?}", report);
    }

    #[test]
    fn repaired_sequences_always_validate(ids in prop::collection::vec(0u16..500, 0..300),
                                          scheme in prop::sample::select(SCHEMES.to_vec())) {
        let remi = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let grammar = Grammar::new(remi.vocab());
        let (fixed, _) = grammar.repair(&ids);
        prop_assert_eq!(grammar.validate(&fixed).error_count(), 0);
    }
}

#[test]
fn a_score_spanning_millennia_is_a_typed_error_not_an_allocation() {
    let mut s = Score::new(480);
    let mut t = Track::new("x");
    t.notes.push(Note::new(
        Pitch::MIDDLE_C,
        Velocity::new(64).unwrap(),
        480 * 4 * 10_000_000,
        1,
    ));
    s.tracks.push(t);
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    assert!(matches!(
        remi.encode(&s),
        Err(aurl_core::Error::SequenceTooLong { .. })
    ));
}

#[test]
fn remi_plus_marks_chords_and_still_round_trips() {
    let config = TokenizerConfig {
        use_chords: true,
        ..TokenizerConfig::default()
    };
    let remi = Remi::new(&config).unwrap();
    let mut s = Score::new(480);
    let mut t = Track::new("piano");
    for (start, pitches) in [
        (0u64, [60u8, 64, 67]),
        (480, [57, 60, 64]),
        (960, [59, 62, 67]),
    ] {
        for p in pitches {
            t.notes.push(Note::new(
                Pitch::new(p).unwrap(),
                Velocity::new(80).unwrap(),
                start,
                480,
            ));
        }
    }
    s.tracks.push(t);
    let tokens = remi.encode(&s).unwrap();
    let chords: Vec<String> = tokens
        .ids
        .iter()
        .map(|&id| remi.vocab().name(id))
        .filter(|n| n.starts_with("Chord_"))
        .collect();
    assert_eq!(chords, ["Chord_C:maj", "Chord_A:m", "Chord_G:maj"]);
    assert_eq!(
        Grammar::new(remi.vocab())
            .validate(&tokens.ids)
            .error_count(),
        0
    );
    let (back, report) = remi.decode(&tokens.ids);
    assert_eq!(report.skipped(), 0);
    assert_eq!(back, remi.quantize(&s));
}

#[test]
fn sustain_pedal_folds_into_durations_and_drums_use_their_own_range() {
    use aurl_core::{ControlChange, ControlValue};
    let mut s = Score::new(480);
    let mut piano = Track::new("piano");
    piano.notes.push(Note::new(
        Pitch::new(24).unwrap(),
        Velocity::new(80).unwrap(),
        0,
        240,
    ));
    piano.controls = vec![
        ControlChange {
            tick: 0,
            controller: ControlValue::new(64).unwrap(),
            value: ControlValue::new(127).unwrap(),
        },
        ControlChange {
            tick: 960,
            controller: ControlValue::new(64).unwrap(),
            value: ControlValue::new(0).unwrap(),
        },
    ];
    let mut drums = Track::drums("kit");
    for p in [20u8, 36, 95] {
        drums.notes.push(Note::new(
            Pitch::new(p).unwrap(),
            Velocity::new(100).unwrap(),
            0,
            120,
        ));
    }
    s.tracks = vec![piano, drums];
    for (pedal, piano_steps) in [(false, 4u64), (true, 16)] {
        let config = TokenizerConfig {
            sustain_pedal: pedal,
            ..TokenizerConfig::default()
        };
        for scheme in SCHEMES {
            let t = by_name(scheme, &config).unwrap();
            let q = t.quantize(&s);
            assert_eq!(
                q.tracks[0].notes[0].duration, piano_steps,
                "{scheme}, pedal {pedal}"
            );
            let kept: Vec<u8> = q.tracks[1].notes.iter().map(|n| n.pitch.get()).collect();
            assert_eq!(kept, [36], "{scheme}: drums outside 27..=88 are dropped");
            let (back, report) = t.decode(&t.encode(&s).unwrap().ids);
            assert_eq!((back, report.skipped()), (q, 0), "{scheme}");
        }
    }
}

#[test]
fn rests_mark_silences_and_round_trip() {
    let mut s = Score::new(480);
    let mut t = Track::new("piano");
    for (p, start) in [(60u8, 0u64), (64, 480 * 4 * 5)] {
        t.notes.push(Note::new(
            Pitch::new(p).unwrap(),
            Velocity::new(80).unwrap(),
            start,
            480,
        ));
    }
    s.tracks.push(t);
    let config = TokenizerConfig {
        use_rests: true,
        ..TokenizerConfig::default()
    };
    // One beat of sound, then 19 silent beats up to bar 5.
    for (scheme, rests) in [
        ("remi", vec!["Rest_4bar"]),
        ("tsd", vec!["Rest_12.0.8", "Rest_7.0.8"]),
        ("event", vec!["Rest_12.0.8", "Rest_7.0.8"]),
    ] {
        let with = by_name(scheme, &config).unwrap();
        let without = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let tokens = with.encode(&s).unwrap();
        let names: Vec<String> = tokens.ids.iter().map(|&id| with.vocab().name(id)).collect();
        let found: Vec<&str> = names
            .iter()
            .filter(|n| n.starts_with("Rest_"))
            .map(String::as_str)
            .collect();
        assert_eq!(found, rests, "{scheme}: {names:?}");
        // REMI's four empty bars shrink to one rest; TSD pays one token to split the gap at
        // the end of the sound (the event scheme already splits it at the note-off).
        let plain = without.encode(&s).unwrap().ids.len();
        let expected = match scheme {
            "remi" => plain - 3,
            "tsd" => plain + 1,
            _ => plain,
        };
        assert_eq!(tokens.ids.len(), expected, "{scheme}: {names:?}");
        let report = Grammar::new(with.vocab()).validate(&tokens.ids);
        assert_eq!(report.error_count(), 0, "{scheme}: {report:?}");
        let (back, decoded) = with.decode(&tokens.ids);
        assert_eq!(
            (back, decoded.skipped()),
            (with.quantize(&s), 0),
            "{scheme}"
        );
    }
}

#[test]
fn voices_keep_the_parts_of_one_program_apart() {
    // Four parts on one program, as the chorales are written: soprano, alto, tenor, bass,
    // with the alto and tenor crossing on one beat.
    let mut s = Score::new(480);
    for (i, pitches) in [[72u8, 74], [67, 60], [64, 62], [48, 43]]
        .iter()
        .enumerate()
    {
        s.tracks.push(Track {
            program: Program::new(52).unwrap(),
            channel: Channel::new(i as u8).unwrap(),
            notes: pitches
                .iter()
                .enumerate()
                .map(|(k, &p)| {
                    Note::new(
                        Pitch::new(p).unwrap(),
                        Velocity::new(80).unwrap(),
                        k as u64 * 480,
                        480,
                    )
                })
                .collect(),
            ..Track::default()
        });
    }
    for scheme in ["remi", "tsd"] {
        let merged = by_name(scheme, &TokenizerConfig::default()).unwrap();
        assert_eq!(
            merged
                .decode(&merged.encode(&s).unwrap().ids)
                .0
                .tracks
                .len(),
            1
        );
        let config = TokenizerConfig {
            voices: 4,
            ..TokenizerConfig::default()
        };
        let voiced = by_name(scheme, &config).unwrap();
        let tokens = voiced.encode(&s).unwrap();
        let names: Vec<String> = tokens
            .ids
            .iter()
            .map(|&id| voiced.vocab().name(id))
            .collect();
        let at = names.iter().position(|n| n == "Program_52").unwrap();
        assert_eq!(names[at + 1], "Voice_0", "{names:?}");
        let (back, report) = voiced.decode(&tokens.ids);
        assert_eq!(report.skipped(), 0);
        let parts: Vec<Vec<u8>> = back
            .tracks
            .iter()
            .map(|t| t.notes.iter().map(|n| n.pitch.get()).collect())
            .collect();
        assert_eq!(parts, [[72, 74], [67, 60], [64, 62], [48, 43]], "{scheme}");
        assert!(back.tracks.iter().all(|t| t.program.get() == 52));
        let channels: Vec<u8> = back.tracks.iter().map(|t| t.channel.get()).collect();
        assert_eq!(channels, [0, 1, 2, 3]);
        // Two voices: the tenor and bass share the last one.
        let two = by_name(
            scheme,
            &TokenizerConfig {
                voices: 2,
                ..config.clone()
            },
        )
        .unwrap();
        let (back, _) = two.decode(&two.encode(&s).unwrap().ids);
        let counts: Vec<usize> = back.tracks.iter().map(|t| t.notes.len()).collect();
        assert_eq!(counts, [2, 6]);
        let grammar = Grammar::new(voiced.vocab());
        assert_eq!(grammar.validate(&tokens.ids).error_count(), 0);
        // A program without its voice is refused.
        let without: Vec<TokenId> = tokens
            .ids
            .iter()
            .copied()
            .filter(|&id| !voiced.vocab().name(id).starts_with("Voice"))
            .collect();
        assert!(grammar.validate(&without).error_count() > 0);
    }
}
