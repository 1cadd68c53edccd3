//! A plagiarism check: the longest melodic passage a piece shares with any piece of a
//! reference corpus, compared by pitch intervals so transpositions count as copies.
//!
//! The reference corpus is indexed once in a suffix automaton over the interval sequences
//! of every pitched track's skyline (Blumer et al., 1985), so a query costs time linear in
//! its own length whatever the corpus size — no all-pairs scan.

use serde::Serialize;

use crate::Score;
use crate::analysis::{intervals, skyline};

/// Separates tracks and pieces in the indexed text; a query never contains it, so no match
/// crosses a boundary.
const SEPARATOR: i8 = i8::MIN;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct State {
    len: u32,
    link: u32,
    /// End position (in the text) of the first occurrence of this state's strings.
    first_end: u32,
    /// Outgoing transitions, sorted by symbol (few per state).
    next: Vec<(i8, u32)>,
}

impl State {
    fn go(&self, c: i8) -> Option<u32> {
        self.next
            .binary_search_by_key(&c, |t| t.0)
            .ok()
            .map(|i| self.next[i].1)
    }

    fn set(&mut self, c: i8, to: u32) {
        match self.next.binary_search_by_key(&c, |t| t.0) {
            Ok(i) => self.next[i].1 = to,
            Err(i) => self.next.insert(i, (c, to)),
        }
    }
}

/// An index of reference melodies for [`MelodyIndex::longest_shared`].
///
/// ```
/// use aurl_core::{Note, Pitch, Score, Track, Velocity};
/// use aurl_core::metrics::MelodyIndex;
/// let piece = |pitches: &[u8]| {
///     let mut t = Track::new("m");
///     for (i, &p) in pitches.iter().enumerate() {
///         t.notes.push(Note::new(Pitch::new(p).unwrap(), Velocity::new(80).unwrap(), 10 * i as u64, 10));
///     }
///     let mut s = Score::new(480);
///     s.tracks.push(t);
///     s
/// };
/// let mut index = MelodyIndex::new();
/// index.add("ode", &piece(&[64, 64, 65, 67, 67, 65, 64, 62]));
/// // The same tune a fourth higher shares all eight notes.
/// let copy = index.longest_shared(&piece(&[50, 69, 69, 70, 72, 72, 70, 69, 67])).unwrap();
/// assert_eq!((copy.notes, index.name(copy.reference)), (8, Some("ode")));
/// ```
#[derive(Debug, Clone)]
pub struct MelodyIndex {
    states: Vec<State>,
    last: u32,
    text_len: u32,
    /// Text position where each piece begins, increasing.
    starts: Vec<u32>,
    names: Vec<String>,
}

/// The longest passage a piece shares with the reference corpus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedPassage {
    /// Length of the shared passage in notes (intervals + 1).
    pub notes: usize,
    /// Index of the reference piece (order of [`MelodyIndex::add`]).
    pub reference: usize,
}

impl Default for MelodyIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl MelodyIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self {
            states: vec![State {
                len: 0,
                link: NONE,
                first_end: 0,
                next: Vec::new(),
            }],
            last: 0,
            text_len: 0,
            starts: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Number of indexed pieces.
    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is indexed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name a piece was added with.
    #[must_use]
    pub fn name(&self, reference: usize) -> Option<&str> {
        self.names.get(reference).map(String::as_str)
    }

    /// Adds a reference piece: the skyline of each pitched track.
    pub fn add(&mut self, name: impl Into<String>, score: &Score) {
        self.starts.push(self.text_len);
        self.names.push(name.into());
        for track in score
            .tracks
            .iter()
            .filter(|t| !t.is_drum && !t.notes.is_empty())
        {
            for step in intervals(&skyline(&track.notes)) {
                self.extend(step);
            }
            self.extend(SEPARATOR);
        }
    }

    /// Suffix-automaton construction step (online, amortized constant time).
    fn extend(&mut self, c: i8) {
        let cur = self.states.len() as u32;
        self.states.push(State {
            len: self.states[self.last as usize].len + 1,
            link: 0,
            first_end: self.text_len,
            next: Vec::new(),
        });
        self.text_len += 1;
        let mut p = self.last;
        while p != NONE && self.states[p as usize].go(c).is_none() {
            self.states[p as usize].set(c, cur);
            p = self.states[p as usize].link;
        }
        if p != NONE {
            let q = self.states[p as usize].go(c).unwrap_or(0);
            if self.states[p as usize].len + 1 == self.states[q as usize].len {
                self.states[cur as usize].link = q;
            } else {
                let clone = self.states.len() as u32;
                let mut copy = self.states[q as usize].clone();
                copy.len = self.states[p as usize].len + 1;
                self.states.push(copy);
                while p != NONE && self.states[p as usize].go(c) == Some(q) {
                    self.states[p as usize].set(c, clone);
                    p = self.states[p as usize].link;
                }
                self.states[q as usize].link = clone;
                self.states[cur as usize].link = clone;
            }
        }
        self.last = cur;
    }

