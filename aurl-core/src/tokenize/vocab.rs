//! Tokens and the vocabulary: stable ids, readable names, a version and a hash.

use serde::{Deserialize, Serialize};

use super::{Grid, Scheme, TokenizerConfig};
use crate::Error;

/// A token id. Vocabularies stay below 65,536 tokens.
pub type TokenId = u16;

/// One token kind with its value. Values of binned quantities are bin indices into the
/// vocabulary's [`Grid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// Padding.
    Pad,
    /// Beginning of sequence.
    Bos,
    /// End of sequence.
    Eos,
    /// Masked token (for masked-modelling objectives).
    Mask,
    /// Start of a bar.
    Bar,
    /// Onset position within the bar, in grid steps.
    Position(u16),
    /// Advance time by a time-shift bin (index into the grid's time shifts).
    TimeShift(u16),
    /// A silence of this many quarter notes (TSD, event) or whole bars (REMI), 1..=
    /// [`TokenizerConfig::max_rest`].
    Rest(u8),
    /// Time signature (index into the grid's list).
    TimeSig(u8),
    /// Tempo bin.
    Tempo(u8),
    /// Chord annotation (index of [`crate::analysis::Chord::index`]).
    Chord(u8),
    /// General MIDI program of the notes that follow.
    Program(u8),
    /// The notes that follow are drums.
    Drums,
    /// Voice (0-based) of the program just named: keeps the parts of one instrument apart
    /// ([`TokenizerConfig::voices`]).
    Voice(u8),
    /// Note pitch.
    Pitch(u8),
    /// A note of this pitch starts (event scheme).
    NoteOn(u8),
    /// The oldest sounding note of this pitch ends (event scheme).
    NoteOff(u8),
    /// Velocity bin.
    Velocity(u8),
    /// Duration bin (index into the grid's durations).
    Duration(u16),
    /// Pitch-bend bin of the stream that follows the last Program (index into the grid's
    /// pitch bends).
    PitchBend(u8),
}

/// The families of a vocabulary, in id order, with how many ids each takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Layout {
    bar: u16,
    position: u16,
    time_shift: u16,
    rest: u16,
    time_sig: u16,
    tempo: u16,
    chord: u16,
    program: u16,
    drums: u16,
    voice: u16,
    pitch: u16,
    note_on: u16,
    note_off: u16,
    velocity: u16,
    duration: u16,
    pitch_bend: u16,
    end: u16,
}

/// The token set of one scheme under one [`TokenizerConfig`].
///
/// Ids are dense and stable for a given (scheme, config). The vocabulary serialises to JSON
/// with its format version, scheme, config, names and hash; loading rebuilds it from the
/// config and refuses a file whose names or hash disagree (the weights would be decoded
/// with the wrong meaning).
#[derive(Clone, PartialEq, Serialize)]
#[serde(into = "VocabularyFile")]
pub struct Vocabulary {
    scheme: Scheme,
    config: TokenizerConfig,
    grid: Grid,
    pitch_low: u8,
    layout: Layout,
    tokens: Vec<Token>,
}

impl std::fmt::Debug for Vocabulary {
    /// Sizes, not the whole token list.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary")
            .field("scheme", &self.scheme)
            .field("len", &self.len())
            .field("hash", &format_args!("{:016x}", self.hash()))
            .finish()
    }
}

/// The serialised form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabularyFile {
    version: u32,
    scheme: String,
    config: TokenizerConfig,
    hash: String,
    names: Vec<String>,
}

/// Serialisation format version.
const VERSION: u32 = 1;

impl Vocabulary {
    /// The bar-based (REMI-family) vocabulary: specials, Bar, Position, TimeSig, Tempo,
    /// Program/Drums, Pitch, Velocity, Duration; families turned off in the config are absent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the config does not validate or needs more than 65,535 ids.
    pub fn remi(config: &TokenizerConfig) -> Result<Self, Error> {
        Self::build(Scheme::Remi, config)
    }

