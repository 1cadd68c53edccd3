//! Behaviour of the grammar on hand-written sequences.

use super::*;
use crate::tokenize::TokenizerConfig;

fn remi() -> (Vocabulary, Grammar) {
    let v = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let g = Grammar::new(&v);
    (v, g)
}

fn ids(v: &Vocabulary, tokens: &[Token]) -> Vec<TokenId> {
    tokens.iter().map(|&t| v.id(t).unwrap()).collect()
}

/// Bar, 4/4, position 0, a tempo.
fn header() -> Vec<Token> {
    vec![
        Token::Bar,
        Token::TimeSig(3),
        Token::Position(0),
        Token::Tempo(10),
    ]
}

#[test]
fn a_well_formed_sequence_has_no_errors() {
    let (v, g) = remi();
    let mut t = header();
    t.extend([
        Token::Program(0),
        Token::Pitch(60),
        Token::Velocity(3),
        Token::Duration(7),
    ]);
    t.extend([
        Token::Position(8),
        Token::Drums,
        Token::Pitch(36),
        Token::Velocity(3),
        Token::Duration(0),
    ]);
    t.extend([
        Token::Bar,
        Token::Position(31),
        Token::Program(5),
        Token::Pitch(70),
        Token::Velocity(1),
    ]);
    t.extend([Token::Duration(1), Token::Eos, Token::Pad, Token::Pad]);
    let r = g.validate(&ids(&v, &t));
    assert_eq!(r.error_count(), 0, "{r:?}");
    assert_eq!(r.note_pairing_rate, 1.0);
}

#[test]
fn positions_must_increase_and_stay_in_the_bar() {
    let (v, g) = remi();
    assert_eq!(v.grid().time_signatures[3], (4, 4));
    let mut s = g.start();
    // 3/4 bar: 24 steps.
    let three_four = v.grid().time_signature_index(3, 4) as u8;
    for t in [
        Token::Bar,
        Token::TimeSig(three_four),
        Token::Position(0),
        Token::Tempo(0),
        Token::Position(20),
    ] {
        g.advance(&mut s, v.id(t).unwrap()).unwrap();
    }
    let back = g
        .advance(&mut s, v.id(Token::Position(10)).unwrap())
        .unwrap_err();
    assert_eq!(
        back.kind,
        GrammarErrorKind::Misplaced,
        "after a bare position only content may follow"
    );
    let mut s2 = s.clone();
    g.advance(&mut s2, v.id(Token::Program(0)).unwrap())
        .unwrap();
    for t in [Token::Pitch(60), Token::Velocity(0), Token::Duration(0)] {
        g.advance(&mut s2, v.id(t).unwrap()).unwrap();
    }
    let e = g
        .advance(&mut s2, v.id(Token::Position(10)).unwrap())
        .unwrap_err();
    assert_eq!(e.kind, GrammarErrorKind::PositionNotIncreasing);
    let e = g
        .advance(&mut s2, v.id(Token::Position(24)).unwrap())
        .unwrap_err();
    assert_eq!(e.kind, GrammarErrorKind::PositionBeyondBar);
    let m = g.allowed_mask(&s2);
    assert!(m.contains(usize::from(v.id(Token::Position(23)).unwrap())));
    assert!(!m.contains(usize::from(v.id(Token::Position(20)).unwrap())));
    assert!(m.contains(usize::from(v.id(Token::Bar).unwrap())));
}

#[test]
fn the_allowed_mask_agrees_with_advance_for_every_id() {
    let (v, g) = remi();
    let mut s = g.start();
    let mut walk = header();
    walk.extend([
        Token::Program(1),
        Token::Pitch(60),
        Token::Velocity(2),
        Token::Duration(3),
        Token::Bar,
    ]);
    for t in walk {
        let m = g.allowed_mask(&s);
        for id in 0..v.len() {
            let mut probe = s.clone();
            assert_eq!(
                m.contains(id),
                g.advance(&mut probe, id as TokenId).is_ok(),
                "{} in {s:?}",
                v.name(id as TokenId)
            );
        }
        g.advance(&mut s, v.id(t).unwrap()).unwrap();
    }
}