    /// The longest passage (by intervals) of any pitched track of `score` that also occurs
    /// in an indexed piece. `None` when nothing is shared (or either side has no intervals).
    #[must_use]
    pub fn longest_shared(&self, score: &Score) -> Option<SharedPassage> {
        let mut best: Option<(u32, u32)> = None; // (length in intervals, text end)
        for track in score.tracks.iter().filter(|t| !t.is_drum) {
            let (mut state, mut len) = (0u32, 0u32);
            for c in intervals(&skyline(&track.notes)) {
                while state != 0 && self.states[state as usize].go(c).is_none() {
                    state = self.states[state as usize].link;
                    len = self.states[state as usize].len;
                }
                match self.states[state as usize].go(c) {
                    Some(next) => {
                        state = next;
                        len += 1;
                    }
                    None => (state, len) = (0, 0),
                }
                if len > 0 && best.is_none_or(|b| len > b.0) {
                    best = Some((len, self.states[state as usize].first_end));
                }
            }
        }
        let (len, end) = best?;
        let start = end + 1 - len;
        let reference = self
            .starts
            .partition_point(|&s| s <= start)
            .saturating_sub(1);
        Some(SharedPassage {
            notes: len as usize + 1,
            reference,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Note, Pitch, Track, Velocity};

    fn piece(pitches: &[u8]) -> Score {
        let mut t = Track::new("m");
        for (i, &p) in pitches.iter().enumerate() {
            t.notes.push(Note::new(
                Pitch::new(p).unwrap(),
                Velocity::new(80).unwrap(),
                4 * i as u64,
                4,
            ));
        }
        let mut s = Score::new(4);
        s.tracks.push(t);
        s
    }

    /// The longest common substring by brute force, for checking the automaton.
    fn brute(a: &[i8], b: &[i8]) -> usize {
        let mut best = 0;
        for i in 0..a.len() {
            for j in 0..b.len() {
                let mut k = 0;
                while i + k < a.len() && j + k < b.len() && a[i + k] == b[j + k] {
                    k += 1;
                }
                best = best.max(k);
            }
        }
        best
    }

    #[test]
    fn matches_brute_force_and_names_the_right_piece() {
        // Pseudo-random melodies over a small pitch set, so that shared passages occur.
        let mut x = 12345u32;
        let mut random_piece = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    60 + ((x >> 16) % 5) as u8
                })
                .collect()
        };
        let refs: Vec<Vec<u8>> = (0..6).map(|_| random_piece(40)).collect();
        let mut index = MelodyIndex::new();
        for (i, r) in refs.iter().enumerate() {
            index.add(format!("r{i}"), &piece(r));
        }
        for _ in 0..20 {
            let q = random_piece(30);
            let qi = intervals(&skyline(&piece(&q).tracks[0].notes));
            let per_ref: Vec<usize> = refs
                .iter()
                .map(|r| brute(&qi, &intervals(&skyline(&piece(r).tracks[0].notes))))
                .collect();
            let longest = *per_ref.iter().max().unwrap();
            let found = index.longest_shared(&piece(&q)).unwrap();
            assert_eq!(found.notes, longest + 1);
            assert_eq!(
                per_ref[found.reference], longest,
                "the named piece holds the passage"
            );
        }
    }

    #[test]
    fn passages_do_not_cross_pieces() {
        let mut index = MelodyIndex::new();
        index.add("a", &piece(&[60, 62, 64]));
        index.add("b", &piece(&[65, 67, 69]));
        // +2 +2 +2 +2 would need the end of "a" joined to the start of "b".
        let found = index.longest_shared(&piece(&[60, 62, 64, 66, 68])).unwrap();
        assert_eq!(found.notes, 3);
        assert!(
            MelodyIndex::new()
                .longest_shared(&piece(&[60, 62]))
                .is_none()
        );
    }
}
