//! Listening to a score: rendering it to audio with a General MIDI SoundFont, in pure Rust.
//!
//! [`render`] plays a [`Score`] through [`rustysynth`] (a SoundFont 2 synthesiser with a
//! MIDI sequencer): programs, drums (channel 10, the SoundFont's percussion bank), pitch
//! bends, the sustain pedal and every controller sound as they would from the MIDI file our
//! writer produces. [`Audio::to_wav`] encodes the result as a 16-bit PCM WAV file. Rendering
//! is deterministic (reverb and chorus are off by default): the same score and SoundFont
//! give the same bytes.
//!
//! A SoundFont is not bundled: [`SoundFont::locate`] looks at an explicit path, then
//! `AURL_SOUNDFONT`, then the usual system locations (Debian's public-domain
//! `csound-soundfont` package installs `/usr/share/sounds/sf2/sf_GMbank.sf2`,
//! `fluid-soundfont-gm` installs `FluidR3_GM.sf2`).
//!
//! ```no_run
//! use aurl_data::audio::{RenderOptions, SoundFont, render};
//! use aurl_data::{Mode, read_midi_file};
//! use std::path::Path;
//!
//! let (score, _) = read_midi_file(Path::new("piece.mid"), Mode::Lenient)?;
//! if let Some(font) = SoundFont::locate(None)? {
//!     let audio = render(&score, &font, &RenderOptions::default())?;
//!     audio.write_wav(Path::new("piece.wav"))?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod wav;

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aurl_core::Score;
use rustysynth::{MidiFile, MidiFileSequencer, Synthesizer, SynthesizerSettings};

use crate::midi::{WriteOptions, write_midi};

/// Where [`SoundFont::locate`] looks after an explicit path and `AURL_SOUNDFONT`, in order.
pub const SYSTEM_SOUNDFONTS: [&str; 6] = [
    "/usr/share/sounds/sf2/sf_GMbank.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
];

/// What to do when no SoundFont is found: printed by the examples.
pub const SOUNDFONT_HINT: &str = "no SoundFont found, so no audio: install one (Debian/Ubuntu: \
     `apt-get install csound-soundfont` or `fluid-soundfont-gm`) or pass `--soundfont PATH` \
     (or set AURL_SOUNDFONT)";

/// What went wrong rendering audio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The SoundFont file could not be read.
    #[error("SoundFont {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The bytes are not a usable SoundFont 2 (malformed chunks, no presets, bad sample
    /// references); nothing can be rendered with it.
    #[error("not a usable SoundFont{}: {reason}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    SoundFont {
        /// The file, when it came from one.
        path: Option<PathBuf>,
        /// What the parser objected to.
        reason: String,
    },
    /// The score could not be written as MIDI for the sequencer, or the synthesiser failed
    /// on it.
    #[error("rendering: {0}")]
    Render(String),
    /// Audio was asked for and no SoundFont was found ([`SoundFont::require`]).
    #[error("{SOUNDFONT_HINT}")]
    NotFound,
    /// Writing the WAV file failed.
    #[error(transparent)]
    Write(crate::Error),
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the parser panicked".into())
}

/// A loaded SoundFont 2, ready to render with. Cheap to clone (shared).
#[derive(Clone)]
pub struct SoundFont {
    inner: Arc<rustysynth::SoundFont>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SoundFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoundFont")
            .field("path", &self.path)
            .field("presets", &self.inner.get_presets().len())
            .finish()
    }
}

impl SoundFont {
    /// Parses a SoundFont from its bytes.
    ///
    /// # Errors
    /// [`AudioError::SoundFont`] for anything but a usable SoundFont 2 — including files on
    /// which the parser would panic (they are caught and reported, never a crash).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AudioError> {
        Self::parse(bytes, None)
    }

    /// Reads and parses the SoundFont at `path`.
    ///
    /// # Errors
    /// [`AudioError::Io`] if it cannot be read, [`AudioError::SoundFont`] as
    /// [`SoundFont::from_bytes`].
    pub fn from_file(path: &Path) -> Result<Self, AudioError> {
        let bytes = std::fs::read(path).map_err(|source| AudioError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes, Some(path.to_owned()))
    }

    fn parse(bytes: &[u8], path: Option<PathBuf>) -> Result<Self, AudioError> {
        let invalid = |reason: String| AudioError::SoundFont {
            path: path.clone(),
            reason,
        };
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            rustysynth::SoundFont::new(&mut Cursor::new(bytes))
        }))
        .map_err(|panic| invalid(panic_message(panic.as_ref())))?
        .map_err(|e| invalid(e.to_string()))?;
        if parsed.get_presets().is_empty() {
            return Err(invalid("it has no preset".into()));
        }
        let font = Self {
            inner: Arc::new(parsed),
            path: path.clone(),
        };
        // A font whose regions point outside its samples parses but panics when a note
        // plays: play each preset's middle note once, briefly, to find out now.
        font.probe().map_err(invalid)?;
        Ok(font)
    }

    /// Plays every preset briefly, turning a panic of the synthesiser into an error.
    fn probe(&self) -> Result<(), String> {
        let settings = settings(&RenderOptions {
            sample_rate: 22_050,
            ..RenderOptions::default()
        });
        catch_unwind(AssertUnwindSafe(|| {
            let mut synth = Synthesizer::new(&self.inner, &settings).map_err(|e| e.to_string())?;
            let (mut left, mut right) = (vec![0f32; 256], vec![0f32; 256]);
            for preset in self.inner.get_presets() {
                let bank = preset.get_bank_number();
                // Channel 10 plays the percussion bank (128); the others select theirs.
                let channel = if bank >= 128 { 9 } else { 0 };
                if bank < 128 {
                    synth.process_midi_message(channel, 0xB0, 0x00, bank);
                }
                synth.process_midi_message(channel, 0xC0, preset.get_patch_number(), 0);
                synth.note_on(channel, 60, 100);
                synth.render(&mut left, &mut right);
                synth.note_off_all(true);
            }
            Ok(())
        }))
        .map_err(|panic| panic_message(panic.as_ref()))?
    }

    /// The file it was read from, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// As [`SoundFont::locate`] when audio was asked for: finding none is an error
    /// ([`AudioError::NotFound`], which says how to install one), before anything is
    /// written rather than a silent omission after.
    ///
    /// # Errors
    /// As [`SoundFont::locate`], and when no SoundFont is found.
    pub fn require(explicit: Option<&Path>) -> Result<Self, AudioError> {
        Self::locate(explicit)?.ok_or(AudioError::NotFound)
    }

    /// The SoundFont to render with: `explicit` if given, else the file `AURL_SOUNDFONT`
    /// names, else the first of [`SYSTEM_SOUNDFONTS`] that exists; `None` when there is none
    /// (show [`SOUNDFONT_HINT`]).
    ///
    /// # Errors
    /// As [`SoundFont::from_file`] for the file chosen: an explicit or configured path that
    /// does not work is an error, not a silent fallback.
    pub fn locate(explicit: Option<&Path>) -> Result<Option<Self>, AudioError> {
        if let Some(path) = explicit {
            return Self::from_file(path).map(Some);
        }
        if let Some(path) = std::env::var_os("AURL_SOUNDFONT").filter(|p| !p.is_empty()) {
            return Self::from_file(Path::new(&path)).map(Some);
        }
        SYSTEM_SOUNDFONTS
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .map(Self::from_file)
            .transpose()
    }
}

