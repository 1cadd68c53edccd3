//! The position-wise feed-forward part of a block: GELU or SwiGLU.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::config::FeedForward;
use crate::kernels;
use crate::project::project;

/// `down(gelu(up(x)))`, or `down(silu(gate(x)) ⊙ up(x))` when a gate is present.
///
/// Shapes: `[..., d_model]` → `[..., d_model]`.
#[derive(Module, Debug)]
pub struct Mlp {
    up: Linear,
    gate: Option<Linear>,
    down: Linear,
}

impl Mlp {
    /// A feed-forward part of hidden width `d_ff`.
    #[must_use]
    pub fn new(kind: FeedForward, d_model: usize, d_ff: usize, device: &Device) -> Self {
        Self {
            up: LinearConfig::new(d_model, d_ff).init(device),
            gate: (kind == FeedForward::SwiGlu)
                .then(|| LinearConfig::new(d_model, d_ff).init(device)),
            down: LinearConfig::new(d_ff, d_model).init(device),
        }
    }

    /// Applies the layer.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let hidden = match &self.gate {
            Some(gate) => silu(project(gate, x.clone())) * project(&self.up, x),
            None => kernels::gelu(project(&self.up, x)),
        };
        project(&self.down, hidden)
    }
}
