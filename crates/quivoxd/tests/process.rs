//! The `quivoxd` binary as systemd runs it: readiness over `$NOTIFY_SOCKET` (a datagram), then
//! SIGTERM in the middle of a call: the call in flight gets its final decision (an SSE client
//! receives it, Asterisk's side receives a hang-up frame), `STOPPING=1` is sent, exit status 0.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use quivoxd::audiosocket::uuid_to_string;
use quivoxd::client::{self, AudioSocketClient, SseClient};
use serde_json::json;

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 1024];
    let n = sock
        .recv(&mut buf)
        .expect("notification before the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sd_notify_ready_then_sigterm_finishes_the_call_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut toml = String::from("compute_threads = 2\n");
    for (s, n) in SPEAKERS {
        toml.push_str(&format!(
            "[[enroll]]\nspeaker = \"{s}\"\nwav = [\"{}\"]\nnumbers = [\"{n}\"]\n",
            fixture(&format!("{s}-enroll.wav")).display()
        ));
    }
    let cfg = dir.path().join("quivoxd.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quivoxd"))
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("QUIVOXD_HTTP__LISTEN", "127.0.0.1:0")
        .env("QUIVOXD_AUDIOSOCKET__LISTEN", "127.0.0.1:0")
        .env("QUIVOXD_MODEL__PATH", repo().join("models/gmm-ubm.qvx"))
        .env("QUIVOXD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let ready = tokio::task::spawn_blocking({
        let n = notify.try_clone().unwrap();
        move || recv(&n)
    })
    .await
    .unwrap();
    assert!(ready.contains("READY=1"), "{ready}");
    assert!(
        ready.contains(&format!("MAINPID={}", child.id())),
        "{ready}"
    );
    // "STATUS=serving HTTP on A AudioSocket on B"
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap();
    let words: Vec<&str> = status.split_whitespace().collect();
    let http: std::net::SocketAddr = words[3].parse().unwrap();
    let asock: std::net::SocketAddr = words[6].parse().unwrap();
    assert_eq!(client::get(http, "/readyz").await.unwrap().status, 200);

    let u = uuid(77);
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
    let mut c = AudioSocketClient::connect(asock, &u).await.unwrap();
    for f in call_pcm("so0457").chunks(160) {
        c.audio(f).await.unwrap();
    }
    // No hang-up: the call is in flight when the daemon is told to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());

    let stopping = tokio::task::spawn_blocking(move || recv(&notify))
        .await
        .unwrap();
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
    let events = events_until_final(&mut sse).await;
    let last = events.last().unwrap();
    assert_eq!(last["final"], true);
    assert_eq!(last["kind"], "identified", "{events:?}");
    assert_eq!(last["speaker"], "so0457");
    // Asterisk's side is told the daemon hung up.
    let sent_back = c.closed_by_peer(Duration::from_secs(10)).await.unwrap();
    assert_eq!(sent_back, vec![0x00, 0, 0]);
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
