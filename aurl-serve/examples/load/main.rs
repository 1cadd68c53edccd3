//! A load test against a running `aurl-serve`: concurrent clients streaming pieces.
//!
//! ```text
//! cargo run --release -p aurl-serve -- --checkpoint runs/x &
//! cargo run --release -p aurl-serve --example load -- --addr 127.0.0.1:8080 --clients 1,4,16,64
//! ```
//!
//! Each client sends `--each` requests of `--tokens` tokens (EOS held back, so every piece
//! has that many; `--constrained false` samples without the grammar, as the
//! `sampling/cached/*` benches do) one after another; prints tokens/s served, request and first-note latency
//! (p50, p95) and the 429s a client waited out, per client count.

mod client;

use std::net::SocketAddr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr: SocketAddr = "127.0.0.1:8080".parse()?;
    let mut clients = vec![1, 4, 16, 64];
    let (mut each, mut tokens, mut constrained) = (2, 256, true);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => addr = value.parse()?,
            "--clients" => {
                clients = value.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--each" => each = value.parse()?,
            "--tokens" => tokens = value.parse()?,
            "--constrained" => constrained = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let runtime = tokio::runtime::Runtime::new()?;
    for n in clients {
        let (report, outcomes) =
            runtime.block_on(client::run(addr, n, each, tokens, constrained))?;
        let unfinished = outcomes.iter().filter(|o| !o.done).count();
        let notes: usize = outcomes.iter().map(|o| o.notes).sum();
        println!("{report}, {notes} notes streamed");
        if unfinished > 0 {
            return Err(format!("{unfinished} streams ended without their piece").into());
        }
    }
    Ok(())
}
