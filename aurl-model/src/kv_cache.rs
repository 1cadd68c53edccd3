//! A true key/value cache: each decoding step appends one position's keys and values in
//! place (amortised-doubling buffer for full attention, a rolling buffer of `window` slots for
//! sliding attention) and attends over the cached keys, so a step costs O(current length)
//! attention and O(1) projections per layer, never a recomputation of earlier positions.
//!
//! Rows may also be at different positions (continuous batching): a row that joins
//! ([`KvCache::join`]) is placed so that its last key lands in the batch's last slot, and
//! the slots before its first one are hidden from it; rows that finish leave
//! ([`KvCache::retain`]). Full attention without block summaries only: a sliding window's
//! ring and the summaries count positions for the whole batch.

use burn::prelude::*;

use crate::ModelError;
use crate::musical::MusicalState;

/// The cached keys and values of every layer, for one batch of sequences advancing together.
///
/// Create it with [`crate::Transformer::new_cache`]; pass it to
/// [`crate::Transformer::forward`] with the offset of the tokens given (the number of
/// positions already cached).
#[derive(Debug, Clone)]
pub struct KvCache {
    batch: usize,
    window: Option<usize>,
    /// Positions per summary (hierarchical and multi-scale attention).
    block: Option<usize>,
    /// Slots written so far (the next token's position when every row started at slot 0).
    len: usize,
    /// Per row, the slot holding its position 0 (all 0 unless rows joined later).
    starts: Vec<usize>,
    layers: Vec<LayerKv>,
    /// Bars and in-bar position so far, with musical positions.
    pub(crate) musical: Option<MusicalState>,
}

/// One layer's buffers: `[batch, heads, capacity, d_head]`.
#[derive(Debug, Clone, Default)]
struct LayerKv {
    keys: Option<Tensor<4>>,
    values: Option<Tensor<4>>,
    summaries: Option<Summaries>,
}

/// Block summaries of one layer: the mean key and value of every complete block so far
/// `[batch, heads, blocks, d_head]`, and the keys and values of the incomplete block.
#[derive(Debug, Clone)]
struct Summaries {
    keys: Option<Tensor<4>>,
    values: Option<Tensor<4>>,
    pending_keys: Option<Tensor<4>>,
    pending_values: Option<Tensor<4>>,
}

/// Which keys the queries of one forward call see, in the order the cache hands them out.
#[derive(Debug, Clone)]
pub(crate) struct KeyPlan {
    /// Absolute position of every key, in order; `None` when every query may see every key
    /// (no mask needed).
    pub positions: Option<Vec<usize>>,
    /// Absolute position of every key, in order, when they are not the consecutive
    /// positions ending with the last query (a sliding window's ring buffer); relative
    /// attention then looks distances up per key.
    pub ring: Option<Vec<usize>>,
}

/// See [`KvCache::key_order`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOrder {
    /// Keys are positions `0..first_query + t`; the queries are the last `t`.
    Consecutive {
        /// Position of the first query.
        first_query: usize,
    },
    /// One query that sees every key handed out.
    AllVisible,
}

/// First capacity of a growing (full-attention) buffer.
const MIN_CAPACITY: usize = 64;

impl KvCache {
    pub(crate) fn new(
        batch: usize,
        n_layers: usize,
        window: Option<usize>,
        block: Option<usize>,
    ) -> Self {
        Self {
            batch,
            window,
            block,
            len: 0,
            starts: vec![0; batch],
            layers: vec![LayerKv::default(); n_layers],
            musical: None,
        }
    }

    /// Slots written so far: the offset of the next token (of every row, unless rows
    /// joined at different times: see [`KvCache::row_positions`]).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether rows are at different positions (some joined after the first slot):
    /// the cache then takes only [`crate::Transformer::forward_rows`].
    #[must_use]
    pub fn is_ragged(&self) -> bool {
        self.starts.iter().any(|&s| s > 0)
    }

    /// The position of each row's next token.
    #[must_use]
    pub fn row_positions(&self) -> Vec<usize> {
        self.starts.iter().map(|&s| self.len - s).collect()
    }

    /// Per row, the first slot it attends to (slots before hold other rows' keys).
    pub(crate) fn starts(&self) -> &[usize] {
        &self.starts
    }

    /// Whether rows can join and leave at different positions: full attention without
    /// block summaries.
    #[must_use]
    pub fn can_join(&self) -> bool {
        self.window.is_none() && self.block.is_none()
    }

