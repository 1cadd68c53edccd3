//! The allocator of Aurl's example binaries and benchmarks (shared with `#[path]`).
//!
//! mimalloc instead of the system allocator: a decoding or training step allocates and frees
//! many tensors, and glibc's heap trimming then faults the pages back in. mimalloc itself
//! returns ("purges") freed memory to the system about a second after it is freed, so much
//! of what a training step frees is faulted back in, and zeroed by the kernel, in a later one
//! (`clear_page_erms`: 2–18 % of a `small` B8 × 512 step under `perf`, varying from run to
//! run). [`keep_freed_memory`] turns purging off and the process reuses its peak working
//! set. `model/train_step/small_b8x512`, 8 s under `/usr/bin/time` (2026-12-06): page faults
//! 22–35 k → 0.7 k, system time 10–16 % → 3.5 % of the CPU time, peak RSS 454–467 → 478 MB;
//! thirteen interleaved pairs of the bench: median +6.5 % tokens/s (from −6 % to +17 %: this
//! machine is noisy).
//!
//! Your own binary gets the same by declaring these two items (with `mimalloc` and
//! `libmimalloc-sys` (feature `extended`) as dependencies) and calling
//! [`keep_freed_memory`] first thing in `main`.

// Not every binary that includes this file calls it.
#![allow(dead_code)]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its index in the option enum of mimalloc 3 (the C
/// library `libmimalloc-sys` 0.1.49 builds), which the Rust bindings do not name. The
/// facade's `tests/allocator.rs` checks it reads mimalloc's default (1000 ms).
pub const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never hand freed memory back to the system (mimalloc's `purge_delay = -1`): memory freed by
/// one step is reused by the next instead of being faulted in and zeroed again.
pub fn keep_freed_memory() {
    // SAFETY: sets one process-wide allocator option; mimalloc reads it when it next
    // considers purging, with no other precondition.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}
