//! The corpus that ships in a checkout of Aurl: the 409 Bach four-part chorales of the
//! music21 corpus, at 480 ticks per quarter, with their train/valid split (see
//! `corpus/NOTICE.md` for provenance and terms).

use std::path::{Path, PathBuf};

use super::RunConfigError;

/// Where the bundled chorales are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledCorpus {
    /// The folder of MIDI files.
    pub root: PathBuf,
    /// Its split table (file names relative to `root`, `train` or `valid`): hymn tunes
    /// harmonised several times never straddle the split.
    pub split_file: PathBuf,
}

/// Folder of the bundled chorales inside the `aurl` package.
const CHORALES: &str = "corpus/bach_chorales";

/// The bundled chorales of this checkout, found from the `aurl` package's own directory
/// (`CARGO_MANIFEST_DIR` at build time), not the working directory, so the examples find
/// them from any folder of the checkout.
///
/// # Errors
/// [`RunConfigError::MissingCorpus`] when the folder or its split table is missing (a
/// packaged crate excludes them).
pub fn bundled_chorales() -> Result<BundledCorpus, RunConfigError> {
    bundled_chorales_in(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// [`bundled_chorales`] under another package root.
pub(crate) fn bundled_chorales_in(package: &Path) -> Result<BundledCorpus, RunConfigError> {
    let root = package.join(CHORALES);
    let split_file = root.join("split.tsv");
    if !split_file.is_file() {
        return Err(RunConfigError::MissingCorpus { path: root });
    }
    Ok(BundledCorpus { root, split_file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_without_the_corpus_is_a_typed_error_naming_the_remedy() {
        let err = bundled_chorales_in(Path::new("/nonexistent/aurl")).unwrap_err();
        assert!(matches!(err, RunConfigError::MissingCorpus { .. }));
        assert!(err.to_string().contains("--data"), "{err}");
    }
}
