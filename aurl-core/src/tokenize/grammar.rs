//! The token grammar: a deterministic automaton that knows, for any prefix, which ids may
//! come next. One implementation serves training (grammar loss), sampling (constraint masks)
//! and evaluation (validity metrics).
//!
//! REMI sequences follow
//! `[BOS] Bar TimeSig Position_0 Tempo Body* (Bar [TimeSig] Body*)* [EOS] PAD*`
//! where `Body = Position [Tempo] ([Program|Drums] Pitch Velocity Duration)*`, positions
//! strictly increase within a bar and stay inside it, and families turned off in the config
//! are simply absent. TSD sequences follow
//! `[BOS] [TimeSig] [Tempo] (TimeShift* [TimeSig] [Tempo] Note*)* [EOS] PAD*`, where a time
//! signature may only appear at a bar start. The allowed set is a precomputed mask per automaton phase plus, for
//! positions, one contiguous id range (positions are consecutive ids), so computing it costs a
//! few word copies, never a loop over the vocabulary.

use std::collections::BTreeMap;

use serde::Serialize;

use super::mask::TokenMask;
use super::{Token, TokenId, Vocabulary};

/// Where the automaton is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Phase {
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
}

const PHASES: [Phase; 16] = [
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
];

/// Which positions a phase allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Positions {
    None,
    Zero,
    AnyInBar,
    AfterCurrent,
}

/// The per-sequence cursor: small (a few words, plus the sounding notes in the event
/// scheme), so a batch keeps one per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrammarState {
    phase: Phase,
    /// Time signature index in force.
    time_signature: u8,
    /// Length of the current bar in grid steps.
    bar_steps: u32,
    /// Current position within the bar.
    position: u32,
    /// Tokens consumed.
    consumed: usize,
    /// Time-shift schemes: current time and the start of its bar, in grid steps.
    step: u64,
    bar_start: u64,
    /// Event scheme: the stream (program) of the following note tokens.
    key: u8,
    /// Event scheme: sounding notes as (stream × 128 + pitch, how many).
    sounding: Vec<(u16, u16)>,
}

impl GrammarState {
    /// Whether the sequence so far could stop here (no note half-written).
    #[must_use]
    pub fn at_boundary(&self) -> bool {
        !matches!(
            self.phase,
            Phase::AfterProgram | Phase::AfterPitch | Phase::AfterVelocity | Phase::AfterNoteOn
        )
    }

    /// Event scheme: how many notes are sounding.
    #[must_use]
    pub fn sounding_notes(&self) -> usize {
        self.sounding.iter().map(|&(_, n)| usize::from(n)).sum()
    }

    /// Whether EOS has been consumed.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }
}

/// Why a token was not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrammarErrorKind {
    /// The id is not in the vocabulary.
    UnknownId,
    /// A token after EOS other than padding.
    AfterEnd,
    /// The first bar lacks its time signature, position 0 or initial tempo.
    MissingHeader,
    /// A position not after the previous one in the same bar (time going backwards).
    PositionNotIncreasing,
    /// A position beyond the end of the bar for its time signature.
    PositionBeyondBar,
    /// Something interrupts a note's Pitch–Velocity–Duration group.
    IncompleteNote,
    /// A note-off for a pitch that is not sounding in its stream (event scheme).
    NoteOffWithoutNote,
    /// End of sequence while notes are still sounding (event scheme).
    EndWhileSounding,
    /// Any other token in a place the scheme does not allow.
    Misplaced,
}

impl GrammarErrorKind {
    /// The snake_case name used in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::UnknownId => "unknown_id",
            Self::AfterEnd => "after_end",
            Self::MissingHeader => "missing_header",
            Self::PositionNotIncreasing => "position_not_increasing",
            Self::PositionBeyondBar => "position_beyond_bar",
            Self::IncompleteNote => "incomplete_note",
            Self::NoteOffWithoutNote => "note_off_without_note",
            Self::EndWhileSounding => "end_while_sounding",
            Self::Misplaced => "misplaced",
        }
    }
}

