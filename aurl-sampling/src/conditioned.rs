//! Generation from a VAE's latent codes: the decoder's inputs are offset by the code's
//! conditioning at every position, on every decoding path of [`Generator`].

use std::path::Path;

use aurl_core::tokenize::{TokenId, Vocabulary};
use aurl_model::KvCache;
use aurl_model::any::Generative;
use aurl_model::vae::{Latent, Vae, interpolate};
use burn::prelude::*;

use crate::config::GenerationConfig;
use crate::generate::{Generator, Request};
use crate::{SamplingError, prompt_from_midi_bytes};

/// `count` latent codes along the spherical path from the code of the MIDI file `a` to that
/// of `b` (both ends included), for requests to a VAE's [`Generator`]: each file is
/// tokenized with the model's vocabulary (its first `max_seq_len` tokens) and encoded to
/// the mean of its posterior.
///
/// # Errors
/// [`SamplingError::InvalidConfig`] (field `interpolate`) when `model` is not a VAE;
/// [`SamplingError::PromptFile`] when a file cannot be read or tokenized.
pub fn interpolation_from_midi(
    model: &Generative,
    [a, b]: [&Path; 2],
    count: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, SamplingError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| SamplingError::PromptFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    };
    let (bytes_a, bytes_b) = (read(a)?, read(b)?);
    interpolation_from_midi_bytes(model, [&bytes_a, &bytes_b], count, device).map_err(|e| match e {
        SamplingError::InvalidMidi { what, reason } => SamplingError::PromptFile {
            path: if what.ends_with(".a") { a } else { b }.to_owned(),
            reason,
        },
        other => other,
    })
}

/// [`interpolation_from_midi`] for the bytes of two MIDI files (uploads, say).
///
/// # Errors
/// [`SamplingError::InvalidConfig`] (field `interpolate`) when `model` is not a VAE;
/// [`SamplingError::InvalidMidi`] (`interpolate.a`, `interpolate.b`) when bytes cannot be
/// read or tokenized.
pub fn interpolation_from_midi_bytes(
    model: &Generative,
    [a, b]: [&[u8]; 2],
    count: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, SamplingError> {
    let vae = model.vae().ok_or_else(|| SamplingError::InvalidConfig {
        field: "interpolate".into(),
        reason: "needs a VAE model (this one takes no latent code)".into(),
    })?;
    let vocabulary = model.vocabulary();
    let tokenizer = vocabulary
        .scheme()
        .tokenizer(vocabulary.config())
        .map_err(|e| SamplingError::InvalidConfig {
            field: "vocabulary".into(),
            reason: e.to_string(),
        })?;
    let code = |bytes: &[u8], what: &str| -> Result<Vec<f32>, SamplingError> {
        let ids = prompt_from_midi_bytes(bytes, tokenizer.as_ref(), model.max_seq_len()).map_err(
            |e| match e {
                SamplingError::InvalidMidi { reason, .. } => SamplingError::InvalidMidi {
                    what: what.into(),
                    reason,
                },
                other => other,
            },
        )?;
        Ok(vae.code_of(&ids, device))
    };
    Ok(interpolate(
        &code(a, "interpolate.a")?,
        &code(b, "interpolate.b")?,
        count,
    ))
}

/// Positions a cached prefill feeds the model per forward call. A long prompt goes through
/// the cache in chunks of this many, so its attention scores take O(prompt × chunk) memory
/// instead of O(prompt²) (a 4,096-token prompt: 4 MB per layer instead of 256 MB), and a
/// sliding window's prefill costs O(prompt × window) instead of O(prompt²). The result is
/// the same as one call's, up to summation order.
pub(crate) const PREFILL_CHUNK: usize = 256;

impl<'a> Generator<'a> {
    /// A generator for whatever a saved model generates with ([`Generative`], from
    /// [`aurl_model::any::load_any`]): a transformer samples next tokens; a VAE decodes
    /// (requests then carry latent codes, see [`Generative::prior_codes`]).
    ///
    /// # Errors
    /// As [`Generator::new`].
    pub fn for_model(
        model: &'a Generative,
        config: GenerationConfig,
    ) -> Result<Self, SamplingError> {
        match model {
            Generative::Transformer(t) => Self::new(&t.model, &t.vocabulary, config),
            Generative::Vae(v) => Self::conditioned(&v.model, &v.vocabulary, config),
        }
    }

    /// A generator decoding with `vae`'s decoder from each request's latent code
    /// ([`Request::latent`]: sample codes from the prior with `Vae::sample_prior`, or encode
    /// pieces, interpolate, add attribute vectors).
    ///
    /// # Errors
    /// As [`Generator::new`].
    pub fn conditioned(
        vae: &'a Vae,
        vocab: &Vocabulary,
        config: GenerationConfig,
    ) -> Result<Self, SamplingError> {
        let mut generator = Self::new(vae.decoder(), vocab, config)?;
        generator.vae = Some(vae);
        Ok(generator)
    }

    /// The batch's codes, when conditioned.
    pub(crate) fn batch_latent(
        &self,
        rows: &[(&[TokenId], &Request)],
    ) -> Result<Option<Latent>, SamplingError> {
        let Some(vae) = self.vae else {
            return Ok(None);
        };
        let codes: Vec<&[f32]> = rows
            .iter()
            .map(|(_, r)| r.latent.as_deref().unwrap_or(&[]))
            .collect();
        vae.latent_from_rows(&codes, &self.device)
            .map(Some)
            .map_err(|e| SamplingError::InvalidConfig {
                field: "latent".into(),
                reason: format!(
                    "every request needs a latent code of {} values ({e})",
                    vae.code_len()
                ),
            })
    }

    /// One forward call of the model, conditioned on `latent` when there is one.
    pub(crate) fn forward(
        &self,
        input: Tensor<2, Int>,
        offset: usize,
        cache: Option<&mut KvCache>,
        latent: Option<&Latent>,
    ) -> Result<Tensor<3>, SamplingError> {
        let condition = match (self.vae, latent) {
            (Some(vae), Some(latent)) => Some(vae.condition(latent, offset, input.dims()[1])),
            _ => None,
        };
        self.model
            .forward_conditioned(input, offset, cache, condition)
            .map_err(SamplingError::Model)
    }

    /// The logits after the last of `tokens` (`[b, t]`, row-major), `[b, 1, vocab]`, from
    /// position 0. With a cache (empty on entry) the tokens are fed through it
    /// [`PREFILL_CHUNK`] positions at a time and left in it.
    pub(crate) fn prefill(
        &self,
        tokens: Vec<i64>,
        b: usize,
        mut cache: Option<&mut KvCache>,
        latent: Option<&Latent>,
    ) -> Result<Tensor<3>, SamplingError> {
        let t = tokens.len() / b.max(1);
        let input = Tensor::<2, Int>::from_data(TensorData::new(tokens, [b, t]), &self.device);
        let chunk = if cache.is_some() { PREFILL_CHUNK } else { t };
        let mut start = 0;
        loop {
            let len = chunk.min(t - start);
            let part = if len == t {
                input.clone()
            } else {
                input.clone().narrow(1, start, len)
            };
            let logits = self.forward(part, start, cache.as_deref_mut(), latent)?;
            start += len;
            if start >= t {
                return Ok(logits.narrow(1, len - 1, 1));
            }
        }
    }
}
