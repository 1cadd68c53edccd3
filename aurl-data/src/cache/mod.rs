//! An on-disk token cache: tokenized files stored as compact `u16` ids in sharded,
//! checksummed, memory-mapped files.
//!
//! * **Keys.** A file's entry is keyed by the xxh3-128 hash of its bytes ([`file_key`]);
//!   the cache of one (tokenizer, preprocessing) pair lives in its own folder, named by
//!   [`config_key`]. Editing a file re-tokenizes that file only; changing the tokenizer or
//!   the preprocessing starts another folder and leaves the old one usable.
//! * **Atomic, immutable shards.** A shard is written to a temporary file, flushed, and
//!   renamed into place; once there it never changes, so a killed build leaves either no
//!   shard or a whole one, and readers may map it safely. Shard names are the hash of their
//!   content, so several processes building the same cache at once write identical files
//!   under identical names, and either rename wins.
//! * **Damage.** Every shard is checked (size, ranges, xxh3 checksum) when the cache is
//!   opened; a damaged one is reported, deleted, and its files are tokenized again by the
//!   next [`build_cache`].
//!
//! ```
//! use aurl_core::tokenize::{Remi, TokenizerConfig};
//! use aurl_data::cache::{build_cache, CacheOptions};
//! use aurl_data::corpus::SplitRule;
//! let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"));
//! let dir = std::env::temp_dir().join(format!("aurl-cache-doc-{}", std::process::id()));
//! let remi = Remi::new(&TokenizerConfig::default())?;
//! let options = CacheOptions::new(&dir);
//! let first = build_cache(&[fixtures.to_path_buf()], &SplitRule::Hash(10), &remi, None, &options, |_| {})?;
//! let second = build_cache(&[fixtures.to_path_buf()], &SplitRule::Hash(10), &remi, None, &options, |_| {})?;
//! assert!(first.report.tokenized > 0 && second.report.tokenized == 0);
//! assert_eq!(first.tokenized().train_tokens(), second.tokenized().train_tokens());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod mapped;
mod shard;

pub use build::{CacheOptions, CacheReport, CachedCorpus, CachedFile, build_cache};
pub use mapped::MappedSequences;
pub use shard::CacheEntry;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aurl_core::tokenize::{TokenSequence, Vocabulary};
use memmap2::Mmap;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::preprocess::Preprocessing;
use crate::{Error, write_atomically};
use shard::ShardView;

/// The key of a file's cache entry: the xxh3-128 hash of its bytes.
#[must_use]
pub fn file_key(bytes: &[u8]) -> u128 {
    xxh3_128(bytes)
}

/// The name of the cache folder for a vocabulary (which fixes the tokenizer and its
/// config) and a preprocessing config: 16 hex digits.
#[must_use]
pub fn config_key(vocab: &Vocabulary, preprocessing: Option<&Preprocessing>) -> String {
    let pre = preprocessing.map_or_else(String::new, |p| {
        toml::to_string(p).unwrap_or_else(|_| format!("{p:?}"))
    });
    let text = format!("aurl-token-cache v1\nvocab {:016x}\n{pre}", vocab.hash());
    format!("{:016x}", xxh3_64(text.as_bytes()))
}

/// One mapped, validated shard.
#[derive(Debug)]
struct Shard {
    map: Mmap,
    counts: (usize, usize),
}

impl Shard {
    /// Maps and checks the shard at `path`. The checksum is computed from buffered reads,
    /// and only the header and entry table of the mapping are touched, so opening a large
    /// cache keeps little of it resident.
    fn open(path: &Path) -> Result<Self, std::io::Error> {
        let map = map(path)?;
        let (view, stored) = ShardView::parse_structure(&map).map_err(std::io::Error::other)?;
        if shard::checksum_of_file(path)? != stored {
            return Err(std::io::Error::other("checksum mismatch"));
        }
        let counts = view.counts();
        Ok(Self { map, counts })
    }

    /// Maps the shard just written from `bytes` (already checked in memory).
    fn written(path: &Path, bytes: &[u8]) -> Result<Self, std::io::Error> {
        let counts = ShardView::parse(bytes)
            .map_err(std::io::Error::other)?
            .counts();
        let map = map(path)?;
        if map.len() != bytes.len() {
            return Err(std::io::Error::other("shard changed on disk after writing"));
        }
        Ok(Self { map, counts })
    }

