//! Batched, KV-cached, grammar-constrained generation.

use std::borrow::Cow;

use aurl_core::tokenize::{
    Grammar, GrammarReport, GrammarState, Token, TokenId, TokenSequence, Vocabulary,
};
use aurl_data::windows::header_at;
use aurl_model::Transformer;
use aurl_model::WeightFormat;
use aurl_model::vae::Vae;
use burn::module::Module;
use burn::prelude::*;

use crate::SamplingError;
use crate::clock::Clock;
use crate::config::GenerationConfig;
use crate::controls::BarControl;
use crate::notes::StreamNote;
use crate::schedule;
use crate::strategy::Strategy;

mod batch;
mod continuous;

pub use continuous::{Continuous, RowToken, Step};

/// One piece to generate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    /// Tokens to continue (empty: start from BOS).
    pub prompt: Vec<TokenId>,
    /// Most tokens to add after the prompt (fewer if EOS comes first or the model's
    /// positions run out).
    pub max_new_tokens: usize,
    /// Stop before the piece would enter bar `max_bars` (counted from 0 over prompt and
    /// new tokens, by the grammar): the piece ends on a bar line.
    pub max_bars: Option<usize>,
    /// Stop before the onset time passes this many seconds (following the Tempo tokens;
    /// 120 BPM until the first). Notes started before may sound on.
    pub max_seconds: Option<f64>,
    /// Seed of this piece's sampling.
    pub seed: u64,
    /// The latent code a VAE decodes this piece from (its global code, then its local
    /// codes, as `aurl_model::vae::Latent::to_rows` lays them out); required by a
    /// [`Generator::conditioned`] generator, ignored otherwise.
    pub latent: Option<Vec<f32>>,
    /// Control tokens forced at bar boundaries (tempo, time signature, chord, program):
    /// each is placed at the first point of its bar where the grammar allows it, instead of
    /// a sampled token.
    pub controls: Vec<BarControl>,
    /// This piece's sampling strategy in place of the generator's
    /// ([`GenerationConfig::strategy`]), so that requests with different settings share a
    /// batch (a server's). Beam search uses the generator's.
    pub strategy: Option<Strategy>,
    /// Whether this piece follows the grammar, in place of the generator's
    /// ([`GenerationConfig::constrained`]). Beam search uses the generator's.
    pub constrained: Option<bool>,
    /// EOS is not sampled before this many new tokens, in place of the generator's
    /// ([`GenerationConfig::min_new_tokens`]). Beam search uses the generator's.
    pub min_new_tokens: Option<usize>,
    /// Stops this piece at the decoder's next step once cancelled (a client that went
    /// away); the rest of its batch goes on. The piece ends where it stopped. (Events reach
    /// a streaming callback through a channel, so a cancel issued from the callback lands
    /// a few tokens after the event it reacts to.)
    pub cancel: Option<CancelToken>,
}

/// A flag that cancels a [`Request`] from another thread; clones share it.
///
/// ```
/// use aurl_sampling::CancelToken;
/// let token = CancelToken::default();
/// let shared = token.clone();
/// shared.cancel();
/// assert!(token.is_cancelled());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl CancelToken {
    /// Cancels every request holding this token (or a clone of it).
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Tokens are equal when they are the same flag.
impl PartialEq for CancelToken {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Request {
    /// `count` copies of this request, seeded `seed`, `seed + 1`, …, the `i`-th decoding
    /// `latents[i]` when codes are given (for a VAE): `count` different pieces from one
    /// set of settings.
    ///
    /// ```
    /// use aurl_sampling::Request;
    /// let one = Request { seed: 7, max_new_tokens: 64, ..Request::default() };
    /// let codes = vec![vec![0.5], vec![-0.5]];
    /// let many = one.repeated(2, Some(&codes));
    /// assert_eq!(many.iter().map(|r| r.seed).collect::<Vec<_>>(), [7, 8]);
    /// assert_eq!(many[1].latent.as_deref(), Some(&[-0.5][..]));
    /// assert!(many.iter().all(|r| r.max_new_tokens == 64));
    /// ```
    #[must_use]
    pub fn repeated(&self, count: usize, latents: Option<&[Vec<f32>]>) -> Vec<Request> {
        (0..count)
            .map(|i| Request {
                seed: self.seed.wrapping_add(i as u64),
                latent: latents
                    .and_then(|l| l.get(i).cloned())
                    .or_else(|| self.latent.clone()),
                ..self.clone()
            })
            .collect()
    }
}

/// A generated piece.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Prompt followed by the new tokens.
    pub tokens: Vec<TokenId>,
    /// How many leading tokens are the prompt.
    pub prompt_len: usize,
    /// Whether the model ended the piece with EOS.
    pub ended: bool,
    /// Constrained pieces cut by the length limit are closed cleanly: a half-written note
    /// is removed and (event scheme) sounding notes get their note-offs. How many tokens
    /// that removed plus how many note-offs it added.
    pub closed: usize,
    /// Grammar check of the whole sequence.
    pub grammar: GrammarReport,
    /// Control tokens of [`Request::controls`] that could not be placed: their bar ended
    /// (or was skipped by a rest, or the piece ended after its `Bar` token) before the
    /// grammar allowed them. Controls of bars the piece never began are not counted.
    pub controls_dropped: usize,
}

