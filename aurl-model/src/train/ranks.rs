//! What a session does with the other ranks of a data-parallel run: rank 0's decisions
//! broadcast, the validation shards reduced, and the replicas compared.

use super::NllSum;
use super::distributed::{GradientPacking, shard};
use super::objective::TrainModel;
use super::session::Session;
use crate::error::ModelError;

impl<M: TrainModel<Config = C>, C: Clone> Session<'_, '_, M, C> {
    /// Rank 0's decisions (a collapse of its samples, its clock's time budget) on every
    /// rank, so all stop or roll back at the same step; alone, the decisions as they are.
    ///
    /// # Errors
    /// [`ModelError::Training`] when the broadcast fails.
    pub(super) fn rank_zero_decides(
        &self,
        collapse: Option<String>,
        out_of_time: bool,
    ) -> Result<(Option<String>, bool), ModelError> {
        let Some(ranks) = self.trainer.ranks() else {
            return Ok((collapse, out_of_time));
        };
        let mut flags = [
            f32::from(u8::from(collapse.is_some())),
            f32::from(u8::from(out_of_time)),
        ];
        ranks
            .broadcast_f32(&mut flags, 0)
            .map_err(|e| ModelError::Training(format!("step {}: {e}", self.state.step)))?;
        let collapse = (flags[0] > 0.0)
            .then(|| collapse.unwrap_or_else(|| "rank 0's samples collapsed".to_owned()));
        Ok((collapse, flags[1] > 0.0))
    }

    /// The validation NLL of `model`. With several ranks each evaluates its shard of the
    /// windows, in batches of its share of `train.batch_size`, and the sums are all-reduced
    /// (a rank that fails sends a flag, so every rank gets `None` alike).
    ///
    /// # Errors
    /// [`ModelError::Training`] when the all-reduce fails.
    pub(super) fn valid_nll(&self, model: &M) -> Result<Option<f64>, ModelError> {
        let windows = self.trainer.valid;
        let Some(ranks) = self.trainer.ranks() else {
            let sum = model.valid_sum(windows, 0..windows.count(), self.config.batch_size);
            return Ok(sum.and_then(NllSum::mean));
        };
        let rows = shard(windows.count(), ranks.rank(), ranks.world());
        let batch = self.config.batch_size / ranks.world();
        let sum = model.valid_sum(windows, rows, batch);
        let mut sums = sum.map_or([0.0, 0.0, 1.0], |s| [s.nats, s.tokens, 0.0]);
        ranks.all_reduce_f64(&mut sums).map_err(|e| {
            ModelError::Training(format!("validation at step {}: {e}", self.state.step))
        })?;
        let all = NllSum {
            nats: sums[0],
            tokens: sums[1],
        };
        Ok(if sums[2] > 0.0 { None } else { all.mean() })
    }

    /// With several ranks: compares every replica's weights with rank 0's (a checksum,
    /// broadcast; the verdict all-reduced, so all ranks stop together).
    ///
    /// # Errors
    /// [`ModelError::Training`] when a replica differs or the collective fails.
    pub(super) fn check_replicas(&self, model: &M) -> Result<(), ModelError> {
        let Some(ranks) = self.trainer.ranks() else {
            return Ok(());
        };
        let step = self.state.step;
        let failed = |e| ModelError::Training(format!("replica check at step {step}: {e}"));
        let ours = GradientPacking::of(model).checksum(model);
        // 16 bits per value: exact in an f32.
        let mut root: [f32; 4] = std::array::from_fn(|i| ((ours >> (16 * i)) & 0xFFFF) as f32);
        ranks.broadcast_f32(&mut root, 0).map_err(failed)?;
        let root = root
            .iter()
            .enumerate()
            .fold(0u64, |h, (i, &v)| h | ((v as u64) << (16 * i)));
        let mut differ = [f64::from(u8::from(root != ours))];
        ranks.all_reduce_f64(&mut differ).map_err(failed)?;
        if differ[0] > 0.0 {
            return Err(ModelError::Training(format!(
                "after step {step} the weights of {} rank(s) differ from rank 0's \
                 (train.distributed.check_every): the replicas drifted",
                differ[0]
            )));
        }
        Ok(())
    }
}