/// A token the grammar refused, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{} at token {index} (id {id})", kind.name())]
pub struct GrammarError {
    /// Why.
    pub kind: GrammarErrorKind,
    /// Index of the token in the sequence.
    pub index: usize,
    /// The refused id.
    pub id: TokenId,
}

/// Validity of a whole sequence (our equivalent of MidiTok's `tokens_errors`, but exact).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct GrammarReport {
    /// Tokens examined.
    pub tokens: usize,
    /// Refused tokens by kind (each is skipped and checking goes on).
    pub errors: BTreeMap<&'static str, usize>,
    /// Refused tokens / tokens (0 when empty).
    pub error_rate: f64,
    /// Fraction of started notes (Pitch tokens accepted) that were completed with their
    /// velocity and duration (1 when there are none).
    pub note_pairing_rate: f64,
}

impl GrammarReport {
    /// Total refused tokens.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.errors.values().sum()
    }
}

/// What [`Grammar::repair`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RepairReport {
    /// Refused tokens dropped, by kind.
    pub dropped: BTreeMap<&'static str, usize>,
    /// Tokens of notes left unfinished that were removed.
    pub unfinished_removed: usize,
    /// Event scheme: notes still sounding at the end, closed with note-offs.
    pub closed_notes: usize,
}

/// The compiled grammar of one vocabulary; share it (e.g. in an `Arc`) across sequences.
#[derive(Debug, Clone)]
pub struct Grammar {
    len: usize,
    masks: Vec<TokenMask>,
    position_base: usize,
    bar_steps: Vec<u32>,
    default_time_signature: u8,
    use_time_signatures: bool,
    use_tempos: bool,
    use_programs: bool,
    /// Whether the scheme has Bar/Position tokens (REMI) or moves by TimeShift (TSD, event).
    bars: bool,
    /// Whether notes are NoteOn/NoteOff pairs (event scheme).
    events: bool,
    note_off_base: usize,
    pitch_low: u8,
    eos: usize,
    time_sig_ids: std::ops::Range<usize>,
    time_shifts: Vec<u32>,
    tokens: Vec<Option<Token>>,
}

impl Grammar {
    /// Compiles the grammar of a vocabulary.
    #[must_use]
    pub fn new(vocab: &Vocabulary) -> Self {
        let config = vocab.config();
        let grid = vocab.grid();
        let len = vocab.len();
        let tokens: Vec<Option<Token>> = (0..len).map(|i| vocab.token(i as TokenId)).collect();
        let position_base = vocab.id(Token::Position(0)).map_or(0, usize::from);
        let bar_steps = (0..grid.time_signatures.len())
            .map(|i| grid.bar_steps(i))
            .collect();
        let time_sig_ids = match vocab.id(Token::TimeSig(0)) {
            Some(first) => usize::from(first)..usize::from(first) + grid.time_signatures.len(),
            None => 0..0,
        };
        let mut g = Self {
            len,
            masks: Vec::new(),
            position_base,
            bars: vocab.id(Token::Bar).is_some(),
            events: vocab.id(Token::NoteOn(config.pitch_range[0])).is_some(),
            note_off_base: vocab
                .id(Token::NoteOff(config.pitch_range[0]))
                .map_or(0, usize::from),
            pitch_low: config.pitch_range[0],
            eos: vocab.id(Token::Eos).map_or(0, usize::from),
            time_sig_ids,
            time_shifts: grid.time_shifts.clone(),
            bar_steps,
            default_time_signature: grid.time_signature_index(4, 4) as u8,
            use_time_signatures: config.use_time_signatures,
            use_tempos: config.use_tempos,
            use_programs: config.use_programs,
            tokens,
        };
        g.masks = PHASES
            .iter()
            .map(|&phase| {
                let mut m = TokenMask::new(len);
                for (id, t) in g.tokens.iter().enumerate() {
                    if let Some(t) = t
                        && !g.is_dynamic(phase, *t)
                        && g.next_phase(phase, *t).is_some()
                    {
                        m.insert(id);
                    }
                }
                m
            })
            .collect();
        g
    }

