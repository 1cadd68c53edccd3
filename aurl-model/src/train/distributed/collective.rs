//! The collective operations of data-parallel training, and two transports: one process
//! alone ([`Single`]) and threads of one process ([`ThreadGroup`]).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Why a collective operation failed. Training stops on any of them: a rank that cannot
/// take part would make the replicas drift.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectiveError {
    /// Some ranks did not reach the operation within the timeout (dead or hung).
    #[error("ranks {missing:?} did not answer within {seconds} s")]
    Timeout {
        /// The ranks that were waited for.
        missing: Vec<usize>,
        /// The timeout.
        seconds: f64,
    },
    /// Ranks called the operation with different buffer lengths or operations: their
    /// programs diverged.
    #[error("ranks disagree: {0}")]
    Mismatch(String),
    /// The transport failed (e.g. an MPI error).
    #[error("transport: {0}")]
    Transport(String),
}

/// What data-parallel training asks of its transport. Every rank calls the same operations
/// in the same order with buffers of the same length; results are identical on every rank
/// (bit for bit), so replicas that apply them stay identical.
pub trait Collective: std::fmt::Debug {
    /// This process's rank, `0..world()`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn world(&self) -> usize;
    /// Replaces `values` by their element-wise sum over all ranks.
    ///
    /// # Errors
    /// [`CollectiveError`].
    fn all_reduce_f32(&self, values: &mut [f32]) -> Result<(), CollectiveError>;
    /// [`Collective::all_reduce_f32`] for `f64` (losses, token counts).
    ///
    /// # Errors
    /// [`CollectiveError`].
    fn all_reduce_f64(&self, values: &mut [f64]) -> Result<(), CollectiveError>;
    /// Replaces `values` on every rank by those of rank `root`.
    ///
    /// # Errors
    /// [`CollectiveError`].
    fn broadcast_f32(&self, values: &mut [f32], root: usize) -> Result<(), CollectiveError>;
}

/// One process training alone: every operation is the identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn all_reduce_f32(&self, _: &mut [f32]) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn all_reduce_f64(&self, _: &mut [f64]) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn broadcast_f32(&self, _: &mut [f32], root: usize) -> Result<(), CollectiveError> {
        if root == 0 {
            Ok(())
        } else {
            Err(CollectiveError::Mismatch(format!("root {root} of 1 rank")))
        }
    }
}

/// `world` ranks as threads of one process, for tests and for a machine that wants
/// several replicas without MPI. Sums are taken in rank order in `f64`, once, and shared,
/// so every rank gets the same bits.
///
/// ```
/// use aurl_model::train::distributed::{Collective, ThreadGroup};
/// let ranks = ThreadGroup::ranks(3, std::time::Duration::from_secs(10));
/// let sums: Vec<Vec<f32>> = std::thread::scope(|s| {
///     let handles: Vec<_> = ranks
///         .into_iter()
///         .map(|rank| s.spawn(move || {
///             let mut v = vec![rank.rank() as f32, 1.0];
///             rank.all_reduce_f32(&mut v).unwrap();
///             v
///         }))
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// assert!(sums.iter().all(|v| v == &[3.0, 3.0]));
/// ```
#[derive(Debug)]
pub struct ThreadGroup;

impl ThreadGroup {
    /// The `world` ranks of a new group (move one into each thread); an operation that
    /// waits longer than `timeout` for the others fails with [`CollectiveError::Timeout`].
    #[must_use]
    pub fn ranks(world: usize, timeout: Duration) -> Vec<ThreadRank> {
        let world = world.max(1);
        let shared = Arc::new(Shared {
            world,
            timeout,
            round: Mutex::new(Round {
                generation: 0,
                slots: vec![None; world],
                result: Arc::new(Ok(Vec::new())),
                broken: None,
            }),
            done: Condvar::new(),
        });
        (0..world)
            .map(|rank| ThreadRank {
                rank,
                shared: Arc::clone(&shared),
            })
            .collect()
    }
}

/// One rank of a [`ThreadGroup`].
#[derive(Debug)]
pub struct ThreadRank {
    rank: usize,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    world: usize,
    timeout: Duration,
    round: Mutex<Round>,
    done: Condvar,
}

/// What one rank brings to an operation.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Sum,
    Broadcast(usize),
}

#[derive(Debug)]
struct Round {
    generation: u64,
    slots: Vec<Option<(Op, Vec<f64>)>>,
    result: Arc<Result<Vec<f64>, CollectiveError>>,
    /// Set when an operation timed out: the group cannot go on.
    broken: Option<CollectiveError>,
}

impl Round {
    /// The result of a round every rank has joined (taking their buffers).
    fn finish(&mut self) -> Result<Vec<f64>, CollectiveError> {
        let slots: Vec<(Op, Vec<f64>)> = self.slots.iter_mut().filter_map(Option::take).collect();
        let (op, first) = (&slots[0].0, &slots[0].1);
        if let Some((other, _)) = slots
            .iter()
            .find(|(o, v)| o != op || v.len() != first.len())
        {
            return Err(CollectiveError::Mismatch(format!(
                "{op:?} of {} values against {other:?}",
                first.len()
            )));
        }
        match op {
            Op::Sum => {
                let mut sum = vec![0.0f64; first.len()];
                for (_, v) in &slots {
                    sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
                }
                Ok(sum)
            }
            Op::Broadcast(root) => slots
                .get(*root)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| CollectiveError::Mismatch(format!("root {root} out of range"))),
        }
    }
}

