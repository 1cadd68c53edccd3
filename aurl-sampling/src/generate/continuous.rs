//! Continuous batching: rows join a running batch at its next step and leave it when they
//! are done, each at its own position in one KV cache ([`aurl_model::KvCache::join`],
//! [`aurl_model::Transformer::forward_rows`]), so requests that arrive at different times
//! share every decoding step.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use aurl_core::tokenize::TokenId;
use aurl_model::KvCache;
use burn::prelude::*;
use rayon::prelude::*;

use super::batch::{Buffers, Row};
use super::{Generated, Generator, Request};
use crate::SamplingError;
use crate::notes::StreamNote;
use crate::schedule::on_pool;

/// A batch that rows join and leave between decoding steps.
///
/// Each row samples with its own seed and settings and attends only to its own keys, so a
/// piece does not depend on which rows it shared steps with: on the CPU backend it is the
/// piece [`Generator::generate`] gives for its request alone, token for token (models with
/// relative positions: equal up to rounding, which can change a sampled token in rare
/// cases). A row whose piece outgrows the model's context restarts its context from its
/// last bars, as a lone request does, and rejoins.
///
/// ```
/// # use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
/// # use aurl_model::TransformerConfig;
/// # use aurl_sampling::{Continuous, GenerationConfig, Generator, Request};
/// # use burn::prelude::*;
/// # let remi = Remi::new(&TokenizerConfig::default()).unwrap();
/// # let device = Device::flex();
/// # let model = TransformerConfig::tiny(remi.vocab().len()).init(&device).unwrap();
/// let generator = Generator::new(&model, remi.vocab(), GenerationConfig::default()).unwrap();
/// let mut batch = Continuous::new(&generator).unwrap();
/// // Eight new tokens (no EOS before them), then a second request joins at step 3.
/// let long = Request { max_new_tokens: 8, min_new_tokens: Some(8), seed: 1, ..Request::default() };
/// batch.join(1, long).unwrap();
/// let mut done = Vec::new();
/// let mut steps = 0;
/// while !batch.is_empty() {
///     if steps == 3 {
///         // A second request joins the running batch.
///         batch.join(2, Request { max_new_tokens: 4, seed: 2, ..Request::default() }).unwrap();
///     }
///     done.extend(batch.step().unwrap().finished);
///     steps += 1;
/// }
/// assert_eq!(done.len(), 2);
/// ```
#[derive(Debug)]
pub struct Continuous<'g, 'a> {
    generator: &'g Generator<'a>,
    cache: KvCache,
    rows: Vec<Live>,
    /// Each row's logits for its next token, row-major `[rows, vocab]`.
    logits: Vec<f32>,
}

/// One row of the batch.
struct Live {
    key: u64,
    row: Row<'static>,
    prompt_len: usize,
    /// A VAE decoder's condition of this row, `[1, 1 or context, d_model]` (per position
    /// when the code has local parts).
    condition: Option<Tensor<3>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("key", &self.key)
            .field("tokens", &self.row.tokens.len())
            .finish_non_exhaustive()
    }
}

/// A request ready to join: its row and the tokens its prefill feeds.
struct Pending {
    live: Live,
    fed: Vec<TokenId>,
}

/// A token sampled by one row of a [`Continuous`] batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowToken {
    /// The key the row joined with.
    pub key: u64,
    /// The token.
    pub token: TokenId,
    /// New tokens of this row so far, this one included.
    pub new_tokens: usize,
    /// The note this token completed, if any.
    pub note: Option<StreamNote>,
}

/// What one [`Continuous::step`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// The token each row sampled (rows that stopped instead have none).
    pub tokens: Vec<RowToken>,
    /// Rows that finished at this step (EOS, a limit, a cancel), with their pieces; they
    /// have left the batch.
    pub finished: Vec<(u64, Generated)>,
    /// Rows that decoded at this step.
    pub rows: usize,
    /// Wall time of the step in seconds (sampling every row, then one forward call).
    pub seconds: f64,
}

