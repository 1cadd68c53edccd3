//! A bounded load test on loopback: 64 concurrent streaming requests of 256 tokens against the
//! default limits (16 rows per batch, a queue of 32: clients wait out the 429s). Every request
//! succeeds, every piece has its 256 tokens, nothing is lost.

#[path = "../examples/load/client.rs"]
mod client;
mod common;

use aurl_serve::{Engine, Limits, router};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_requests_all_succeed() {
    let (model, device) = common::tiny_transformer(1);
    let engine = Engine::start(model, device, Limits::default(), 1, Default::default()).unwrap();
    let metrics = engine.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router(engine, None)).await });
    let (report, outcomes) = client::run(addr, 64, 1, 256, true).await.unwrap();
    eprintln!("{report}");
    assert_eq!(outcomes.len(), 64);
    for o in &outcomes {
        assert!(o.done && o.notes > 0, "{o:?}");
        // 256 sampled; closing the piece may drop a half-written note.
        assert!((240..=256).contains(&o.new_tokens), "{o:?}");
    }
    assert_eq!(metrics.metrics().count("ok"), 64);
    assert_eq!(metrics.metrics().count("failed"), 0);
    server.abort();
}
