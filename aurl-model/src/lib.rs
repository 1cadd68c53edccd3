//! Backend-neutral Burn modules for symbolic music models.
//!
//! Everything is written against Burn 0.22's `Tensor<D>` on a runtime [`burn::prelude::Device`],
//! so the same code runs on CPU (flex, ndarray), wgpu (Vulkan/Metal) and CUDA; backends are
//! chosen by the `aurl` facade's cargo features, never here.
//!
//! - [`TransformerConfig`] / [`Transformer`]: a decoder-only LM with sinusoidal, learned,
//!   rotary or relative ([`RelativePositions`], Music Transformer skewing) positions, optional
//!   musical (bar/beat) positions ([`MusicalPositions`]), full, sliding-window, hierarchical
//!   (window + block summaries) or multi-scale causal attention, GELU or SwiGLU blocks.
//! - [`KvCache`]: a true key/value cache (in-place appends, a rolling buffer for sliding
//!   attention) so decoding one token costs O(current length) per layer.
//! - [`vae`]: a transformer VAE (bidirectional encoder, global and per-segment latent codes,
//!   Gaussian or mixture prior, conditioned decoder) with its latent tools.
//! - [`Discriminator`]: the VAE-GAN's multi-scale discriminator over soft tokens
//!   ([`soft_tokens`], Gumbel-softmax option) with spectral normalization
//!   ([`SpectralLinear`]).
//! - [`loss`]: cross entropy with label smoothing, padding ignored and per-kind weights; KL
//!   with free bits and β schedules; adversarial losses; the grammar loss; loss balancing.
//! - [`weights`]: save and load a model with its config and vocabulary embedded (burnpack;
//!   with the `store` feature also safetensors, `safetensors::{save_safetensors,
//!   load_safetensors}`, readable from PyTorch).
//! - [`train`]: the training loop (AdamW, warm-up + cosine, global-norm clipping, validation).
//! - [`kernels`]: the costly operations (attention, linear, layer norm, GELU, dropout, token
//!   cross entropy) as a Burn backend extension — fused CPU kernels with hand-written
//!   backward passes on `flex`, their generic bodies on every other backend — and
//!   [`WeightFormat`]: f16 or int8 decoding copies of the weights
//!   ([`Transformer::with_weights`]).
//!
//! ```
//! use aurl_model::TransformerConfig;
//! use burn::prelude::*;
//!
//! let device = Device::flex();
//! let model = TransformerConfig::tiny(40).init(&device)?;
//! let tokens = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 5, 7, 9], [1, 4]), &device);
//! // Full forward, then the same logits one token at a time through the cache.
//! let full = model.forward(tokens.clone(), 0, None)?;
//! let mut cache = model.new_cache(1);
//! for i in 0..4 {
//!     let step = model.forward(tokens.clone().narrow(1, i, 1), i, Some(&mut cache))?;
//!     let diff = (step - full.clone().narrow(1, i, 1)).abs().max().into_scalar::<f32>();
//!     assert!(diff < 1e-4);
//! }
//! # Ok::<(), aurl_model::ModelError>(())
//! ```

#![warn(missing_docs)]

pub mod any;
mod attention;
mod block;
mod config;
mod discriminator;
mod eager;
mod error;
mod feed_forward;
pub mod kernels;
mod kv_cache;
pub mod loss;
mod mask;
mod musical;
mod positions;
mod project;
mod relative;
#[cfg(feature = "store")]
pub mod safetensors;
mod spectral;
pub mod train;
mod transformer;
pub mod vae;
mod vae_gan;
pub mod weights;
mod zero_is_none;

pub use attention::{SelfAttention, SelfAttentionConfig};
pub use block::Block;
pub use config::{AttentionKind, FeedForward, PositionEncoding, TransformerConfig, WeightFormat};
pub use discriminator::{Discriminator, DiscriminatorConfig, Judgement, ScaleHead, soft_tokens};
pub use error::ModelError;
pub use feed_forward::Mlp;
pub use kv_cache::KvCache;
pub use musical::{MusicalPositionConfig, MusicalPositions};
pub use positions::Positions;
pub use relative::RelativePositions;
pub use spectral::SpectralLinear;
pub use transformer::Transformer;
pub use vae_gan::{GanLossConfig, VaeGan, VaeGanConfig, VaeGanLoss};

/// Burn, re-exported so users build devices and tensors with the exact version we use.
pub use burn;

/// The README's quick start, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
