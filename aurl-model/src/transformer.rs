//! The decoder-only transformer language model.

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::attention::{AttentionContext, StructuredMask, SummaryPlan};
use crate::block::Block;
use crate::config::{AttentionKind, TransformerConfig, WeightFormat};
use crate::error::ModelError;
use crate::kernels;
use crate::kv_cache::{KeyOrder, KvCache};
use crate::mask::{MASKED, causal_bias, combine, padding_bias};
use crate::musical::MusicalPositions;
use crate::positions::Positions;
use crate::project::{HalfLinearWeights, Int8LinearWeights, project};

/// A decoder-only language model over token ids: embeddings, positions, pre-norm blocks,
/// a final norm and the output head.
///
/// Shapes: tokens `[batch, t]` (ids) → logits `[batch, t, vocab_size]`.
#[derive(Module, Debug)]
pub struct Transformer {
    embedding: Embedding,
    positions: Positions,
    musical: Option<MusicalPositions>,
    dropout: Dropout,
    blocks: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
    /// Sliding-window width (0 = full attention).
    window: usize,
    /// Which keys each query attends to.
    #[module(skip)]
    attention: AttentionKind,
    vocab_size: usize,
}

/// Where the tokens of a forward call sit.
#[derive(Debug, Clone, Copy)]
enum At<'p> {
    /// Consecutive positions from this one, for every row.
    Offset(usize),
    /// One token per row, at these positions.
    Rows(&'p [usize]),
}

impl TransformerConfig {
    /// Builds the model on `device`, every weight drawn at random now (seed with
    /// `device.seed(..)` first for reproducibility: what draws from the generator later
    /// does not change them).
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the bad field.
    pub fn init(&self, device: &Device) -> Result<Transformer, ModelError> {
        self.validate()?;
        Ok(crate::eager::eager(Transformer {
            embedding: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            positions: Positions::new(self, device),
            musical: self
                .musical_positions
                .as_ref()
                .map(|m| MusicalPositions::new(m, self.vocab_size, self.d_model, device)),
            dropout: DropoutConfig::new(self.dropout).init(),
            blocks: (0..self.n_layers)
                .map(|_| Block::new(self, device))
                .collect(),
            norm: LayerNormConfig::new(self.d_model).init(device),
            head: LinearConfig::new(self.d_model, self.vocab_size).init(device),
            window: self.window().unwrap_or(0),
            attention: self.attention,
            vocab_size: self.vocab_size,
        }))
    }
}

impl Transformer {
    /// Number of token ids the head predicts.
    #[must_use]
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Positions the encoding covers.
    #[must_use]
    pub fn max_positions(&self) -> usize {
        self.positions.capacity()
    }

    /// This model with the weight matrix of every projection (attention, feed-forward, output
    /// head) stored in half precision (f16), for decoding: a decoding step is bound by
    /// reading the weights, and half of the bytes make it faster on CPU backends. Products
    /// round their inputs to f16, accumulate in the backend's GEMM (f32 on CPUs without
    /// native f16 arithmetic) and return f32; embeddings, norms, attention over the cache
    /// and the softmax stay in f32. Logits move by about 1e-3 relative to the f32 model.
    ///
    /// Inference only: do not train it (keep the f32 model for that; saving it is refused
    /// by [`crate::weights::save_model`]), and use it only on a backend with f16 support
    /// (all CPU backends; on wgpu the adapter must offer `shader-f16`).
    #[must_use]
    pub fn with_half_weights(self) -> Self {
        self.map(&mut HalfLinearWeights::new(FloatDType::F16))
    }

    /// Whether [`Transformer::with_half_weights`] made this model.
    #[must_use]
    pub fn has_half_weights(&self) -> bool {
        self.weight_format() == WeightFormat::F16
    }

    /// This model with its projection weights stored as `format` (a decoding copy for F16
    /// and Int8, see [`WeightFormat`]; F32 returns the model as it is).
    #[must_use]
    pub fn with_weights(self, format: WeightFormat) -> Self {
        match format {
            WeightFormat::F32 => self,
            WeightFormat::F16 => self.with_half_weights(),
            WeightFormat::Int8 => self.map(&mut Int8LinearWeights::default()),
        }
    }

    /// How the projection weights are stored (read off the first attention projection).
    #[must_use]
    pub fn weight_format(&self) -> WeightFormat {
        let weight = match self.blocks.first() {
            Some(block) => block.first_projection_dtype(),
            None => self.head.weight.val().dtype(),
        };
        match weight {
            DType::F16 => WeightFormat::F16,
            DType::QFloat(_) => WeightFormat::Int8,
            _ => WeightFormat::F32,
        }
    }

