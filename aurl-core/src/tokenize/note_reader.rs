//! Reading notes back from tokens: `[Program|Drums] Pitch Velocity Duration` groups become
//! grid notes, pitch-bend tokens become a bend list.

use super::piece::{DRUMS, GridNote, Piece, StreamKey};

/// Assembles notes from `[Program|Drums] Pitch Velocity Duration` groups while decoding;
/// shared by every scheme that writes notes this way.
pub(crate) struct NoteReader {
    key: Option<StreamKey>,
    voice: u8,
    pitch: Option<u8>,
    velocity: Option<u8>,
    bends: BendList,
}

impl NoteReader {
    /// A reader; without programs every note goes to stream 0.
    pub fn new(use_programs: bool, grid: &super::Grid) -> Self {
        Self {
            key: (!use_programs).then_some(0),
            voice: 0,
            pitch: None,
            velocity: None,
            bends: BendList::new(grid),
        }
    }

    /// Called before every token: a token other than Velocity/Duration interrupts a note.
    pub fn interrupt(&mut self, token: super::Token, report: &mut super::DecodeReport) {
        use super::Token;
        if self.pitch.is_some() && !matches!(token, Token::Velocity(_) | Token::Duration(_)) {
            report.incomplete_notes += 1;
            self.pitch = None;
            self.velocity = None;
        }
    }

    /// Handles a note token at `onset`; returns false if `token` is not a note token.
    pub fn read(
        &mut self,
        token: super::Token,
        onset: Option<u64>,
        grid: &super::Grid,
        piece: &mut Piece,
        report: &mut super::DecodeReport,
    ) -> bool {
        use super::Token;
        match token {
            Token::Program(p) => {
                self.key = Some(p);
                self.voice = 0;
            }
            Token::Voice(v) => self.voice = v,
            Token::PitchBend(b) => match (onset, self.key) {
                (Some(step), Some(key)) => self.bends.push(step, key, b),
                _ => report.misplaced += 1,
            },
            Token::Drums => {
                self.key = Some(DRUMS);
                self.voice = 0;
            }
            Token::Pitch(p) => {
                if onset.is_some() && self.key.is_some() {
                    self.pitch = Some(p);
                } else {
                    report.misplaced += 1;
                }
            }
            Token::Velocity(v) => {
                if self.pitch.is_some() && self.velocity.is_none() {
                    self.velocity = Some(v);
                } else {
                    report.misplaced += 1;
                }
            }
            Token::Duration(d) => {
                match (onset, self.key, self.pitch.take(), self.velocity.take()) {
                    (Some(start), Some(key), Some(pitch), Some(velocity)) => {
                        piece.notes.push(GridNote {
                            start,
                            key,
                            voice: self.voice,
                            pitch,
                            duration: grid.durations[usize::from(d)],
                            velocity,
                        });
                    }
                    (_, _, Some(_), None) => {
                        report.misplaced += 1;
                        report.incomplete_notes += 1;
                    }
                    _ => report.misplaced += 1,
                }
            }
            _ => return false,
        }
        true
    }

    /// At the end of the sequence: a note still open is incomplete; the bends go to `piece`.
    pub fn finish(self, piece: &mut Piece, report: &mut super::DecodeReport) {
        if self.pitch.is_some() {
            report.incomplete_notes += 1;
        }
        piece.bends = self.bends.finish();
    }
}

/// Builds the per-stream list of pitch-bend changes: on one (step, stream) the last value
/// wins, and a value equal to the one in force is dropped.
pub(crate) struct BendList {
    bends: Vec<(u64, StreamKey, u8)>,
    in_force: [u8; 129],
    center: u8,
}

impl BendList {
    pub fn new(grid: &super::Grid) -> Self {
        let center = grid.pitch_bend_center() as u8;
        Self {
            bends: Vec::new(),
            in_force: [center; 129],
            center,
        }
    }

    /// Adds a change; changes must come in (step, stream) order.
    pub fn push(&mut self, step: u64, key: StreamKey, bin: u8) {
        let k = usize::from(key.min(DRUMS));
        if let Some(last) = self.bends.last_mut()
            && (last.0, last.1) == (step, key)
        {
            last.2 = bin;
            self.in_force[k] = bin;
            return;
        }
        if self.in_force[k] != bin {
            self.bends.push((step, key, bin));
            self.in_force[k] = bin;
        }
    }

    /// The list; a trailing entry that returned to the value before it is dropped.
    pub fn finish(mut self) -> Vec<(u64, StreamKey, u8)> {
        // A same-step overwrite can make an entry equal to the previous value of its stream.
        let mut previous = [self.center; 129];
        self.bends.retain(|&(_, key, bin)| {
            let k = usize::from(key.min(DRUMS));
            let keep = previous[k] != bin;
            previous[k] = bin;
            keep
        });
        self.bends
    }
}
