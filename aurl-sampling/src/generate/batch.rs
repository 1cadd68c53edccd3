//! One batch of requests decoded together: prompts checked and followed, then one token per
//! row per step until every row has ended or hit its limits.

use std::borrow::Cow;
use std::time::Instant;

use aurl_core::rng::SeedRng;
use aurl_core::tokenize::{GrammarState, TokenId, TokenMask};
use aurl_model::KvCache;
use aurl_model::vae::Latent;
use burn::prelude::*;

use super::{CancelToken, Generated, Generator, Request};
use crate::SamplingError;
use crate::clock::Clock;
use crate::controls::ControlQueue;
use crate::notes::{NoteFollower, StreamNote};
use crate::strategy::Scratch;

/// One request's decoding state.
pub(super) struct Row<'r> {
    pub(super) request: Cow<'r, Request>,
    /// The grammar state after the tokens so far.
    state: GrammarState,
    /// Onset time, following the Tempo tokens.
    clock: Clock,
    /// Completes notes as their last token arrives.
    follower: NoteFollower,
    controls: ControlQueue,
    /// Prompt and new tokens.
    pub(super) tokens: Vec<TokenId>,
    rng: SeedRng,
    /// Still generating.
    pub(super) active: bool,
    /// Ended by the model (EOS).
    pub(super) ended: bool,
}

impl Row<'_> {
    /// The finished piece (`prompt_len` leading tokens were the prompt).
    pub(super) fn finish(self, generator: &Generator<'_>, prompt_len: usize) -> Generated {
        let constrained = generator.constrained(&self.request);
        let mut generated = generator.finish(self.tokens, prompt_len, self.ended, constrained);
        generated.controls_dropped = self.controls.dropped_at_end();
        generated
    }
}

/// Buffers reused by every row and step.
pub(super) struct Buffers {
    mask: TokenMask,
    scratch: Scratch,
    row_copy: Vec<f32>,
}

impl Buffers {
    pub(super) fn new(vocab_size: usize) -> Self {
        Self {
            mask: TokenMask::new(vocab_size),
            scratch: Scratch::default(),
            row_copy: Vec::new(),
        }
    }
}

/// Callback of each generated token: row, token, new tokens so far, step seconds, note.
pub(super) type Report<'f> = dyn FnMut(usize, TokenId, usize, f64, Option<StreamNote>) + 'f;

