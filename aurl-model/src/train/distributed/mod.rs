//! Data-parallel training across processes: the pieces a training loop needs to keep
//! several replicas of one model in lockstep, independent of the transport.
//!
//! * [`Collective`]: what the loop asks of the transport — an element-wise sum every rank
//!   receives identically, and a broadcast from one rank. MPI provides it across machines
//!   (feature `mpi` of the `aurl` package); [`ThreadGroup`] provides it between threads of
//!   one process, which is how the equivalence with one-process training is tested.
//! * [`GradientPacking`]: a model's gradients as one buffer, in the order the module visits
//!   its parameters (the same in every process, unlike parameter ids), so a step costs one
//!   reduction, not one per parameter.
//! * [`shard`]: which rows of the global batch a rank trains on.

mod collective;
mod pack;

pub use collective::{Collective, CollectiveError, Single, ThreadGroup, ThreadRank};
pub use pack::GradientPacking;

/// The rows `start..end` of a global batch of `rows` windows that `rank` of `world` trains
/// on: contiguous, in rank order, as even as the division allows (the first `rows % world`
/// ranks take one more), so every row is trained on by exactly one rank.
///
/// ```
/// use aurl_model::train::distributed::shard;
/// assert_eq!(shard(8, 0, 2), 0..4);
/// assert_eq!(shard(8, 1, 2), 4..8);
/// assert_eq!(shard(5, 2, 3), 4..5);
/// ```
#[must_use]
pub fn shard(rows: usize, rank: usize, world: usize) -> std::ops::Range<usize> {
    let world = world.max(1);
    let (base, extra) = (rows / world, rows % world);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    start.min(rows)..(start + len).min(rows)
}

#[cfg(test)]
mod tests {
    use super::shard;

    #[test]
    fn shards_cover_the_batch_once_in_rank_order() {
        for rows in 0..20 {
            for world in 1..6 {
                let mut covered = Vec::new();
                for rank in 0..world {
                    covered.extend(shard(rows, rank, world));
                }
                assert_eq!(
                    covered,
                    (0..rows).collect::<Vec<_>>(),
                    "{rows} rows, {world}"
                );
                let sizes: Vec<usize> = (0..world).map(|r| shard(rows, r, world).len()).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            }
        }
    }
}
