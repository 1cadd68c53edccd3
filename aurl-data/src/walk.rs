//! A lazy walk over folders of MIDI files, in sorted path order.

use std::path::PathBuf;

use crate::audit::is_midi_path;

/// The MIDI files under some paths, found as the walk goes (see [`walk`]).
#[derive(Debug)]
pub struct MidiWalk {
    /// Paths still to visit, the next one last.
    pending: Vec<PathBuf>,
}

/// Walks `paths` lazily, yielding every MIDI file (files given directly are yielded when
/// they have a MIDI extension; folders are walked recursively) in sorted path order — the
/// order [`crate::audit::discover`] lists — or the paths that could not be listed, with
/// the reason. Symbolic links to folders are not followed, so link cycles cannot hang the
/// walk. What is held is the entries of the folders on the way to the current file, never
/// the whole list, so the walk starts at once on a corpus of any size.
///
/// ```
/// use aurl_data::walk::walk;
/// let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"));
/// let files: Vec<_> = walk(&[fixtures.to_path_buf()]).filter_map(Result::ok).collect();
/// assert!(files.len() > 5 && files.is_sorted());
/// ```
#[must_use]
pub fn walk(paths: &[PathBuf]) -> MidiWalk {
    let mut pending = paths.to_vec();
    pending.sort_by(|a, b| b.cmp(a));
    MidiWalk { pending }
}

impl Iterator for MidiWalk {
    type Item = Result<PathBuf, (PathBuf, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(p) = self.pending.pop() {
            let meta = match std::fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) => return Some(Err((p, e.to_string()))),
            };
            if !meta.is_dir() {
                if is_midi_path(&p) {
                    return Some(Ok(p));
                }
                continue;
            }
            let entries = match std::fs::read_dir(&p) {
                Ok(entries) => entries,
                Err(e) => return Some(Err((p, e.to_string()))),
            };
            let mut children = Vec::new();
            let mut failure = None;
            for entry in entries {
                match entry {
                    Ok(e) => children.push(e.path()),
                    Err(e) => failure = Some((p.clone(), e.to_string())),
                }
            }
            // Reverse order: the smallest child is popped first.
            children.sort_by(|a, b| b.cmp(a));
            self.pending.extend(children);
            if let Some(failure) = failure {
                return Some(Err(failure));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_is_sorted_recursive_and_reports_what_it_cannot_list() {
        let root = std::env::temp_dir().join(format!("aurl-walk-{}", std::process::id()));
        for dir in ["b", "a/z", "a.d", "c"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in [
            "b/2.mid",
            "b/1.MID",
            "a/z/x.midi",
            "a.d/k.kar",
            "a.mid",
            "c/notes.txt",
        ] {
            std::fs::write(root.join(file), b"MThd").unwrap();
        }
        let missing = root.join("missing");
        let items: Vec<_> = walk(&[root.clone(), missing.clone()]).collect();
        let files: Vec<PathBuf> = items.iter().filter_map(|r| r.clone().ok()).collect();
        let expected: Vec<PathBuf> = ["a/z/x.midi", "a.d/k.kar", "a.mid", "b/1.MID", "b/2.mid"]
            .iter()
            .map(|f| root.join(f))
            .collect();
        assert_eq!(files, expected);
        let failed: Vec<_> = items.iter().filter_map(|r| r.clone().err()).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, missing);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