    /// The event vocabulary (MIDI-like, as in Performance RNN and MidiTok's MIDILike):
    /// specials, TimeShift, TimeSig, Tempo, Program/Drums, NoteOn, NoteOff, Velocity. With
    /// the default config: 4 + 64 + 17 + 32 + 129 + 88 + 88 + 32 = 454 tokens (the 774-token
    /// design of the gameplan used all 128 pitches, 100 shifts and no time signatures).
    ///
    /// # Errors
    /// As [`Vocabulary::remi`].
    pub fn event(config: &TokenizerConfig) -> Result<Self, Error> {
        Self::build(Scheme::Event, config)
    }

    /// The TSD vocabulary (MidiTok's Time-Shift-Duration): specials, TimeShift, TimeSig,
    /// Tempo, Program/Drums, Pitch, Velocity, Duration.
    ///
    /// # Errors
    /// As [`Vocabulary::remi`].
    pub fn tsd(config: &TokenizerConfig) -> Result<Self, Error> {
        Self::build(Scheme::Tsd, config)
    }

    fn build(scheme: Scheme, config: &TokenizerConfig) -> Result<Self, Error> {
        config.validate()?;
        let grid = Grid::new(config);
        let bars = scheme.has_bars();
        let events = scheme == Scheme::Event;
        let mut tokens = vec![Token::Pad, Token::Bos, Token::Eos, Token::Mask];
        let mut layout = Layout::default();
        let mark = |tokens: &Vec<Token>| u16::try_from(tokens.len()).unwrap_or(u16::MAX);
        layout.bar = mark(&tokens);
        if bars {
            tokens.push(Token::Bar);
        }
        layout.position = mark(&tokens);
        if bars {
            tokens.extend((0..grid.max_bar_steps).map(|p| Token::Position(p as u16)));
        }
        layout.time_shift = mark(&tokens);
        if !bars {
            tokens.extend((0..grid.time_shifts.len()).map(|i| Token::TimeShift(i as u16)));
        }
        layout.rest = mark(&tokens);
        if config.use_rests {
            tokens.extend((1..=config.max_rest).map(Token::Rest));
        }
        layout.time_sig = mark(&tokens);
        if config.use_time_signatures {
            tokens.extend((0..grid.time_signatures.len()).map(|i| Token::TimeSig(i as u8)));
        }
        layout.tempo = mark(&tokens);
        tokens.extend((0..grid.tempos.len()).map(|i| Token::Tempo(i as u8)));
        layout.chord = mark(&tokens);
        if bars && config.use_chords {
            tokens.extend((0..crate::analysis::Chord::COUNT).map(|i| Token::Chord(i as u8)));
        }
        layout.program = mark(&tokens);
        if config.use_programs {
            tokens.extend((0..=127).map(Token::Program));
        }
        layout.drums = mark(&tokens);
        if config.use_programs && config.use_drums {
            tokens.push(Token::Drums);
        }
        layout.voice = mark(&tokens);
        if config.voices > 0 {
            if events {
                return Err(Error::InvalidConfig {
                    field: "voices".into(),
                    reason: "the event scheme has no voices (use remi or tsd)".into(),
                });
            }
            tokens.extend((0..config.voices).map(Token::Voice));
        }
        let (lo, hi) = config.token_pitch_range();
        layout.pitch = mark(&tokens);
        if !events {
            tokens.extend((lo..=hi).map(Token::Pitch));
        }
        layout.note_on = mark(&tokens);
        if events {
            tokens.extend((lo..=hi).map(Token::NoteOn));
        }
        layout.note_off = mark(&tokens);
        if events {
            tokens.extend((lo..=hi).map(Token::NoteOff));
        }
        layout.velocity = mark(&tokens);
        tokens.extend((0..grid.velocities.len()).map(|i| Token::Velocity(i as u8)));
        layout.duration = mark(&tokens);
        if !events {
            tokens.extend((0..grid.durations.len()).map(|i| Token::Duration(i as u16)));
        }
        layout.pitch_bend = mark(&tokens);
        tokens.extend((0..grid.pitch_bends.len()).map(|i| Token::PitchBend(i as u8)));
        layout.end = mark(&tokens);
        if tokens.len() > usize::from(u16::MAX) {
            return Err(Error::InvalidConfig {
                field: "beat_res".into(),
                reason: format!(
                    "the vocabulary would need {} ids (max 65,535)",
                    tokens.len()
                ),
            });
        }
        Ok(Self {
            scheme,
            config: config.clone(),
            grid,
            pitch_low: lo,
            layout,
            tokens,
        })
    }