#[test]
fn event_note_offs_need_a_sounding_note_and_eos_waits_for_silence() {
    let v = Vocabulary::event(&TokenizerConfig::default()).unwrap();
    let g = Grammar::new(&v);
    let id = |t| v.id(t).unwrap();
    let mut s = g.start();
    for t in [
        Token::TimeSig(3),
        Token::Tempo(10),
        Token::Program(0),
        Token::NoteOn(60),
        Token::Velocity(5),
    ] {
        g.advance(&mut s, id(t)).unwrap();
    }
    assert_eq!(s.sounding_notes(), 1);
    let m = g.allowed_mask(&s);
    assert!(
        !m.contains(usize::from(id(Token::Eos))),
        "a note is still sounding"
    );
    let mut p = s.clone();
    g.advance(&mut p, id(Token::Program(0))).unwrap();
    let m = g.allowed_mask(&p);
    assert!(m.contains(usize::from(id(Token::NoteOff(60)))));
    assert!(
        !m.contains(usize::from(id(Token::NoteOff(61)))),
        "61 is not sounding"
    );
    let mut other = s.clone();
    g.advance(&mut other, id(Token::Program(1))).unwrap();
    let e = g.advance(&mut other, id(Token::NoteOff(60))).unwrap_err();
    assert_eq!(
        e.kind,
        GrammarErrorKind::NoteOffWithoutNote,
        "60 sounds on program 0, not 1"
    );
    g.advance(&mut p, id(Token::NoteOff(60))).unwrap();
    assert!(g.allowed_mask(&p).contains(usize::from(id(Token::Eos))));
    // An unclosed note is closed by repair.
    let seq: Vec<TokenId> = [
        Token::TimeSig(3),
        Token::Tempo(10),
        Token::Program(7),
        Token::NoteOn(64),
        Token::Velocity(5),
    ]
    .iter()
    .map(|&t| id(t))
    .collect();
    let (fixed, report) = g.repair(&seq);
    assert_eq!(report.closed_notes, 1);
    assert_eq!(
        fixed[fixed.len() - 2..],
        [id(Token::Program(7)), id(Token::NoteOff(64))]
    );
    assert_eq!(g.validate(&fixed).note_pairing_rate, 1.0);
}

#[test]
fn repair_drops_refused_tokens_and_an_unfinished_last_note() {
    let (v, g) = remi();
    let mut t = header();
    t.extend([
        Token::Pitch(60),
        Token::Program(0),
        Token::Pitch(60),
        Token::Velocity(3),
        Token::Duration(7),
    ]);
    t.extend([Token::Position(2), Token::Program(0), Token::Pitch(61)]);
    let (fixed, report) = g.repair(&ids(&v, &t));
    assert_eq!(report.dropped.get("misplaced"), Some(&1));
    assert_eq!(report.unfinished_removed, 2);
    assert_eq!(g.validate(&fixed).error_count(), 0);
    assert_eq!(fixed.len(), t.len() - 3);
}

