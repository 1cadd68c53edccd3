//! The continuous loop of the engine: requests join the running batch between decoding
//! steps and leave it when done ([`Continuous`]).

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use aurl::sampling::{Continuous, Generated, Generator, Request, SamplingError, Step};
use rayon::prelude::*;
use tokio::sync::mpsc;

use super::{Event, Job, Prepared, Worker, panicked, sampling_error};
use crate::api::ApiError;

/// A job whose rows are in the continuous batch.
struct Running {
    prepared: Prepared,
    pieces: Vec<Option<Generated>>,
    /// Rows still decoding.
    left: usize,
    /// Whether a note was sent (a failed job that was is not decoded again).
    streamed: bool,
    joined: Instant,
}

/// The key of row `piece` of job `job` in the continuous batch.
fn row_key(job: u64, piece: usize) -> u64 {
    (job << 16) | piece as u64
}

/// Continuous batches decoded at once, one per core: at a few rows, two half batches on
/// two cores step faster than one batch whose small products do not split well. A row
/// joins the batch with the fewest.
struct Shards<'g, 'a>(Vec<Continuous<'g, 'a>>);

impl<'g, 'a> Shards<'g, 'a> {
    fn new(generator: &'g Generator<'a>, shards: usize) -> Result<Self, SamplingError> {
        (0..shards.max(1))
            .map(|_| Continuous::new(generator))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn len(&self) -> usize {
        self.0.iter().map(Continuous::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(Continuous::is_empty)
    }

    /// Each request to the batch with the fewest rows (counting those just given), each
    /// batch's share joined at once.
    fn join_all(&mut self, requests: Vec<(u64, Request)>) -> Vec<(u64, Result<(), SamplingError>)> {
        let mut loads: Vec<usize> = self.0.iter().map(Continuous::len).collect();
        let mut shares: Vec<Vec<(u64, Request)>> = vec![Vec::new(); self.0.len()];
        for request in requests {
            let Some(i) = (0..loads.len()).min_by_key(|&i| loads[i]) else {
                break;
            };
            loads[i] += 1;
            shares[i].push(request);
        }
        self.0
            .iter_mut()
            .zip(shares)
            .flat_map(|(shard, share)| shard.join_all(share))
            .collect()
    }

    /// One step of every batch with rows, at once.
    fn step(&mut self) -> Result<Vec<Step>, SamplingError> {
        let busy = self.0.iter().filter(|s| !s.is_empty()).count();
        if busy == 1
            && let Some(shard) = self.0.iter_mut().find(|s| !s.is_empty())
        {
            return Ok(vec![shard.step()?]);
        }
        self.0
            .par_iter_mut()
            .filter(|s| !s.is_empty())
            .map(Continuous::step)
            .collect()
    }

    fn clear(&mut self) {
        self.0.iter_mut().for_each(Continuous::clear);
    }
}

impl Worker<'_> {
    /// The continuous loop: admit what waits (blocking only when idle), step, answer the
    /// finished jobs.
    pub(super) fn serve_continuous(&self, mut jobs: mpsc::Receiver<Job>) {
        let mut batch = match Shards::new(&self.generator, self.shards) {
            Ok(shards) => shards,
            Err(_) => return self.serve_batches(jobs),
        };
        let mut running: HashMap<u64, Running> = HashMap::new();
        let mut waiting: VecDeque<Prepared> = VecDeque::new();
        let mut next_id = 0u64;
        let mut open = true;
        loop {
            if batch.is_empty() && waiting.is_empty() {
                match jobs.blocking_recv() {
                    Some(job) => self.take(job, &mut waiting),
                    None => return,
                }
            }
            while open && batch.len() + waiting.len() < self.max_batch {
                match jobs.try_recv() {
                    Ok(job) => self.take(job, &mut waiting),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                }
            }
            // A job joins when all its rows fit (or the batch is empty); the jobs admitted
            // together are prefilled together.
            let mut admitted = Vec::new();
            let mut rows = batch.len();
            while let Some(first) = waiting.front() {
                let more = first.requests.len();
                if rows > 0 && rows + more > self.max_batch {
                    break;
                }
                if let Some(prepared) = waiting.pop_front() {
                    rows += more;
                    admitted.push((next_id, prepared));
                    next_id += 1;
                }
            }
            if !admitted.is_empty() {
                self.join(admitted, &mut batch, &mut running);
            }
            if batch.is_empty() {
                if !open && waiting.is_empty() {
                    return;
                }
                continue;
            }
            self.metrics.batch(batch.len());
            let started = Instant::now();
            let stepped = std::panic::catch_unwind(AssertUnwindSafe(|| batch.step()));
            // Wall time: shards step at once.
            self.metrics.busy(started.elapsed().as_secs_f64());
            match stepped {
                Ok(Ok(steps)) => {
                    for step in steps {
                        self.dispatch(step, &mut running);
                    }
                }
                failed => {
                    let error = match failed {
                        Ok(Err(e)) => sampling_error("request", e),
                        Err(panic) => panicked(&panic),
                        Ok(Ok(_)) => continue,
                    };
                    batch.clear();
                    for (_, job) in running.drain() {
                        if job.streamed {
                            self.metrics.outcome("failed");
                            let _ = job
                                .prepared
                                .job
                                .events
                                .send(Event::Done(Err(error.clone())));
                        } else {
                            // Alone, through the fixed-batch path: only the faulty one fails.
                            self.decode(vec![job.prepared]);
                        }
                    }
                }
            }
        }
    }

    /// Takes `job` off the queue into `waiting`, unless it is answered already.
    fn take(&self, job: Job, waiting: &mut VecDeque<Prepared>) {
        self.metrics.queued(-1);
        if let Some(prepared) = self.prepare(job) {
            waiting.push_back(prepared);
        }
    }

    /// Adds the rows of the `admitted` jobs to the batch (prefilled together where their
    /// prompts are as long); a row the batch refuses (or a panic while prefilling) fails
    /// its job, whose other rows are cancelled.
    fn join(
        &self,
        admitted: Vec<(u64, Prepared)>,
        batch: &mut Shards<'_, '_>,
        running: &mut HashMap<u64, Running>,
    ) {
        let requests: Vec<(u64, Request)> = admitted
            .iter()
            .flat_map(|(id, p)| {
                (p.requests.iter().enumerate()).map(|(k, r)| (row_key(*id, k), r.clone()))
            })
            .collect();
        let joined = std::panic::catch_unwind(AssertUnwindSafe(|| batch.join_all(requests)));
        let mut failed: HashMap<u64, ApiError> = HashMap::new();
        match joined {
            Ok(results) => {
                for (key, result) in results {
                    if let Err(e) = result {
                        failed
                            .entry(key >> 16)
                            .or_insert_with(|| sampling_error("request", e));
                    }
                }
            }
            Err(panic) => {
                let error = panicked(&panic);
                failed.extend(admitted.iter().map(|(id, _)| (*id, error.clone())));
            }
        }
        for (id, prepared) in admitted {
            let Some(error) = failed.remove(&id) else {
                let rows = prepared.requests.len();
                running.insert(
                    id,
                    Running {
                        prepared,
                        pieces: vec![None; rows],
                        left: rows,
                        streamed: false,
                        joined: Instant::now(),
                    },
                );
                continue;
            };
            // Rows that did join leave at the next step; the job is answered now.
            prepared.job.cancel.cancel();
            self.metrics.outcome(if error.status < 500 {
                "bad_request"
            } else {
                "failed"
            });
            let _ = prepared.job.events.send(Event::Done(Err(error)));
        }
    }

    /// Sends a step's notes to their jobs and answers the jobs it finished.
    fn dispatch(&self, step: Step, running: &mut HashMap<u64, Running>) {
        self.metrics.tokens(step.tokens.len() as u64);
        for token in &step.tokens {
            let Some(job) = running.get_mut(&(token.key >> 16)) else {
                continue;
            };
            let events = &job.prepared.job.events;
            if events.is_closed() {
                job.prepared.job.cancel.cancel();
            } else if let Some(note) = token.note {
                job.streamed = true;
                let piece = (token.key & 0xffff) as usize;
                let _ = events.send(Event::Note { piece, note });
            }
        }
        for (key, generated) in step.finished {
            let id = key >> 16;
            let Some(job) = running.get_mut(&id) else {
                continue;
            };
            if let Some(slot) = job.pieces.get_mut((key & 0xffff) as usize) {
                *slot = Some(generated);
                job.left -= 1;
            }
            if job.left == 0
                && let Some(job) = running.remove(&id)
            {
                let pieces = job.pieces.into_iter().flatten().collect();
                self.answer(std::slice::from_ref(&job.prepared), pieces, job.joined);
            }
        }
    }
}