    fn window(&self) -> Option<usize> {
        (self.window > 0).then_some(self.window)
    }

    /// The mask of a call as structure, when its attention takes [`crate::kernels::attention`]
    /// (full or sliding attention, positions other than relative) and its keys allow it.
    fn structured(&self, t: usize, cache: Option<&KvCache>) -> Option<StructuredMask> {
        let plain = matches!(
            self.attention,
            AttentionKind::Full | AttentionKind::Sliding { .. }
        ) && !self.blocks.iter().any(Block::has_relative_positions);
        if !plain {
            return None;
        }
        let (causal, offset, window) = match cache.map(|c| c.key_order(t)) {
            None => (true, 0, self.window()),
            Some(Some(KeyOrder::Consecutive { first_query })) => (true, first_query, self.window()),
            Some(Some(KeyOrder::AllVisible)) => (false, 0, None),
            Some(None) => return None,
        };
        Some(StructuredMask {
            causal,
            offset,
            window,
            key_bias: None,
        })
    }

    /// The block summaries of hierarchical and multi-scale attention.
    fn summary(&self) -> Option<SummaryPlan> {
        match self.attention {
            AttentionKind::Hierarchical { window, block }
            | AttentionKind::MultiScale { window, block } => Some(SummaryPlan { block, window }),
            _ => None,
        }
    }

    /// Multi-scale attention's local-scale bias for queries `offset..offset + t` over keys
    /// `first_key..offset + t` (consecutive), or `None` for other kinds.
    fn local_bias(
        &self,
        offset: usize,
        t: usize,
        first_key: usize,
        device: &Device,
    ) -> Option<Tensor<4>> {
        let AttentionKind::MultiScale { window, .. } = self.attention else {
            return None;
        };
        let keys: Vec<usize> = (first_key..offset + t).collect();
        causal_bias(offset, t, &keys, Some(window), device)
    }

    /// An empty KV cache for `batch` sequences decoded together.
    #[must_use]
    pub fn new_cache(&self, batch: usize) -> KvCache {
        KvCache::new(
            batch,
            self.blocks.len(),
            self.window(),
            self.summary().map(|s| s.block),
        )
    }

