//! The HTTP handlers.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{ApiError, encode_base64, parse_body};
use crate::engine::{Engine, Event, Piece, Submitted};

/// `GET /healthz`: 200 while the engine takes requests.
pub async fn health() -> &'static str {
    "ok\n"
}

/// `GET /v1/model`: what is served.
pub async fn model(State(engine): State<Engine>) -> Response {
    axum::Json(engine.info()).into_response()
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(engine): State<Engine>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        engine.metrics().render(),
    )
        .into_response()
}

/// Parses, checks and queues a body.
fn submit(engine: &Engine, body: &[u8]) -> Result<Submitted, ApiError> {
    let spec = parse_body(body)
        .and_then(|b| b.check(engine.limits()))
        .inspect_err(|_| engine.metrics().outcome("bad_request"))?;
    engine.submit(spec)
}

/// A request the handler waits for: dropped before [`Pending::finish`] (the client left,
/// so the handler's future was dropped), it cancels the request and counts it.
struct Pending {
    cancel: aurl::sampling::CancelToken,
    engine: Engine,
    finished: bool,
}

impl Pending {
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            self.cancel.cancel();
            self.engine.metrics().outcome("cancelled");
        }
    }
}

/// `POST /v1/generate`: the piece as `audio/midi`, or JSON (`Accept: application/json`,
/// and always for an interpolation: an array of pieces).
pub async fn generate(State(engine): State<Engine>, headers: HeaderMap, body: Bytes) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let mut submitted = match submit(&engine, &body) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let pending = Pending {
        cancel: submitted.cancel.clone(),
        engine: engine.clone(),
        finished: false,
    };
    let timeout = Duration::from_secs_f64(engine.limits().timeout_s);
    let done = tokio::time::timeout(timeout, async {
        while let Some(event) = submitted.events.recv().await {
            if let Event::Done(result) = event {
                return result;
            }
        }
        Err(ApiError::status(500, "the engine dropped the request"))
    })
    .await;
    let result = done.unwrap_or_else(|_| {
        submitted.cancel.cancel();
        engine.metrics().outcome("timeout");
        Err(ApiError::status(
            504,
            "the request took longer than --timeout",
        ))
    });
    pending.finish();
    match result {
        Err(e) => e.into_response(),
        Ok(mut pieces) if pieces.len() == 1 && !wants_json => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("audio/midi"))],
            pieces.swap_remove(0).midi,
        )
            .into_response(),
        Ok(pieces) if pieces.len() == 1 => axum::Json(piece_json(&pieces[0])).into_response(),
        Ok(pieces) => axum::Json(pieces.iter().map(piece_json).collect::<Vec<_>>()).into_response(),
    }
}

/// A piece as JSON: its summary, seed and base64 MIDI.
fn piece_json(piece: &Piece) -> serde_json::Value {
    json!({
        "midi": encode_base64(&piece.midi),
        "seed": piece.seed,
        "summary": piece.summary,
    })
}

/// `POST /v1/generate/stream`: server-sent events — `note` per completed note, then `done`
/// with the summary and the MIDI in base64 (or `error`), then the stream closes.
pub async fn stream(State(engine): State<Engine>, body: Bytes) -> Response {
    let submitted = match submit(&engine, &body) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    Sse::new(events(engine, submitted))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The SSE events of a submitted request, forwarded by a task that cancels the request when
/// the client goes away (the stream is dropped) or the timeout passes.
fn events(
    engine: Engine,
    mut submitted: Submitted,
) -> ReceiverStream<Result<SseEvent, Infallible>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let started = Instant::now();
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs_f64(engine.limits().timeout_s);
        let mut first_note = true;
        loop {
            let next = tokio::select! {
                () = tx.closed() => {
                    submitted.cancel.cancel();
                    engine.metrics().outcome("cancelled");
                    return;
                }
                next = tokio::time::timeout_at(deadline, submitted.events.recv()) => next,
            };
            let (event, last) = match next {
                Err(_) => {
                    submitted.cancel.cancel();
                    engine.metrics().outcome("timeout");
                    let e = ApiError::status(504, "the request took longer than --timeout");
                    (json_event("error", &e), true)
                }
                Ok(None) => {
                    let e = ApiError::status(500, "the engine dropped the request");
                    (json_event("error", &e), true)
                }
                Ok(Some(Event::Note { piece, note })) => {
                    if std::mem::take(&mut first_note) {
                        engine.metrics().first_note(started.elapsed().as_secs_f64());
                    }
                    let note = json!({
                        "piece": piece,
                        "pitch": note.pitch,
                        "velocity": note.velocity,
                        "program": note.program,
                        "onset_seconds": note.start_seconds,
                        "duration_seconds": note.duration_seconds,
                        "bar": note.bar,
                    });
                    (json_event("note", &note), false)
                }
                Ok(Some(Event::Done(Ok(pieces)))) => {
                    let pieces: Vec<_> = pieces.iter().map(piece_json).collect();
                    (json_event("done", &json!({ "pieces": pieces })), true)
                }
                Ok(Some(Event::Done(Err(e)))) => (json_event("error", &e), true),
            };
            if tx.send(Ok(event)).await.is_err() {
                if !last {
                    submitted.cancel.cancel();
                    engine.metrics().outcome("cancelled");
                }
                return;
            }
            if last {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// An SSE event named `name` with `data` as JSON.
fn json_event(name: &str, data: &impl serde::Serialize) -> SseEvent {
    let json = serde_json::to_string(data).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    SseEvent::default().event(name).data(json)
}
