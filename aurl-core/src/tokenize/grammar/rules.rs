//! The transition rules of each scheme: which token leads from which phase to which, and
//! which tokens depend on more than the phase (positions, bar-start time signatures,
//! note-offs of sounding notes, EOS and rests in silence).

use super::{Grammar, GrammarState, TokenMask};
use crate::tokenize::Token;

/// Where the automaton is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Phase {
    /// Nothing yet (or only BOS).
    Start,
    /// After the first Bar: its time signature must follow.
    NeedTimeSig,
    /// The first bar must open with position 0 …
    NeedFirstPosition,
    /// … and the initial tempo.
    NeedTempo,
    /// After a Bar (a time signature may follow).
    BarStart,
    /// After a Bar and its time signature.
    BarAfterTimeSig,
    /// After a Position.
    AfterPosition,
    /// After a Tempo.
    AfterTempo,
    /// After Program/Drums.
    AfterProgram,
    /// After a Pitch.
    AfterPitch,
    /// After a Velocity.
    AfterVelocity,
    /// After a Duration: a note is complete.
    AfterNote,
    /// After EOS.
    Ended,
    /// TSD: after a TimeShift (a time signature may follow at a bar start).
    Step,
    /// TSD: after a TimeSig.
    StepAfterTimeSig,
    /// Event scheme: after a NoteOn (its velocity must follow).
    AfterNoteOn,
    /// REMI+: after a Chord (notes follow).
    AfterChord,
    /// REMI: after a Rest (a Bar, another Rest or EOS follows).
    AfterRest,
    /// After Program/Drums when voices are on: the Voice must follow.
    NeedVoice,
}

/// Every phase, in discriminant order (the masks are indexed by `phase as usize`).
pub(super) const PHASES: [Phase; 19] = [
    Phase::Start,
    Phase::NeedTimeSig,
    Phase::NeedFirstPosition,
    Phase::NeedTempo,
    Phase::BarStart,
    Phase::BarAfterTimeSig,
    Phase::AfterPosition,
    Phase::AfterTempo,
    Phase::AfterProgram,
    Phase::AfterPitch,
    Phase::AfterVelocity,
    Phase::AfterNote,
    Phase::Ended,
    Phase::Step,
    Phase::StepAfterTimeSig,
    Phase::AfterNoteOn,
    Phase::AfterChord,
    Phase::AfterRest,
    Phase::NeedVoice,
];

/// Which positions a phase allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Positions {
    None,
    Zero,
    AnyInBar,
    AfterCurrent,
}

impl Grammar {
    /// Tokens whose admission depends on more than the phase (computed per state).
    pub(super) fn is_dynamic(&self, phase: Phase, token: Token) -> bool {
        match token {
            Token::Position(_) => true,
            Token::TimeSig(_) => phase == Phase::Step,
            Token::NoteOff(_) | Token::Eos => self.events,
            Token::Rest(_) => true,
            _ => false,
        }
    }

    /// Whether nothing sounds from the current time on (rests may follow): in REMI, until
    /// the end of the current bar.
    fn silent(&self, state: &GrammarState) -> bool {
        if self.bars {
            state.busy <= state.bar_start + u64::from(state.bar_steps)
        } else if self.events {
            state.sounding.is_empty()
        } else {
            state.busy <= state.step
        }
    }

    /// Whether a dynamic token is allowed in `state` (its phase already allows the family).
    pub(super) fn dynamic_allows(&self, state: &GrammarState, token: Token) -> bool {
        match token {
            Token::Position(p) => Self::position_range(state).contains(&u32::from(p)),
            Token::TimeSig(_) => state.step == state.bar_start,
            Token::NoteOff(p) => {
                let k = u16::from(state.key) * 128 + u16::from(p);
                state.sounding.iter().any(|&(x, _)| x == k)
            }
            Token::Eos => state.sounding.is_empty(),
            Token::Rest(_) => self.silent(state),
            _ => false,
        }
    }