    /// The state before any token.
    #[must_use]
    pub fn start(&self) -> GrammarState {
        let ts = self.default_time_signature;
        GrammarState {
            phase: Phase::Start,
            time_signature: ts,
            bar_steps: self.bar_steps[usize::from(ts)],
            position: 0,
            consumed: 0,
            step: 0,
            bar_start: 0,
            key: 0,
            sounding: Vec::new(),
        }
    }

    /// Tokens whose admission depends on more than the phase (computed per state).
    fn is_dynamic(&self, phase: Phase, token: Token) -> bool {
        match token {
            Token::Position(_) => true,
            Token::TimeSig(_) => phase == Phase::Step,
            Token::NoteOff(_) | Token::Eos => self.events,
            _ => false,
        }
    }

    /// Whether a dynamic token is allowed in `state` (its phase already allows the family).
    fn dynamic_allows(&self, state: &GrammarState, token: Token) -> bool {
        match token {
            Token::Position(p) => Self::position_range(state).contains(&u32::from(p)),
            Token::TimeSig(_) => state.step == state.bar_start,
            Token::NoteOff(p) => {
                let k = u16::from(state.key) * 128 + u16::from(p);
                state.sounding.iter().any(|&(x, _)| x == k)
            }
            Token::Eos => state.sounding.is_empty(),
            _ => false,
        }
    }