    /// Logits for `tokens` at positions `offset..offset + t`.
    ///
    /// Without a cache the tokens are the whole context (training, or full recomputation).
    /// With a cache, `offset` must equal [`KvCache::len`]: the tokens' keys and values are
    /// appended and earlier cached positions are attended to, so decoding one token per call
    /// costs O(current length) per layer.
    ///
    /// # Errors
    /// [`ModelError::PositionOutOfRange`] past the position capacity,
    /// [`ModelError::Shape`] for an empty input or a cache of another batch or offset.
    pub fn forward(
        &self,
        tokens: Tensor<2, Int>,
        offset: usize,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor<3>, ModelError> {
        self.forward_conditioned(tokens, offset, cache, None)
    }

    /// As [`Transformer::forward`], with `condition` (`[b or 1, t or 1, d_model]`) added to
    /// the input embeddings of every position: how a VAE's latent steers the decoder.
    ///
    /// # Errors
    /// As [`Transformer::forward`], and [`ModelError::Shape`] if `condition` does not
    /// broadcast onto `[b, t, d_model]`.
    pub fn forward_conditioned(
        &self,
        tokens: Tensor<2, Int>,
        offset: usize,
        mut cache: Option<&mut KvCache>,
        condition: Option<Tensor<3>>,
    ) -> Result<Tensor<3>, ModelError> {
        let [b, t] = tokens.dims();
        self.check_condition(b, t, condition.as_ref())?;
        self.check(b, t, offset, cache.as_deref())?;
        let device = tokens.device();
        let structured = self.structured(t, cache.as_deref());
        let (bias, ring) = match cache.as_deref() {
            _ if structured.is_some() => (None, None),
            Some(c) => {
                let plan = c.plan(t);
                let bias = plan
                    .positions
                    .and_then(|keys| causal_bias(offset, t, &keys, self.window(), &device));
                (bias, plan.ring)
            }
            None => {
                let keys: Vec<usize> = (offset..offset + t).collect();
                (causal_bias(offset, t, &keys, self.window(), &device), None)
            }
        };
        let first_key = if cache.is_some() { 0 } else { offset };
        let local_bias = self.local_bias(offset, t, first_key, &device);
        let logits = self.run(
            tokens,
            At::Offset(offset),
            (bias, local_bias),
            (ring, structured),
            condition,
            cache.as_deref_mut(),
        );
        if let Some(c) = cache {
            c.commit(t);
        }
        Ok(logits)
    }

    /// One token per row (`tokens` `[b, 1]`), each at its row's own position
    /// ([`KvCache::row_positions`]), appended to the cache: how rows that joined a batch at
    /// different times ([`KvCache::join`]) decode together, a row leaving when it is done
    /// ([`KvCache::retain`]). Each row's logits are those of [`Transformer::forward`] on
    /// that row alone — on Flex bit for bit, except with relative positions (equal up to
    /// rounding there). `condition` is `[b, 1, d_model]` (one row each) or broadcast.
    ///
    /// ```
    /// # use aurl_model::{TransformerConfig, burn::prelude::*};
    /// let device = Device::default();
    /// let model = TransformerConfig::tiny(16).init(&device).unwrap();
    /// let ids = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v.clone(), [1, v.len()]), &device);
    /// // A row with a 3-token prompt, then one that joins with a 1-token prompt.
    /// let mut cache = model.new_cache(1);
    /// model.forward(ids(vec![1, 2, 3]), 0, Some(&mut cache)).unwrap();
    /// let mut other = model.new_cache(1);
    /// model.forward(ids(vec![4]), 0, Some(&mut other)).unwrap();
    /// cache.join(other).unwrap();
    /// assert_eq!(cache.row_positions(), [3, 1]);
    /// let both = Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 6], [2, 1]), &device);
    /// let logits = model.forward_rows(both, &mut cache, None).unwrap();
    /// assert_eq!(logits.dims(), [2, 1, 16]);
    /// assert_eq!(cache.row_positions(), [4, 2]);
    /// ```
    ///
    /// # Errors
    /// [`ModelError::Shape`] for more than one token per row, a cache of another batch or
    /// one that cannot hold rows at different positions ([`KvCache::can_join`]);
    /// [`ModelError::PositionOutOfRange`] when a row is past the position capacity.
    pub fn forward_rows(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut KvCache,
        condition: Option<Tensor<3>>,
    ) -> Result<Tensor<3>, ModelError> {
        let [b, t] = tokens.dims();
        self.check_condition(b, t, condition.as_ref())?;
        if t != 1 || b != cache.batch() || !cache.can_join() || self.summary().is_some() {
            return Err(ModelError::Shape(format!(
                "forward_rows takes one token per row of a cache for {} rows of full \
                 attention, given [{b}, {t}]",
                cache.batch()
            )));
        }
        let positions = cache.row_positions();
        let capacity = self.positions.capacity();
        if let Some(&p) = positions.iter().find(|&&p| p >= capacity) {
            return Err(ModelError::PositionOutOfRange {
                position: p,
                max: capacity,
            });
        }
        let device = tokens.device();
        // Each row's keys start at its own slot: earlier slots hold other rows' keys and
        // weigh nothing (-inf, which the Flex kernel skips, so a row's arithmetic is that
        // of the row alone).
        let key_bias = cache.is_ragged().then(|| {
            let keys = cache.len() + 1;
            let bias: Vec<f32> = cache
                .starts()
                .iter()
                .flat_map(|&s| (0..keys).map(move |j| if j < s { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            Tensor::<2>::from_data(TensorData::new(bias, [b, keys]), &device)
        });
        let plain = !self.blocks.iter().any(Block::has_relative_positions);
        let (bias, structured) = if plain {
            let mask = StructuredMask {
                causal: false,
                offset: 0,
                window: None,
                key_bias,
            };
            (None, Some(mask))
        } else {
            let bias = key_bias.map(|k| {
                let keys = k.dims()[1];
                k.reshape([b, 1, 1, keys])
            });
            (bias, None)
        };
        let logits = self.run(
            tokens,
            At::Rows(&positions),
            (bias, None),
            (None, structured),
            condition,
            Some(&mut *cache),
        );
        cache.commit(1);
        Ok(logits)
    }

    /// Training forward over right- or left-padded sequences: `padding` `[batch, t]` is
    /// `true` at padding positions, which no query attends to.
    ///
    /// # Errors
    /// As [`Transformer::forward`], and [`ModelError::Shape`] if `padding` does not match.
    pub fn forward_padded(
        &self,
        tokens: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
    ) -> Result<Tensor<3>, ModelError> {
        self.forward_padded_conditioned(tokens, padding, None)
    }

    /// As [`Transformer::forward_padded`], with `condition` added to the input embeddings
    /// (see [`Transformer::forward_conditioned`]).
    ///
    /// # Errors
    /// As [`Transformer::forward_padded`] and [`Transformer::forward_conditioned`].
    pub fn forward_padded_conditioned(
        &self,
        tokens: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
        condition: Option<Tensor<3>>,
    ) -> Result<Tensor<3>, ModelError> {
        let [b, t] = tokens.dims();
        self.check_condition(b, t, condition.as_ref())?;
        if padding.dims() != [b, t] {
            return Err(ModelError::Shape(format!(
                "padding mask {:?} for tokens [{b}, {t}]",
                padding.dims()
            )));
        }
        self.check(b, t, 0, None)?;
        let device = tokens.device();
        if let Some(mut structured) = self.structured(t, None) {
            structured.key_bias = Some(padding.float().mul_scalar(MASKED));
            let run = self.run(
                tokens,
                At::Offset(0),
                (None, None),
                (None, Some(structured)),
                condition,
                None,
            );
            return Ok(run);
        }
        let keys: Vec<usize> = (0..t).collect();
        let padding = padding_bias(padding);
        let bias = combine(
            causal_bias(0, t, &keys, self.window(), &device),
            Some(padding.clone()),
        );
        let local_bias = self
            .local_bias(0, t, 0, &device)
            .map(|local| local + padding);
        Ok(self.run(
            tokens,
            At::Offset(0),
            (bias, local_bias),
            (None, None),
            condition,
            None,
        ))
    }

    /// Width of the residual stream.
    #[must_use]
    pub fn d_model(&self) -> usize {
        self.embedding.weight.dims()[1]
    }

    fn check_condition(
        &self,
        b: usize,
        t: usize,
        condition: Option<&Tensor<3>>,
    ) -> Result<(), ModelError> {
        let Some(c) = condition else { return Ok(()) };
        let [cb, ct, cd] = c.dims();
        let d = self.d_model();
        if (cb != b && cb != 1) || (ct != t && ct != 1) || cd != d {
            return Err(ModelError::Shape(format!(
                "condition {:?} for tokens [{b}, {t}] of width {d}",
                c.dims()
            )));
        }
        Ok(())
    }

    fn check(
        &self,
        b: usize,
        t: usize,
        offset: usize,
        cache: Option<&KvCache>,
    ) -> Result<(), ModelError> {
        if b == 0 || t == 0 {
            return Err(ModelError::Shape(format!("empty input [{b}, {t}]")));
        }
        if offset + t > self.positions.capacity() {
            return Err(ModelError::PositionOutOfRange {
                position: offset + t - 1,
                max: self.positions.capacity(),
            });
        }
        if let Some(c) = cache {
            if c.is_ragged() {
                return Err(ModelError::Shape(
                    "the cache's rows are at different positions: decode it with forward_rows"
                        .into(),
                ));
            }
            if c.batch() != b {
                return Err(ModelError::Shape(format!(
                    "cache for batch {} given a batch of {b}",
                    c.batch()
                )));
            }
            if c.len() != offset {
                return Err(ModelError::Shape(format!(
                    "cache holds {} positions but the offset is {offset}",
                    c.len()
                )));
            }
        }
        Ok(())
    }

    fn run(
        &self,
        tokens: Tensor<2, Int>,
        at: At<'_>,
        (bias, local_bias): (Option<Tensor<4>>, Option<Tensor<4>>),
        (ring, structured): (Option<Vec<usize>>, Option<StructuredMask>),
        condition: Option<Tensor<3>>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let embedded = self.embedding.forward(tokens.clone());
        let (mut x, offset, rows) = match at {
            At::Offset(offset) => (self.positions.add(embedded, offset), offset, None),
            At::Rows(positions) => {
                let ids: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
                let ids = TensorData::new(ids, [positions.len()]);
                let rows = Tensor::<1, Int>::from_data(ids, &embedded.device());
                (self.positions.add_rows(embedded, positions), 0, Some(rows))
            }
        };
        if let Some(musical) = &self.musical {
            let state = cache.as_deref().and_then(|c| c.musical.as_ref());
            let (m, next) = musical.forward(tokens, state);
            x = x + m;
            if let Some(c) = cache.as_deref_mut() {
                c.musical = Some(next);
            }
        }
        if let Some(c) = condition {
            x = x + c;
        }
        let mut x = kernels::dropout(&self.dropout, x);
        let context = AttentionContext {
            offset,
            rotary: self.positions.rotary(),
            rows,
            bias,
            ring,
            summaries: self.summary(),
            local_bias,
            structured,
        };
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, &context, cache.as_deref_mut().map(|c| (c, i)));
        }
        project(&self.head, kernels::layer_norm(&self.norm, x))
    }
}
