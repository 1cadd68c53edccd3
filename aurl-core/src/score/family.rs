//! General MIDI instrument families: the 16 groups of 8 programs the GM standard defines.

use serde::{Deserialize, Serialize};

use super::values::Program;

/// One of the 16 General MIDI program families (programs `8·k ..= 8·k + 7`).
///
/// ```
/// use aurl_core::{Family, Program};
/// let violin = Program::new(40)?;
/// assert_eq!(violin.family(), Family::Strings);
/// assert_eq!(Family::Strings.programs().count(), 8);
/// # Ok::<(), aurl_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Pianos (0–7).
    Piano,
    /// Chromatic percussion: celesta, glockenspiel, vibraphone, … (8–15).
    ChromaticPercussion,
    /// Organs and accordions (16–23).
    Organ,
    /// Guitars (24–31).
    Guitar,
    /// Basses (32–39).
    Bass,
    /// Solo strings (40–47).
    Strings,
    /// String ensembles, choirs, orchestra hit (48–55).
    Ensemble,
    /// Brass (56–63).
    Brass,
    /// Reeds: saxophones, oboe, bassoon, clarinet (64–71).
    Reed,
    /// Pipes: flutes, recorder, whistles (72–79).
    Pipe,
    /// Synth leads (80–87).
    SynthLead,
    /// Synth pads (88–95).
    SynthPad,
    /// Synth effects (96–103).
    SynthEffects,
    /// Ethnic instruments (104–111).
    Ethnic,
    /// Percussive instruments: steel drums, woodblock, taiko, … (112–119).
    Percussive,
    /// Sound effects (120–127).
    SoundEffects,
}

impl Family {
    /// All families in program order.
    pub const ALL: [Self; 16] = [
        Self::Piano,
        Self::ChromaticPercussion,
        Self::Organ,
        Self::Guitar,
        Self::Bass,
        Self::Strings,
        Self::Ensemble,
        Self::Brass,
        Self::Reed,
        Self::Pipe,
        Self::SynthLead,
        Self::SynthPad,
        Self::SynthEffects,
        Self::Ethnic,
        Self::Percussive,
        Self::SoundEffects,
    ];

    /// The eight programs of the family, lowest first.
    pub fn programs(self) -> impl Iterator<Item = Program> {
        let first = self as u8 * 8;
        (first..first + 8).map(Program::saturating)
    }
}

impl Program {
    /// The General MIDI family the program belongs to.
    #[must_use]
    pub const fn family(self) -> Family {
        Family::ALL[(self.get() / 8) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_lies_in_the_family_that_lists_it() {
        for f in Family::ALL {
            for p in f.programs() {
                assert_eq!(p.family(), f);
            }
        }
        assert_eq!(Program::saturating(0).family(), Family::Piano);
        assert_eq!(Program::saturating(33).family(), Family::Bass);
        assert_eq!(Program::saturating(127).family(), Family::SoundEffects);
    }
}
