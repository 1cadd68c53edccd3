//! Notes completed while a piece is generated, for real-time use: the streaming callback
//! reports each note as soon as its last token is sampled (REMI/TSD: the Duration token;
//! event scheme: the NoteOff), with its onset in seconds.

use aurl_core::tokenize::{Grid, Token};

/// A note whose last token was just generated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamNote {
    /// MIDI pitch.
    pub pitch: u8,
    /// MIDI velocity (1..=127).
    pub velocity: u8,
    /// General MIDI program (0 = piano when the vocabulary has no programs); `None` for
    /// drums.
    pub program: Option<u8>,
    /// Voice of the program (0 unless the vocabulary keeps voices apart: then the track the
    /// note is written to).
    pub voice: u8,
    /// Bar of the onset (0-based, as the grammar counts bars).
    pub bar: u64,
    /// Onset from the start of the piece in seconds, following the Tempo tokens (120 BPM
    /// until the first).
    pub start_seconds: f64,
    /// Length in seconds: exact for the event scheme (its NoteOff ends it); for REMI and TSD
    /// the Duration at the tempo of the onset (a tempo change during the note is not known
    /// yet when it is reported).
    pub duration_seconds: f64,
}

impl std::fmt::Display for StreamNote {
    /// `bar   3   12.250 s  program 0 pitch  60 velocity  80 0.500 s`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let instrument = self
            .program
            .map_or("drums".to_owned(), |p| format!("program {p}"));
        write!(
            f,
            "bar {:>3} {:>8.3} s  {instrument:<8} pitch {:>3} velocity {:>3} {:.3} s",
            self.bar, self.start_seconds, self.pitch, self.velocity, self.duration_seconds
        )
    }
}

/// What a streamed generation measured, from [`TokenEvent`](crate::TokenEvent)s: the
/// latency of each decoding step and when the first note was complete.
#[derive(Debug, Clone)]
pub struct StreamStats {
    started: std::time::Instant,
    step_seconds: Vec<f64>,
    /// Notes completed.
    pub notes: usize,
    /// Seconds from [`StreamStats::start`] to the first complete note.
    pub first_note_seconds: Option<f64>,
}

impl StreamStats {
    /// Starts the clock.
    #[must_use]
    pub fn start() -> Self {
        Self {
            started: std::time::Instant::now(),
            step_seconds: Vec::new(),
            notes: 0,
            first_note_seconds: None,
        }
    }

    /// Counts one generated token.
    pub fn record(&mut self, event: &crate::TokenEvent) {
        self.step_seconds.push(event.step_seconds);
        if event.note.is_some() {
            self.notes += 1;
            let elapsed = self.started.elapsed().as_secs_f64();
            self.first_note_seconds.get_or_insert(elapsed);
        }
    }