    /// Adds the dynamic tokens allowed in `state` to `out`: at most one id range plus one id
    /// per sounding note, never a pass over the vocabulary.
    pub(super) fn add_dynamic(&self, state: &GrammarState, out: &mut TokenMask) {
        if !self.rest_ids.is_empty()
            && self.next_phase(state.phase, Token::Rest(1)).is_some()
            && self.silent(state)
        {
            out.insert_range(self.rest_ids.start, self.rest_ids.end);
        }
        if self.bars {
            let r = Self::position_range(state);
            out.insert_range(
                self.position_base + r.start as usize,
                self.position_base + r.end as usize,
            );
            return;
        }
        let phase = state.phase;
        if phase == Phase::Step && state.step == state.bar_start {
            out.insert_range(self.time_sig_ids.start, self.time_sig_ids.end);
        }
        if self.events {
            if self
                .next_phase(phase, Token::NoteOff(self.pitch_low))
                .is_some()
            {
                for &(k, _) in &state.sounding {
                    if k / 128 == u16::from(state.key) {
                        let pitch = (k % 128) as u8;
                        out.insert(self.note_off_base + usize::from(pitch - self.pitch_low));
                    }
                }
            }
            if state.sounding.is_empty() && self.next_phase(phase, Token::Eos).is_some() {
                out.insert(self.eos);
            }
        }
    }

    /// The phase a token leads to, or `None` if not allowed (dynamic tokens are further
    /// restricted by [`Grammar::add_dynamic`]).
    pub(super) fn next_phase(&self, phase: Phase, token: Token) -> Option<Phase> {
        if self.bars {
            self.next_phase_bars(phase, token)
        } else {
            self.next_phase_shifts(phase, token)
        }
    }

    /// TSD: `[BOS] [TimeSig] [Tempo] (TimeShift* [TimeSig] [Tempo] Note*)* [EOS] PAD*`.
    fn next_phase_shifts(&self, phase: Phase, token: Token) -> Option<Phase> {
        use Phase::*;
        let note_start = match token {
            Token::Program(_) | Token::Drums if self.use_programs => Some(self.after_program()),
            Token::Voice(_) if !self.use_programs => Some(AfterProgram),
            _ if self.use_programs || self.voices => None,
            Token::Pitch(_) if !self.events => Some(AfterPitch),
            Token::NoteOn(_) => Some(AfterNoteOn),
            Token::NoteOff(_) | Token::PitchBend(_) => Some(AfterNote),
            _ => None,
        };
        // Without a header to wait for, the start behaves like any step.
        let phase = if phase == Start
            && !self.use_time_signatures
            && !self.use_tempos
            && token != Token::Bos
        {
            Step
        } else {
            phase
        };
        match (phase, token) {
            (Ended, Token::Pad) => Some(Ended),
            (Ended, _) => None,
            (Start, Token::Bos) => Some(Start),
            (Start, Token::TimeSig(_)) => Some(if self.use_tempos {
                NeedTempo
            } else {
                StepAfterTimeSig
            }),
            (Start, Token::Tempo(_)) if !self.use_time_signatures => Some(AfterTempo),
            (NeedTempo, Token::Tempo(_)) => Some(AfterTempo),
            (Step, Token::TimeSig(_)) => Some(StepAfterTimeSig),
            (Step | StepAfterTimeSig, Token::Tempo(_)) => Some(AfterTempo),
            (
                Step | StepAfterTimeSig | AfterTempo | AfterNote,
                Token::TimeShift(_) | Token::Rest(_),
            ) => Some(Step),
            (Step | StepAfterTimeSig | AfterTempo | AfterNote, Token::Eos) => Some(Ended),
            (Step | StepAfterTimeSig | AfterTempo | AfterNote, _) if note_start.is_some() => {
                note_start
            }
            (NeedVoice, Token::Voice(_)) => Some(AfterProgram),
            (AfterProgram, Token::Pitch(_)) if !self.events => Some(AfterPitch),
            (AfterProgram, Token::NoteOn(_)) => Some(AfterNoteOn),
            (AfterProgram, Token::NoteOff(_)) => Some(AfterNote),
            (AfterProgram, Token::PitchBend(_)) => Some(AfterNote),
            (AfterNoteOn, Token::Velocity(_)) => Some(AfterNote),
            (AfterPitch, Token::Velocity(_)) => Some(AfterVelocity),
            (AfterVelocity, Token::Duration(_)) => Some(AfterNote),
            _ => None,
        }
    }

