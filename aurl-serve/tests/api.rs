//! The API against the router, in process (no port): every endpoint, reproducibility by
//! seed, streamed notes equal to the final piece's, cancellation, and bad input.

mod common;

use std::time::Duration;

use aurl::burn::prelude::Device;
use aurl::core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl::model::any::Generative;
use aurl::model::weights::SavedModel;
use aurl_serve::{Engine, Limits, router};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn engine(limits: Limits) -> Engine {
    let (model, device) = common::tiny_transformer(3);
    Engine::start(model, device, limits, 1, Default::default()).unwrap()
}

fn limits() -> Limits {
    Limits {
        max_tokens: 256,
        max_batch: 4,
        queue: 16,
        timeout_s: 120.0,
        ..Limits::default()
    }
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>, header::HeaderMap) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec(), headers)
}

fn post(path: &str, json: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json.to_owned()))
        .unwrap()
}

/// The response of `/v1/generate/stream` to `json`, its body not yet read.
async fn open_stream(app: &Router, json: &str) -> axum::response::Response {
    app.clone()
        .oneshot(post("/v1/generate/stream", json))
        .await
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn health_model_and_metrics_answer() {
    let app = router(engine(limits()), None);
    let (status, body, _) = call(&app, get("/healthz")).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"ok\n"[..]));
    let (status, body, _) = call(&app, get("/v1/model")).await;
    assert_eq!(status, StatusCode::OK);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["kind"], "transformer");
    assert_eq!(info["scheme"], "remi");
    assert!(info["vocab_size"].as_u64().unwrap() > 100);
    assert!(info["parameters"].as_u64().unwrap() > 1000);
    assert_eq!(info["latent"], false);
    let controls: Vec<&str> = info["control_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(controls.contains(&"Tempo_120.0") && controls.contains(&"Program_0"));
    assert!(!controls.contains(&"Bar"), "{controls:?}");
    let (status, body, _) = call(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("aurl_requests_total")
    );
}

#[tokio::test]
async fn a_seed_gives_the_same_midi_bytes_and_json_carries_them() {
    let app = router(engine(limits()), None);
    let body = r#"{"tokens": 48, "min_tokens": 48, "seed": 5, "temperature": 0.9}"#;
    let (status, first, headers) = call(&app, post("/v1/generate", body)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&first)
    );
    assert_eq!(headers[header::CONTENT_TYPE], "audio/midi");
    assert_eq!(&first[..4], b"MThd");
    let (_, again, _) = call(&app, post("/v1/generate", body)).await;
    assert_eq!(first, again, "same seed and settings, same bytes");
    let json_request = Request::post("/v1/generate")
        .header(header::ACCEPT, "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, json, _) = call(&app, json_request).await;
    assert_eq!(status, StatusCode::OK);
    let piece: Value = serde_json::from_slice(&json).unwrap();
    let midi = base64_decode(piece["midi"].as_str().unwrap());
    assert_eq!(midi, first);
    // 48 sampled; closing the piece may drop a half-written note at the end.
    let new_tokens = piece["summary"]["new_tokens"].as_u64().unwrap();
    assert!((40..=48).contains(&new_tokens), "{new_tokens}");
    assert_eq!(piece["seed"], 5);
}

