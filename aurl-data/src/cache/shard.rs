//! The shard file format: many token sequences in one checksummed, little-endian file that
//! is read in place (memory-mapped) and never modified after it is written.
//!
//! ```text
//! header   40 bytes  magic "AURLTOK\0", version u32, entries u32, bars u64, ids u64,
//!                    xxh3-64 checksum of everything after the header
//! entries  48 bytes each: key u128, first id u64, id count u32, first bar u64,
//!                    bar count u32, notes u32, reserved u32
//! bars      8 bytes each: token index u32, time signature u16, tempo u16 (0xFFFF = none)
//! ids       2 bytes each (u16)
//! ```

use aurl_core::tokenize::{BarStart, TokenId, TokenSequence};
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 8] = b"AURLTOK\0";
const VERSION: u32 = 1;
const HEADER: usize = 40;
const ENTRY: usize = 48;
const BAR: usize = 8;
const NONE: u16 = u16::MAX;

/// One cached file: its key, tokens and note count.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheEntry {
    /// The content key (see [`super::file_key`]).
    pub key: u128,
    /// The tokens.
    pub sequence: TokenSequence,
    /// Notes in the (preprocessed) score.
    pub notes: usize,
}

/// Serialises `entries` as one shard.
pub(crate) fn encode(entries: &[CacheEntry]) -> Vec<u8> {
    let bars: usize = entries.iter().map(|e| e.sequence.bars.len()).sum();
    let ids: usize = entries.iter().map(|e| e.sequence.ids.len()).sum();
    let mut out = Vec::with_capacity(HEADER + ENTRY * entries.len() + BAR * bars + 2 * ids);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(bars as u64).to_le_bytes());
    out.extend_from_slice(&(ids as u64).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // checksum, filled in below
    let (mut first_id, mut first_bar) = (0u64, 0u64);
    for e in entries {
        out.extend_from_slice(&e.key.to_le_bytes());
        out.extend_from_slice(&first_id.to_le_bytes());
        out.extend_from_slice(&(e.sequence.ids.len() as u32).to_le_bytes());
        out.extend_from_slice(&first_bar.to_le_bytes());
        out.extend_from_slice(&(e.sequence.bars.len() as u32).to_le_bytes());
        out.extend_from_slice(&(e.notes.min(u32::MAX as usize) as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        first_id += e.sequence.ids.len() as u64;
        first_bar += e.sequence.bars.len() as u64;
    }
    for e in entries {
        for b in &e.sequence.bars {
            out.extend_from_slice(&(b.token_index as u32).to_le_bytes());
            out.extend_from_slice(&b.time_signature.unwrap_or(NONE).to_le_bytes());
            out.extend_from_slice(&b.tempo.unwrap_or(NONE).to_le_bytes());
        }
    }
    for e in entries {
        for &id in &e.sequence.ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    let checksum = xxh3_64(&out[HEADER..]);
    out[32..40].copy_from_slice(&checksum.to_le_bytes());
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// A validated shard: every range inside it has been checked, so reading never panics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShardView<'a> {
    bytes: &'a [u8],
    entries: usize,
    bars: usize,
}

impl<'a> ShardView<'a> {
    /// Checks the magic, version, sizes, checksum and every entry's ranges.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        // The checksum first: damage anywhere reads as damage, whatever it hit.
        if bytes.len() >= HEADER && xxh3_64(&bytes[HEADER..]) != u64_at(bytes, 32) {
            return Err("checksum mismatch".into());
        }
        Self::parse_structure(bytes).map(|(view, _)| view)
    }

    /// Checks everything but the checksum, which it returns (for the caller to compare with
    /// [`checksum_of_file`]); reads only the header and the entry table.
    pub(crate) fn parse_structure(bytes: &'a [u8]) -> Result<(Self, u64), String> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err("not a token-cache shard".into());
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(format!("shard format {version}, expected {VERSION}"));
        }
        let entries = u32_at(bytes, 12) as usize;
        let bars = usize::try_from(u64_at(bytes, 16)).map_err(|_| "too many bars")?;
        let ids = usize::try_from(u64_at(bytes, 24)).map_err(|_| "too many ids")?;
        let expected = entries
            .checked_mul(ENTRY)
            .and_then(|e| bars.checked_mul(BAR).and_then(|b| e.checked_add(b)))
            .and_then(|x| ids.checked_mul(2).and_then(|i| x.checked_add(i)))
            .and_then(|x| x.checked_add(HEADER));
        if expected != Some(bytes.len()) {
            return Err(format!(
                "{} bytes, the header describes {expected:?}",
                bytes.len()
            ));
        }
        let view = Self {
            bytes,
            entries,
            bars,
        };
        for i in 0..entries {
            let (id0, n_ids, bar0, n_bars) = view.ranges(i);
            let ids_ok = id0.checked_add(n_ids).is_some_and(|end| end <= ids);
            let bars_ok = bar0.checked_add(n_bars).is_some_and(|end| end <= bars);
            if !ids_ok || !bars_ok {
                return Err(format!("entry {i} points outside the shard"));
            }
        }
        Ok((view, u64_at(bytes, 32)))
    }

    /// A view of bytes [`ShardView::parse`] accepted before, with the counts it found
    /// ([`ShardView::counts`]); skips the checks (and the checksum's full read).
    pub(crate) fn validated(bytes: &'a [u8], (entries, bars): (usize, usize)) -> Self {
        Self {
            bytes,
            entries,
            bars,
        }
    }

    /// (entries, bars), for [`ShardView::validated`].
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.entries, self.bars)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    fn entry_at(&self, i: usize) -> usize {
        HEADER + i * ENTRY
    }

    fn ranges(&self, i: usize) -> (usize, usize, usize, usize) {
        let at = self.entry_at(i);
        let b = self.bytes;
        (
            u64_at(b, at + 16) as usize,
            u32_at(b, at + 24) as usize,
            u64_at(b, at + 28) as usize,
            u32_at(b, at + 36) as usize,
        )
    }

    /// The key of entry `i`.
    pub(crate) fn key(&self, i: usize) -> u128 {
        let at = self.entry_at(i);
        let mut x = [0u8; 16];
        x.copy_from_slice(&self.bytes[at..at + 16]);
        u128::from_le_bytes(x)
    }

    /// The note count of entry `i`.
    pub(crate) fn notes(&self, i: usize) -> usize {
        u32_at(self.bytes, self.entry_at(i) + 40) as usize
    }

    /// Token count of entry `i`.
    pub(crate) fn token_count(&self, i: usize) -> usize {
        self.ranges(i).1
    }

    /// The bar starts of entry `i` (reads only the bar table, not the tokens).
    pub(crate) fn bars(&self, i: usize) -> Vec<BarStart> {
        let (_, _, bar0, n_bars) = self.ranges(i);
        let bars_at = HEADER + self.entries * ENTRY;
        let b = self.bytes;
        let opt = |v: u16| (v != NONE).then_some(v);
        (bar0..bar0 + n_bars)
            .map(|k| {
                let at = bars_at + k * BAR;
                BarStart {
                    token_index: u32_at(b, at) as usize,
                    time_signature: opt(u16_at(b, at + 4)),
                    tempo: opt(u16_at(b, at + 6)),
                }
            })
            .collect()
    }

    /// The tokens of entry `i`, copied out.
    pub(crate) fn sequence(&self, i: usize) -> TokenSequence {
        let (id0, n_ids, _, _) = self.ranges(i);
        let ids_at = HEADER + self.entries * ENTRY + self.bars * BAR;
        let bars = self.bars(i);
        let raw = &self.bytes[ids_at + 2 * id0..ids_at + 2 * (id0 + n_ids)];
        let ids: Vec<TokenId> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        TokenSequence { ids, bars }
    }
}