    /// Appends the rows of `other` (a cache of the same model, filled by its own forward
    /// calls — a prompt's prefill) after this one's: each keeps its position, its keys are
    /// placed so that its last one lands in the last slot, and the slots before its first
    /// are hidden from it. When `other` holds more slots than this cache, this cache's rows
    /// move right instead. The rows of `other` come last, in order.
    ///
    /// # Errors
    /// [`ModelError::Shape`] if either cache has a sliding window or block summaries
    /// ([`KvCache::can_join`]), or their layers differ.
    pub fn join(&mut self, other: KvCache) -> Result<(), ModelError> {
        if !self.can_join() || !other.can_join() || self.layers.len() != other.layers.len() {
            return Err(ModelError::Shape(
                "only caches of full attention without block summaries, with equal layers, \
                 can join"
                    .into(),
            ));
        }
        if other.batch == 0 {
            return Ok(());
        }
        if self.batch == 0 {
            *self = other;
            return Ok(());
        }
        let len = self.len.max(other.len);
        let (shift, other_shift) = (len - self.len, len - other.len);
        let (b1, b2) = (self.batch, other.batch);
        for (mine, theirs) in self.layers.iter_mut().zip(other.layers) {
            for (buf, new) in [
                (&mut mine.keys, theirs.keys),
                (&mut mine.values, theirs.values),
            ] {
                let (Some(old), Some(new)) = (buf.take(), new) else {
                    return Err(ModelError::Shape("joining an empty cache".into()));
                };
                let [_, h, old_cap, d] = old.dims();
                // Room to grow as `grow_and_write` would leave it, so the next steps write in
                // place instead of copying the joined buffer again.
                let cap = old_cap.max((2 * (len + 1)).next_power_of_two().max(MIN_CAPACITY));
                let joined = Tensor::<4>::zeros([b1 + b2, h, cap, d], &old.device())
                    .slice_assign(
                        [0..b1, 0..h, shift..len, 0..d],
                        old.slice([0..b1, 0..h, 0..self.len, 0..d]),
                    )
                    .slice_assign(
                        [b1..b1 + b2, 0..h, other_shift..len, 0..d],
                        new.slice([0..b2, 0..h, 0..other.len, 0..d]),
                    );
                *buf = Some(joined);
            }
        }
        self.musical = match (self.musical.take(), other.musical) {
            (Some(a), Some(b)) => Some(a.cat(b)),
            _ => None,
        };
        self.starts = (self.starts.iter().map(|&s| s + shift))
            .chain(other.starts.iter().map(|&s| s + other_shift))
            .collect();
        self.batch += other.batch;
        self.len = len;
        Ok(())
    }

    /// Keeps rows `rows` in that order (those left out leave the batch), and drops the
    /// slots no remaining row attends to once they are a quarter of the cache or more.
    /// An empty `rows` empties the cache.
    ///
    /// # Errors
    /// [`ModelError::Shape`] if a row index is out of range.
    pub fn retain(&mut self, rows: &[usize]) -> Result<(), ModelError> {
        if rows.is_empty() {
            *self = Self::new(0, self.layers.len(), self.window, self.block);
            return Ok(());
        }
        let unchanged = rows.len() == self.batch && rows.iter().enumerate().all(|(i, &r)| i == r);
        if !unchanged {
            self.reorder(rows)?;
        }
        let first = self.starts.iter().copied().min().unwrap_or(0);
        if first > 0 && 4 * first >= self.len {
            for layer in &mut self.layers {
                for buf in [&mut layer.keys, &mut layer.values] {
                    if let Some(t) = buf.take() {
                        let [b, h, _, d] = t.dims();
                        *buf = Some(t.slice([0..b, 0..h, first..self.len, 0..d]));
                    }
                }
            }
            self.len -= first;
            for s in &mut self.starts {
                *s -= first;
            }
        }
        Ok(())
    }

    /// Whether nothing is cached yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows in the batch.
    #[must_use]
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Positions currently held per layer (at most the window for sliding attention).
    #[must_use]
    pub fn held(&self) -> usize {
        self.window.map_or(self.len, |w| self.len.min(w))
    }

    /// Makes row `i` a copy of old row `rows[i]` in every layer (rows may repeat or be
    /// dropped; the batch size may change): beam search continues each surviving
    /// hypothesis from its parent's keys and values without recomputing them.
    ///
    /// # Errors
    /// [`ModelError::Shape`] if a row index is out of range or `rows` is empty.
    pub fn reorder(&mut self, rows: &[usize]) -> Result<(), ModelError> {
        if rows.is_empty() || rows.iter().any(|&r| r >= self.batch) {
            return Err(ModelError::Shape(format!(
                "cache reorder: rows {rows:?} for a batch of {}",
                self.batch
            )));
        }
        let index: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let index = |device: &Device| {
            Tensor::<1, Int>::from_data(TensorData::new(index.clone(), [rows.len()]), device)
        };
        for layer in &mut self.layers {
            let summaries = layer.summaries.as_mut().map(|s| {
                [
                    &mut s.keys,
                    &mut s.values,
                    &mut s.pending_keys,
                    &mut s.pending_values,
                ]
            });
            let buffers = [&mut layer.keys, &mut layer.values]
                .into_iter()
                .chain(summaries.into_iter().flatten());
            for buf in buffers {
                if let Some(t) = buf.take() {
                    let rows = index(&t.device());
                    *buf = Some(t.select(0, rows));
                }
            }
        }
        if let Some(m) = self.musical.take() {
            let rows = index(&m.device());
            self.musical = Some(m.select(rows));
        }
        self.starts = rows.iter().map(|&r| self.starts[r]).collect();
        self.batch = rows.len();
        Ok(())
    }

