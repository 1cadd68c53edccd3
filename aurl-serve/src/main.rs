//! `aurl-serve --checkpoint runs/<name> [--port 8080]`: serves a trained model over HTTP
//! (see the crate docs and the README for the API).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aurl::model::WeightFormat;
use aurl::model::any::load_any;
use aurl::model::weights::model_dir;
use aurl_serve::{Engine, Limits, router};
use clap::Parser;

/// Serves an Aurl model over HTTP.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A run directory (its `model/`) or a model directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Address to listen on (127.0.0.1: this machine only).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Most rows decoded together.
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    /// Most new tokens a request may ask for.
    #[arg(long, default_value_t = 4096)]
    max_tokens: usize,
    /// Requests that may wait for the engine before new ones get a 429.
    #[arg(long, default_value_t = 32)]
    queue: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    max_body: usize,
    /// Seconds a request may take, waiting included.
    #[arg(long, default_value_t = 300.0)]
    timeout: f64,
    /// Fixed batches (windowed models): milliseconds the idle engine waits for more
    /// requests to batch with the first.
    #[arg(long, default_value_t = 5)]
    batch_wait_ms: u64,
    /// Fixed batches (windowed models): threads decoding batches at once (default: the
    /// backend's choice).
    #[arg(long)]
    workers: Option<usize>,
    /// How requests share decoding steps: `continuous` (join the running batch between
    /// steps; models with a sliding window or block summaries fall back to fixed) or `fixed`
    /// (decode in batches gathered while the engine is idle).
    #[arg(long, value_enum, default_value_t = Batching::Continuous)]
    batching: Batching,
    /// Weight format decoding reads: f32, f16 or int8.
    #[arg(long, default_value = "f32")]
    weights: WeightFormat,
    /// Backend (flex, wgpu, cuda, ...; default: the build's).
    #[arg(long)]
    backend: Option<String>,
    /// Allow a browser front-end at this origin (CORS).
    #[arg(long)]
    cors_origin: Option<String>,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 30.0)]
    shutdown_grace: f64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for (name, value) in [
        ("--max-batch", args.max_batch),
        ("--max-tokens", args.max_tokens),
        ("--queue", args.queue),
        ("--max-body", args.max_body),
    ] {
        if value == 0 {
            return Err(format!("{name} must be at least 1").into());
        }
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    let device =
        aurl::backend::device_or_default(args.backend.as_deref()).map_err(|e| e.to_string())?;
    let dir = model_dir(&args.checkpoint);
    let model = load_any(&dir, &device)?.into_generative();
    let limits = Limits {
        max_tokens: args.max_tokens,
        max_batch: args.max_batch,
        queue: args.queue,
        max_body: args.max_body,
        timeout_s: args.timeout,
        batch_wait: Duration::from_millis(args.batch_wait_ms),
        continuous: args.batching == Batching::Continuous,
    };
    let workers = args
        .workers
        .unwrap_or_else(|| aurl::backend::decode_workers(args.backend.as_deref()));
    let engine = Engine::start(model, device, limits, workers, args.weights)?;
    let cors = args
        .cors_origin
        .as_deref()
        .map(axum::http::HeaderValue::from_str)
        .transpose()
        .map_err(|e| format!("--cors-origin: {e}"))?;
    let info = engine.info().clone();
    let address: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .map_err(|e| format!("--host {}: {e}", args.host))?;
    let listener = tokio::net::TcpListener::bind(address).await?;
    eprintln!(
        "serving {} ({} parameters, {} vocabulary, context {}) on http://{}",
        info.kind,
        info.parameters,
        info.scheme,
        info.context_length,
        listener.local_addr()?
    );
    let grace = Duration::from_secs_f64(args.shutdown_grace.max(0.0));
    let server = axum::serve(listener, router(engine, cors)).with_graceful_shutdown(shutdown());
    // In-flight requests get `grace` seconds after the signal; then the process ends.
    tokio::select! {
        result = server => result?,
        () = async { shutdown().await; tokio::time::sleep(grace).await } => {
            eprintln!("shutdown: in-flight requests did not finish within {} s", grace.as_secs_f64());
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
/// `--batching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Batching {
    Continuous,
    Fixed,
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("shutting down: no new requests; finishing those in flight");
}
