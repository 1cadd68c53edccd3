//! Music analysis ("studies") on scores: chords per beat or bar with inversions and
//! progression statistics, Krumhansl–Schmuckler key estimation with modulations, melody
//! lines with contour and interval statistics, motif detection, and phrase/form analysis
//! from bar-level self-similarity. The REMI+ CHORD tokens use [`Chord::recognize`].
//!
//! ```
//! use aurl_core::{Note, Pitch, Score, Track, Velocity};
//! use aurl_core::analysis::{ChordStep, detect_chords, estimate_key};
//! let mut piano = Track::new("piano");
//! for (p, start) in [(60, 0), (64, 0), (67, 0), (65, 480), (69, 480), (72, 480)] {
//!     piano.notes.push(Note::new(Pitch::new(p)?, Velocity::new(80)?, start, 480));
//! }
//! let mut score = Score::new(480);
//! score.tracks.push(piano);
//! let chords: Vec<String> = detect_chords(&score, ChordStep::Beat)
//!     .iter().map(|c| c.found.chord.to_string()).collect();
//! assert_eq!(chords, ["C:maj", "F:maj"]);
//! assert_eq!(estimate_key(&score).unwrap().key.to_string(), "C major");
//! # Ok::<(), aurl_core::Error>(())
//! ```

mod chord;
mod form;
mod harmony;
mod key;
mod melody;
mod motif;

pub use chord::{Chord, ChordMatch, ChordQuality, PitchClassSet};
pub use form::{Form, Phrase, SelfSimilarity};
pub use harmony::{ChordProgression, ChordSpan, ChordStep, detect_chords};
pub use key::{
    Key, KeyEstimate, KeySpan, estimate_key, estimate_key_from_profile, local_keys, modulations,
    pitch_class_profile,
};
pub use melody::{Contour, MelodyStats, contour, intervals, melody, skyline};
pub use motif::{Motif, MotifConfig, find_motifs};
