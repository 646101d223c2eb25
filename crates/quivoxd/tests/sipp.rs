//! SIPp (Debian package sip-tester) as the peer: SIPp places a SIP call to a minimal SIP
//! responder written here (playing the PBX/SBC that forks media to quivoxd: it answers the
//! INVITE with SDP pointing at the RTP port quivoxd allocated for the call), then streams a
//! recorded call as μ-law RTP with its `rtp_stream` action, in real time, and hangs up with BYE.
//! The responder ends the quivoxd call on BYE; the final decision must be `Identified`.
//!
//! Skipped (with a message) when `sipp` is not installed; `scripts/setup-system.sh` installs it.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use quivoxd::client;
use serde_json::json;
use tokio::net::UdpSocket;

const SCENARIO: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="quivoxd caller-ID over RTP">
  <send retrans="500">
    <![CDATA[
      INVITE sip:quivoxd@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+442079460001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:quivoxd@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=sendonly
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:quivoxd@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+442079460001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:quivoxd@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop>
    <action>
      <exec rtp_stream="AUDIO_FILE,1,0"/>
    </action>
  </nop>
  <pause milliseconds="PAUSE_MS"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:quivoxd@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+442079460001@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:quivoxd@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"#;

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn reply(req: &str, status: &str, body: &str) -> String {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for h in ["Via", "From", "Call-ID", "CSeq"] {
        if let Some(v) = header(req, h) {
            r.push_str(&format!("{h}: {v}\r\n"));
        }
    }
    let to = header(req, "To").unwrap_or("");
    if to.contains("tag=") {
        r.push_str(&format!("To: {to}\r\n"));
    } else {
        r.push_str(&format!("To: {to};tag=quivoxd1\r\n"));
    }
    r.push_str("Contact: <sip:quivoxd@127.0.0.1>\r\n");
    if !body.is_empty() {
        r.push_str("Content-Type: application/sdp\r\n");
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    r
}

/// The caller's number: the user part of the From URI.
fn from_number(req: &str) -> Option<String> {
    let from = header(req, "From")?;
    let user = from.split("sip:").nth(1)?.split('@').next()?;
    Some(user.to_string())
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_streams_mulaw_rtp_from_a_recording_and_is_identified() {
    if std::process::Command::new("sipp")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!(
            "sipp not installed (Debian package sip-tester; scripts/setup-system.sh): skipped"
        );
        return;
    }
    let d = daemon(true).await;
    let http = d.http_addr();
    let dir = tempfile::tempdir().unwrap();
    // The recording as raw μ-law bytes (what rtp_stream reads for payload type 0).
    let ulaw: Vec<u8> = call_pcm("so1027")
        .iter()
        .map(|&s| quivox::audio::g711::i16_to_ulaw(s))
        .collect();
    let audio = dir.path().join("so1027-call.ulaw");
    std::fs::write(&audio, &ulaw).unwrap();
    let pause_ms = ulaw.len() / 8 + 300;
    let scenario = dir.path().join("uac.xml");
    std::fs::write(
        &scenario,
        SCENARIO
            .replace("AUDIO_FILE", audio.to_str().unwrap())
            .replace("PAUSE_MS", &pause_ms.to_string()),
    )
    .unwrap();

    // The SIP responder.
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sip_addr = sip.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let mut calls: HashMap<String, u16> = HashMap::new();
        let mut buf = vec![0u8; 8192];
        loop {
            let (n, from) = sip.recv_from(&mut buf).await.unwrap();
            let msg = String::from_utf8_lossy(&buf[..n])
                .replace('\n', "\r\n")
                .replace("\r\r\n", "\r\n");
            let call_id = header(&msg, "Call-ID").unwrap_or("").to_string();
            if msg.starts_with("INVITE") {
                let port = match calls.get(&call_id) {
                    Some(p) => *p,
                    None => {
                        let r = client::post_json(
                            http,
                            "/v1/calls",
                            &json!({"transport": "rtp", "call_id": call_id, "caller_number": from_number(&msg)}),
                        )
                        .await
                        .unwrap();
                        assert_eq!(r.status, 201, "{}", r.text());
                        let p = r.json().unwrap()["rtp_port"].as_u64().unwrap() as u16;
                        calls.insert(call_id.clone(), p);
                        p
                    }
                };
                let sdp = format!(
                    "v=0\r\no=quivoxd 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                     m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"
                );
                sip.send_to(reply(&msg, "200 OK", &sdp).as_bytes(), from)
                    .await
                    .unwrap();
            } else if msg.starts_with("BYE") {
                sip.send_to(reply(&msg, "200 OK", "").as_bytes(), from)
                    .await
                    .unwrap();
                let end =
                    client::request(http, "DELETE", &format!("/v1/calls/{call_id}"), None, b"")
                        .await
                        .unwrap();
                return end.json().unwrap();
            }
        }
    });

    let mut cmd = std::process::Command::new("sipp");
    cmd.arg(sip_addr.to_string())
        .args(["-sf", scenario.to_str().unwrap()])
        .args(["-m", "1", "-i", "127.0.0.1", "-mi", "127.0.0.1", "-nostdin"])
        .args(["-p", &free_udp_port().to_string()])
        .args(["-mp", &free_udp_port().to_string()])
        .args(["-timeout", "40s", "-timeout_error"])
        .current_dir(dir.path())
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "sipp failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = tokio::time::timeout(Duration::from_secs(20), responder)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap["transport"], "rtp");
    assert_eq!(snap["caller_number"], "+442079460001");
    assert!(snap["frames_in"].as_u64().unwrap() >= 300, "{snap}");
    assert_eq!(snap["decision"]["final"], true);
    assert_eq!(snap["decision"]["kind"], "identified", "{snap}");
    assert_eq!(snap["decision"]["speaker"], "so1027");
    d.shutdown().await;
}
