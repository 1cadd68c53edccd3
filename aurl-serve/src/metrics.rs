//! Counters and histograms of the server, as Prometheus text (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];
/// Upper bounds of the batch-size histogram.
const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// A cumulative histogram.
#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        self.counts.resize(bounds.len(), 0);
        for (count, bound) in self.counts.iter_mut().zip(bounds) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, help: &str, bounds: &[f64]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, bound) in bounds.iter().enumerate() {
            let count = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// What the server counts. Shared by the handlers and the engine thread.
#[derive(Debug, Default)]
pub struct Metrics {
    outcomes: Mutex<BTreeMap<&'static str, u64>>,
    tokens: AtomicU64,
    queue: AtomicI64,
    /// Seconds the engine spent decoding, in microseconds.
    busy_us: AtomicU64,
    histograms: Mutex<Histograms>,
}

#[derive(Debug, Default)]
struct Histograms {
    latency: Histogram,
    decode: Histogram,
    first_note: Histogram,
    batch: Histogram,
}

impl Metrics {
    /// Counts a finished request by `outcome` (`ok`, `bad_request`, `rejected`,
    /// `cancelled`, `timeout`, `failed`).
    pub fn outcome(&self, outcome: &'static str) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        *outcomes.entry(outcome).or_default() += 1;
    }

    /// Requests answered with `outcome` so far.
    #[must_use]
    pub fn count(&self, outcome: &str) -> u64 {
        let outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        outcomes.get(outcome).copied().unwrap_or(0)
    }

    /// Adds `n` generated tokens.
    pub fn tokens(&self, n: u64) {
        self.tokens.fetch_add(n, Ordering::Relaxed);
    }

    /// Changes the queue depth by `delta`.
    pub fn queued(&self, delta: i64) {
        self.queue.fetch_add(delta, Ordering::Relaxed);
    }

    /// A decoding step of `rows` rows ran (continuous batching), or a fixed batch of `rows`
    /// started.
    pub fn batch(&self, rows: usize) {
        let mut h = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        h.batch.observe(&BATCH_BUCKETS, rows as f64);
    }

    /// A request finished `total` seconds after it was queued, its batch having decoded
    /// for `decoding` seconds.
    pub fn latency(&self, total: f64, decoding: f64) {
        let mut h = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        h.latency.observe(&LATENCY_BUCKETS, total);
        h.decode.observe(&LATENCY_BUCKETS, decoding);
    }

    /// Seconds from a streaming request's arrival to its first note.
    pub fn first_note(&self, seconds: f64) {
        let mut h = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        h.first_note.observe(&LATENCY_BUCKETS, seconds);
    }

    /// The engine decoded for `seconds`.
    pub fn busy(&self, seconds: f64) {
        self.busy_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of everything counted.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP aurl_requests_total Requests by outcome.\n");
        out.push_str("# TYPE aurl_requests_total counter\n");
        {
            let outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            for outcome in [
                "ok",
                "bad_request",
                "rejected",
                "cancelled",
                "timeout",
                "failed",
            ] {
                let n = outcomes.get(outcome).copied().unwrap_or(0);
                let _ = writeln!(out, "aurl_requests_total{{outcome=\"{outcome}\"}} {n}");
            }
        }
        let tokens = self.tokens.load(Ordering::Relaxed);
        let busy = self.busy_us.load(Ordering::Relaxed) as f64 / 1e6;
        let rate = if busy > 0.0 {
            tokens as f64 / busy
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "# HELP aurl_tokens_generated_total Tokens sampled.\n\
             # TYPE aurl_tokens_generated_total counter\naurl_tokens_generated_total {tokens}\n\
             # HELP aurl_decode_seconds_total Seconds the engine spent decoding.\n\
             # TYPE aurl_decode_seconds_total counter\naurl_decode_seconds_total {busy}\n\
             # HELP aurl_tokens_per_second Tokens sampled per second of decoding.\n\
             # TYPE aurl_tokens_per_second gauge\naurl_tokens_per_second {rate}\n\
             # HELP aurl_queue_depth Requests waiting for the engine.\n\
             # TYPE aurl_queue_depth gauge\naurl_queue_depth {}",
            self.queue.load(Ordering::Relaxed).max(0)
        );
        let h = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
        h.batch.write(
            &mut out,
            "aurl_batch_rows",
            "Rows per decoding step (continuous batching), or per batch (fixed batches).",
            &BATCH_BUCKETS,
        );
        h.latency.write(
            &mut out,
            "aurl_request_seconds",
            "Seconds from queueing to the answer.",
            &LATENCY_BUCKETS,
        );
        h.decode.write(
            &mut out,
            "aurl_batch_decode_seconds",
            "Seconds from a request's start of decoding to its piece.",
            &LATENCY_BUCKETS,
        );
        h.first_note.write(
            &mut out,
            "aurl_first_note_seconds",
            "Seconds from a streaming request's arrival to its first note.",
            &LATENCY_BUCKETS,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_what_was_observed() {
        let m = Metrics::default();
        m.outcome("ok");
        m.outcome("ok");
        m.outcome("rejected");
        m.tokens(30);
        m.busy(2.0);
        m.batch(3);
        m.latency(0.2, 0.1);
        let text = m.render();
        assert!(
            text.contains("aurl_requests_total{outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("aurl_requests_total{outcome=\"rejected\"} 1"));
        assert!(text.contains("aurl_tokens_generated_total 30"));
        assert!(text.contains("aurl_tokens_per_second 15"));
        assert!(text.contains("aurl_batch_rows_bucket{le=\"2\"} 0"));
        assert!(text.contains("aurl_batch_rows_bucket{le=\"4\"} 1"));
        assert!(text.contains("aurl_request_seconds_bucket{le=\"0.25\"} 1"));
        assert!(text.contains("aurl_request_seconds_count 1"));
    }
}
