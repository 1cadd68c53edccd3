//! One step's gradients: `train.grad_accumulation` micro-batches, each loss (the model's
//! objective plus the grammar loss) scaled by 1/k so the loss reported is their mean, both
//! players' gradients summed; the second player's extra rounds come first.

use std::collections::BTreeMap;
use std::time::Instant;

use aurl_core::tokenize::TokenId;
use burn::optim::{GradientsAccumulator, GradientsParams};

use super::adversary::adversary_round;
use super::distributed::{Collective, CollectiveError, GradientPacking, shard};
use super::objective::{StepContext, TrainBatch, TrainModel};
use super::session::{Rates, Session, fits};
use super::{TokenWindows, WindowTensors};
use crate::error::ModelError;

/// What one step computed before its optimizer steps.
#[derive(Default)]
pub(super) struct StepGradients {
    /// The generator's (the only player's) gradients.
    pub(super) grads: GradientsParams,
    /// The second player's gradients (empty for models without one).
    pub(super) adversary_grads: GradientsParams,
    /// The mean loss over the micro-batches.
    pub(super) loss: f64,
    /// The second player's mean loss (0 without one).
    pub(super) adversary_loss: f64,
    /// Target tokens trained on.
    pub(super) tokens: usize,
    /// The named parts of the loss and values of the step (`components` in the metrics).
    pub(super) components: BTreeMap<&'static str, f64>,
}

/// Buffers a run's batches reuse from step to step.
#[derive(Default)]
pub(super) struct Batches {
    rows: TokenWindows,
    /// The rows of `rows` this process trains on (all of them, or its rank's share).
    all_rows: Vec<usize>,
    input_rows: Vec<Vec<TokenId>>,
    /// This rank's share of the batch's real target tokens (1 alone): its loss's weight.
    weight: f64,
    /// The batch's real target tokens over all ranks.
    tokens: usize,
}

impl<M: TrainModel<Config = C>, C: Clone> Session<'_, '_, M, C> {
    /// The gradients of the step at `self.state.step` for `model` (returned, changed by the
    /// second player's extra rounds if it has any).
    ///
    /// # Errors
    /// The data order or the model's objective failed; windows longer than the model's
    /// positions (a length curriculum).
    pub(super) fn gradients(
        &mut self,
        mut model: M,
        rates: Rates,
        batches: &mut Batches,
    ) -> Result<(M, StepGradients), ModelError> {
        let micro = self.config.grad_accumulation;
        let context = StepContext {
            step: self.state.step,
            seed: self.trainer.noise_seed(),
            keep_logits: self.grammar.is_some(),
            adversary: rates.adversary_step,
        };
        let mut out = StepGradients::default();
        let mut accumulated = GradientsAccumulator::<M>::new();
        let mut adversary_accumulated = GradientsAccumulator::<M>::new();
        for round in 0..micro {
            let batch = self.next_batch(&model, batches)?;
            if rates.adversary_step && round == 0 {
                model = self.adversary_rounds(model, &batch, context, rates.adversary_lr)?;
            }
            let (grads, adversary_grads) =
                self.micro_batch(&model, batch, context, batches, &mut out)?;
            if micro == 1 {
                (out.grads, out.adversary_grads) = (grads, adversary_grads);
            } else {
                accumulated.accumulate(&model, grads);
                adversary_accumulated.accumulate(&model, adversary_grads);
            }
        }
        if micro > 1 {
            (out.grads, out.adversary_grads) = (accumulated.grads(), adversary_accumulated.grads());
        }
        if let Some(ranks) = self.trainer.ranks() {
            sum_over_ranks(&model, ranks, &mut out)
                .map_err(|e| ModelError::Training(format!("step {}: {e}", self.state.step)))?;
        }
        Ok((model, out))
    }

    /// The next batch of the data order (fewer rows when an epoch of shorter windows ends a
    /// curriculum stage).
    fn next_batch(&mut self, model: &M, b: &mut Batches) -> Result<TrainBatch, ModelError> {
        self.data.next_batch(self.config.batch_size, &mut b.rows)?;
        b.all_rows.clear();
        match self.trainer.ranks() {
            None => {
                b.all_rows.extend(0..b.rows.count());
                b.tokens = b.rows.target_tokens(&b.all_rows);
                b.weight = 1.0;
            }
            Some(ranks) => {
                let count = b.rows.count();
                b.all_rows.extend(shard(count, ranks.rank(), ranks.world()));
                if b.all_rows.is_empty() {
                    return Err(ModelError::Training(format!(
                        "a batch of {count} windows (the end of a curriculum stage) cannot \
                         feed {} ranks",
                        ranks.world()
                    )));
                }
                // Every rank holds the whole global batch: its token count needs no message.
                let local = b.rows.target_tokens(&b.all_rows);
                let total = b.rows.target_tokens(&(0..count).collect::<Vec<_>>());
                b.tokens = total;
                b.weight = if total > 0 {
                    local as f64 / total as f64
                } else {
                    0.0
                };
            }
        }
        fits(b.rows.len(), model.max_positions())?;
        let (inputs, targets) = b.rows.batch(&b.all_rows, &self.device);
        Ok(TrainBatch {
            inputs,
            targets,
            pad: i64::from(self.pad),
        })
    }