    /// Number of tokens.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty (never, in practice: specials are always present).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The scheme whose tokens these are.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The config the vocabulary was built from.
    #[must_use]
    pub fn config(&self) -> &TokenizerConfig {
        &self.config
    }

    /// The value grids behind binned tokens.
    #[must_use]
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The token an id stands for, or `None` for an id outside the vocabulary.
    #[must_use]
    pub fn token(&self, id: TokenId) -> Option<Token> {
        self.tokens.get(usize::from(id)).copied()
    }

    /// The padding id (every vocabulary has it, first).
    #[must_use]
    pub fn pad(&self) -> TokenId {
        0
    }

    /// The begin-of-sequence id (every vocabulary has it).
    #[must_use]
    pub fn bos(&self) -> TokenId {
        1
    }

    /// The end-of-sequence id (every vocabulary has it).
    #[must_use]
    pub fn eos(&self) -> TokenId {
        2
    }

    /// The id of `token`, or `None` if this vocabulary lacks it (e.g. a pitch out of range).
    #[must_use]
    pub fn id(&self, token: Token) -> Option<TokenId> {
        let l = &self.layout;
        let within = |base: u16, next: u16, offset: u32| {
            let id = u32::from(base) + offset;
            (id < u32::from(next)).then_some(id as TokenId)
        };
        match token {
            Token::Pad => Some(self.pad()),
            Token::Bos => Some(self.bos()),
            Token::Eos => Some(self.eos()),
            Token::Mask => Some(3),
            Token::Bar => within(l.bar, l.position, 0),
            Token::Position(p) => within(l.position, l.time_shift, u32::from(p)),
            Token::TimeShift(i) => within(l.time_shift, l.rest, u32::from(i)),
            Token::Rest(k) => k
                .checked_sub(1)
                .and_then(|o| within(l.rest, l.time_sig, u32::from(o))),
            Token::TimeSig(i) => within(l.time_sig, l.tempo, u32::from(i)),
            Token::Tempo(i) => within(l.tempo, l.chord, u32::from(i)),
            Token::Chord(i) => within(l.chord, l.program, u32::from(i)),
            Token::Program(p) => within(l.program, l.drums, u32::from(p)),
            Token::Drums => within(l.drums, l.voice, 0),
            Token::Voice(v) => within(l.voice, l.pitch, u32::from(v)),
            Token::Pitch(p) => p
                .checked_sub(self.pitch_low)
                .and_then(|o| within(l.pitch, l.note_on, u32::from(o))),
            Token::NoteOn(p) => p
                .checked_sub(self.pitch_low)
                .and_then(|o| within(l.note_on, l.note_off, u32::from(o))),
            Token::NoteOff(p) => p
                .checked_sub(self.pitch_low)
                .and_then(|o| within(l.note_off, l.velocity, u32::from(o))),
            Token::Velocity(i) => within(l.velocity, l.duration, u32::from(i)),
            Token::Duration(i) => within(l.duration, l.pitch_bend, u32::from(i)),
            Token::PitchBend(i) => within(l.pitch_bend, l.end, u32::from(i)),
        }
    }