impl<'g, 'a> Continuous<'g, 'a> {
    /// An empty batch decoding with `generator`.
    ///
    /// # Errors
    /// [`SamplingError::InvalidConfig`] when the generator decodes without a KV cache or
    /// the model's attention keeps per-batch state (a sliding window, block summaries):
    /// such models decode requests in fixed batches ([`Generator::generate`]).
    pub fn new(generator: &'g Generator<'a>) -> Result<Self, SamplingError> {
        if !Self::supports(generator) {
            return Err(SamplingError::InvalidConfig {
                field: "model".into(),
                reason: "continuous batching needs the KV cache and full attention without \
                         block summaries"
                    .into(),
            });
        }
        Ok(Self {
            generator,
            cache: generator.model.new_cache(0),
            rows: Vec::new(),
            logits: Vec::new(),
        })
    }

    /// Whether `generator` can decode a [`Continuous`] batch.
    #[must_use]
    pub fn supports(generator: &Generator<'_>) -> bool {
        generator.config.use_cache && generator.model.new_cache(0).can_join()
    }

    /// Rows in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is decoding.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds `request` under `key` (the caller's name for it, reported with its tokens):
    /// its prompt is prefilled alone, then the row decodes with the others from the next
    /// step.
    ///
    /// # Errors
    /// As [`Generator::generate`] for this request; the batch is unchanged.
    pub fn join(&mut self, key: u64, request: Request) -> Result<(), SamplingError> {
        let mut results = self.join_all(vec![(key, request)]);
        results.pop().map_or(Ok(()), |(_, result)| result)
    }

    /// Adds several requests at once: those whose prompts have the same length are
    /// prefilled together in one batched forward call (a burst of arrivals reaches its
    /// first step sooner than joining one by one), then decode with the others from the
    /// next step. The pieces are those [`Continuous::join`] gives.
    ///
    /// Returns each key with its outcome: a refused request (as [`Generator::generate`]
    /// refuses it) or a failed prefill leaves the batch without it.
    pub fn join_all(
        &mut self,
        requests: Vec<(u64, Request)>,
    ) -> Vec<(u64, Result<(), SamplingError>)> {
        let mut out = Vec::with_capacity(requests.len());
        let mut groups: BTreeMap<usize, Vec<Pending>> = BTreeMap::new();
        for (key, request) in requests {
            match self.pending(key, request) {
                Ok(p) => groups.entry(p.fed.len()).or_default().push(p),
                Err(e) => out.push((key, Err(e))),
            }
        }
        for group in groups.into_values() {
            let keys: Vec<u64> = group.iter().map(|p| p.live.key).collect();
            let result = self.prefill_group(group);
            out.extend(keys.into_iter().map(|k| (k, result.clone())));
        }
        out
    }

    /// `request`, checked, with its row state and what its prefill feeds.
    fn pending(&self, key: u64, request: Request) -> Result<Pending, SamplingError> {
        let generator = self.generator;
        generator.check_request(&request)?;
        let prompt = if request.prompt.is_empty() {
            vec![generator.bos]
        } else {
            request.prompt.clone()
        };
        let latent = generator.batch_latent(&[(&prompt, &request)])?;
        let row = generator.start_row(&prompt, Cow::Owned(request))?;
        let context = generator.context();
        let condition = match (generator.vae, &latent) {
            (Some(vae), Some(latent)) => Some(vae.condition(latent, 0, context)),
            _ => None,
        };
        let prompt_len = prompt.len();
        let fed = if prompt_len >= context {
            generator.slid_context(&prompt, context)
        } else {
            prompt
        };
        Ok(Pending {
            live: Live {
                key,
                row,
                prompt_len,
                condition,
            },
            fed,
        })
    }

    /// Prefills `group` (prompts of one length) as one batch and adds its rows.
    fn prefill_group(&mut self, group: Vec<Pending>) -> Result<(), SamplingError> {
        let generator = self.generator;
        let b = group.len();
        let rows: Vec<(&[TokenId], &Request)> = group
            .iter()
            .map(|p| (p.fed.as_slice(), &*p.live.row.request))
            .collect();
        let latent = generator.batch_latent(&rows)?;
        let flat: Vec<i64> = group
            .iter()
            .flat_map(|p| p.fed.iter().map(|&x| i64::from(x)))
            .collect();
        let (cache, logits) = on_pool(|| -> Result<_, SamplingError> {
            let mut cache = generator.model.new_cache(b);
            let logits = generator.prefill(flat, b, Some(&mut cache), latent.as_ref())?;
            Ok((cache, floats(logits)?))
        })?;
        self.cache.join(cache).map_err(SamplingError::Model)?;
        self.logits.extend_from_slice(&logits);
        self.rows.extend(group.into_iter().map(|p| p.live));
        Ok(())
    }

