//! Asterisk AudioSocket ingress (TCP).
//!
//! Frames are `kind: u8, length: u16 big-endian, payload`. The first frame must be the call UUID
//! (kind 0x01, 16 bytes); then audio (0x10, signed linear 16-bit little-endian at 8 kHz, 320 bytes
//! per 20 ms), DTMF (0x03, one ASCII digit), hang-up (0x00) or error (0xFF). Any violation closes
//! the connection with a log line and a `quivoxd_bad_input_total{source="audiosocket"}` count;
//! the call, if opened, still gets its final decision on the audio it sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::calls::{OpenError, State, Transport};

/// Frame kinds.
pub mod kind {
    /// Hang-up (no payload).
    pub const HANGUP: u8 = 0x00;
    /// Call UUID (16 bytes).
    pub const UUID: u8 = 0x01;
    /// DTMF digit (1 byte, ASCII).
    pub const DTMF: u8 = 0x03;
    /// Audio: signed linear 16-bit little-endian, 8 kHz mono.
    pub const AUDIO: u8 = 0x10;
    /// Error (optional 1-byte code).
    pub const ERROR: u8 = 0xFF;
}

/// Formats 16 UUID bytes as lowercase hyphenated text.
pub fn uuid_to_string(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses a UUID (32 hex digits, hyphens anywhere ignored) to its canonical text; `None` if it
/// is not one.
pub fn canonical_uuid(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(uuid_to_string(&b))
}

/// Serves AudioSocket connections until shutdown.
pub async fn serve(state: Arc<State>, listener: TcpListener) {
    let mut shutdown = state.shutdown.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handle(Arc::clone(&state), stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audiosocket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = crate::calls::until_true(&mut shutdown) => break,
        }
    }
}

enum ReadErr {
    /// Connection closed at a frame boundary.
    Eof,
    /// Closed inside a frame.
    Truncated,
    /// Socket error.
    Io(std::io::Error),
}

async fn read_exact_or(
    rd: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    buf: &mut [u8],
    at_boundary: bool,
) -> Result<(), ReadErr> {
    let mut got = 0;
    while got < buf.len() {
        match rd.read(&mut buf[got..]).await {
            Ok(0) if got == 0 && at_boundary => return Err(ReadErr::Eof),
            Ok(0) => return Err(ReadErr::Truncated),
            Ok(n) => got += n,
            Err(e) => return Err(ReadErr::Io(e)),
        }
    }
    Ok(())
}

fn bad(state: &State, peer: SocketAddr, call: Option<&str>, reason: &'static str, detail: String) {
    state.metrics.bad_input("audiosocket", reason);
    tracing::warn!(%peer, call = call.unwrap_or("-"), reason, "audiosocket: {detail}; closing connection");
}