/// One sampled token, as reported to the callback of [`Generator::generate_streaming`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenEvent {
    /// Index of the request (in the slice given to the generator).
    pub request: usize,
    /// The token.
    pub token: TokenId,
    /// New tokens of this request so far, this one included.
    pub new_tokens: usize,
    /// Wall time of the decoding step that produced it (the forward pass and sampling of
    /// the whole batch), in seconds: the per-token latency a real-time user sees.
    pub step_seconds: f64,
    /// The note this token completed, if any.
    pub note: Option<StreamNote>,
}

/// Generates token sequences from a model, optionally constrained by the token grammar.
#[derive(Debug)]
pub struct Generator<'a> {
    /// The decoder: the caller's model, or its copy with the configured weight format.
    pub(crate) model: Cow<'a, Transformer>,
    /// The VAE whose decoder `model` is, when generating from latent codes.
    pub(crate) vae: Option<&'a Vae>,
    pub(crate) grammar: Grammar,
    vocab: Vocabulary,
    pub(crate) config: GenerationConfig,
    pad: TokenId,
    pub(crate) bos: TokenId,
    pub(crate) eos: TokenId,
    pub(crate) device: Device,
}

impl<'a> Generator<'a> {
    /// A generator for `model`, whose ids mean `vocab`.
    ///
    /// # Errors
    /// [`SamplingError::InvalidConfig`] for a bad strategy or batch size, or a model whose
    /// output size is not the vocabulary's.
    pub fn new(
        model: &'a Transformer,
        vocab: &Vocabulary,
        config: GenerationConfig,
    ) -> Result<Self, SamplingError> {
        config.strategy.validate()?;
        for (field, value) in [
            ("batch_size", config.batch_size),
            ("workers", config.workers),
        ] {
            if value == 0 {
                return Err(SamplingError::InvalidConfig {
                    field: field.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        if model.vocab_size() != vocab.len() {
            return Err(SamplingError::InvalidConfig {
                field: "vocabulary".into(),
                reason: format!(
                    "the model predicts {} ids, the vocabulary has {}",
                    model.vocab_size(),
                    vocab.len()
                ),
            });
        }
        let device =
            model
                .devices()
                .into_iter()
                .next()
                .ok_or_else(|| SamplingError::InvalidConfig {
                    field: "model".into(),
                    reason: "the model has no parameters, hence no device".into(),
                })?;
        let model =
            if config.weights != WeightFormat::F32 && model.weight_format() != config.weights {
                Cow::Owned(model.clone().with_weights(config.weights))
            } else {
                Cow::Borrowed(model)
            };
        Ok(Self {
            model,
            vae: None,
            grammar: Grammar::new(vocab),
            vocab: vocab.clone(),
            config,
            pad: vocab.pad(),
            bos: vocab.bos(),
            eos: vocab.eos(),
            device,
        })
    }

    /// Generates every request, batching those with equal prompt lengths; results are in
    /// request order.
    ///
    /// # Errors
    /// [`SamplingError::InvalidPrompt`] for a prompt the grammar refuses (when constrained)
    /// or longer than the model's positions; [`SamplingError::Model`] if a forward fails.
    pub fn generate(&self, requests: &[Request]) -> Result<Vec<Generated>, SamplingError> {
        self.generate_streaming(requests, |_| {})
    }

    /// [`Generator::generate`], calling `on_token` with every token as soon as it is
    /// sampled (for real-time playback or progress). `on_token` runs on the calling thread;
    /// with [`GenerationConfig::workers`] above 1 several shards decode at once and their
    /// events interleave (each event names its request).
    ///
    /// # Errors
    /// As [`Generator::generate`].
    pub fn generate_streaming(
        &self,
        requests: &[Request],
        mut on_token: impl FnMut(TokenEvent),
    ) -> Result<Vec<Generated>, SamplingError> {
        for r in requests {
            self.check_request(r)?;
        }
        let prompts: Vec<Vec<TokenId>> = requests
            .iter()
            .map(|r| {
                if r.prompt.is_empty() {
                    vec![self.bos]
                } else {
                    r.prompt.clone()
                }
            })
            .collect();
        let context = self.context();
        // Requests that will slide their context are decoded alone.
        let slides: Vec<bool> = requests
            .iter()
            .zip(&prompts)
            .map(|(r, p)| self.config.use_cache && p.len() + r.max_new_tokens > context)
            .collect();
        let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let groups = schedule::batches(&lens, &slides, self.config.batch_size, self.config.workers);
        let batches = schedule::run(
            groups.len(),
            self.config.workers,
            |g, emit| {
                let group = &groups[g];
                let rows: Vec<(&[TokenId], &Request)> = group
                    .iter()
                    .map(|&i| (prompts[i].as_slice(), &requests[i]))
                    .collect();
                let mut report = |row: usize,
                                  token: TokenId,
                                  new_tokens: usize,
                                  step_seconds: f64,
                                  note: Option<StreamNote>| {
                    emit(TokenEvent {
                        request: group[row],
                        token,
                        new_tokens,
                        step_seconds,
                        note,
                    });
                };
                self.generate_batch(&rows, &mut report)
            },
            &mut on_token,
        )?;
        let mut out: Vec<Option<Generated>> = vec![None; requests.len()];
        for (group, generated) in groups.iter().zip(batches) {
            for (&i, g) in group.iter().zip(generated) {
                out[i] = Some(g);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Refuses a request whose controls or own strategy are invalid.
    fn check_request(&self, request: &Request) -> Result<(), SamplingError> {
        BarControl::validate(&request.controls, &self.vocab)?;
        match &request.strategy {
            Some(strategy) => strategy.validate(),
            None => Ok(()),
        }
    }

    /// The positions the model attends to (see [`GenerationConfig::context`]).
    fn context(&self) -> usize {
        let capacity = self.model.max_positions();
        self.config
            .context
            .map_or(capacity, |c| c.clamp(2, capacity))
    }

    /// The context a sliding request restarts from: about the last half of `context`
    /// tokens of `tokens`, from a bar start, behind the header state in force there.
    fn slid_context(&self, tokens: &[TokenId], context: usize) -> Vec<TokenId> {
        let sequence = TokenSequence {
            ids: tokens.to_vec(),
            bars: self.grammar.bar_starts(tokens),
        };
        let target = tokens.len().saturating_sub(context / 2);
        // The first bar start in the last half-context; without one, cut at the target.
        let start = sequence
            .bars
            .iter()
            .map(|b| b.token_index)
            .find(|&i| i >= target && i < tokens.len())
            .unwrap_or(target);
        let (mut out, body) = header_at(&sequence, start, &self.vocab);
        out.extend_from_slice(&tokens[body..]);
        let overflow = out.len().saturating_sub(context - 1);
        if overflow > 0 {
            // Only when the header plus a half context would not fit a tiny context.
            out.drain(..overflow);
        }
        out
    }

    /// Microseconds per quarter of a Tempo token.
    fn tempo_of(&self, id: TokenId) -> Option<u32> {
        match self.vocab.token(id) {
            Some(Token::Tempo(i)) => self.vocab.grid().tempos.get(usize::from(i)).copied(),
            _ => None,
        }
    }

    /// Whether `id` (already applied to `state`) takes the piece past its bar or time limit.
    fn past_limits(
        &self,
        request: &Request,
        state: &GrammarState,
        clock: &mut Clock,
        id: TokenId,
    ) -> bool {
        if request
            .max_bars
            .is_some_and(|m| state.bar_index() >= m as u64)
        {
            return true;
        }
        let resolution = f64::from(self.vocab.grid().resolution.max(1));
        let seconds = clock.advance(state.time_steps(), resolution, self.tempo_of(id));
        request.max_seconds.is_some_and(|m| seconds > m)
    }

    /// Whether `request` follows the grammar (its own setting, or the generator's).
    pub(crate) fn constrained(&self, request: &Request) -> bool {
        request.constrained.unwrap_or(self.config.constrained)
    }

    /// The strategy `request` samples with (its own, or the generator's).
    pub(crate) fn strategy<'s>(&'s self, request: &'s Request) -> &'s Strategy {
        request.strategy.as_ref().unwrap_or(&self.config.strategy)
    }

    /// The result for one finished row: constrained pieces cut by a limit are closed.
    pub(crate) fn finish(
        &self,
        mut tokens: Vec<TokenId>,
        prompt_len: usize,
        ended: bool,
        constrained: bool,
    ) -> Generated {
        let mut closed = 0;
        if constrained && !ended {
            let (fixed, report) = self.grammar.repair(&tokens);
            closed = report.unfinished_removed + report.closed_notes;
            tokens = fixed;
        }
        Generated {
            controls_dropped: 0,
            grammar: self.grammar.validate(&tokens),
            tokens,
            prompt_len,
            ended,
            closed,
        }
    }
}