    /// Forgets everything (buffers are kept for reuse).
    pub fn clear(&mut self) {
        self.len = 0;
        self.starts.fill(0);
        self.musical = None;
        for layer in &mut self.layers {
            layer.summaries = None;
        }
    }

    /// Plans a call adding `t` positions: which keys the layers will attend over.
    pub(crate) fn plan(&self, t: usize) -> KeyPlan {
        let positions = match self.window {
            None if t == 1 => None,
            None => Some((0..self.len + t).collect()),
            Some(_) if t == 1 => None,
            Some(w) => {
                let mut p: Vec<usize> = (0..self.len.min(w))
                    .map(|s| slot_position(s, self.len, w))
                    .collect();
                p.extend(self.len..self.len + t);
                Some(p)
            }
        };
        let ring = self.window.map(|w| {
            if t == 1 {
                // The new position is written first, then the valid slots are attended.
                let len = self.len + 1;
                (0..len.min(w)).map(|s| slot_position(s, len, w)).collect()
            } else {
                let mut p: Vec<usize> = (0..self.len.min(w))
                    .map(|s| slot_position(s, self.len, w))
                    .collect();
                p.extend(self.len..self.len + t);
                p
            }
        });
        KeyPlan { positions, ring }
    }

    /// How the keys of a call adding `t` positions relate to its queries: consecutive
    /// positions from 0 (queries from [`KvCache::len`]), or, for one query over a sliding
    /// window's ring, every held key visible in any order; `None` when the ring holds keys
    /// out of order for several queries.
    pub(crate) fn key_order(&self, t: usize) -> Option<KeyOrder> {
        match self.window {
            Some(_) if t == 1 => Some(KeyOrder::AllVisible),
            Some(w) if self.len > w => None,
            _ => Some(KeyOrder::Consecutive {
                first_query: self.len,
            }),
        }
    }

    /// Stores layer `layer`'s new keys and values (`[batch, heads, t, d_head]`) and returns
    /// the keys and values to attend over, in the order of [`KvCache::plan`].
    pub(crate) fn append(
        &mut self,
        layer: usize,
        keys: Tensor<4>,
        values: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let len = self.len;
        let window = self.window;
        let kv = &mut self.layers[layer];
        match window {
            None => {
                let k = grow_and_write(&mut kv.keys, keys, len);
                let v = grow_and_write(&mut kv.values, values, len);
                (k, v)
            }
            Some(w) => {
                let k = ring_write(&mut kv.keys, keys, len, w);
                let v = ring_write(&mut kv.values, values, len, w);
                (k, v)
            }
        }
    }

    /// Folds layer `layer`'s new keys and values (`[batch, heads, t, d_head]`, the positions
    /// `len..len + t`) into its block summaries and returns every complete block's summary
    /// so far (`None` before the first block completes). Without summaries configured,
    /// `None`.
    pub(crate) fn append_summaries(
        &mut self,
        layer: usize,
        keys: Tensor<4>,
        values: Tensor<4>,
    ) -> Option<(Tensor<4>, Tensor<4>)> {
        let block = self.block?;
        let s = self.layers[layer].summaries.get_or_insert(Summaries {
            keys: None,
            values: None,
            pending_keys: None,
            pending_values: None,
        });
        for (summary, pending, new) in [
            (&mut s.keys, &mut s.pending_keys, keys),
            (&mut s.values, &mut s.pending_values, values),
        ] {
            let all = match pending.take() {
                Some(p) => Tensor::cat(vec![p, new], 2),
                None => new,
            };
            let (full, rest) = block_means(all, block);
            if let Some(m) = full {
                *summary = Some(match summary.take() {
                    Some(old) => Tensor::cat(vec![old, m], 2),
                    None => m,
                });
            }
            *pending = rest;
        }
        Some((s.keys.clone()?, s.values.clone()?))
    }

    /// Records that every layer has appended `t` positions.
    pub(crate) fn commit(&mut self, t: usize) {
        self.len += t;
    }
}

