//! Which requests are decoded together, and on how many threads.
//!
//! Requests are independent (each row has its own seeded RNG, grammar state and limits), so
//! a batch can be split into shards decoded at the same time. On a CPU backend that is
//! what uses the second core at small batches: a decode step's matrix products
//! (`[batch, d_model] × [d_model, n]`) are far below the size at which a CPU GEMM
//! parallelises on its own.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Groups request indices into batches: rows of a batch share a prompt length, a batch has
/// at most `batch_size` rows, and a request that `slides` is alone. Then, while there are
/// fewer batches than `workers`, the largest one is halved, so every worker gets rows.
///
/// Within a prompt length, requests keep their order.
pub(crate) fn batches(
    prompt_lens: &[usize],
    slides: &[bool],
    batch_size: usize,
    workers: usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..prompt_lens.len()).collect();
    order.sort_by_key(|&i| (prompt_lens[i], slides[i]));
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let joins = out.last().is_some_and(|last: &Vec<usize>| {
            let first = last[0];
            prompt_lens[first] == prompt_lens[i]
                && last.len() < batch_size
                && !slides[first]
                && !slides[i]
        });
        if joins {
            out.last_mut().expect("a last batch").push(i);
        } else {
            out.push(vec![i]);
        }
    }
    while out.len() < workers {
        let Some(largest) = (0..out.len()).max_by_key(|&j| (out[j].len(), usize::MAX - j)) else {
            break;
        };
        if out[largest].len() < 2 {
            break;
        }
        let half = out[largest].len().div_ceil(2);
        let rest = out[largest].split_off(half);
        out.insert(largest + 1, rest);
    }
    out
}

/// Runs `job(j, emit)` for every `j < jobs` on up to `workers` threads, and returns the
/// results in job order. Events a job `emit`s reach `on_event` on the calling thread while
/// the jobs run (in the order they were emitted, interleaved across jobs). After a job
/// fails, no further job starts, and the error of the earliest failed job is returned.
///
/// The jobs run on rayon's pool (the one the CPU backend and its kernels use), even a single
/// one: a kernel called on a pool thread splits a decoding step's products among the pool's
/// threads cheaply (the caller takes part), where a call from any other thread would hand
/// every product over and sleep until it is done.
pub(crate) fn run<T, E, V>(
    jobs: usize,
    workers: usize,
    job: impl Fn(usize, &mut dyn FnMut(V)) -> Result<T, E> + Sync,
    mut on_event: impl FnMut(V),
) -> Result<Vec<T>, E>
where
    T: Send,
    E: Send,
    V: Send,
{
    let threads = workers.clamp(1, jobs.max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<T, E>>>> = Mutex::new((0..jobs).map(|_| None).collect());
    let (events, received) = mpsc::channel::<V>();
    rayon::in_place_scope(|scope| {
        for _ in 0..threads {
            let events = events.clone();
            let (job, next, failed, results) = (&job, &next, &failed, &results);
            scope.spawn(move |_| {
                let mut emit = |event: V| {
                    // The receiver lives until every worker is done.
                    let _ = events.send(event);
                };
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    if j >= jobs || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = job(j, &mut emit);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner())[j] = Some(result);
                }
            });
        }
        drop(events);
        for event in received {
            on_event(event);
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(jobs);
    for result in results {
        match result {
            Some(Ok(value)) => out.push(value),
            Some(Err(e)) => return Err(e),
            // Jobs start in index order, so a job skipped after a failure comes after the
            // failed one, whose error was returned above.
            None => {}
        }
    }
    Ok(out)
}

/// `f()` run on rayon's pool, the calling thread waiting: as in [`run`], a kernel called
/// from a pool thread shares its work with the pool cheaply. A panic in `f` resumes here.
pub(crate) fn on_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let mut out = None;
    rayon::in_place_scope(|scope| scope.spawn(|_| out = Some(f())));
    // The scope returns once its task has run; a panic in the task propagates before this.
    out.expect("the scope ran its task")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_share_prompt_lengths_and_respect_the_size() {
        let lens = [3, 1, 3, 3, 1];
        let slides = [false; 5];
        assert_eq!(
            batches(&lens, &slides, 2, 1),
            vec![vec![1, 4], vec![0, 2], vec![3]]
        );
    }

    #[test]
    fn sliding_requests_are_alone() {
        let lens = [2, 2, 2];
        let slides = [false, true, false];
        assert_eq!(batches(&lens, &slides, 8, 1), vec![vec![0, 2], vec![1]]);
    }

    #[test]
    fn workers_split_the_largest_batch() {
        let lens = [1; 5];
        let slides = [false; 5];
        assert_eq!(
            batches(&lens, &slides, 16, 2),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        // Single rows cannot be split further.
        assert_eq!(batches(&[1], &[false], 16, 4), vec![vec![0]]);
        assert_eq!(batches(&[], &[], 16, 4), Vec::<Vec<usize>>::new());
    }

    #[test]
    fn run_returns_results_in_job_order_and_forwards_every_event() {
        for workers in [1, 2, 3] {
            let mut seen = Vec::new();
            let out = run(
                5,
                workers,
                |j, emit| {
                    emit(j * 10);
                    emit(j * 10 + 1);
                    Ok::<usize, ()>(j * j)
                },
                |event| seen.push(event),
            )
            .expect("no job fails");
            assert_eq!(out, vec![0, 1, 4, 9, 16]);
            seen.sort_unstable();
            assert_eq!(seen, vec![0, 1, 10, 11, 20, 21, 30, 31, 40, 41]);
        }
    }

    #[test]
    fn run_returns_a_failing_jobs_error() {
        for workers in [1, 2] {
            let out = run(
                4,
                workers,
                |j, _emit: &mut dyn FnMut(())| if j == 2 { Err(j) } else { Ok(j) },
                |()| {},
            );
            assert_eq!(out, Err(2));
        }
    }
}