/// The xxh3-64 of a shard file's bytes after the header, read through a small buffer
/// (so checking a shard does not pull its mapping into memory).
pub(crate) fn checksum_of_file(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(HEADER as u64))?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u128, n: u16) -> CacheEntry {
        CacheEntry {
            key,
            sequence: TokenSequence {
                ids: (0..n).collect(),
                bars: vec![
                    BarStart {
                        token_index: 0,
                        time_signature: Some(7),
                        tempo: None,
                    },
                    BarStart {
                        token_index: usize::from(n / 2),
                        time_signature: None,
                        tempo: Some(9),
                    },
                ],
            },
            notes: usize::from(n) / 3,
        }
    }

    #[test]
    fn shards_round_trip_and_any_damage_is_detected() {
        let entries = vec![entry(1, 10), entry(u128::MAX, 0), entry(42, 1000)];
        let bytes = encode(&entries);
        let view = ShardView::parse(&bytes).unwrap();
        assert_eq!(view.len(), 3);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(view.key(i), e.key);
            assert_eq!(view.notes(i), e.notes);
            assert_eq!(view.sequence(i), e.sequence);
        }
        // A flipped byte anywhere after the header fails the checksum; a truncation fails
        // the size check; a damaged header is not a shard.
        for at in [HEADER, HEADER + 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(ShardView::parse(&bad).unwrap_err().contains("checksum"));
        }
        assert!(ShardView::parse(&bytes[..bytes.len() - 2]).is_err());
        assert!(ShardView::parse(b"MThd").is_err());
        let empty = encode(&[]);
        assert_eq!(ShardView::parse(&empty).unwrap().len(), 0);
    }
}