/// How [`render`] plays a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Samples per second (16,000..=192,000).
    pub sample_rate: u32,
    /// Seconds rendered after the last event, for the notes' release to fade out.
    pub tail_seconds: f32,
    /// The SoundFont's reverb and chorus (off: renders are then reproducible bit for bit
    /// and a note's spectrum stays clean).
    pub reverb_and_chorus: bool,
    /// Factor applied to the synthesiser's output before clipping to 16 bits.
    pub gain: f32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            sample_rate: 44_100,
            tail_seconds: 1.5,
            reverb_and_chorus: false,
            gain: 1.0,
        }
    }
}

fn settings(options: &RenderOptions) -> SynthesizerSettings {
    let mut settings = SynthesizerSettings::new(options.sample_rate as i32);
    settings.enable_reverb_and_chorus = options.reverb_and_chorus;
    settings
}

/// Stereo samples at a sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second.
    pub sample_rate: u32,
    /// Left channel.
    pub left: Vec<f32>,
    /// Right channel.
    pub right: Vec<f32>,
}

impl Audio {
    /// Length in seconds.
    #[must_use]
    pub fn seconds(&self) -> f64 {
        self.left.len() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// A 16-bit PCM stereo WAV file of the samples (clipped to ±1).
    #[must_use]
    pub fn to_wav(&self) -> Vec<u8> {
        wav::encode(self)
    }

    /// Writes [`Audio::to_wav`] to `path` atomically (a temporary file renamed into place).
    ///
    /// # Errors
    /// [`AudioError::Write`] on I/O failure.
    pub fn write_wav(&self, path: &Path) -> Result<(), AudioError> {
        crate::write_atomically(path, &self.to_wav()).map_err(AudioError::Write)
    }
}

/// Renders `score` with `font`: its MIDI file (as [`write_midi`] writes it) played by the
/// sequencer from the start to the last event, plus [`RenderOptions::tail_seconds`].
///
/// # Errors
/// [`AudioError::Render`] if the score cannot be written as MIDI, the options are out of
/// range, or the synthesiser fails (a panic inside it is caught and reported).
pub fn render(
    score: &Score,
    font: &SoundFont,
    options: &RenderOptions,
) -> Result<Audio, AudioError> {
    let bytes = write_midi(score, &WriteOptions::default())
        .map_err(|e| AudioError::Render(e.to_string()))?;
    render_midi(&bytes, font, options)
}

/// [`render`] for the bytes of a standard MIDI file.
///
/// # Errors
/// As [`render`], and [`AudioError::Render`] for bytes the sequencer cannot read.
pub fn render_midi(
    midi: &[u8],
    font: &SoundFont,
    options: &RenderOptions,
) -> Result<Audio, AudioError> {
    let render_error = |e: String| AudioError::Render(e);
    if !options.tail_seconds.is_finite() || options.tail_seconds < 0.0 || !options.gain.is_finite()
    {
        return Err(render_error(format!("invalid options {options:?}")));
    }
    catch_unwind(AssertUnwindSafe(|| -> Result<Audio, AudioError> {
        let midi = Arc::new(
            MidiFile::new(&mut Cursor::new(midi)).map_err(|e| render_error(e.to_string()))?,
        );
        let synth = Synthesizer::new(&font.inner, &settings(options))
            .map_err(|e| render_error(e.to_string()))?;
        let mut sequencer = MidiFileSequencer::new(synth);
        sequencer.play(&midi, false);
        let seconds = midi.get_length() + f64::from(options.tail_seconds);
        let len = (seconds * f64::from(options.sample_rate)).ceil() as usize;
        let (mut left, mut right) = (vec![0f32; len], vec![0f32; len]);
        sequencer.render(&mut left, &mut right);
        if options.gain != 1.0 {
            for x in left.iter_mut().chain(right.iter_mut()) {
                *x *= options.gain;
            }
        }
        Ok(Audio {
            sample_rate: options.sample_rate,
            left,
            right,
        })
    }))
    .map_err(|panic| render_error(panic_message(panic.as_ref())))?
}

#[cfg(test)]
mod tests;