    /// A human-readable name such as `Pitch_60`, `Position_12`, `Duration_1.4.8` (quarters,
    /// remaining steps, steps per quarter), `Velocity_63`, `Tempo_120.0`, `TimeSig_3/4`.
    #[must_use]
    pub fn name(&self, id: TokenId) -> String {
        let g = &self.grid;
        match self.token(id) {
            None => format!("Unknown_{id}"),
            Some(t) => match t {
                Token::Pad => "PAD".into(),
                Token::Bos => "BOS".into(),
                Token::Eos => "EOS".into(),
                Token::Mask => "MASK".into(),
                Token::Bar => "Bar".into(),
                Token::Position(p) => format!("Position_{p}"),
                Token::TimeShift(i) => {
                    let d = g.time_shifts[usize::from(i)];
                    format!(
                        "TimeShift_{}.{}.{}",
                        d / g.resolution,
                        d % g.resolution,
                        g.resolution
                    )
                }
                Token::Rest(k) if self.scheme.has_bars() => format!("Rest_{k}bar"),
                Token::Rest(k) => format!("Rest_{k}.0.{}", g.resolution),
                Token::TimeSig(i) => {
                    let (n, d) = g.time_signatures[usize::from(i)];
                    format!("TimeSig_{n}/{d}")
                }
                Token::Tempo(i) => format!(
                    "Tempo_{:.1}",
                    60_000_000.0 / f64::from(g.tempos[usize::from(i)])
                ),
                Token::Chord(i) => match crate::analysis::Chord::from_index(usize::from(i)) {
                    Some(c) => format!("Chord_{c}"),
                    None => format!("Chord_{i}"),
                },
                Token::Program(p) => format!("Program_{p}"),
                Token::Drums => "Program_Drums".into(),
                Token::Voice(v) => format!("Voice_{v}"),
                Token::Pitch(p) => format!("Pitch_{p}"),
                Token::NoteOn(p) => format!("NoteOn_{p}"),
                Token::NoteOff(p) => format!("NoteOff_{p}"),
                Token::Velocity(i) => format!("Velocity_{}", g.velocities[usize::from(i)]),
                Token::PitchBend(i) => format!("PitchBend_{}", g.pitch_bends[usize::from(i)]),
                Token::Duration(i) => {
                    let d = g.durations[usize::from(i)];
                    format!(
                        "Duration_{}.{}.{}",
                        d / g.resolution,
                        d % g.resolution,
                        g.resolution
                    )
                }
            },
        }
    }

    /// Every name, in id order.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.name(i as TokenId)).collect()
    }

    /// A stable 64-bit FNV-1a hash of the scheme and every token name: two vocabularies with
    /// the same hash give every id the same meaning.
    #[must_use]
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(self.scheme.name().as_bytes());
        for name in self.names() {
            eat(b"\n");
            eat(name.as_bytes());
        }
        h
    }

    /// Checks that `other` gives every id the same meaning as `self`.
    ///
    /// # Errors
    /// [`Error::VocabularyMismatch`] naming both hashes.
    pub fn ensure_same(&self, other: &Vocabulary) -> Result<(), Error> {
        if self.hash() == other.hash() {
            Ok(())
        } else {
            Err(Error::VocabularyMismatch {
                expected: format!("{:016x}", self.hash()),
                found: format!("{:016x}", other.hash()),
            })
        }
    }
}

impl From<Vocabulary> for VocabularyFile {
    fn from(v: Vocabulary) -> Self {
        Self {
            version: VERSION,
            scheme: v.scheme.name().to_owned(),
            hash: format!("{:016x}", v.hash()),
            names: v.names(),
            config: v.config,
        }
    }
}