#[test]
fn rests_are_only_allowed_in_silence() {
    let config = TokenizerConfig {
        use_rests: true,
        use_programs: false,
        ..TokenizerConfig::default()
    };
    for scheme in ["tsd", "event", "remi"] {
        let v = crate::tokenize::by_name(scheme, &config)
            .unwrap()
            .vocab()
            .clone();
        let g = Grammar::new(&v);
        let mut s = g.start();
        let mut prefix = if scheme == "remi" {
            header()
        } else {
            vec![Token::TimeSig(3), Token::Tempo(10)]
        };
        // A note two beats long (16 steps), then one beat later.
        let long = v.grid().durations.iter().position(|&d| d == 16).unwrap() as u16;
        prefix.extend(if scheme == "event" {
            vec![Token::NoteOn(60), Token::Velocity(3)]
        } else {
            vec![Token::Pitch(60), Token::Velocity(3), Token::Duration(long)]
        });
        if scheme != "remi" {
            prefix.push(Token::TimeShift(7));
        }
        for id in ids(&v, &prefix) {
            g.advance(&mut s, id).unwrap();
        }
        let rest = v.id(Token::Rest(1)).unwrap();
        if scheme == "remi" {
            // The note ends inside the bar: the following bars are silent.
            assert!(g.allowed_mask(&s).contains(usize::from(rest)), "{scheme}");
            g.advance(&mut s, rest).unwrap();
            assert!(!g.is_allowed(&s, v.id(Token::Position(3)).unwrap()));
            g.advance(&mut s, v.id(Token::Bar).unwrap()).unwrap();
            continue;
        }
        assert!(!g.allowed_mask(&s).contains(usize::from(rest)), "{scheme}");
        let e = g.advance(&mut s, rest).unwrap_err();
        assert_eq!(e.kind, GrammarErrorKind::RestWhileSounding, "{scheme}");
        let release = if scheme == "event" {
            Token::NoteOff(60)
        } else {
            Token::TimeShift(7)
        };
        g.advance(&mut s, v.id(release).unwrap()).unwrap();
        assert!(g.allowed_mask(&s).contains(usize::from(rest)), "{scheme}");
        g.advance(&mut s, rest).unwrap();
    }
}

#[test]
fn remi_refuses_a_rest_while_a_note_sounds_into_the_next_bar() {
    let config = TokenizerConfig {
        use_rests: true,
        ..TokenizerConfig::default()
    };
    let v = Vocabulary::remi(&config).unwrap();
    let g = Grammar::new(&v);
    let mut t = header();
    // Position 24 + two beats (16 steps) ends at step 40, past the 32-step bar.
    let long = v.grid().durations.iter().position(|&d| d == 16).unwrap() as u16;
    t.extend([
        Token::Position(24),
        Token::Program(0),
        Token::Pitch(60),
        Token::Velocity(3),
        Token::Duration(long),
        Token::Rest(2),
    ]);
    let r = g.validate(&ids(&v, &t));
    assert_eq!(r.errors.get("rest_while_sounding"), Some(&1), "{r:?}");
}

#[test]
fn the_state_knows_the_bar_and_the_time_for_every_scheme() {
    use crate::tokenize::{SCHEMES, by_name};
    use crate::{Note, Pitch, Score, Track, Velocity};
    // 4/4 at 480 ticks per quarter: notes at beats 0, 5 and 9.5 (bars 0, 1, 2), each an
    // eighth long, so the last ends inside bar 2.
    let mut t = Track::new("p");
    for &(q2, p) in &[(0u64, 60u8), (10, 62), (19, 64)] {
        t.notes.push(Note::new(
            Pitch::new(p).unwrap(),
            Velocity::new(80).unwrap(),
            240 * q2,
            240,
        ));
    }
    let mut score = Score::new(480);
    score.tracks.push(t);
    for scheme in SCHEMES {
        let tok = by_name(scheme, &TokenizerConfig::default()).unwrap();
        let g = Grammar::new(tok.vocab());
        let ids = tok.encode(&score).unwrap().ids;
        let mut state = g.start();
        let mut last_onset_steps = 0;
        for &id in &ids {
            g.advance(&mut state, id).unwrap();
            if matches!(
                tok.vocab().token(id),
                Some(Token::Pitch(_) | Token::NoteOn(_))
            ) {
                last_onset_steps = state.time_steps();
            }
        }
        // The grid has 8 steps per quarter: beat 9.5 is step 76.
        let resolution = u64::from(tok.vocab().grid().resolution);
        assert_eq!(last_onset_steps, 19 * resolution / 2, "{scheme}");
        assert_eq!(state.bar_index(), 2, "{scheme}");
    }
}
