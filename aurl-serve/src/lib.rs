//! `aurl-serve`: a generation server for Aurl models — JSON over HTTP (axum on tokio), the
//! piece as MIDI, its notes as server-sent events the moment they are sampled, concurrent
//! requests decoded together in batches.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /healthz` | `ok` while serving |
//! | `GET /v1/model` | kind, scheme, vocabulary size, parameters, context, accepted controls |
//! | `POST /v1/generate` | the piece as `audio/midi` (JSON with `Accept: application/json`; an interpolation: a JSON array) |
//! | `POST /v1/generate/stream` | `note` events, then `done` with the summary and base64 MIDI |
//! | `GET /metrics` | Prometheus text |
//!
//! The request body is [`GenerateBody`]: `{"tokens": 256}` is enough; `temperature`,
//! `top_k`, `top_p`, `min_p`, `seed`, `bars`, `seconds`, `controls`, `prompt_midi` (base64),
//! `constrained` and `interpolate` (a VAE) are optional. Bad input is a 4xx with
//! `{"error": ..., "field": ...}`; a full queue a 429 with `Retry-After`.
//!
//! In Rust: [`Engine::start`] on a loaded model, then [`router`] into any axum server (the
//! tests call it without a port):
//!
//! ```no_run
//! use aurl::burn::prelude::Device;
//! use aurl_serve::{Engine, Limits, router};
//! # async fn serve() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let device = Device::flex();
//! let model = aurl::model::any::load_any("runs/x/model".as_ref(), &device)?.into_generative();
//! let engine = Engine::start(model, device, Limits::default(), 1, Default::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, router(engine, None)).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod engine;
pub mod metrics;
mod routes;

pub use api::{ApiError, GenerateBody};
pub use engine::{Engine, Limits, ModelInfo};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

/// The API's routes on `engine`, with its body limit, and CORS for `cors_origin` (a
/// browser front-end's origin) when given.
pub fn router(engine: Engine, cors_origin: Option<axum::http::HeaderValue>) -> Router {
    let limit = engine.limits().max_body;
    let router = Router::new()
        .route("/healthz", get(routes::health))
        .route("/v1/model", get(routes::model))
        .route("/v1/generate", post(routes::generate))
        .route("/v1/generate/stream", post(routes::stream))
        .route("/metrics", get(routes::metrics))
        .layer(DefaultBodyLimit::max(limit))
        // A handler that panics answers 500 instead of dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(engine);
    match cors_origin {
        Some(origin) => router.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([axum::http::header::CONTENT_TYPE, axum::http::header::ACCEPT]),
        ),
        None => router,
    }
}
