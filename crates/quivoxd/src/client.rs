//! Minimal clients for the daemon's protocols (HTTP/1.1, SSE, AudioSocket), used by the
//! integration tests and `quivox-load`. Not a general HTTP client: `Connection: close`,
//! one request per connection.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> anyhow::Result<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    Ok(BufReader::new(s))
}

/// Reads the status line and headers; returns (status, chunked, content-length).
async fn read_head(r: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, bool, Option<usize>)> {
    let mut line = String::new();
    r.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("bad status line {line:?}"))?
        .parse()?;
    let (mut chunked, mut len) = (false, None);
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
        let l = line.to_ascii_lowercase();
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().ok();
        }
    }
    Ok((status, chunked, len))
}

/// Reads one chunk of a chunked body; `None` at the last chunk.
async fn read_chunk(r: &mut BufReader<TcpStream>) -> anyhow::Result<Option<Vec<u8>>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)?;
    let mut buf = vec![0u8; size + 2];
    r.read_exact(&mut buf).await?;
    buf.truncate(size);
    Ok(if size == 0 { None } else { Some(buf) })
}

/// One request; the whole response.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> anyhow::Result<HttpResponse> {
    let mut r = send_head(addr, method, path, content_type, body).await?;
    let (status, chunked, len) = read_head(&mut r).await?;
    let mut out = Vec::new();
    if chunked {
        while let Some(c) = read_chunk(&mut r).await? {
            out.extend_from_slice(&c);
        }
    } else if let Some(n) = len {
        out.resize(n, 0);
        r.read_exact(&mut out).await?;
    } else {
        r.read_to_end(&mut out).await?;
    }
    Ok(HttpResponse { status, body: out })
}

/// `POST` of a JSON value.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    v: &serde_json::Value,
) -> anyhow::Result<HttpResponse> {
    request(
        addr,
        "POST",
        path,
        Some("application/json"),
        v.to_string().as_bytes(),
    )
    .await
}

/// `GET`.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<HttpResponse> {
    request(addr, "GET", path, None, b"").await
}

/// A Server-Sent Events subscription.
#[derive(Debug)]
pub struct SseClient {
    r: BufReader<TcpStream>,
    pending: String,
}

/// One SSE event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// `event:` field.
    pub event: String,
    /// `data:` lines joined.
    pub data: String,
}

impl SseClient {
    /// Subscribes to `path` (e.g. `/v1/events`).
    pub async fn connect(addr: SocketAddr, path: &str) -> anyhow::Result<Self> {
        let mut r = send_head(addr, "GET", path, None, b"").await?;
        let (status, chunked, _) = read_head(&mut r).await?;
        anyhow::ensure!(status == 200, "SSE {path}: HTTP {status}");
        anyhow::ensure!(chunked, "SSE {path}: expected a chunked body");
        Ok(Self {
            r,
            pending: String::new(),
        })
    }

    /// The next event (comments and keep-alives skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let (mut event, mut data) = (String::from("message"), Vec::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Ok(Some(SseEvent {
                    event,
                    data: data.join("\n"),
                }));
            }
            match read_chunk(&mut self.r).await? {
                Some(c) => self.pending.push_str(&String::from_utf8_lossy(&c)),
                None => return Ok(None),
            }
        }
    }

    /// The next `decision` event as JSON, within `limit`.
    pub async fn next_decision(
        &mut self,
        limit: Duration,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        tokio::time::timeout(limit, async {
            while let Some(e) = self.next().await? {
                if e.event == "decision" {
                    return Ok(Some(serde_json::from_str(&e.data)?));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|_| anyhow::anyhow!("no decision event within {limit:?}"))?
    }
}

/// An AudioSocket client (what Asterisk's `AudioSocket()` does).
#[derive(Debug)]
pub struct AudioSocketClient {
    s: TcpStream,
}

impl AudioSocketClient {
    /// Connects and sends the UUID frame.
    pub async fn connect(addr: SocketAddr, uuid: &[u8; 16]) -> anyhow::Result<Self> {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let mut f = vec![0x01, 0, 16];
        f.extend_from_slice(uuid);
        s.write_all(&f).await?;
        Ok(Self { s })
    }
    /// Sends one frame.
    pub async fn frame(&mut self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut f = Vec::with_capacity(3 + payload.len());
        f.push(kind);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        f.extend_from_slice(payload);
        self.s.write_all(&f).await
    }
    /// Sends 16-bit samples as one audio frame.
    pub async fn audio(&mut self, pcm: &[i16]) -> std::io::Result<()> {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.frame(0x10, &bytes).await
    }
    /// Sends raw bytes (for malformed-input tests).
    pub async fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes).await
    }
    /// Sends the hang-up frame.
    pub async fn hangup(&mut self) -> std::io::Result<()> {
        self.frame(0x00, &[]).await
    }
    /// Waits until the daemon closes the connection (returns bytes it sent meanwhile).
    pub async fn closed_by_peer(&mut self, limit: Duration) -> anyhow::Result<Vec<u8>> {
        let mut got = Vec::new();
        tokio::time::timeout(limit, self.s.read_to_end(&mut got))
            .await
            .map_err(|_| anyhow::anyhow!("connection still open after {limit:?}"))??;
        Ok(got)
    }
    /// The stream (to drop it abruptly).
    pub fn into_inner(self) -> TcpStream {
        self.s
    }
}