    /// Seconds since [`StreamStats::start`].
    #[must_use]
    pub fn elapsed_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The `q` quantile (0..=1, nearest rank) of the decoding steps' latency in
    /// milliseconds; `None` before any step.
    #[must_use]
    pub fn step_ms_quantile(&self, q: f64) -> Option<f64> {
        let mut sorted = self.step_seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let at = ((sorted.len() as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
        sorted.get(at).map(|s| s * 1e3)
    }
}

/// Follows one row's tokens and completes its notes.
#[derive(Debug, Clone, Default)]
pub(crate) struct NoteFollower {
    program: u8,
    drums: bool,
    voice: u8,
    pitch: Option<u8>,
    velocity: Option<u8>,
    /// Event scheme: the sounding notes in onset order (the last one's velocity is `None`
    /// until the Velocity token that must follow its NoteOn).
    sounding: Vec<Sounding>,
}

/// An event-scheme note between its NoteOn and its NoteOff.
#[derive(Debug, Clone, Copy)]
struct Sounding {
    pitch: u8,
    start: f64,
    velocity: Option<u8>,
    program: Option<u8>,
    bar: u64,
}

impl NoteFollower {
    /// Takes `token`, which left the onset clock at `seconds` (at `seconds_per_step` per
    /// grid step) in bar `bar`; returns the note it completes, if any.
    pub(crate) fn follow(
        &mut self,
        token: Token,
        grid: &Grid,
        seconds: f64,
        seconds_per_step: f64,
        bar: u64,
    ) -> Option<StreamNote> {
        let program = (!self.drums).then_some(self.program);
        // Event scheme: a NoteOn not followed by its Velocity is no note (the decoder drops it).
        if !matches!(token, Token::Velocity(_))
            && self.sounding.last().is_some_and(|n| n.velocity.is_none())
        {
            self.sounding.pop();
        }
        // REMI/TSD notes are Pitch, Velocity, Duration in a row; anything else interrupts.
        if !matches!(token, Token::Velocity(_) | Token::Duration(_)) {
            self.velocity = None;
            if !matches!(token, Token::Pitch(_)) {
                self.pitch = None;
            }
        }
        match token {
            Token::Program(p) => {
                self.program = p;
                self.drums = false;
                self.voice = 0;
            }
            Token::Drums => {
                self.drums = true;
                self.voice = 0;
            }
            Token::Voice(v) => self.voice = v,
            Token::Pitch(p) => {
                self.pitch = Some(p);
                self.velocity = None;
            }
            Token::Velocity(v) => {
                let value = grid.velocities.get(usize::from(v)).copied();
                if self.pitch.is_some() {
                    self.velocity = value;
                } else if let Some(note) = self.sounding.last_mut()
                    && note.velocity.is_none()
                {
                    note.velocity = value;
                }
            }
            Token::Duration(d) => {
                let (pitch, velocity) = (self.pitch.take()?, self.velocity.take()?);
                let steps = grid.durations.get(usize::from(d)).copied()?;
                return Some(StreamNote {
                    pitch,
                    velocity,
                    program,
                    voice: self.voice,
                    bar,
                    start_seconds: seconds,
                    duration_seconds: f64::from(steps) * seconds_per_step,
                });
            }
            Token::NoteOn(pitch) => self.sounding.push(Sounding {
                pitch,
                start: seconds,
                velocity: None,
                program,
                bar,
            }),
            Token::NoteOff(pitch) => {
                // The oldest sounding note of this pitch on the current instrument, as the
                // decoder pairs them.
                let i = self
                    .sounding
                    .iter()
                    .position(|n| n.pitch == pitch && n.program == program)?;
                let note = self.sounding.remove(i);
                return Some(StreamNote {
                    pitch,
                    velocity: note.velocity?,
                    program,
                    voice: 0,
                    bar: note.bar,
                    start_seconds: note.start,
                    duration_seconds: seconds - note.start,
                });
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use aurl_core::tokenize::{TokenizerConfig, by_name};

    use super::*;

    #[test]
    fn event_notes_take_the_velocity_after_their_note_on() {
        let event = by_name("event", &TokenizerConfig::default()).unwrap();
        let grid = event.vocab().grid();
        let mut f = NoteFollower::default();
        let mut feed = |token, seconds| f.follow(token, grid, seconds, 0.125, 0);
        assert_eq!(feed(Token::Velocity(1), 0.0), None);
        assert_eq!(feed(Token::NoteOn(60), 0.0), None);
        assert_eq!(feed(Token::Velocity(5), 0.0), None);
        // A NoteOn without its Velocity is no note: the decoder drops it, so does the stream.
        assert_eq!(feed(Token::NoteOn(64), 0.0), None);
        assert_eq!(feed(Token::TimeShift(3), 0.5), None);
        assert_eq!(feed(Token::NoteOff(64), 0.5), None);
        let note = feed(Token::NoteOff(60), 0.5).expect("the note ends");
        assert_eq!(note.velocity, grid.velocities[5]);
        assert_eq!(
            (note.pitch, note.start_seconds, note.duration_seconds),
            (60, 0.0, 0.5)
        );
    }
}