impl<'de> Deserialize<'de> for Vocabulary {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = VocabularyFile::deserialize(deserializer)?;
        Vocabulary::try_from(file).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<VocabularyFile> for Vocabulary {
    type Error = Error;
    fn try_from(f: VocabularyFile) -> Result<Self, Error> {
        if f.version != VERSION {
            return Err(Error::VocabularyMismatch {
                expected: format!("format version {VERSION}"),
                found: format!("format version {}", f.version),
            });
        }
        let v = Vocabulary::build(f.scheme.parse()?, &f.config)?;
        let hash = format!("{:016x}", v.hash());
        if hash != f.hash || v.names() != f.names {
            return Err(Error::VocabularyMismatch {
                expected: f.hash,
                found: hash,
            });
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_maps_to_its_id_and_back() {
        let tsd = Vocabulary::tsd(&TokenizerConfig::default()).unwrap();
        let event = Vocabulary::event(&TokenizerConfig::default()).unwrap();
        assert_eq!(event.len(), 454);
        for v in [
            &tsd,
            &event,
            &Vocabulary::remi(&TokenizerConfig::default()).unwrap(),
        ] {
            for id in 0..v.len() as TokenId {
                let t = v.token(id).unwrap();
                assert_eq!(v.id(t), Some(id), "{}", v.name(id));
            }
            assert_eq!(v.token(v.pad()), Some(Token::Pad));
            assert_eq!(v.token(v.bos()), Some(Token::Bos));
            assert_eq!(v.token(v.eos()), Some(Token::Eos));
        }
        assert_eq!(tsd.id(Token::Bar), None);
        assert_eq!(tsd.id(Token::Position(0)), None);
        let v = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
        assert_eq!(v.id(Token::TimeShift(0)), None);
        assert_eq!(v.token(v.len() as TokenId), None);
        assert_eq!(v.id(Token::Pitch(20)), None, "below the pitch range");
        assert_eq!(v.id(Token::Pitch(109)), None, "above the pitch range");
    }

    #[test]
    fn default_remi_vocabulary_has_readable_names() {
        let v = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
        // 5 + 64 positions (8/4 and 4/2 bars) + 17 time signatures + 32 tempos + 128 programs
        // + drums + 88 pitches + 32 velocities + 64 durations.
        assert_eq!(v.len(), 5 + 64 + 17 + 32 + 128 + 1 + 88 + 32 + 64);
        let names = v.names();
        for n in [
            "Bar",
            "Position_0",
            "TimeSig_6/8",
            "Program_Drums",
            "Pitch_60",
            "Velocity_127",
            "Duration_1.0.8",
            "Duration_12.0.8",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing");
        }
    }

    #[test]
    fn json_round_trip_keeps_meaning_and_tampering_is_refused() {
        let v = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
        let json = serde_json::to_string(&v).unwrap();
        let back: Vocabulary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        let tampered = json.replace("Pitch_60", "Pitch_61");
        assert!(serde_json::from_str::<Vocabulary>(&tampered).is_err());
    }

    #[test]
    fn voices_are_a_family_after_the_programs_and_absent_by_default() {
        let plain = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
        assert_eq!(plain.id(Token::Voice(0)), None);
        let config = TokenizerConfig {
            voices: 4,
            ..TokenizerConfig::default()
        };
        let v = Vocabulary::remi(&config).unwrap();
        assert_eq!(v.len(), plain.len() + 4);
        let first = v.id(Token::Voice(0)).unwrap();
        assert_eq!(v.id(Token::Drums), Some(first - 1));
        assert_eq!(v.name(first + 3), "Voice_3");
        assert_eq!(v.id(Token::Voice(4)), None);
        for id in 0..v.len() as TokenId {
            assert_eq!(v.id(v.token(id).unwrap()), Some(id));
        }
        let back: Vocabulary = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        // A vocabulary without voices serialises as before the field existed.
        assert!(!serde_json::to_string(&plain).unwrap().contains("voices"));
        assert!(Vocabulary::event(&config).is_err());
        let too_many = TokenizerConfig {
            voices: 17,
            ..TokenizerConfig::default()
        };
        assert!(Vocabulary::tsd(&too_many).is_err());
    }

    #[test]
    fn hash_changes_with_the_config() {
        let a = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
        let b = Vocabulary::remi(&TokenizerConfig {
            num_velocities: 16,
            ..TokenizerConfig::default()
        })
        .unwrap();
        assert_ne!(a.hash(), b.hash());
        assert!(a.ensure_same(&b).is_err());
        assert!(a.ensure_same(&a.clone()).is_ok());
    }
}
