//! AudioSocket ingress end to end: a recorded call sent the way Asterisk's `AudioSocket()`
//! sends it (UUID frame, 320-byte slin frames, hang-up) ends with `Identified` for the enrolled
//! fixture speaker who made the recording.

mod common;

use std::time::Duration;

use common::*;
use quivoxd::audiosocket::uuid_to_string;
use quivoxd::client::{self, AudioSocketClient, SseClient};
use serde_json::json;

async fn send_call(addr: std::net::SocketAddr, uuid: &[u8; 16], pcm: &[i16], speedup: f64) {
    let mut c = AudioSocketClient::connect(addr, uuid).await.unwrap();
    let start = tokio::time::Instant::now();
    for (i, frame) in pcm.chunks(160).enumerate() {
        c.audio(frame).await.unwrap();
        if i % 5 == 4 {
            pace(start, i + 1, speedup).await;
        }
    }
    c.hangup().await.unwrap();
    // The daemon closes the connection after the hang-up.
    c.closed_by_peer(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_call_is_identified_number_before_and_after_socket() {
    let d = daemon(true).await;
    let http = d.http_addr();
    let asock = d.audiosocket_addr().unwrap();

    // 1. Number announced before the socket opens (the usual dialplan order).
    let u1 = uuid(1);
    let id1 = uuid_to_string(&u1);
    let r = client::post_json(
        http,
        "/v1/calls",
        &json!({"uuid": id1.to_uppercase(), "caller_number": "+44 20 7946 0001"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let mut sse = SseClient::connect(http, &format!("/v1/calls/{id1}/events"))
        .await
        .unwrap();
    send_call(asock, &u1, &call_pcm("so0457"), 8.0).await;
    let events = events_until_final(&mut sse).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "identified", "{events:?}");
    assert_eq!(last["speaker"], "so0457");
    assert!(last["posterior"].as_f64().unwrap() >= 0.99);
    // The first identification came from the stream, before the call ended.
    assert!(events
        .iter()
        .any(|e| e["kind"] == "identified" && e["final"] == false));

    let snap = client::get(http, &format!("/v1/calls/{id1}"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(snap["state"], "finished");
    assert_eq!(snap["caller_number"], "+44 20 7946 0001");
    assert_eq!(snap["decision"]["speaker"], "so0457");
    assert_eq!(snap["end_reason"], "hangup");
    assert_eq!(snap["frames_dropped"], 0);

    // 2. Socket first, number announced while the call is already streaming (within
    //    number_wait_ms): the household's other member.
    let u2 = uuid(2);
    let id2 = uuid_to_string(&u2);
    let pcm = call_pcm("so1027");
    let sender = tokio::spawn(async move { send_call(asock, &u2, &pcm, 4.0).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = client::post_json(
        http,
        "/v1/calls",
        &json!({"uuid": id2, "caller_number": "+44 20 7946 0001"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap()["number_applied"], true);
    sender.await.unwrap();
    let mut sse = SseClient::connect(http, &format!("/v1/calls/{id2}/events"))
        .await
        .unwrap();
    let events = events_until_final(&mut sse).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "identified", "{events:?}");
    assert_eq!(last["speaker"], "so1027");

    // 3. A caller nobody enrolled, number withheld (never announced): open-set `unknown`.
    let u3 = uuid(3);
    let id3 = uuid_to_string(&u3);
    send_call(asock, &u3, &call_pcm("so9614"), 20.0).await;
    let mut sse = SseClient::connect(http, &format!("/v1/calls/{id3}/events"))
        .await
        .unwrap();
    let events = events_until_final(&mut sse).await;
    assert_eq!(events.last().unwrap()["kind"], "unknown", "{events:?}");
    // Its number arriving after the session started without it is refused and counted.
    let late = client::post_json(
        http,
        "/v1/calls",
        &json!({"uuid": id3, "caller_number": "+1 555 0100"}),
    )
    .await
    .unwrap();
    assert_eq!(late.status, 409, "{}", late.text());

    let m = d.state().metrics.clone();
    assert!(m.decisions("identified") >= 2);
    let text = client::get(http, "/metrics").await.unwrap().text();
    assert!(text.contains("quivoxd_calls_total 3"), "{text}");
    assert!(text.contains("quivoxd_calls_active 0"), "{text}");
    assert!(text.contains("quivoxd_late_numbers_total 1"), "{text}");
    let report = d.shutdown().await;
    assert_eq!(report.calls_unfinished, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_over_http_then_identified() {
    let d = daemon(false).await;
    let http = d.http_addr();
    let ready = client::get(http, "/readyz").await.unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json().unwrap()["speakers"], 0);

    for (spk, number) in [("so0457", "+44 20 7946 0001"), ("so2740", "+1 555 0100")] {
        let wav = std::fs::read(fixture(&format!("{spk}-enroll.wav"))).unwrap();
        let r = client::request(
            http,
            "POST",
            &format!(
                "/v1/speakers/{spk}/enrollment?numbers={}",
                number.replace(' ', "%20").replace('+', "%2B")
            ),
            Some("audio/wav"),
            &wav,
        )
        .await
        .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(r.json().unwrap()["net_speech_ms"].as_u64().unwrap() >= 10_000);
    }
    // Garbage instead of a WAV: refused, nothing enrolled.
    let r = client::request(
        http,
        "POST",
        "/v1/speakers/x/enrollment",
        Some("audio/wav"),
        b"RIFF....",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let sp = client::get(http, "/v1/speakers")
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(sp["speakers"].as_array().unwrap().len(), 2);

    let u = uuid(9);
    let id = uuid_to_string(&u);
    client::post_json(
        http,
        "/v1/calls",
        &json!({"uuid": id, "caller_number": "+44 20 7946 0001"}),
    )
    .await
    .unwrap();
    let mut sse = SseClient::connect(http, &format!("/v1/calls/{id}/events"))
        .await
        .unwrap();
    send_call(d.audiosocket_addr().unwrap(), &u, &call_pcm("so0457"), 20.0).await;
    let events = events_until_final(&mut sse).await;
    assert_eq!(events.last().unwrap()["kind"], "identified", "{events:?}");
    assert_eq!(events.last().unwrap()["speaker"], "so0457");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_route() {
    let d = daemon(false).await;
    let r = client::get(d.http_addr(), "/openapi.json").await.unwrap();
    assert_eq!(r.status, 200);
    let doc = r.json().unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/calls",
        "/v1/calls/{id}",
        "/v1/calls/{id}/events",
        "/v1/events",
        "/v1/speakers/{speaker}/enrollment",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert_eq!(
        client::get(d.http_addr(), "/healthz").await.unwrap().status,
        200
    );
    d.shutdown().await;
}

/// The daemon's default models: the `models/` folder, i.e. the fused GMM-UBM + i-vector PLDA +
/// GE2E embedding PLDA system, with its streaming encoder in every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fused_models_folder_identifies_the_caller() {
    init_logs();
    let mut c = config(true);
    c.model.path = quivoxd::Config::default().model.path;
    assert_eq!(c.model.path, std::path::PathBuf::from("models"));
    c.model.path = repo().join("models");
    let d = quivoxd::Daemon::start(c).await.expect("daemon starts");
    let http = d.http_addr();
    let asock = d.audiosocket_addr().unwrap();
    let u = uuid(7);
    let id = uuid_to_string(&u);
    let r = client::post_json(
        http,
        "/v1/calls",
        &json!({"uuid": id, "caller_number": "+44 20 7946 0001"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let mut sse = SseClient::connect(http, &format!("/v1/calls/{id}/events"))
        .await
        .unwrap();
    send_call(asock, &u, &call_pcm("so1027"), 8.0).await;
    let events = events_until_final(&mut sse).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "identified", "{events:?}");
    assert_eq!(last["speaker"], "so1027");
    assert!(last["posterior"].as_f64().unwrap() >= 0.99);
}