    /// The discriminator's rounds of its own before the shared one.
    fn adversary_rounds(
        &mut self,
        mut model: M,
        batch: &TrainBatch,
        context: StepContext,
        lr: f64,
    ) -> Result<M, ModelError> {
        let adversary = &self.config.discriminator;
        for extra in 1..adversary.steps {
            let context = StepContext {
                seed: self.config.seed ^ (extra as u64).wrapping_mul(0xA24B_AED4_963E_E407),
                ..context
            };
            if let Some(o) = self.adversary_optim.as_mut() {
                model = adversary_round(
                    model,
                    o,
                    batch.clone(),
                    context,
                    lr,
                    adversary.grad_clip_norm,
                )?;
            }
        }
        Ok(model)
    }

    /// One micro-batch's losses (added to `out`, each scaled by 1/k) and both players'
    /// gradients.
    fn micro_batch(
        &self,
        model: &M,
        batch: TrainBatch,
        context: StepContext,
        b: &mut Batches,
        out: &mut StepGradients,
    ) -> Result<(GradientsParams, GradientsParams), ModelError> {
        let micro = self.config.grad_accumulation;
        // Alone, the weight is 1 and nothing is scaled.
        let weight = b.weight;
        let share = |value: f64| value * weight / micro as f64;
        let step_loss = model.train_loss(batch, &self.loss_fn, context)?;
        let mut loss = step_loss.total;
        if weight != 1.0 {
            loss = loss.mul_scalar(weight);
        }
        if let (Some(grammar), Some(logits)) = (&self.grammar, step_loss.logits) {
            let window_len = b.rows.len();
            b.input_rows.clear();
            b.input_rows.extend(
                b.all_rows
                    .iter()
                    .filter_map(|&i| b.rows.get(i))
                    .map(|w| w[..window_len].to_vec()),
            );
            let mass = grammar.forward(logits, grammar.masks(&b.input_rows, &self.device)?);
            *out.components.entry("grammar").or_insert(0.0) +=
                share(f64::from(mass.clone().into_scalar::<f32>()));
            loss = loss + mass.mul_scalar(f64::from(self.config.grammar_loss) * weight);
        }
        if micro > 1 {
            loss = loss.div_scalar(micro as f64);
        }
        out.loss += f64::from(loss.clone().into_scalar::<f32>());
        for (name, part) in step_loss.parts {
            *out.components.entry(name).or_insert(0.0) +=
                share(f64::from(part.into_scalar::<f32>()));
        }
        for (name, value) in step_loss.values {
            *out.components.entry(name).or_insert(0.0) += share(value);
        }
        out.tokens += b.tokens;
        let objective = match step_loss.adversary {
            Some(adversary) => {
                let adversary = if weight != 1.0 {
                    adversary.mul_scalar(weight / micro as f64)
                } else if micro > 1 {
                    adversary.div_scalar(micro as f64)
                } else {
                    adversary
                };
                out.adversary_loss += f64::from(adversary.clone().into_scalar::<f32>());
                loss + adversary
            }
            None => loss,
        };
        let mut raw = objective.backward();
        Ok((
            model.generator_grads(&mut raw),
            model.adversary_grads(&mut raw),
        ))
    }
}

/// Sums `out` over the ranks in place: both players' gradients in one packed buffer, the
/// losses and the components in another (each rank's are already weighted by its share).
/// Adds this rank's costs to the components (not summed): `allreduce_seconds` (in the two
/// all-reduces, waiting for slower ranks included), `pack_seconds` (packing and unpacking)
/// and `allreduce_mb` (megabytes of the gradient buffer).
fn sum_over_ranks<M: TrainModel>(
    model: &M,
    ranks: &dyn Collective,
    out: &mut StepGradients,
) -> Result<(), CollectiveError> {
    let started = Instant::now();
    let packing = GradientPacking::of(model);
    let mut packed = packing.pack(model, &out.grads);
    let players = if model.has_adversary() { 2 } else { 1 };
    if players == 2 {
        packed.extend(packing.pack(model, &out.adversary_grads));
    }
    let packed_at = Instant::now();
    ranks.all_reduce_f32(&mut packed)?;
    let reduced_at = Instant::now();
    let (generator, adversary) = packed.split_at(packing.gradient_len());
    out.grads = packing.unpack(model, generator);
    if players == 2 {
        out.adversary_grads = packing.unpack(model, adversary);
    }
    let unpacked_at = Instant::now();
    let mut scalars = vec![out.loss, out.adversary_loss];
    scalars.extend(out.components.values());
    ranks.all_reduce_f64(&mut scalars)?;
    (out.loss, out.adversary_loss) = (scalars[0], scalars[1]);
    for (value, sum) in out.components.values_mut().zip(&scalars[2..]) {
        *value = *sum;
    }
    let seconds = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
    let communicate = seconds(packed_at, reduced_at) + seconds(unpacked_at, Instant::now());
    let pack = seconds(started, packed_at) + seconds(reduced_at, unpacked_at);
    out.components.insert("allreduce_seconds", communicate);
    out.components.insert("pack_seconds", pack);
    out.components
        .insert("allreduce_mb", (packed.len() * 4) as f64 / 1e6);
    Ok(())
}