/// The means of the complete `block`s of `x` `[b, h, n, d]` along positions
/// (`[b, h, n / block, d]`, `None` if there is none) and the positions after them.
pub(crate) fn block_means(x: Tensor<4>, block: usize) -> (Option<Tensor<4>>, Option<Tensor<4>>) {
    let [b, h, n, d] = x.dims();
    let blocks = n / block;
    let full = (blocks > 0).then(|| {
        x.clone()
            .narrow(2, 0, blocks * block)
            .reshape([b, h * blocks, block, d])
            .mean_dim(2)
            .reshape([b, h, blocks, d])
    });
    let rest = (blocks * block < n).then(|| x.narrow(2, blocks * block, n - blocks * block));
    (full, rest)
}

/// The position held by ring slot `s` once `len` positions went through a ring of `w` slots.
fn slot_position(s: usize, len: usize, w: usize) -> usize {
    if len <= w {
        s
    } else {
        let base = len - w;
        base + (s + w - base % w) % w
    }
}

/// Full attention: writes `new` at `len..len + t`, doubling the buffer when full, and returns
/// a view of the first `len + t` keys.
fn grow_and_write(buf: &mut Option<Tensor<4>>, new: Tensor<4>, len: usize) -> Tensor<4> {
    let [b, h, t, d] = new.dims();
    let need = len + t;
    let current = buf.take().filter(|x| x.dims()[0] == b && x.dims()[1] == h);
    let storage = match current {
        Some(c) if need <= c.dims()[2] => c,
        current => {
            // Twice what is needed, so a long prompt is not followed by a copy at the
            // first generated token.
            let cap = (2 * need).next_power_of_two().max(MIN_CAPACITY);
            let fresh = Tensor::<4>::zeros([b, h, cap, d], &new.device());
            match current {
                Some(old) if len > 0 => fresh.slice_assign(
                    [0..b, 0..h, 0..len, 0..d],
                    old.slice([0..b, 0..h, 0..len, 0..d]),
                ),
                _ => fresh,
            }
        }
    };
    let storage = storage.slice_assign([0..b, 0..h, len..need, 0..d], new);
    let view = storage.clone().slice([0..b, 0..h, 0..need, 0..d]);
    *buf = Some(storage);
    view
}

/// Sliding attention: a ring of `w` slots; position `p` lives in slot `p % w`.
/// For one new position it is written first and the ring is attended over directly; for
/// several, the attended keys are the held ring followed by the new ones (masked by
/// position), then the last `w` new ones are written.
fn ring_write(buf: &mut Option<Tensor<4>>, new: Tensor<4>, len: usize, w: usize) -> Tensor<4> {
    let [b, h, t, d] = new.dims();
    let mut ring = match buf.take().filter(|x| x.dims()[0] == b && x.dims()[1] == h) {
        Some(r) => r,
        None => Tensor::<4>::zeros([b, h, w, d], &new.device()),
    };
    let held = len.min(w);
    let attended = if t == 1 {
        let slot = len % w;
        ring = ring.slice_assign([0..b, 0..h, slot..slot + 1, 0..d], new);
        let valid = (len + 1).min(w);
        ring.clone().slice([0..b, 0..h, 0..valid, 0..d])
    } else {
        let keys = if held == 0 {
            new.clone()
        } else {
            Tensor::cat(
                vec![ring.clone().slice([0..b, 0..h, 0..held, 0..d]), new.clone()],
                2,
            )
        };
        // Write the last min(t, w) new positions into their slots (at most two runs).
        let m = t.min(w);
        let first = len + t - m;
        let s0 = first % w;
        let run1 = m.min(w - s0);
        let src = t - m;
        ring = ring.slice_assign(
            [0..b, 0..h, s0..s0 + run1, 0..d],
            new.clone().slice([0..b, 0..h, src..src + run1, 0..d]),
        );
        if run1 < m {
            ring = ring.slice_assign(
                [0..b, 0..h, 0..m - run1, 0..d],
                new.slice([0..b, 0..h, src + run1..t, 0..d]),
            );
        }
        keys
    };
    *buf = Some(ring);
    attended
}

#[cfg(test)]
mod tests {
    use super::slot_position;

    #[test]
    fn ring_slots_hold_the_latest_positions() {
        // 10 positions through 4 slots: slots hold 8, 9, 6, 7.
        let held: Vec<usize> = (0..4).map(|s| slot_position(s, 10, 4)).collect();
        assert_eq!(held, [8, 9, 6, 7]);
        assert_eq!(slot_position(2, 3, 4), 2);
        assert_eq!(slot_position(0, 4, 4), 0);
        assert_eq!(slot_position(0, 5, 4), 4);
    }
}
