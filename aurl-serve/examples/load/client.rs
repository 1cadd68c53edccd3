//! A minimal HTTP/1.1 client for load tests: one streaming generation request per
//! connection, timed to its first note and to its last byte, retried on 429.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one request saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Seconds from the first attempt to the first `note` event.
    pub first_note: Option<f64>,
    /// Seconds from the first attempt to the end of the stream.
    pub total: f64,
    /// Whether the stream ended with `done`.
    pub done: bool,
    /// Notes streamed.
    pub notes: usize,
    /// 429 answers before it was admitted.
    pub retries: usize,
    /// New tokens of the piece (from the `done` event's summary).
    pub new_tokens: u64,
}

/// POSTs `body` to `/v1/generate/stream` at `addr` until it is admitted (429: waits
/// `Retry-After`), reading the event stream to its end.
///
/// # Errors
/// Connection errors, or an answer that is neither 200 nor 429.
pub async fn stream(addr: SocketAddr, body: &str) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut retries = 0;
    loop {
        let mut socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request = format!(
            "POST /v1/generate/stream HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        socket
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        let mut buffer = [0u8; 8192];
        let mut first_note = None;
        loop {
            let n = socket.read(&mut buffer).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buffer[..n]);
            if first_note.is_none() && find(&raw, b"event: note").is_some() {
                first_note = Some(started.elapsed().as_secs_f64());
            }
        }
        let head_end = find(&raw, b"\r\n\r\n").ok_or("no response head")?;
        let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line: {head}"))?;
        if status == 429 {
            retries += 1;
            let wait = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("retry-after:")
                        .map(|v| v.trim().parse::<u64>().unwrap_or(1))
                })
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        if status != 200 {
            return Err(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&raw[head_end..])
            ));
        }
        let body = dechunk(&raw[head_end + 4..]);
        let text = String::from_utf8_lossy(&body);
        let done = text.contains("event: done");
        let new_tokens = text
            .split("\"new_tokens\":")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        return Ok(Outcome {
            first_note,
            total: started.elapsed().as_secs_f64(),
            done,
            notes: text.matches("event: note").count(),
            retries,
            new_tokens,
        });
    }
}

/// The body of a chunked transfer (`size\r\nbytes\r\n ... 0\r\n\r\n`).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(raw, b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        let end = (start + size).min(raw.len());
        out.extend_from_slice(&raw[start..end]);
        raw = &raw[(end + 2).min(raw.len())..];
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `q`-quantile of `values` (nearest rank).
#[must_use]
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered.
    pub requests: usize,
    /// New tokens over all pieces per second of the run.
    pub tokens_per_second: f64,
    /// Request latency, median and 95th percentile (seconds).
    pub latency: (f64, f64),
    /// First-note latency, median and 95th percentile (seconds).
    pub first_note: (f64, f64),
    /// 429s answered before admission.
    pub retries: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>3} clients: {} requests, {:.0} tokens/s, latency p50 {:.2} s p95 {:.2} s, \
             first note p50 {:.2} s p95 {:.2} s, {} retries after 429",
            self.clients,
            self.requests,
            self.tokens_per_second,
            self.latency.0,
            self.latency.1,
            self.first_note.0,
            self.first_note.1,
            self.retries
        )
    }
}

/// `clients` concurrent clients, each sending `each` requests of `tokens` tokens (seeds
/// differ) one after another.
///
/// # Errors
/// The first failed request.
pub async fn run(
    addr: SocketAddr,
    clients: usize,
    each: usize,
    tokens: usize,
    constrained: bool,
) -> Result<(Report, Vec<Outcome>), String> {
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..each {
                    let body = format!(
                        r#"{{"tokens": {tokens}, "min_tokens": {tokens}, "seed": {}, "constrained": {constrained}}}"#,
                        c * each + i
                    );
                    outcomes.push(stream(addr, &body).await?);
                }
                Ok::<_, String>(outcomes)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.extend(h.await.map_err(|e| e.to_string())??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let totals: Vec<f64> = outcomes.iter().map(|o| o.total).collect();
    let firsts: Vec<f64> = outcomes.iter().filter_map(|o| o.first_note).collect();
    let tokens: u64 = outcomes.iter().map(|o| o.new_tokens).sum();
    let report = Report {
        clients,
        requests: outcomes.len(),
        tokens_per_second: tokens as f64 / seconds,
        latency: (quantile(&totals, 0.5), quantile(&totals, 0.95)),
        first_note: (quantile(&firsts, 0.5), quantile(&firsts, 0.95)),
        retries: outcomes.iter().map(|o| o.retries).sum(),
    };
    Ok((report, outcomes))
}