    /// One decoding step: every row samples its next token, rows that are done leave (in
    /// [`Step::finished`]), and the others' tokens go through the model together.
    ///
    /// # Errors
    /// [`SamplingError::Model`] if the forward call fails; the batch is then empty (its
    /// rows are lost).
    pub fn step(&mut self) -> Result<Step, SamplingError> {
        let started = Instant::now();
        let result = on_pool(|| self.advance());
        if result.is_err() {
            self.clear();
        }
        let mut step = result?;
        step.seconds = started.elapsed().as_secs_f64();
        Ok(step)
    }

    /// Drops every row.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.logits.clear();
        self.cache = self.generator.model.new_cache(0);
    }

    fn advance(&mut self) -> Result<Step, SamplingError> {
        let generator = self.generator;
        let vocab = generator.model.vocab_size();
        let context = generator.context();
        let mut step = Step {
            rows: self.rows.len(),
            ..Step::default()
        };
        // Rows sample on both cores (each has its own generator state and seed).
        let sampled: Vec<Option<(TokenId, Option<StreamNote>)>> = self
            .rows
            .par_iter_mut()
            .zip(self.logits.par_chunks(vocab))
            .map_init(
                || Buffers::new(vocab),
                |buffers, (live, logits)| {
                    generator.step_row(&mut live.row, logits, live.prompt_len, buffers)
                },
            )
            .collect();
        let mut next = Vec::with_capacity(self.rows.len());
        for (live, sampled) in self.rows.iter().zip(sampled) {
            if let Some((token, note)) = sampled {
                step.tokens.push(RowToken {
                    key: live.key,
                    token,
                    new_tokens: live.row.tokens.len() - live.prompt_len,
                    note,
                });
            }
            next.push(sampled.map(|(token, _)| token));
        }
        // Rows going on in the cache, rows restarting their context, rows done.
        let positions = self.cache.row_positions();
        let mut kept = Vec::new();
        let mut sliding = Vec::new();
        let mut rows: Vec<Option<Live>> = self.rows.drain(..).map(Some).collect();
        for (i, live) in rows.iter_mut().enumerate() {
            match (next[i], positions[i] < context) {
                (Some(_), true) => kept.push(i),
                (Some(_), false) => sliding.push(i),
                (None, _) => {
                    if let Some(live) = live.take() {
                        let generated = live.row.finish(generator, live.prompt_len);
                        step.finished.push((live.key, generated));
                    }
                }
            }
        }
        self.cache.retain(&kept).map_err(SamplingError::Model)?;
        self.logits.clear();
        if !kept.is_empty() {
            let ids: Vec<i64> = kept.iter().map(|&i| next[i].map_or(0, i64::from)).collect();
            let tokens = Tensor::<2, Int>::from_data(
                TensorData::new(ids, [kept.len(), 1]),
                &generator.device,
            );
            let conditions: Option<Vec<Tensor<3>>> = kept
                .iter()
                .map(|&i| {
                    let c = rows[i].as_ref()?.condition.clone()?;
                    let n = c.dims()[1];
                    Some(if n > 1 {
                        c.narrow(1, positions[i].min(n - 1), 1)
                    } else {
                        c
                    })
                })
                .collect();
            let condition = conditions.map(|c| Tensor::cat(c, 0));
            let logits = generator
                .model
                .forward_rows(tokens, &mut self.cache, condition)
                .map_err(SamplingError::Model)?;
            self.logits = floats(logits)?;
        }
        self.rows = kept.iter().filter_map(|&i| rows[i].take()).collect();
        for i in sliding {
            if let Some(live) = rows[i].take() {
                self.restart(live)?;
            }
        }
        Ok(step)
    }

    /// Rejoins `live` (its piece at the end of the context) from about its last half
    /// context, as a lone request slides.
    fn restart(&mut self, live: Live) -> Result<(), SamplingError> {
        let generator = self.generator;
        let fed = generator.slid_context(&live.row.tokens, generator.context());
        self.prefill_group(vec![Pending { live, fed }])
    }
}

/// The values of a logits tensor.
fn floats(logits: Tensor<3>) -> Result<Vec<f32>, SamplingError> {
    logits
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| SamplingError::Output(format!("{e:?}")))
}