async fn handle(state: Arc<State>, stream: TcpStream, peer: SocketAddr) {
    let cfg = &state.config.audiosocket;
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    let max_audio = cfg.max_audio_payload_bytes as usize;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let mut header = [0u8; 3];

    // First frame: the UUID.
    match tokio::time::timeout(idle, read_exact_or(&mut rd, &mut header, true)).await {
        Err(_) => return bad(&state, peer, None, "idle_timeout", "no UUID frame".into()),
        Ok(Err(ReadErr::Eof)) => {
            tracing::debug!(%peer, "audiosocket: closed before any frame");
            return;
        }
        Ok(Err(ReadErr::Truncated)) => {
            return bad(
                &state,
                peer,
                None,
                "truncated",
                "truncated first frame header".into(),
            )
        }
        Ok(Err(ReadErr::Io(e))) => {
            tracing::warn!(%peer, error = %e, "audiosocket read failed");
            return;
        }
        Ok(Ok(())) => {}
    }
    let len = u16::from_be_bytes([header[1], header[2]]) as usize;
    if header[0] != kind::UUID {
        return bad(
            &state,
            peer,
            None,
            "expected_uuid_first",
            format!(
                "first frame kind 0x{:02x}: expected the UUID frame 0x01",
                header[0]
            ),
        );
    }
    if len != 16 {
        return bad(
            &state,
            peer,
            None,
            "bad_length",
            format!("UUID frame of {len} bytes: expected 16"),
        );
    }
    let mut uuid = [0u8; 16];
    match tokio::time::timeout(idle, read_exact_or(&mut rd, &mut uuid, false)).await {
        Ok(Ok(())) => {}
        _ => {
            return bad(
                &state,
                peer,
                None,
                "truncated",
                "truncated UUID frame".into(),
            )
        }
    }
    let id = uuid_to_string(&uuid);
    let sink = match state.open_call(&id, Transport::Audiosocket, None, None) {
        Ok(s) => s,
        Err(OpenError::Duplicate) => {
            return bad(
                &state,
                peer,
                Some(&id),
                "duplicate_call",
                "a call with this UUID is in progress".into(),
            )
        }
        Err(OpenError::TooMany) => {
            return bad(
                &state,
                peer,
                Some(&id),
                "too_many_calls",
                "max_active calls in progress".into(),
            )
        }
        Err(OpenError::ShuttingDown) => {
            tracing::info!(%peer, call = %id, "audiosocket: refused, shutting down");
            return;
        }
    };
    let call = Arc::clone(sink.call());
    tracing::debug!(%peer, call = %id, "audiosocket connected");
    let mut stop = call.stop_signal();
    let mut payload = vec![0u8; u16::MAX as usize];
    let end_reason: String = loop {
        let frame = async {
            read_exact_or(&mut rd, &mut header, true).await?;
            let len = u16::from_be_bytes([header[1], header[2]]) as usize;
            Ok::<_, ReadErr>((header[0], len))
        };
        let (k, len) = tokio::select! {
            r = tokio::time::timeout(idle, frame) => match r {
                Err(_) => {
                    bad(&state, peer, Some(&id), "idle_timeout", format!("no frame for {} ms", idle.as_millis()));
                    break "idle_timeout".into();
                }
                Ok(Err(ReadErr::Eof)) => {
                    state.metrics.bad_input("audiosocket", "abrupt_disconnect");
                    tracing::warn!(%peer, call = %id, "audiosocket: connection closed without a hang-up frame");
                    break "abrupt_disconnect".into();
                }
                Ok(Err(ReadErr::Truncated)) => {
                    bad(&state, peer, Some(&id), "truncated", "connection closed inside a frame header".into());
                    break "truncated".into();
                }
                Ok(Err(ReadErr::Io(e))) => {
                    state.metrics.bad_input("audiosocket", "abrupt_disconnect");
                    tracing::warn!(%peer, call = %id, error = %e, "audiosocket read failed");
                    break "io_error".into();
                }
                Ok(Ok(f)) => f,
            },
            _ = crate::calls::until_true(&mut stop) => {
                // Ended over HTTP or at shutdown: tell Asterisk we hang up.
                let _ = wr.write_all(&[kind::HANGUP, 0, 0]).await;
                break "stopped".into();
            }
        };
        let expected_len_ok = match k {
            kind::AUDIO => len >= 2 && len % 2 == 0 && len <= max_audio,
            kind::HANGUP => len == 0,
            kind::DTMF => len == 1,
            kind::ERROR => len <= 16,
            kind::UUID => {
                bad(
                    &state,
                    peer,
                    Some(&id),
                    "unknown_type",
                    "second UUID frame in one connection".into(),
                );
                break "protocol_error".into();
            }
            other => {
                bad(
                    &state,
                    peer,
                    Some(&id),
                    "unknown_type",
                    format!(
                        "frame kind 0x{other:02x} ({len} bytes): expected 0x00, 0x03, 0x10 or 0xff"
                    ),
                );
                break "protocol_error".into();
            }
        };
        if !expected_len_ok {
            let want = match k {
                kind::AUDIO => format!("an even length from 2 to {max_audio}"),
                kind::HANGUP => "0".into(),
                kind::DTMF => "1".into(),
                _ => "at most 16".into(),
            };
            bad(
                &state,
                peer,
                Some(&id),
                "bad_length",
                format!("frame kind 0x{k:02x} of {len} bytes: expected {want}"),
            );
            break "protocol_error".into();
        }
        let body = &mut payload[..len];
        match tokio::time::timeout(idle, read_exact_or(&mut rd, body, false)).await {
            Ok(Ok(())) => {}
            _ => {
                bad(
                    &state,
                    peer,
                    Some(&id),
                    "truncated",
                    format!("connection closed inside a {len}-byte payload"),
                );
                break "truncated".into();
            }
        }
        match k {
            kind::AUDIO => {
                let pcm: Vec<i16> = body
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                sink.push(pcm);
            }
            kind::DTMF => {
                state.metrics.dtmf();
                tracing::debug!(call = %id, digit = %(body[0] as char), "dtmf");
            }
            kind::HANGUP => break "hangup".into(),
            _ => {
                state.metrics.bad_input("audiosocket", "peer_error");
                tracing::warn!(%peer, call = %id, code = ?body.first(), "audiosocket: peer sent an error frame");
                break "peer_error".into();
            }
        }
    };
    call.set_end_reason(&end_reason);
    tracing::debug!(call = %id, reason = %end_reason, "audiosocket closed");
    drop(sink);
}
