//! The MPI transport of data-parallel training (feature `mpi`): [`Mpi`] implements
//! [`Collective`] over `MPI_COMM_WORLD` through rsmpi, so the same `train` example runs
//! under `mpirun -np N` (Open MPI or MPICH; loopback, TCP or InfiniBand).
//!
//! A watchdog bounds every collective operation: one that waits longer than the timeout
//! (a rank died or hangs) ends this process with a clear error and a non-zero status,
//! which makes `mpirun` stop the others — nothing waits forever, and what was checkpointed
//! (atomically, by rank 0) stays.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Equivalence, Root};

use crate::model::train::distributed::{Collective, CollectiveError};

/// This process's place in an MPI job. Dropping it finalises MPI.
pub struct Mpi {
    // Field order: the communicator goes before the universe that finalises MPI.
    world: SimpleCommunicator,
    _universe: mpi::environment::Universe,
    rank: usize,
    size: usize,
    /// Milliseconds since `epoch` when the running operation started (0: none).
    started: Arc<AtomicU64>,
    epoch: Instant,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Mpi {
    /// Initialises MPI (once per process) and starts the watchdog: an operation that takes
    /// longer than `timeout` ends the process with an error naming this rank.
    ///
    /// # Errors
    /// [`CollectiveError::Transport`] when MPI is already initialised or cannot start.
    pub fn init(timeout: Duration) -> Result<Self, CollectiveError> {
        let universe = mpi::initialize()
            .ok_or_else(|| CollectiveError::Transport("MPI is already initialised".into()))?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let started = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let watched = Arc::clone(&started);
        std::thread::Builder::new()
            .name("aurl-mpi-watchdog".into())
            .spawn(move || watchdog(&watched, epoch, timeout, rank))
            .map_err(|e| CollectiveError::Transport(format!("watchdog: {e}")))?;
        Ok(Self {
            world,
            _universe: universe,
            rank,
            size,
            started,
            epoch,
        })
    }

    /// Runs `f` under the watchdog.
    fn watched<T>(&self, f: impl FnOnce() -> T) -> T {
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        self.started.store(now, Ordering::SeqCst);
        let out = f();
        self.started.store(0, Ordering::SeqCst);
        out
    }
}

impl Mpi {
    /// `values` summed over the ranks, in place (MPI_Allreduce, under the watchdog).
    fn sum<T: Equivalence + Clone>(&self, values: &mut [T]) {
        let send = values.to_vec();
        self.watched(|| {
            self.world
                .all_reduce_into(&send[..], values, SystemOperation::sum());
        });
    }
}

/// Ends the process when an operation has run longer than `timeout`.
fn watchdog(started: &AtomicU64, epoch: Instant, timeout: Duration, rank: usize) {
    let limit = timeout.as_millis() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let at = started.load(Ordering::SeqCst);
        let now = epoch.elapsed().as_millis() as u64;
        if at > 0 && now.saturating_sub(at) > limit {
            eprintln!(
                "error: rank {rank}: a collective operation waited more than {} s for the other \
                 ranks (one died or hangs); stopping (train.distributed.timeout_s)",
                timeout.as_secs_f64()
            );
            std::process::exit(3);
        }
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world(&self) -> usize {
        self.size
    }

    fn all_reduce_f32(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        self.sum(values);
        Ok(())
    }

    fn all_reduce_f64(&self, values: &mut [f64]) -> Result<(), CollectiveError> {
        self.sum(values);
        Ok(())
    }

    fn broadcast_f32(&self, values: &mut [f32], root: usize) -> Result<(), CollectiveError> {
        if root >= self.size {
            return Err(CollectiveError::Mismatch(format!(
                "root {root} of {} ranks",
                self.size
            )));
        }
        self.watched(|| {
            self.world
                .process_at_rank(root as i32)
                .broadcast_into(values);
        });
        Ok(())
    }
}