#[tokio::test]
async fn concurrent_requests_are_batched_and_each_gets_its_own_seeds_piece() {
    let body =
        |seed: u64| format!(r#"{{"tokens": 40, "min_tokens": 40, "seed": {seed}, "top_k": 20}}"#);
    let mut by_mode = Vec::new();
    // Continuous batching, then fixed batches (`--batching fixed`): the same pieces.
    for continuous in [true, false] {
        let app = router(
            engine(Limits {
                continuous,
                ..limits()
            }),
            None,
        );
        let alone: Vec<Vec<u8>> = {
            let mut out = Vec::new();
            for seed in 0..4 {
                out.push(call(&app, post("/v1/generate", &body(seed))).await.1);
            }
            out
        };
        let together = futures_join(&app, (0..4).map(body).collect()).await;
        assert_eq!(alone, together, "a piece does not depend on its batch");
        let (_, metrics, _) = call(&app, get("/metrics")).await;
        let metrics = String::from_utf8(metrics).unwrap();
        assert!(
            metrics.contains("aurl_requests_total{outcome=\"ok\"} 8"),
            "{metrics}"
        );
        by_mode.push(alone);
    }
    assert_eq!(
        by_mode[0], by_mode[1],
        "both ways of batching give the same bytes"
    );
}

async fn futures_join(app: &Router, bodies: Vec<String>) -> Vec<Vec<u8>> {
    let handles: Vec<_> = bodies
        .into_iter()
        .map(|b| {
            let app = app.clone();
            tokio::spawn(async move { call(&app, post("/v1/generate", &b)).await.1 })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// `(event, data)` of each server-sent event in `text`.
fn sse(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_owned());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            Some((event?, serde_json::from_str(&data).ok()?))
        })
        .collect()
}

#[tokio::test]
async fn the_stream_sends_each_note_then_the_piece_that_holds_them() {
    let app = router(engine(limits()), None);
    let (status, body, headers) = call(
        &app,
        post(
            "/v1/generate/stream",
            r#"{"tokens": 200, "min_tokens": 200, "seed": 2}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse(&String::from_utf8(body).unwrap());
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done");
    let notes: Vec<&Value> = events
        .iter()
        .filter(|(e, _)| e == "note")
        .map(|(_, d)| d)
        .collect();
    let piece = &done["pieces"][0];
    assert!(notes.len() > 5, "{}", piece["summary"]);
    assert_eq!(
        notes.len() as u64,
        piece["summary"]["notes"].as_u64().unwrap()
    );
    let midi = base64_decode(piece["midi"].as_str().unwrap());
    let (score, _) = aurl::data::read_midi(&midi, aurl::data::Mode::Strict).unwrap();
    let mut written: Vec<u64> = score
        .tracks
        .iter()
        .flat_map(|t| t.notes.iter().map(|n| u64::from(n.pitch.get())))
        .collect();
    let mut streamed: Vec<u64> = notes.iter().map(|n| n["pitch"].as_u64().unwrap()).collect();
    written.sort_unstable();
    streamed.sort_unstable();
    assert_eq!(streamed, written);
}

#[tokio::test]
async fn a_client_that_leaves_cancels_its_row() {
    let engine = engine(limits());
    let app = router(engine.clone(), None);
    let response = open_stream(&app, r#"{"tokens": 256, "min_tokens": 256, "seed": 9}"#).await;
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    for _ in 0..600 {
        if engine.metrics().count("cancelled") == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the dropped stream was not cancelled");
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_field_and_the_server_goes_on() {
    let app = router(
        engine(Limits {
            max_body: 4096,
            ..limits()
        }),
        None,
    );
    let garbage = base64_encode(b"not a midi file at all");
    let cases = [
        ("{", None),
        (r#"{"tokens": 0}"#, Some("tokens")),
        (r#"{"tokens": 257}"#, Some("tokens")),
        (r#"{"tokens": 1e99}"#, Some("tokens")),
        (r#"{"tokens": 8, "top_p": -1}"#, Some("top_p")),
        (
            r#"{"tokens": 8, "controls": [{"bar": 1, "tokens": ["NoSuchToken"]}]}"#,
            Some("controls[0]"),
        ),
        (
            r#"{"tokens": 8, "controls": [{"bar": 1, "tokens": ["Bar"]}]}"#,
            Some("controls"),
        ),
        (
            &format!(r#"{{"tokens": 8, "prompt_midi": "{garbage}"}}"#),
            Some("prompt_midi"),
        ),
        (
            &format!(
                r#"{{"tokens": 8, "interpolate": {{"a": "{garbage}", "b": "{garbage}", "steps": 2}}}}"#
            ),
            Some("interpolate"),
        ),
    ];
    for (body, field) in cases {
        let (status, json, _) = call(&app, post("/v1/generate", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error: Value = serde_json::from_slice(&json).unwrap();
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        assert_eq!(error["field"].as_str(), field, "{body}: {error}");
    }
    let huge = format!(r#"{{"tokens": 8, "prompt_midi": "{}"}}"#, "A".repeat(8000));
    let (status, _, _) = call(&app, post("/v1/generate", &huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body, _) = call(&app, post("/v1/generate", r#"{"tokens": 8}"#)).await;
    assert_eq!(status, StatusCode::OK, "still serving");
    assert_eq!(&body[..4], b"MThd");
    let controlled = r#"{"tokens": 32, "controls": [{"bar": 1, "tokens": ["Tempo_120.0"]}]}"#;
    let (status, body, _) = call(&app, post("/v1/generate", controlled)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let app = router(
        engine(Limits {
            max_batch: 1,
            queue: 1,
            ..limits()
        }),
        None,
    );
    let handles: Vec<_> = (0..6)
        .map(|seed| {
            let app = app.clone();
            tokio::spawn(async move {
                let body = format!(r#"{{"tokens": 256, "min_tokens": 256, "seed": {seed}}}"#);
                let (status, _, headers) = call(&app, post("/v1/generate", &body)).await;
                (status, headers.get(header::RETRY_AFTER).cloned())
            })
        })
        .collect();
    let mut rejected = 0;
    for h in handles {
        let (status, retry) = h.await.unwrap();
        match status {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                rejected += 1;
                assert!(retry.is_some(), "a 429 says when to retry");
            }
            other => panic!("{other}"),
        }
    }
    assert!((1..6).contains(&rejected), "{rejected} of 6 rejected");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_vae_interpolates_between_two_uploads_into_an_array_of_pieces() {
    use aurl::model::vae::VaeConfig;
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let device = Device::flex();
    let config = VaeConfig::tiny(remi.vocab().len());
    let model = Generative::Vae(SavedModel {
        model: common::seeded(&device, 4, |device| config.init(device).unwrap()),
        config,
        vocabulary: remi.vocab().clone(),
    });
    let app = router(
        Engine::start(model, device, limits(), 1, Default::default()).unwrap(),
        None,
    );
    let (_, info, _) = call(&app, get("/v1/model")).await;
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(
        (info["kind"].as_str(), info["latent"].as_bool()),
        (Some("vae"), Some(true))
    );
    let fixture = |name: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures")
            .join(name);
        base64_encode(&std::fs::read(path).unwrap())
    };
    let (a, b) = (
        fixture("format0_multichannel.mid"),
        fixture("format2_low_ppq.mid"),
    );
    let body = format!(
        r#"{{"tokens": 24, "min_tokens": 24, "seed": 1, "interpolate": {{"a": "{a}", "b": "{b}", "steps": 3}}}}"#
    );
    let (status, json, _) = call(&app, post("/v1/generate", &body)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&json));
    let pieces: Vec<Value> = serde_json::from_slice(&json).unwrap();
    assert_eq!(pieces.len(), 3);
    for p in &pieces {
        assert_eq!(&base64_decode(p["midi"].as_str().unwrap())[..4], b"MThd");
    }
    // A piece from the prior: one MIDI file.
    let (status, midi, _) = call(&app, post("/v1/generate", r#"{"tokens": 16}"#)).await;
    assert_eq!((status, &midi[..4]), (StatusCode::OK, &b"MThd"[..]));
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_504_and_its_row_is_cancelled() {
    let engine = engine(Limits {
        timeout_s: 0.05,
        max_tokens: 4000,
        ..limits()
    });
    let app = router(engine.clone(), None);
    let long = r#"{"tokens": 4000, "min_tokens": 4000, "constrained": false}"#;
    // Occupy the engine so that the next requests wait past their deadline.
    let busy = {
        let app = app.clone();
        tokio::spawn(async move { call(&app, post("/v1/generate", long)).await.0 })
    };
    let (status, json, _) = call(&app, post("/v1/generate", long)).await;
    assert_eq!(
        status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        String::from_utf8_lossy(&json)
    );
    let (status, body, _) = call(&app, post("/v1/generate/stream", long)).await;
    assert_eq!(status, StatusCode::OK);
    let events = sse(&String::from_utf8(body).unwrap());
    assert_eq!(
        events.last().map(|(e, _)| e.as_str()),
        Some("error"),
        "{events:?}"
    );
    let _ = busy.await;
    assert!(engine.metrics().count("timeout") >= 2);
}

#[tokio::test]
async fn a_request_joins_the_running_batch_and_leaves_it_when_done() {
    let engine = engine(Limits {
        max_tokens: 4000,
        ..limits()
    });
    let app = router(engine.clone(), None);
    let short = r#"{"tokens": 16, "min_tokens": 16, "seed": 4, "top_k": 20}"#;
    let alone = call(&app, post("/v1/generate", short)).await.1;
    // A long piece streams; once its first note is out, a short request comes in.
    let long = open_stream(&app, r#"{"tokens": 4000, "min_tokens": 4000, "seed": 9}"#).await;
    let mut body = long.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    let (status, joined, _) = call(&app, post("/v1/generate", short)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        joined, alone,
        "a piece does not depend on the rows it decoded with"
    );
    // The short request was answered while the long one still decodes: it joined the
    // running batch (fixed batches would have made it wait for the long piece) and shared
    // its steps.
    assert_eq!(engine.metrics().count("ok"), 2);
    let (_, metrics, _) = call(&app, get("/metrics")).await;
    let metrics = String::from_utf8(metrics).unwrap();
    let bucket = |le: &str| -> u64 {
        let line = format!("aurl_batch_rows_bucket{{le=\"{le}\"}} ");
        let at = metrics.find(&line).unwrap() + line.len();
        metrics[at..].lines().next().unwrap().parse().unwrap()
    };
    assert!(
        bucket("2") > bucket("1"),
        "some steps decoded two rows\n{metrics}"
    );
    drop(body);
}