impl ThreadRank {
    /// Joins the current round with `values`; returns the round's result.
    fn exchange(&self, op: Op, values: Vec<f64>) -> Result<Vec<f64>, CollectiveError> {
        let shared = &*self.shared;
        let started = Instant::now();
        let mut round = shared.round.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = &round.broken {
            return Err(e.clone());
        }
        let generation = round.generation;
        round.slots[self.rank] = Some((op, values));
        if round.slots.iter().all(Option::is_some) {
            let result = round.finish();
            round.result = Arc::new(result);
            round.generation += 1;
            shared.done.notify_all();
            return (*round.result).clone();
        }
        while round.generation == generation {
            if let Some(e) = &round.broken {
                return Err(e.clone());
            }
            let left = shared.timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                // The group is broken for good: every rank waiting now or later gets this.
                let missing = (0..shared.world)
                    .filter(|&r| round.slots[r].is_none())
                    .collect();
                let e = CollectiveError::Timeout {
                    missing,
                    seconds: shared.timeout.as_secs_f64(),
                };
                round.broken = Some(e.clone());
                shared.done.notify_all();
                return Err(e);
            }
            round = shared
                .done
                .wait_timeout(round, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        (*round.result).clone()
    }
}

impl Collective for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.shared.world
    }
    fn all_reduce_f32(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        let sum = self.exchange(Op::Sum, values.iter().map(|&x| f64::from(x)).collect())?;
        values.iter_mut().zip(sum).for_each(|(v, s)| *v = s as f32);
        Ok(())
    }
    fn all_reduce_f64(&self, values: &mut [f64]) -> Result<(), CollectiveError> {
        let sum = self.exchange(Op::Sum, values.to_vec())?;
        values.copy_from_slice(&sum);
        Ok(())
    }
    fn broadcast_f32(&self, values: &mut [f32], root: usize) -> Result<(), CollectiveError> {
        let got = self.exchange(
            Op::Broadcast(root),
            values.iter().map(|&x| f64::from(x)).collect(),
        )?;
        values.iter_mut().zip(got).for_each(|(v, s)| *v = s as f32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_threads<T: Send>(
        world: usize,
        timeout: Duration,
        f: impl Fn(ThreadRank) -> T + Sync,
    ) -> Vec<T> {
        let ranks = ThreadGroup::ranks(world, timeout);
        std::thread::scope(|s| {
            let handles: Vec<_> = ranks.into_iter().map(|r| s.spawn(|| f(r))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn sums_and_broadcasts_reach_every_rank_identically_round_after_round() {
        let out = on_threads(4, Duration::from_secs(20), |rank| {
            let mut seen = Vec::new();
            for round in 0..50 {
                let mut v = vec![0.1 * rank.rank() as f32 + round as f32; 3];
                rank.all_reduce_f32(&mut v).unwrap();
                seen.push(v[0]);
                let mut b = vec![rank.rank() as f32; 2];
                rank.broadcast_f32(&mut b, round % 4).unwrap();
                assert_eq!(b, [(round % 4) as f32; 2]);
                let mut c = [1.0f64];
                rank.all_reduce_f64(&mut c).unwrap();
                assert_eq!(c, [4.0]);
            }
            seen
        });
        assert!(out.iter().all(|s| s == &out[0]), "identical on every rank");
        assert!((out[0][2] - (8.0 + 0.6)).abs() < 1e-5, "{}", out[0][2]);
    }

    #[test]
    fn a_rank_that_never_comes_is_a_timeout_naming_it() {
        let out = on_threads(3, Duration::from_millis(200), |rank| {
            if rank.rank() == 2 {
                // Comes only after the others gave up: the group stays broken.
                std::thread::sleep(Duration::from_millis(600));
            }
            rank.all_reduce_f32(&mut [1.0])
        });
        for e in &out {
            assert!(
                matches!(e, Err(CollectiveError::Timeout { missing, .. }) if missing == &[2]),
                "{e:?}"
            );
        }
    }

    #[test]
    fn ranks_that_disagree_on_the_buffer_are_a_mismatch() {
        let out = on_threads(2, Duration::from_secs(20), |rank| {
            let mut v = vec![1.0f32; 1 + rank.rank()];
            rank.all_reduce_f32(&mut v)
        });
        assert!(
            out.iter()
                .all(|r| matches!(r, Err(CollectiveError::Mismatch(_)))),
            "{out:?}"
        );
    }

    #[test]
    fn alone_every_operation_is_the_identity() {
        let mut v = [1.5f32, 2.0];
        Single.all_reduce_f32(&mut v).unwrap();
        Single.broadcast_f32(&mut v, 0).unwrap();
        assert_eq!(v, [1.5, 2.0]);
        assert!(Single.broadcast_f32(&mut v, 1).is_err());
    }
}