    /// Adds the dynamic tokens allowed in `state` to `out`: at most one id range plus one id
    /// per sounding note, never a pass over the vocabulary.
    fn add_dynamic(&self, state: &GrammarState, out: &mut TokenMask) {
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
    /// restricted by [`Grammar::dynamic_ids`]).
    fn next_phase(&self, phase: Phase, token: Token) -> Option<Phase> {
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
            Token::Program(_) | Token::Drums if self.use_programs => Some(AfterProgram),
            Token::Pitch(_) if !self.use_programs && !self.events => Some(AfterPitch),
            Token::NoteOn(_) if !self.use_programs => Some(AfterNoteOn),
            Token::NoteOff(_) if !self.use_programs => Some(AfterNote),
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
            (Step | StepAfterTimeSig | AfterTempo | AfterNote, Token::TimeShift(_)) => Some(Step),
            (Step | StepAfterTimeSig | AfterTempo | AfterNote, Token::Eos) => Some(Ended),
            (Step | StepAfterTimeSig | AfterTempo | AfterNote, _) if note_start.is_some() => {
                note_start
            }
            (AfterProgram, Token::Pitch(_)) if !self.events => Some(AfterPitch),
            (AfterProgram, Token::NoteOn(_)) => Some(AfterNoteOn),
            (AfterProgram, Token::NoteOff(_)) => Some(AfterNote),
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
            Token::Program(_) | Token::Drums if self.use_programs => Some(AfterProgram),
            Token::Pitch(_) if !self.use_programs => Some(AfterPitch),
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
            (AfterPosition | AfterTempo | AfterNote, _) if note_start.is_some() => note_start,
            (AfterProgram, Token::Pitch(_)) => Some(AfterPitch),
            (AfterPitch, Token::Velocity(_)) => Some(AfterVelocity),
            (AfterVelocity, Token::Duration(_)) => Some(AfterNote),
            (Start | BarStart | BarAfterTimeSig | AfterTempo | AfterNote, Token::Eos) => {
                Some(Ended)
            }
            (BarStart | BarAfterTimeSig | AfterTempo | AfterNote, Token::Bar) => Some(BarStart),
            _ => None,
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
    fn position_range(state: &GrammarState) -> std::ops::Range<u32> {
        match Self::positions(state.phase) {
            Positions::None => 0..0,
            Positions::Zero => 0..1,
            Positions::AnyInBar => 0..state.bar_steps,
            Positions::AfterCurrent => state.position + 1..state.bar_steps,
        }
    }

    /// Writes the ids allowed next into `out` (sized for this vocabulary).
    pub fn allowed(&self, state: &GrammarState, out: &mut TokenMask) {
        out.copy_from(&self.masks[state.phase as usize]);
        self.add_dynamic(state, out);
    }

    /// The allowed set as a new mask.
    #[must_use]
    pub fn allowed_mask(&self, state: &GrammarState) -> TokenMask {
        let mut m = TokenMask::new(self.len);
        self.allowed(state, &mut m);
        m
    }

    /// Whether `id` may come next, without building the mask.
    #[must_use]
    pub fn is_allowed(&self, state: &GrammarState, id: TokenId) -> bool {
        match self.tokens.get(usize::from(id)).copied().flatten() {
            Some(t) if self.is_dynamic(state.phase, t) => {
                // Positions depend on the phase through `position_range` alone.
                (matches!(t, Token::Position(_)) || self.next_phase(state.phase, t).is_some())
                    && self.dynamic_allows(state, t)
            }
            Some(_) => self.masks[state.phase as usize].contains(usize::from(id)),
            None => false,
        }
    }

    /// Consumes `id`, or explains why it is not allowed (the state is then unchanged).
    ///
    /// # Errors
    /// [`GrammarError`] with the reason.
    pub fn advance(&self, state: &mut GrammarState, id: TokenId) -> Result<(), GrammarError> {
        let index = state.consumed;
        let err = |kind| Err(GrammarError { kind, index, id });
        let Some(token) = self.tokens.get(usize::from(id)).copied().flatten() else {
            return err(GrammarErrorKind::UnknownId);
        };
        if !self.is_allowed(state, id) {
            return err(self.classify(state, token));
        }
        state.consumed += 1;
        match token {
            Token::Position(p) => {
                state.position = u32::from(p);
                state.phase = if state.phase == Phase::NeedFirstPosition {
                    Phase::NeedTempo
                } else {
                    Phase::AfterPosition
                };
            }
            Token::Bar => {
                state.position = 0;
                state.bar_steps = self.bar_steps[usize::from(state.time_signature)];
                state.phase = self
                    .next_phase(state.phase, token)
                    .unwrap_or(Phase::BarStart);
            }
            Token::Program(p) if self.events => {
                state.key = p;
                state.phase = Phase::AfterProgram;
            }
            Token::Drums if self.events => {
                state.key = 128;
                state.phase = Phase::AfterProgram;
            }
            Token::NoteOn(p) => {
                let k = u16::from(state.key) * 128 + u16::from(p);
                match state.sounding.iter_mut().find(|(x, _)| *x == k) {
                    Some((_, n)) => *n = n.saturating_add(1),
                    None => state.sounding.push((k, 1)),
                }
                state.phase = Phase::AfterNoteOn;
            }
            Token::NoteOff(p) => {
                let k = u16::from(state.key) * 128 + u16::from(p);
                if let Some(i) = state.sounding.iter().position(|&(x, _)| x == k) {
                    state.sounding[i].1 -= 1;
                    if state.sounding[i].1 == 0 {
                        state.sounding.swap_remove(i);
                    }
                }
                state.phase = Phase::AfterNote;
            }
            Token::TimeShift(i) => {
                state.step = state
                    .step
                    .saturating_add(u64::from(self.time_shifts[usize::from(i)]));
                let bar = u64::from(state.bar_steps.max(1));
                state.bar_start += (state.step - state.bar_start) / bar * bar;
                state.phase = Phase::Step;
            }
            Token::TimeSig(t) => {
                state.time_signature = t;
                state.bar_steps = self.bar_steps[usize::from(t)];
                state.phase = self
                    .next_phase(state.phase, token)
                    .unwrap_or(Phase::BarAfterTimeSig);
            }
            _ => state.phase = self.next_phase(state.phase, token).unwrap_or(state.phase),
        }
        Ok(())
    }

    fn classify(&self, state: &GrammarState, token: Token) -> GrammarErrorKind {
        use GrammarErrorKind::*;
        let family_allowed = self.next_phase(state.phase, token).is_some();
        match (state.phase, token) {
            (Phase::Ended, _) => AfterEnd,
            (_, Token::NoteOff(_)) if family_allowed => NoteOffWithoutNote,
            (_, Token::Eos) if family_allowed && self.events => EndWhileSounding,
            (Phase::NeedTimeSig | Phase::NeedFirstPosition | Phase::NeedTempo, _) => MissingHeader,
            (Phase::AfterProgram | Phase::AfterPitch | Phase::AfterVelocity, _) => IncompleteNote,
            (_, Token::Position(p)) if u32::from(p) >= state.bar_steps => PositionBeyondBar,
            (Phase::AfterTempo | Phase::AfterNote, Token::Position(_)) => PositionNotIncreasing,
            _ => Misplaced,
        }
    }

    /// Checks a whole sequence: refused tokens are counted and skipped, and checking goes on.
    #[must_use]
    pub fn validate(&self, ids: &[TokenId]) -> GrammarReport {
        let mut state = self.start();
        let mut report = GrammarReport {
            tokens: ids.len(),
            ..GrammarReport::default()
        };
        let (mut started, mut finished) = (0usize, 0usize);
        for &id in ids {
            let before = state.phase;
            match self.advance(&mut state, id) {
                Ok(()) => {
                    let token = self.tokens.get(usize::from(id)).copied().flatten();
                    if matches!(token, Some(Token::Pitch(_) | Token::NoteOn(_))) {
                        started += 1;
                    } else if matches!(token, Some(Token::NoteOff(_)))
                        || (state.phase == Phase::AfterNote && before == Phase::AfterVelocity)
                    {
                        finished += 1;
                    }
                }
                Err(e) => *report.errors.entry(e.kind.name()).or_default() += 1,
            }
        }
        report.error_rate = if ids.is_empty() {
            0.0
        } else {
            report.error_count() as f64 / ids.len() as f64
        };
        report.note_pairing_rate = if started == 0 {
            1.0
        } else {
            finished as f64 / started as f64
        };
        report
    }

    /// Drops every refused token, removes a note left half-written at the end, and (event
    /// scheme) closes notes still sounding with note-offs, so the result validates with no
    /// error and decodes with nothing skipped.
    #[must_use]
    pub fn repair(&self, ids: &[TokenId]) -> (Vec<TokenId>, RepairReport) {
        let mut state = self.start();
        let mut out = Vec::with_capacity(ids.len());
        let mut report = RepairReport::default();
        // Where the note being written started in `out`, to cut it if it never finishes.
        let mut note_start: Option<usize> = None;
        for &id in ids {
            let before = state.phase;
            match self.advance(&mut state, id) {
                Ok(()) => {
                    let starts_note = matches!(state.phase, Phase::AfterProgram)
                        || (matches!(state.phase, Phase::AfterPitch | Phase::AfterNoteOn)
                            && before != Phase::AfterProgram);
                    if starts_note {
                        note_start = Some(out.len());
                    } else if state.at_boundary() {
                        note_start = None;
                    }
                    out.push(id);
                }
                Err(e) => *report.dropped.entry(e.kind.name()).or_default() += 1,
            }
        }
        if let Some(at) = note_start.filter(|_| !state.at_boundary()) {
            report.unfinished_removed = out.len() - at;
            out.truncate(at);
            // Replay the kept prefix so the state knows what is still sounding.
            state = self.start();
            for &id in &out {
                let _ = self.advance(&mut state, id);
            }
        }
        let sounding: Vec<(u16, u16)> = state.sounding.clone();
        for (k, n) in sounding {
            for _ in 0..n {
                let stream = (k / 128) as u8;
                if self.use_programs {
                    let program = if stream == 128 {
                        Token::Drums
                    } else {
                        Token::Program(stream)
                    };
                    out.extend(self.id_of(program));
                }
                out.extend(self.id_of(Token::NoteOff((k % 128) as u8)));
                report.closed_notes += 1;
            }
        }
        (out, report)
    }

    fn id_of(&self, token: Token) -> Option<TokenId> {
        self.tokens
            .iter()
            .position(|t| *t == Some(token))
            .map(|i| i as TokenId)
    }
}

#[cfg(test)]
mod tests {
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
}
