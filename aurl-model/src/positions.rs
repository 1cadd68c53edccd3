//! Absolute (sinusoidal, learned) and rotary position encodings.

use burn::nn::{Embedding, EmbeddingConfig, RotaryEncoding, RotaryEncodingConfig};
use burn::prelude::*;

use crate::config::{PositionEncoding, TransformerConfig};

/// The model's position encoding: something added to the token embeddings, or a rotary
/// encoding the attention layers apply to queries and keys.
#[derive(Module, Debug)]
pub struct Positions {
    /// Constant sinusoid table `[capacity, d_model]`.
    sinusoids: Option<Tensor<2>>,
    /// Learned table, one row per position.
    learned: Option<Embedding>,
    /// Rotary encoding over the head width.
    rotary: Option<RotaryEncoding>,
    capacity: usize,
}

impl Positions {
    /// The encoding `config` asks for, covering [`TransformerConfig::position_capacity`].
    #[must_use]
    pub fn new(config: &TransformerConfig, device: &Device) -> Self {
        let capacity = config.position_capacity();
        let d_head = config.d_model / config.n_heads.max(1);
        Self {
            sinusoids: (config.positions == PositionEncoding::Sinusoidal)
                .then(|| burn::nn::generate_sinusoids(capacity, config.d_model, 10_000, device)),
            learned: (config.positions == PositionEncoding::Learned)
                .then(|| EmbeddingConfig::new(capacity, config.d_model).init(device)),
            rotary: (config.positions == PositionEncoding::Rotary)
                .then(|| RotaryEncodingConfig::new(capacity, d_head).init(device)),
            capacity,
        }
    }

    /// Number of positions covered.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The rotary encoding, if positions are rotary.
    #[must_use]
    pub fn rotary(&self) -> Option<&RotaryEncoding> {
        self.rotary.as_ref()
    }

    /// Adds absolute positions `offset..offset + t` to embeddings `[b, t, d]` (identity for
    /// rotary positions). The caller checks `offset + t <= capacity`.
    pub fn add(&self, x: Tensor<3>, offset: usize) -> Tensor<3> {
        let [_, t, _] = x.dims();
        if let Some(table) = &self.sinusoids {
            return x + table.clone().narrow(0, offset, t).unsqueeze_dim::<3>(0);
        }
        if let Some(learned) = &self.learned {
            let device = x.device();
            let ids = Tensor::<1, Int>::arange(offset as i64..(offset + t) as i64, &device)
                .reshape([1, t]);
            return x + learned.forward(ids);
        }
        x
    }

    /// Adds one absolute position per row, `positions[i]` to row `i` of `x` `[b, 1, d]`
    /// (identity for rotary positions): rows at different positions decoded together.
    /// The caller checks every position is below the capacity.
    pub fn add_rows(&self, x: Tensor<3>, positions: &[usize]) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let device = x.device();
        let ids = || {
            let ids: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(ids, [b]), &device)
        };
        if let Some(table) = &self.sinusoids {
            return x + table.clone().select(0, ids()).reshape([b, t, d]);
        }
        if let Some(learned) = &self.learned {
            return x + learned.forward(ids().reshape([b, t]));
        }
        x
    }
}

/// `rotary` applied to `x` `[b, h, 1, d_head]` at one position per row (`positions`
/// `[b]`): the same arithmetic as [`RotaryEncoding::apply`], element for element, with the
/// frequencies gathered per row instead of sliced.
pub(crate) fn rotate_rows(
    rotary: &RotaryEncoding,
    x: Tensor<4>,
    positions: Tensor<1, Int>,
) -> Tensor<4> {
    let [b, h, t, d] = x.dims();
    let device = x.device();
    // The 2-D rotation [[cos, -sin], [sin, cos]] as products with signed ones, as `apply`.
    let sign = Tensor::<2>::from_floats([[1.0, 0.0, 0.0, 1.0], [0.0, -1.0, 1.0, 0.0]], &device);
    let freqs = rotary
        .freq_complex
        .clone()
        .select(0, positions)
        .reshape([b, 1, d, 2]);
    let out: Tensor<4> = x
        .reshape([b, h * t, d / 2, 2])
        .matmul(sign.unsqueeze())
        .reshape([b, h * t, d, 2])
        * freqs;
    out.sum_dim(3).reshape([b, h, t, d])
}
