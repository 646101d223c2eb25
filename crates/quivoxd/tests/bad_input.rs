//! Bad input: malformed AudioSocket frames (wrong lengths, unknown kinds, truncation), abrupt
//! disconnects, garbage UDP datagrams and wrong RTP payload types. Each is dropped with a log
//! line and a metric, and a good call running at the same time is still identified.

mod common;

use std::time::Duration;

use common::*;
use quivoxd::audiosocket::uuid_to_string;
use quivoxd::client::{self, AudioSocketClient, SseClient};
use serde_json::json;
use tokio::net::{TcpStream, UdpSocket};

/// Sends `bytes` on a fresh connection and waits for the daemon to close it.
async fn closes_on(addr: std::net::SocketAddr, bytes: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s.shutdown().await.ok(); // the peer is done sending
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink))
        .await
        .expect("daemon closes a connection sending bad frames")
        .ok();
}

fn uuid_frame(seed: u8) -> Vec<u8> {
    let mut f = vec![0x01, 0, 16];
    f.extend_from_slice(&uuid(seed));
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_dropped_and_other_calls_go_on() {
    let d = daemon(true).await;
    let http = d.http_addr();
    let asock = d.audiosocket_addr().unwrap();
    let m = d.state().metrics.clone();

    // A good call, streamed in real time ×2 while the bad input arrives.
    let good = uuid(100);
    let good_id = uuid_to_string(&good);
    client::post_json(
        http,
        "/v1/calls",
        &json!({"uuid": good_id, "caller_number": "+44 20 7946 0001"}),
    )
    .await
    .unwrap();
    let mut sse = SseClient::connect(http, &format!("/v1/calls/{good_id}/events"))
        .await
        .unwrap();
    let pcm = call_pcm("so0457");
    let good_call = tokio::spawn(async move {
        let mut c = AudioSocketClient::connect(asock, &good).await.unwrap();
        let start = tokio::time::Instant::now();
        for (i, f) in pcm.chunks(160).enumerate() {
            c.audio(f).await.unwrap();
            pace(start, i + 1, 2.0).await;
        }
        c.hangup().await.unwrap();
        c.closed_by_peer(Duration::from_secs(10)).await.unwrap();
    });

    // --- AudioSocket ---
    // Audio before the UUID.
    closes_on(asock, &[0x10, 0x01, 0x40, 0, 0]).await;
    // UUID of the wrong length.
    closes_on(asock, &[0x01, 0, 4, 1, 2, 3, 4]).await;
    // Unknown frame kind after a valid UUID.
    let mut b = uuid_frame(1);
    b.extend_from_slice(&[0x42, 0, 2, 0, 0]);
    closes_on(asock, &b).await;
    // Odd audio length.
    let mut b = uuid_frame(2);
    b.extend_from_slice(&[0x10, 0, 3, 1, 2, 3]);
    closes_on(asock, &b).await;
    // Audio longer than max_audio_payload_bytes (3200).
    let mut b = uuid_frame(3);
    b.extend_from_slice(&[0x10, 0xff, 0xfe]);
    closes_on(asock, &b).await;
    // Truncated payload: header says 320 bytes, 100 arrive, then the peer closes.
    let mut b = uuid_frame(4);
    b.extend_from_slice(&[0x10, 0x01, 0x40]);
    b.extend_from_slice(&[0u8; 100]);
    closes_on(asock, &b).await;
    // Abrupt disconnect after some audio, no hang-up frame.
    {
        let mut c = AudioSocketClient::connect(asock, &uuid(5)).await.unwrap();
        for _ in 0..10 {
            c.audio(&[0i16; 160]).await.unwrap();
        }
        drop(c.into_inner());
    }
    // Peer error frame.
    let mut b = uuid_frame(6);
    b.extend_from_slice(&[0xff, 0, 1, 3]);
    closes_on(asock, &b).await;
    // Duplicate UUID while the good call is in progress. Its connection must have been
    // registered first: on a loaded machine the spawned good call may not have connected yet,
    // and then the duplicate would take its place and the good call would be refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let snap = client::get(http, &format!("/v1/calls/{good_id}"))
            .await
            .unwrap()
            .json()
            .unwrap();
        if snap["frames_in"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the good call never streamed: {snap}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut b = uuid_frame(100);
    b.extend_from_slice(&[0x10, 0, 2, 0, 0]);
    closes_on(asock, &b).await;

    // --- RTP ---
    let r = client::post_json(
        http,
        "/v1/calls",
        &json!({"transport": "rtp", "call_id": "junk"}),
    )
    .await
    .unwrap();
    let port = r.json().unwrap()["rtp_port"].as_u64().unwrap() as u16;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xde, 0xad],
        b"INVITE sip:x@y SIP/2.0\r\n\r\n".to_vec(),
        vec![0x40; 40], // RTP version 1
        {
            let mut p = quivoxd::rtp::build(0, 1, 1, 1, &[0xff; 160]);
            p[0] = 0x8f; // 15 CSRCs claimed, none present
            p.truncate(20);
            p
        },
    ];
    for g in &garbage {
        udp.send_to(g, to).await.unwrap();
    }
    // Wrong payload types: G.722 (9), comfort noise (13), telephone-event (101).
    for (i, pt) in [9u8, 13, 101].iter().enumerate() {
        udp.send_to(&quivoxd::rtp::build(*pt, i as u16, 0, 7, &[1; 160]), to)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let junk = client::request(http, "DELETE", "/v1/calls/junk", None, b"")
        .await
        .unwrap();
    assert_eq!(junk.status, 200);
    let junk = junk.json().unwrap();
    assert_eq!(junk["frames_in"], 0, "{junk}");
    // No audio at all: the decision says so rather than guessing.
    assert_eq!(junk["decision"]["kind"], "need_more_audio", "{junk}");

    // --- HTTP ---
    let r = client::post_json(http, "/v1/calls", &json!({"uuid": "not-a-uuid"}))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = client::request(
        http,
        "POST",
        "/v1/calls",
        Some("application/json"),
        b"{\"uuid\":",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    let r = client::post_json(
        http,
        "/v1/calls",
        &json!({"uuid": uuid_to_string(&uuid(7)), "caller_number": "call me"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());

    // The good call was served throughout.
    good_call.await.unwrap();
    let events = events_until_final(&mut sse).await;
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "identified", "{events:?}");
    assert_eq!(last["speaker"], "so0457");

    let n = |s, r| m.bad_inputs(s, r);
    assert_eq!(n("audiosocket", "expected_uuid_first"), 1);
    assert_eq!(n("audiosocket", "bad_length"), 3);
    assert_eq!(n("audiosocket", "unknown_type"), 1);
    assert_eq!(n("audiosocket", "truncated"), 1);
    assert_eq!(n("audiosocket", "abrupt_disconnect"), 1);
    assert_eq!(n("audiosocket", "peer_error"), 1);
    assert_eq!(n("audiosocket", "duplicate_call"), 1);
    assert_eq!(n("rtp", "malformed"), garbage.len() as u64);
    assert_eq!(n("rtp", "payload_type"), 3);
    assert!(n("http", "bad_request") >= 3);
    let text = client::get(http, "/metrics").await.unwrap().text();
    assert!(
        text.contains("quivoxd_bad_input_total{source=\"rtp\",reason=\"payload_type\"} 3"),
        "{text}"
    );

    // Calls cut short by bad frames still got their final decision (nothing left hanging).
    for seed in [4u8, 5, 6] {
        let snap = client::get(http, &format!("/v1/calls/{}", uuid_to_string(&uuid(seed))))
            .await
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(snap["state"], "finished", "{snap}");
    }
    let report = d.shutdown().await;
    assert_eq!(report.calls_unfinished, 0);
}
