//! Music analysis on scores and pitch sets. Today: chord recognition by template matching
//! (used by the REMI+ CHORD tokens).

mod chord;

pub use chord::{Chord, ChordQuality, PitchClassSet};
