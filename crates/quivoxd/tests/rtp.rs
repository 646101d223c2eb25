//! RTP ingress: a recorded call sent as μ-law RTP (20-ms packets) with reordering, loss,
//! duplicates and an SSRC change still ends with `Identified`; the jitter buffer's drops and
//! concealments are counted.

mod common;

use std::time::Duration;

use common::*;
use quivoxd::client::{self, SseClient};
use quivoxd::metrics::DropReason;
use quivoxd::rtp;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::net::UdpSocket;

/// μ-law packets of a recording (160 samples each).
fn ulaw_packets(speaker: &str) -> Vec<Vec<u8>> {
    call_pcm(speaker)
        .chunks(160)
        .map(|c| {
            c.iter()
                .map(|&s| quivox::audio::g711::i16_to_ulaw(s))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mulaw_rtp_with_reordering_and_loss_is_identified() {
    let d = daemon(true).await;
    let http = d.http_addr();
    let r = client::post_json(
        http,
        "/v1/calls",
        &json!({"transport": "rtp", "call_id": "rtp-call-1", "caller_number": "+44 20 7946 0001"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let port = r.json().unwrap()["rtp_port"].as_u64().unwrap() as u16;
    let mut sse = SseClient::connect(http, "/v1/calls/rtp-call-1/events")
        .await
        .unwrap();

    let packets = ulaw_packets("so0457");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // Sequence numbers start near the wrap; the SSRC changes two thirds of the way through
    // (new random sequence and timestamp bases, as after a re-INVITE).
    let switch_at = packets.len() * 2 / 3;
    let mut wire: Vec<(u32, u16, u32, &[u8])> = Vec::new();
    let mut lost = 0;
    for (i, p) in packets.iter().enumerate() {
        let (ssrc, seq, ts) = if i < switch_at {
            (
                0x1111_2222,
                65500u16.wrapping_add(i as u16),
                1000 + 160 * i as u32,
            )
        } else {
            let j = i - switch_at;
            (
                0x3333_4444,
                20_000u16.wrapping_add(j as u16),
                9_000_000 + 160 * j as u32,
            )
        };
        // 3 % loss, never right at the switch (the switch needs 3 packets in a row).
        let near_switch = i + 3 >= switch_at && i <= switch_at + 5;
        if i > 5 && i + 3 < packets.len() && !near_switch && rng.random_bool(0.03) {
            lost += 1;
            continue;
        }
        wire.push((ssrc, seq, ts, p));
        if rng.random_bool(0.02) {
            wire.push((ssrc, seq, ts, p)); // duplicate
        }
    }
    // Reorder: shuffle within windows of 3 packets (within the 5-packet jitter depth), on
    // each side of the SSRC switch.
    let first_new = wire.iter().position(|w| w.0 == 0x3333_4444).unwrap();
    let (old, new) = wire.split_at_mut(first_new);
    for w in old.chunks_mut(3).chain(new.chunks_mut(3)) {
        w.shuffle(&mut rng);
    }
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let start = tokio::time::Instant::now();
    for (i, (ssrc, seq, ts, p)) in wire.iter().enumerate() {
        sock.send_to(&rtp::build(0, *seq, *ts, *ssrc, p), to)
            .await
            .unwrap();
        if i % 5 == 4 {
            pace(start, i + 1, 10.0).await;
        }
    }
    // Give the last datagrams time to land, then end the call over HTTP (as a SIP BYE would).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let end = client::request(http, "DELETE", "/v1/calls/rtp-call-1", None, b"")
        .await
        .unwrap();
    assert_eq!(end.status, 200, "{}", end.text());
    let snap = end.json().unwrap();
    assert_eq!(snap["state"], "finished");
    assert_eq!(snap["decision"]["kind"], "identified", "{snap}");
    assert_eq!(snap["decision"]["speaker"], "so0457");

    let events = events_until_final(&mut sse).await;
    assert_eq!(events.last().unwrap()["speaker"], "so0457");
    let m = &d.state().metrics;
    assert!(lost > 0);
    // Every lost packet is concealed once (losses at the SSRC switch excluded by construction).
    assert_eq!(m.drops(DropReason::RtpLost), lost as u64);
    assert!(m.drops(DropReason::RtpLate) + m.drops(DropReason::RtpDuplicate) > 0);
    let text = client::get(http, "/metrics").await.unwrap().text();
    assert!(text.contains("quivoxd_rtp_ssrc_changes_total 1"), "{text}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alaw_rtp_is_identified() {
    let d = daemon(true).await;
    let http = d.http_addr();
    let r = client::post_json(
        http,
        "/v1/calls",
        &json!({"transport": "rtp", "caller_number": "+44 20 7946 0001"}),
    )
    .await
    .unwrap();
    let v = r.json().unwrap();
    let (id, port) = (
        v["call_id"].as_str().unwrap().to_string(),
        v["rtp_port"].as_u64().unwrap() as u16,
    );
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for (i, c) in call_pcm("so1027").chunks(160).enumerate() {
        let a: Vec<u8> = c
            .iter()
            .map(|&s| quivox::audio::g711::i16_to_alaw(s))
            .collect();
        sock.send_to(&rtp::build(8, i as u16, 160 * i as u32, 42, &a), to)
            .await
            .unwrap();
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let snap = client::request(http, "DELETE", &format!("/v1/calls/{id}"), None, b"")
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(snap["decision"]["kind"], "identified", "{snap}");
    assert_eq!(snap["decision"]["speaker"], "so1027");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_port_demultiplexes_two_calls_by_ssrc() {
    let mut cfg = config(true);
    cfg.rtp.shared_listen = Some("127.0.0.1:0".parse().unwrap());
    init_logs();
    let d = quivoxd::Daemon::start(cfg).await.unwrap();
    let http = d.http_addr();
    let shared = d.rtp_shared_addr().unwrap();
    let mut streams = Vec::new();
    for (id, ssrc, speaker) in [("a", 1001u32, "so0457"), ("b", 2002u32, "so1027")] {
        let r = client::post_json(
            http,
            "/v1/calls",
            &json!({"transport": "rtp", "call_id": id, "ssrc": ssrc, "caller_number": "+44 20 7946 0001"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json().unwrap()["rtp_port"], shared.port());
        streams.push((id, ssrc, speaker, ulaw_packets(speaker)));
    }
    // The same SSRC cannot be announced twice.
    let r = client::post_json(
        http,
        "/v1/calls",
        &json!({"transport": "rtp", "call_id": "c", "ssrc": 1001}),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 409);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let longest = streams.iter().map(|s| s.3.len()).max().unwrap();
    for i in 0..longest {
        for (_, ssrc, _, packets) in &streams {
            if let Some(p) = packets.get(i) {
                sock.send_to(&rtp::build(0, i as u16, 160 * i as u32, *ssrc, p), shared)
                    .await
                    .unwrap();
            }
        }
        // A stream nobody announced, on the same port.
        if i % 50 == 0 {
            sock.send_to(&rtp::build(0, i as u16, 0, 9999, &[0xff; 160]), shared)
                .await
                .unwrap();
        }
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (id, _, speaker, _) in &streams {
        let snap = client::request(http, "DELETE", &format!("/v1/calls/{id}"), None, b"")
            .await
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(snap["decision"]["kind"], "identified", "{snap}");
        assert_eq!(snap["decision"]["speaker"], *speaker, "{snap}");
    }
    assert!(d.state().metrics.bad_inputs("rtp", "unannounced_ssrc") >= 7);
    d.shutdown().await;
}