impl Generator<'_> {
    /// Decodes `rows` (prompts of one length, with their requests) as one batch, reporting
    /// every token as it is sampled.
    pub(super) fn generate_batch(
        &self,
        rows: &[(&[TokenId], &Request)],
        report: &mut Report<'_>,
    ) -> Result<Vec<Generated>, SamplingError> {
        let b = rows.len();
        let p = rows[0].0.len();
        let context = self.context();
        // A lone cached request starts a prompt longer than the context from its last bars.
        let sliding = self.config.use_cache && b == 1;
        if p >= context && !sliding {
            return Err(SamplingError::InvalidPrompt {
                index: 0,
                reason: format!("{p} tokens leave no room in a context of {context} positions"),
            });
        }
        let mut states = rows
            .iter()
            .map(|&(prompt, request)| self.start_row(prompt, Cow::Borrowed(request)))
            .collect::<Result<Vec<_>, _>>()?;
        let latent = self.batch_latent(rows)?;
        let latent = latent.as_ref();
        let longest = rows
            .iter()
            .map(|(_, r)| r.max_new_tokens)
            .max()
            .unwrap_or(0);
        let mut cache = self.config.use_cache.then(|| self.model.new_cache(b));
        // A lone cached request may outgrow the context and slide; batches stop at it.
        let limit = if sliding {
            p + longest
        } else {
            (p + longest).min(context)
        };
        let mut flat: Vec<i64> = rows
            .iter()
            .flat_map(|(p, _)| p.iter().map(|&x| i64::from(x)))
            .collect();
        let mut prefill = p;
        if p >= context {
            let restart = self.slid_context(rows[0].0, context);
            prefill = restart.len();
            flat = restart.iter().map(|&x| i64::from(x)).collect();
        }
        let mut step_started = Instant::now();
        let mut logits = self.prefill(flat, b, cache.as_mut(), latent)?;
        let mut buffers = Buffers::new(self.model.vocab_size());
        let mut next = vec![0i64; b];
        // Tokens of the pieces fed to the model so far, and tokens in the cache (fewer once
        // a sliding request has restarted its context).
        let mut fed = p;
        let mut position = prefill;
        while fed < limit && states.iter().any(|s| s.active) {
            let vocab_size = self.model.vocab_size();
            let data = logits.reshape([b, vocab_size]).into_data();
            let values = data
                .as_slice::<f32>()
                .map_err(|e| SamplingError::Output(format!("{e:?}")))?;
            let mut sampled: Vec<(usize, TokenId, Option<StreamNote>)> = Vec::with_capacity(b);
            for (r, row) in states.iter_mut().enumerate() {
                next[r] = i64::from(self.pad);
                let logits = &values[r * vocab_size..(r + 1) * vocab_size];
                if let Some((id, note)) = self.step_row(row, logits, p, &mut buffers) {
                    next[r] = i64::from(id);
                    sampled.push((r, id, note));
                }
            }
            let step_seconds = step_started.elapsed().as_secs_f64();
            for (r, id, note) in sampled {
                report(r, id, states[r].tokens.len() - p, step_seconds, note);
            }
            if !states.iter().any(|s| s.active) || fed + 1 >= limit {
                break;
            }
            step_started = Instant::now();
            fed += 1;
            let step = self.next_logits(cache.as_mut(), &states, &next, position, latent)?;
            (logits, position) = step;
            position += 1;
        }
        Ok(states.into_iter().map(|row| row.finish(self, p)).collect())
    }

    /// A row's state after its prompt: the grammar (an invalid prompt is an error when
    /// constrained), and the clock and note follower through the prompt (whose notes are
    /// not reported: only generated ones are).
    pub(super) fn start_row<'r>(
        &self,
        prompt: &[TokenId],
        request: Cow<'r, Request>,
    ) -> Result<Row<'r>, SamplingError> {
        let mut state = self.grammar.start();
        if self.constrained(&request) {
            for &id in prompt {
                self.grammar
                    .advance(&mut state, id)
                    .map_err(|e| SamplingError::InvalidPrompt {
                        index: e.index,
                        reason: e.to_string(),
                    })?;
            }
        }
        let grid = self.vocab.grid();
        let resolution = f64::from(grid.resolution.max(1));
        let mut follower = NoteFollower::default();
        let mut clock = Clock::new();
        let mut followed = self.grammar.start();
        for &id in prompt {
            if self.grammar.advance(&mut followed, id).is_ok() {
                let seconds = clock.advance(followed.time_steps(), resolution, self.tempo_of(id));
                if let Some(token) = self.vocab.token(id) {
                    let per_step = clock.seconds_per_step(resolution);
                    follower.follow(token, grid, seconds, per_step, followed.bar_index());
                }
            }
        }
        Ok(Row {
            controls: ControlQueue::new(&request.controls, &state),
            state,
            clock,
            follower,
            tokens: prompt.to_vec(),
            rng: SeedRng::derive(request.seed, &[]),
            active: request.max_new_tokens > 0,
            ended: false,
            request,
        })
    }

    /// The next token of an active `row` from its `logits` (a forced control token when
    /// one is due), with the note it completes; `None` when the row stops instead.
    #[inline]
    pub(super) fn step_row<'l>(
        &self,
        row: &mut Row<'_>,
        mut logits: &'l [f32],
        prompt_len: usize,
        buffers: &'l mut Buffers,
    ) -> Option<(TokenId, Option<StreamNote>)> {
        if !row.active {
            return None;
        }
        if row
            .request
            .cancel
            .as_ref()
            .is_some_and(CancelToken::is_cancelled)
        {
            row.active = false;
            return None;
        }
        let min_new_tokens = row
            .request
            .min_new_tokens
            .unwrap_or(self.config.min_new_tokens);
        if row.tokens.len() - prompt_len < min_new_tokens {
            buffers.row_copy.clear();
            buffers.row_copy.extend_from_slice(logits);
            if let Some(eos) = buffers.row_copy.get_mut(usize::from(self.eos)) {
                *eos = f32::NEG_INFINITY;
            }
            logits = &buffers.row_copy;
        }
        let forced = row
            .controls
            .take_allowed(|id| self.grammar.is_allowed(&row.state, id));
        let id = match forced {
            Some(id) => id,
            None => {
                let allowed = if self.constrained(&row.request) {
                    self.grammar.allowed(&row.state, &mut buffers.mask);
                    Some(&buffers.mask)
                } else {
                    None
                };
                let sampled = self.strategy(&row.request).sample(
                    logits,
                    allowed,
                    &row.tokens,
                    &mut row.rng,
                    &mut buffers.scratch,
                );
                let Some(id) = sampled else {
                    row.active = false;
                    return None;
                };
                id
            }
        };
        let _ = self.grammar.advance(&mut row.state, id);
        if self.past_limits(&row.request, &row.state, &mut row.clock, id) {
            row.active = false;
            return None;
        }
        row.controls.observe(&row.state);
        let grid = self.vocab.grid();
        let resolution = f64::from(grid.resolution.max(1));
        let note = self.vocab.token(id).and_then(|token| {
            row.follower.follow(
                token,
                grid,
                row.clock.seconds,
                row.clock.seconds_per_step(resolution),
                row.state.bar_index(),
            )
        });
        row.tokens.push(id);
        if id == self.eos {
            row.ended = true;
            row.active = false;
        } else if row.tokens.len() - prompt_len >= row.request.max_new_tokens {
            row.active = false;
        }
        Some((id, note))
    }

    /// The logits after feeding `next` (one token per row) at `position`: through the KV
    /// cache (a lone request past the context restarts it from its last bars, returning the
    /// position it restarted at), or, uncached, by running the whole prefix again.
    fn next_logits(
        &self,
        cache: Option<&mut KvCache>,
        rows: &[Row<'_>],
        next: &[i64],
        position: usize,
        latent: Option<&Latent>,
    ) -> Result<(Tensor<3>, usize), SamplingError> {
        let b = rows.len();
        match cache {
            Some(cache) if position >= self.context() => {
                // Only a lone request gets here (batches stop at the context).
                let restart = self.slid_context(&rows[0].tokens, self.context());
                *cache = self.model.new_cache(1);
                let position = restart.len() - 1;
                let restart = restart.iter().map(|&x| i64::from(x)).collect();
                Ok((self.prefill(restart, 1, Some(cache), latent)?, position))
            }
            Some(cache) => {
                let input = Tensor::<2, Int>::from_data(
                    TensorData::new(next.to_vec(), [b, 1]),
                    &self.device,
                );
                Ok((
                    self.forward(input, position, Some(cache), latent)?,
                    position,
                ))
            }
            None => {
                // Uncached: the whole prefix again (finished rows repeat padding).
                let flat: Vec<i64> = rows
                    .iter()
                    .flat_map(|row| {
                        let t = &row.tokens;
                        let pad = position + 1 - t.len().min(position + 1);
                        t.iter()
                            .take(position + 1)
                            .map(|&x| i64::from(x))
                            .chain(std::iter::repeat_n(i64::from(self.pad), pad))
                    })
                    .collect();
                let input = Tensor::<2, Int>::from_data(
                    TensorData::new(flat, [b, position + 1]),
                    &self.device,
                );
                let logits = self.forward(input, 0, None, latent)?;
                Ok((logits.narrow(1, position, 1), position))
            }
        }
    }
}
