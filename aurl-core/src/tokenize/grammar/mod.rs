//! The token grammar: a deterministic automaton that knows, for any prefix, which ids may
//! come next. One implementation serves training (grammar loss), sampling (constraint masks)
//! and evaluation (validity metrics).
//!
//! REMI sequences follow
//! `[BOS] Bar TimeSig Position_0 Tempo Body* (Bar [TimeSig] Body*)* [EOS] PAD*`
//! where `Body = Position [Tempo] ([Program|Drums] [Voice] Pitch Velocity Duration)*`, positions
//! strictly increase within a bar and stay inside it, and families turned off in the config
//! are simply absent. TSD sequences follow
//! `[BOS] [TimeSig] [Tempo] (TimeShift* [TimeSig] [Tempo] Note*)* [EOS] PAD*`, where a time
//! signature may only appear at a bar start. With rests on, `Rest` tokens may replace time
//! shifts (TSD, event) or close a bar (REMI: the next bars are silent) only while nothing
//! sounds. The allowed set is a precomputed mask per automaton phase plus, for
//! positions, one contiguous id range (positions are consecutive ids), so computing it costs a
//! few word copies, never a loop over the vocabulary.

use std::collections::BTreeMap;

use serde::Serialize;

use self::rules::{PHASES, Phase};
use super::mask::TokenMask;
use super::{Token, TokenId, Vocabulary};

mod bars;
mod rules;
#[cfg(test)]
mod tests;

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
    /// Time-shift schemes: current time in grid steps.
    step: u64,
    /// Start of the current bar in grid steps (every scheme).
    bar_start: u64,
    /// Index of the current bar (0 for the first).
    bar: u64,
    /// Until when an encoded note sounds, in grid steps (REMI, TSD: for rests).
    busy: u64,
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
            Phase::AfterProgram
                | Phase::NeedVoice
                | Phase::AfterPitch
                | Phase::AfterVelocity
                | Phase::AfterNoteOn
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

    /// Index of the bar the sequence has reached (0 for the first bar; REMI's first `Bar`
    /// token opens bar 0, rests of k bars skip k).
    #[must_use]
    pub fn bar_index(&self) -> u64 {
        self.bar
    }

    /// The current onset time in grid steps from the start (the vocabulary's
    /// `grid().resolution` steps per quarter note).
    #[must_use]
    pub fn time_steps(&self) -> u64 {
        if self.step > 0 {
            self.step
        } else {
            self.bar_start + u64::from(self.position)
        }
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
    /// A rest while a note is still sounding.
    RestWhileSounding,
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
            Self::RestWhileSounding => "rest_while_sounding",
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
    /// Whether a Voice token follows every Program/Drums (or opens every note without them).
    voices: bool,
    /// Whether the scheme has Bar/Position tokens (REMI) or moves by TimeShift (TSD, event).
    bars: bool,
    /// Whether notes are NoteOn/NoteOff pairs (event scheme).
    events: bool,
    note_off_base: usize,
    pitch_low: u8,
    eos: usize,
    time_sig_ids: std::ops::Range<usize>,
    time_shifts: Vec<u32>,
    durations: Vec<u32>,
    /// Steps per quarter note.
    resolution: u32,
    rest_ids: std::ops::Range<usize>,
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
            events: vocab
                .id(Token::NoteOn(config.token_pitch_range().0))
                .is_some(),
            note_off_base: vocab
                .id(Token::NoteOff(config.token_pitch_range().0))
                .map_or(0, usize::from),
            pitch_low: config.token_pitch_range().0,
            eos: usize::from(vocab.eos()),
            time_sig_ids,
            time_shifts: grid.time_shifts.clone(),
            durations: grid.durations.clone(),
            resolution: grid.resolution,
            rest_ids: match vocab.id(Token::Rest(1)) {
                Some(first) => {
                    usize::from(first)..usize::from(first) + usize::from(config.max_rest)
                }
                None => 0..0,
            },
            bar_steps,
            default_time_signature: grid.time_signature_index(4, 4) as u8,
            use_time_signatures: config.use_time_signatures,
            use_tempos: config.use_tempos,
            use_programs: config.use_programs,
            voices: vocab.id(Token::Voice(0)).is_some(),
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
            bar: 0,
            busy: 0,
            key: 0,
            sounding: Vec::new(),
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
                if state.phase != Phase::Start {
                    state.bar_start += u64::from(state.bar_steps);
                    state.bar += 1;
                }
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
                self.move_by(state, u64::from(self.time_shifts[usize::from(i)]));
            }
            Token::Rest(k) if self.bars => {
                state.bar_start += u64::from(k) * u64::from(state.bar_steps);
                state.bar += u64::from(k);
                state.phase = Phase::AfterRest;
            }
            Token::Rest(k) => self.move_by(state, u64::from(k) * u64::from(self.resolution)),
            Token::Duration(i) => {
                let now = if self.bars {
                    state.bar_start + u64::from(state.position)
                } else {
                    state.step
                };
                let end = now + u64::from(self.durations[usize::from(i)]);
                state.busy = state.busy.max(end);
                state.phase = Phase::AfterNote;
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

    /// Time-shift schemes: moves time forward, keeping track of the bar.
    fn move_by(&self, state: &mut GrammarState, steps: u64) {
        state.step = state.step.saturating_add(steps);
        let bar = u64::from(state.bar_steps.max(1));
        let crossed = (state.step - state.bar_start) / bar;
        state.bar_start += crossed * bar;
        state.bar += crossed;
        state.phase = Phase::Step;
    }

    fn classify(&self, state: &GrammarState, token: Token) -> GrammarErrorKind {
        use GrammarErrorKind::*;
        let family_allowed = self.next_phase(state.phase, token).is_some();
        match (state.phase, token) {
            (Phase::Ended, _) => AfterEnd,
            (_, Token::NoteOff(_)) if family_allowed => NoteOffWithoutNote,
            (_, Token::Eos) if family_allowed && self.events => EndWhileSounding,
            (_, Token::Rest(_)) if family_allowed => RestWhileSounding,
            (Phase::NeedTimeSig | Phase::NeedFirstPosition | Phase::NeedTempo, _) => MissingHeader,
            (
                Phase::AfterProgram | Phase::NeedVoice | Phase::AfterPitch | Phase::AfterVelocity,
                _,
            ) => IncompleteNote,
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
                    let starts_note = match state.phase {
                        Phase::NeedVoice => true,
                        Phase::AfterProgram => before != Phase::NeedVoice,
                        Phase::AfterPitch | Phase::AfterNoteOn => before != Phase::AfterProgram,
                        _ => false,
                    };
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