    /// REMI: see the module documentation.
    fn next_phase_bars(&self, phase: Phase, token: Token) -> Option<Phase> {
        use Phase::*;
        let note_start = match token {
            Token::Program(_) | Token::Drums if self.use_programs => Some(self.after_program()),
            Token::Voice(_) if !self.use_programs => Some(AfterProgram),
            _ if self.use_programs || self.voices => None,
            Token::Pitch(_) => Some(AfterPitch),
            Token::PitchBend(_) => Some(AfterNote),
            _ => None,
        };
        let first_bar = if self.use_time_signatures {
            NeedTimeSig
        } else if self.use_tempos {
            NeedFirstPosition
        } else {
            BarStart
        };
        match (phase, token) {
            (Ended, Token::Pad) => Some(Ended),
            (Ended, _) => None,
            (Start, Token::Bos) => Some(Start),
            (Start, Token::Bar) => Some(first_bar),
            (NeedTimeSig, Token::TimeSig(_)) => Some(if self.use_tempos {
                NeedFirstPosition
            } else {
                BarAfterTimeSig
            }),
            (NeedTempo, Token::Tempo(_)) => Some(AfterTempo),
            (BarStart, Token::TimeSig(_)) if self.use_time_signatures => Some(BarAfterTimeSig),
            (AfterPosition, Token::Tempo(_)) => Some(AfterTempo),
            (AfterPosition | AfterTempo, Token::Chord(_)) => Some(AfterChord),
            (AfterPosition | AfterTempo | AfterNote | AfterChord, _) if note_start.is_some() => {
                note_start
            }
            (NeedVoice, Token::Voice(_)) => Some(AfterProgram),
            (AfterProgram, Token::Pitch(_)) => Some(AfterPitch),
            (AfterProgram, Token::PitchBend(_)) => Some(AfterNote),
            (AfterPitch, Token::Velocity(_)) => Some(AfterVelocity),
            (AfterVelocity, Token::Duration(_)) => Some(AfterNote),
            (Start | BarStart | BarAfterTimeSig | AfterTempo | AfterNote, Token::Eos) => {
                Some(Ended)
            }
            (BarStart | BarAfterTimeSig | AfterTempo | AfterNote | AfterRest, Token::Bar) => {
                Some(BarStart)
            }
            (BarStart | BarAfterTimeSig | AfterTempo | AfterNote | AfterRest, Token::Rest(_)) => {
                Some(AfterRest)
            }
            (AfterRest, Token::Eos) => Some(Ended),
            _ => None,
        }
    }

    /// Where Program/Drums lead: to the voice when voices are on, else to the note.
    fn after_program(&self) -> Phase {
        if self.voices {
            Phase::NeedVoice
        } else {
            Phase::AfterProgram
        }
    }

    fn positions(phase: Phase) -> Positions {
        match phase {
            Phase::NeedFirstPosition => Positions::Zero,
            Phase::BarStart | Phase::BarAfterTimeSig => Positions::AnyInBar,
            Phase::AfterTempo | Phase::AfterNote => Positions::AfterCurrent,
            _ => Positions::None,
        }
    }

    /// Positions allowed in `state` as a range of grid steps.
    pub(super) fn position_range(state: &GrammarState) -> std::ops::Range<u32> {
        match Self::positions(state.phase) {
            Positions::None => 0..0,
            Positions::Zero => 0..1,
            Positions::AnyInBar => 0..state.bar_steps,
            Positions::AfterCurrent => state.position + 1..state.bar_steps,
        }
    }
}