    fn view(&self) -> ShardView<'_> {
        // Checked when opened; the mapping never changes.
        ShardView::validated(&self.map, self.counts)
    }
}

/// The shards of one cache folder, indexed by key.
#[derive(Debug)]
pub struct TokenCache {
    dir: PathBuf,
    shards: Vec<Shard>,
    index: HashMap<u128, (usize, usize)>,
    damaged: Vec<(PathBuf, String)>,
}

/// Maps a shard file read-only.
#[allow(unsafe_code)]
fn map(path: &Path) -> std::io::Result<Mmap> {
    let file = std::fs::File::open(path)?;
    // SAFETY: shards are written under a temporary name and renamed into place, and never
    // modified afterwards (a rebuild writes a new file; replacing or deleting a file leaves
    // existing mappings of the old one intact). Mapping is UB only if another program
    // truncates or rewrites the file in place while it is mapped, which the cache never
    // does.
    unsafe { Mmap::map(&file) }
}

impl TokenCache {
    /// Opens (creating it if needed) the cache folder `dir`, mapping and checking every
    /// shard. Damaged shards are deleted and listed in [`TokenCache::damaged`].
    ///
    /// # Errors
    /// [`Error::Io`] if the folder cannot be created or listed.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "tok"))
            .collect();
        names.sort();
        let mut cache = Self {
            dir: dir.to_owned(),
            shards: Vec::new(),
            index: HashMap::new(),
            damaged: Vec::new(),
        };
        for path in names {
            match Shard::open(&path) {
                Ok(shard) => cache.add(shard),
                // Removed by another process between listing and opening: not damage.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), reason = %e, "damaged shard deleted");
                    // Another process may have removed it already.
                    let _ = std::fs::remove_file(&path);
                    cache.damaged.push((path, e.to_string()));
                }
            }
        }
        Ok(cache)
    }

    fn add(&mut self, shard: Shard) {
        let s = self.shards.len();
        let view = shard.view();
        for i in 0..view.len() {
            self.index.entry(view.key(i)).or_insert((s, i));
        }
        self.shards.push(shard);
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Shards found damaged (and deleted) when the cache was opened, with the reason.
    #[must_use]
    pub fn damaged(&self) -> &[(PathBuf, String)] {
        &self.damaged
    }

    /// Number of cached files.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Number of shards.
    #[must_use]
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Whether `key` is cached.
    #[must_use]
    pub fn contains(&self, key: u128) -> bool {
        self.index.contains_key(&key)
    }

    /// The tokens and note count cached under `key`.
    #[must_use]
    pub fn get(&self, key: u128) -> Option<(TokenSequence, usize)> {
        let &(s, i) = self.index.get(&key)?;
        let view = self.shards[s].view();
        Some((view.sequence(i), view.notes(i)))
    }

    /// Token count and note count under `key`, without copying the tokens.
    #[must_use]
    pub fn sizes(&self, key: u128) -> Option<(usize, usize)> {
        let &(s, i) = self.index.get(&key)?;
        let view = self.shards[s].view();
        Some((view.token_count(i), view.notes(i)))
    }

    /// The token count and bar starts under `key`, without copying the tokens (what window
    /// counts need).
    #[must_use]
    pub fn bars(&self, key: u128) -> Option<(usize, Vec<aurl_core::tokenize::BarStart>)> {
        let &(s, i) = self.index.get(&key)?;
        let view = self.shards[s].view();
        Some((view.token_count(i), view.bars(i)))
    }

    /// Writes `entries` as a new shard (atomically) and adds it to the index. Returns the
    /// shard's path, or `None` for no entries.
    ///
    /// # Errors
    /// [`Error::Io`] if the shard cannot be written or mapped.
    pub fn insert(&mut self, entries: &[CacheEntry]) -> Result<Option<PathBuf>, Error> {
        if entries.is_empty() {
            return Ok(None);
        }
        let bytes = shard::encode(entries);
        let path = self
            .dir
            .join(format!("shard-{:032x}.tok", xxh3_128(&bytes)));
        write_atomically(&path, &bytes)?;
        let shard = Shard::written(&path, &bytes).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        self.add(shard);
        Ok(Some(path))
    }
}
