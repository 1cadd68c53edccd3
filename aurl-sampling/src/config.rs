//! How a [`Generator`](crate::Generator) decodes: the strategy, the grammar constraint,
//! batching, cache, context, threads and weight precision.

use aurl_model::WeightFormat;
use serde::{Deserialize, Serialize};

use crate::strategy::Strategy;

/// How to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationConfig {
    /// How each token is chosen.
    pub strategy: Strategy,
    /// Only sample tokens the grammar allows (every piece is then grammar-valid).
    pub constrained: bool,
    /// Requests decoded together (rows of one batch share a prompt length).
    pub batch_size: usize,
    /// EOS is not sampled before this many new tokens (Hugging Face's `min_new_tokens`):
    /// for pieces of a guaranteed length, and for benchmarks that must do the same work
    /// every time. With the grammar on, a piece may still end early if nothing else is
    /// allowed.
    pub min_new_tokens: usize,
    /// Decode through the model's KV cache (one token per step after the prompt, which is
    /// fed through the cache 256 positions at a time, so a long prompt's attention needs
    /// O(prompt × 256) memory rather than O(prompt²)). `false` recomputes the whole prefix
    /// every step: only for measuring what the cache saves.
    pub use_cache: bool,
    /// Positions the model attends to while generating (`None`: all its positions). A
    /// cached request that outgrows them is generated on its own and **slides**: when the
    /// context is full, the model restarts from the last bars (about half the context,
    /// from a bar start), opened with the header state in force there (time signature,
    /// tempo) the way training windows open, and generation continues — so pieces far
    /// longer than the context can be made. The grammar state follows the whole piece, so
    /// constrained pieces stay valid across slides. Set it to the model's training length
    /// (`max_seq_len`) for the best quality far into a piece.
    pub context: Option<usize>,
    /// Threads decoding at once (at least 1). Requests are independent, so a batch is split
    /// into up to `workers` shards decoded in parallel, each with its own KV cache; results
    /// are the same as with one worker. On a CPU backend set it to the number of cores
    /// (`aurl::backend::decode_workers` does): a decode step's matrix products are too
    /// small for the backend to parallelise them itself. On a GPU keep 1.
    pub workers: usize,
    /// How the generator's copy of the model stores its projection weights
    /// ([`Transformer::with_weights`](aurl_model::Transformer::with_weights)): f32 (the
    /// model as it is), f16 or int8. A CPU decoding step is bound by reading the weights,
    /// and the kernels read f16 and int8 weights directly (widening them as they go), so
    /// fewer bytes decode faster; logits move by about 1e-3 (f16) or 1e-2 (int8) of their
    /// scale. The caller's model is never changed. Needs a backend with f16 support for
    /// f16 (every CPU backend; on wgpu, `shader-f16`).
    pub weights: WeightFormat,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            constrained: true,
            batch_size: 16,
            min_new_tokens: 0,
            use_cache: true,
            context: None,
            workers: 1,
            weights: WeightFormat::F32,
        }
    }
}
