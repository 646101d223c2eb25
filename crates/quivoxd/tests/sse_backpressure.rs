//! A slow SSE client loses events (counted), it never holds up the publisher: 10 decisions
//! published while a client with a 4-event queue reads nothing → it gets a `lagged` notice for
//! 6, then the 4 newest, and `quivoxd_sse_events_dropped_total` is 6.

mod common;

use std::sync::Arc;

use futures_util::StreamExt;
use quivoxd::calls::EventJson;
use quivoxd::{Backend, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sse_client_loses_oldest_events_and_they_are_counted() {
    let mut cfg = common::config(false);
    cfg.calls.event_queue = 4;
    let backend = Backend::open(&cfg).unwrap();
    let state = State::new(backend, cfg, tokio::runtime::Handle::current());
    let mut stream = Box::pin(quivoxd::http::event_stream(Arc::clone(&state), None));
    for seq in 1..=10 {
        let ev = EventJson {
            call_id: "c".into(),
            seq,
            is_final: false,
            kind: "need_more_audio",
            call_audio_ms: 20 * seq as u64,
            net_speech_ms: 0,
            speaker: None,
            posterior: None,
            llr: None,
            reason: Some("no_speech".into()),
            candidates: Vec::new(),
            number_says: Vec::new(),
            voice_verdict: None,
            voice_says: None,
            top_speaker: None,
            wall_ms: 0,
            unix_ms: 0,
        };
        // Never blocks, whatever the clients do.
        state.events.send(Arc::new(ev)).unwrap();
    }
    let mut items = 0;
    while items < 5 {
        let _event = stream.next().await.unwrap().unwrap();
        items += 1;
    }
    assert!(state
        .metrics
        .render()
        .contains("quivoxd_sse_events_dropped_total 6"));
    state.shutdown.send_replace(true);
    assert!(stream.next().await.is_none());
}
