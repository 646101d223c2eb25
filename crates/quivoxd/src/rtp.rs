//! RTP ingress (RFC 3550) with G.711 PCMU (payload type 0) and PCMA (8).
//!
//! A call announced with `transport = "rtp"` gets its own UDP port from the configured range.
//! Packets go through a sequence-number jitter buffer: reordered packets are put back in order,
//! duplicates and packets older than the play-out point are dropped, and a gap still open when
//! `jitter_depth_packets` later packets have arrived is declared lost and concealed with silence
//! of the previous packet's length (repeating speech would duplicate spectra in the voice
//! statistics; silence is skipped by the engine's VAD). A new SSRC takes over the stream after
//! `ssrc_switch_packets` packets in a row from it (a re-INVITE or a media server switching
//! sources); the old stream's buffered packets are played out first.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use quivox::audio::g711::{alaw_to_i16, ulaw_to_i16};
use tokio::net::UdpSocket;

use crate::calls::{AudioSink, State};
use crate::metrics::DropReason;

/// A parsed RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload (after CSRCs, extension; padding removed).
    pub payload: &'a [u8],
}

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtpError {
    /// Shorter than the 12-byte header.
    TooShort(usize),
    /// Version field not 2.
    Version(u8),
    /// CSRC list, extension or padding runs past the datagram.
    Truncated,
    /// No payload.
    Empty,
}

impl std::fmt::Display for RtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RtpError::TooShort(n) => write!(f, "{n}-byte datagram: expected at least 12 bytes"),
            RtpError::Version(v) => write!(f, "RTP version {v}: expected 2"),
            RtpError::Truncated => write!(f, "CSRC list, extension or padding past the datagram"),
            RtpError::Empty => write!(f, "no payload"),
        }
    }
}

/// Parses an RTP packet.
pub fn parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    if buf.len() < 12 {
        return Err(RtpError::TooShort(buf.len()));
    }
    let version = buf[0] >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let padding = buf[0] & 0x20 != 0;
    let extension = buf[0] & 0x10 != 0;
    let cc = (buf[0] & 0x0f) as usize;
    let mut start = 12 + 4 * cc;
    if start > buf.len() {
        return Err(RtpError::Truncated);
    }
    if extension {
        if start + 4 > buf.len() {
            return Err(RtpError::Truncated);
        }
        let words = u16::from_be_bytes([buf[start + 2], buf[start + 3]]) as usize;
        start += 4 + 4 * words;
        if start > buf.len() {
            return Err(RtpError::Truncated);
        }
    }
    let mut end = buf.len();
    if padding {
        let pad = buf[buf.len() - 1] as usize;
        if pad == 0 || start + pad > end {
            return Err(RtpError::Truncated);
        }
        end -= pad;
    }
    if start >= end {
        return Err(RtpError::Empty);
    }
    Ok(RtpPacket {
        payload_type: buf[1] & 0x7f,
        marker: buf[1] & 0x80 != 0,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload: &buf[start..end],
    })
}

/// Builds an RTP packet (no CSRC, no extension): for tests and the load tool.
pub fn build(payload_type: u8, seq: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(payload_type & 0x7f);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Decodes a G.711 payload (PT 0 = μ-law, 8 = A-law) to 16-bit samples; `None` for other types.
pub fn decode(payload_type: u8, payload: &[u8]) -> Option<Vec<i16>> {
    match payload_type {
        0 => Some(payload.iter().map(|&c| ulaw_to_i16(c)).collect()),
        8 => Some(payload.iter().map(|&c| alaw_to_i16(c)).collect()),
        _ => None,
    }
}

/// A sequence jump larger than this (either way) restarts the buffer (sender restarted).
const RESYNC_JUMP: i64 = 1000;
/// Longest gap concealed with silence, packets (longer gaps are counted but not filled).
const MAX_CONCEAL: i64 = 50;

/// What the jitter buffer did, cumulatively.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets played out.
    pub played: u64,
    /// Packets declared lost (concealed).
    pub lost: u64,
    /// Packets older than the play-out point.
    pub late: u64,
    /// Packets already buffered.
    pub duplicate: u64,
    /// Restarts after large sequence jumps.
    pub resyncs: u64,
}

/// Reorders packets by extended sequence number and conceals losses.
#[derive(Debug)]
pub struct JitterBuffer {
    depth: usize,
    next: Option<i64>,
    highest: i64,
    slots: BTreeMap<i64, Vec<i16>>,
    last_len: usize,
    /// Counters.
    pub stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer holding at most `depth` out-of-order packets before declaring a gap lost.
    pub fn new(depth: usize) -> Self {
        Self {
            depth: depth.max(1),
            next: None,
            highest: 0,
            slots: BTreeMap::new(),
            last_len: 160,
            stats: JitterStats::default(),
        }
    }

    fn emit(&mut self, pcm: Vec<i16>, out: &mut Vec<Vec<i16>>) {
        self.last_len = pcm.len();
        self.stats.played += 1;
        out.push(pcm);
    }

    fn conceal(&mut self, gap: i64, out: &mut Vec<Vec<i16>>) {
        self.stats.lost += gap as u64;
        for _ in 0..gap.min(MAX_CONCEAL) {
            out.push(vec![0; self.last_len]);
        }
    }

    /// Adds a packet; frames ready for play-out are appended to `out`, in order.
    pub fn push(&mut self, seq: u16, pcm: Vec<i16>, out: &mut Vec<Vec<i16>>) {
        let ext = match self.next {
            None => {
                self.next = Some(seq as i64);
                self.highest = seq as i64;
                seq as i64
            }
            Some(_) => self.highest + seq.wrapping_sub(self.highest as u16) as i16 as i64,
        };
        let mut next = self.next.unwrap_or(ext);
        if (ext - next).abs() > RESYNC_JUMP {
            self.flush(out);
            self.stats.resyncs += 1;
            next = ext;
            self.highest = ext;
        }
        if ext < next {
            self.stats.late += 1;
            return;
        }
        if self.slots.contains_key(&ext) {
            self.stats.duplicate += 1;
            return;
        }
        self.highest = self.highest.max(ext);
        self.slots.insert(ext, pcm);
        loop {
            if let Some(p) = self.slots.remove(&next) {
                self.emit(p, out);
                next += 1;
            } else if self.slots.len() > self.depth {
                let first = *self.slots.keys().next().unwrap_or(&next);
                self.conceal(first - next, out);
                next = first;
            } else {
                break;
            }
        }
        self.next = Some(next);
    }

    /// Plays out everything buffered (gaps concealed) and forgets the sequence space.
    pub fn flush(&mut self, out: &mut Vec<Vec<i16>>) {
        let mut next = self.next.unwrap_or(0);
        let slots = std::mem::take(&mut self.slots);
        for (k, p) in slots {
            if k > next {
                self.conceal(k - next, out);
            }
            self.emit(p, out);
            next = k + 1;
        }
        self.next = None;
    }
}

/// Binds a UDP socket for a call on the configured range.
pub async fn bind_port(state: &State) -> std::io::Result<UdpSocket> {
    static CURSOR: AtomicU16 = AtomicU16::new(0);
    let cfg = &state.config.rtp;
    let ip: IpAddr = cfg.bind_ip;
    if cfg.port_min == 0 {
        return UdpSocket::bind(SocketAddr::new(ip, 0)).await;
    }
    let span = (cfg.port_max - cfg.port_min) as u32 + 1;
    let start = CURSOR.fetch_add(1, Relaxed) as u32;
    let mut last = None;
    for i in 0..span {
        let port = cfg.port_min + ((start + i) % span) as u16;
        match UdpSocket::bind(SocketAddr::new(ip, port)).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("empty RTP port range")))
}

/// A new SSRC, its packets (sequence, samples) so far, and packets of the current SSRC since.
type Candidate = (u32, Vec<(u16, Vec<i16>)>, u32);

/// Where a call's datagrams come from.
#[derive(Debug)]
pub enum Source {
    /// The call's own UDP port.
    Socket(UdpSocket),
    /// The shared port, demultiplexed by SSRC (datagram, sender).
    Shared(u32, tokio::sync::mpsc::Receiver<(Vec<u8>, SocketAddr)>),
}

impl Source {
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        match self {
            Source::Socket(s) => s.recv_from(buf).await,
            Source::Shared(_, rx) => match rx.recv().await {
                Some((d, from)) => {
                    let n = d.len().min(buf.len());
                    buf[..n].copy_from_slice(&d[..n]);
                    Ok((n, from))
                }
                None => std::future::pending().await,
            },
        }
    }
}

/// Serves the shared RTP port: each datagram goes to the call announced with its SSRC;
/// datagrams of unannounced SSRCs and non-RTP datagrams are dropped and counted.
pub async fn serve_shared(state: Arc<State>, socket: UdpSocket) {
    let mut shutdown = state.shutdown.subscribe();
    let mut buf = vec![0u8; 4096];
    let mut unknown = 0u64;
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "shared rtp port receive failed");
                    continue;
                }
            },
            _ = crate::calls::until_true(&mut shutdown) => break,
        };
        let ssrc = match parse(&buf[..n]) {
            Ok(p) => p.ssrc,
            Err(e) => {
                state.metrics.bad_input("rtp", "malformed");
                unknown += 1;
                if unknown.is_power_of_two() {
                    tracing::warn!(%from, error = %e, count = unknown, "shared rtp port: datagram dropped");
                }
                continue;
            }
        };
        let tx = state.rtp_demux_get(ssrc);
        match tx {
            Some(tx) => {
                if tx.try_send((buf[..n].to_vec(), from)).is_err() {
                    state.metrics.dropped(DropReason::QueueFull, 1);
                }
            }
            None => {
                state.metrics.bad_input("rtp", "unannounced_ssrc");
                unknown += 1;
                if unknown.is_power_of_two() {
                    tracing::warn!(%from, ssrc, count = unknown, "shared rtp port: SSRC not announced: dropped");
                }
            }
        }
    }
}

/// Receives one call's RTP until it is stopped (HTTP end, shutdown) or idle.
pub async fn run(state: Arc<State>, mut socket: Source, sink: AudioSink) {
    let call = Arc::clone(sink.call());
    let cfg = &state.config.rtp;
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    let mut stop = call.stop_signal();
    let mut buf = vec![0u8; 4096];
    let mut jb = JitterBuffer::new(cfg.jitter_depth_packets);
    let mut out: Vec<Vec<i16>> = Vec::new();
    let mut ssrc: Option<u32> = None;
    let mut candidate: Option<Candidate> = None;
    let mut bad_count = 0u64;
    let mut reported = JitterStats::default();
    let reason = loop {
        let (n, from) = tokio::select! {
            r = tokio::time::timeout(idle, socket.recv(&mut buf)) => match r {
                Err(_) => break "rtp_idle_timeout",
                Ok(Err(e)) => {
                    tracing::warn!(call = %call.id, error = %e, "rtp receive failed");
                    continue;
                }
                Ok(Ok(x)) => x,
            },
            _ = crate::calls::until_true(&mut stop) => break "stopped",
        };
        let pkt = match parse(&buf[..n]) {
            Ok(p) => p,
            Err(e) => {
                state.metrics.bad_input("rtp", "malformed");
                bad_count += 1;
                if bad_count.is_power_of_two() {
                    tracing::warn!(call = %call.id, %from, error = %e, count = bad_count, "rtp: datagram dropped");
                }
                continue;
            }
        };
        let Some(pcm) = decode(pkt.payload_type, pkt.payload) else {
            state.metrics.bad_input("rtp", "payload_type");
            bad_count += 1;
            if bad_count.is_power_of_two() {
                tracing::warn!(call = %call.id, %from, payload_type = pkt.payload_type, count = bad_count,
                    "rtp: payload type not G.711 (expected 0 PCMU or 8 PCMA): packet dropped");
            }
            continue;
        };
        match ssrc {
            None => ssrc = Some(pkt.ssrc),
            Some(cur) if cur != pkt.ssrc => {
                let c = candidate.get_or_insert_with(|| (pkt.ssrc, Vec::new(), 0));
                if c.0 != pkt.ssrc {
                    *c = (pkt.ssrc, Vec::new(), 0);
                }
                c.1.push((pkt.seq, pcm));
                c.2 = 0;
                if c.1.len() as u32 >= cfg.ssrc_switch_packets {
                    let (new, held, _) = candidate.take().unwrap_or_default();
                    tracing::info!(call = %call.id, old = cur, new, "rtp: SSRC changed; stream switched");
                    state.metrics.ssrc_change();
                    jb.flush(&mut out);
                    ssrc = Some(new);
                    for (s, p) in held {
                        jb.push(s, p, &mut out);
                    }
                }
                forward(&sink, &mut out);
                continue;
            }
            Some(_) => {
                // A stray packet or two from another source is forgotten after a while.
                if let Some(c) = &mut candidate {
                    c.2 += 1;
                    if c.2 > 50 {
                        candidate = None;
                    }
                }
            }
        }
        jb.push(pkt.seq, pcm, &mut out);
        forward(&sink, &mut out);
        report(&state, &jb.stats, &mut reported);
    };
    jb.flush(&mut out);
    forward(&sink, &mut out);
    report(&state, &jb.stats, &mut reported);
    tracing::info!(call = %call.id, reason, played = jb.stats.played, lost = jb.stats.lost, late = jb.stats.late,
        duplicate = jb.stats.duplicate, "rtp stream ended");
    call.set_end_reason(reason);
    if let Source::Shared(ssrc, _) = &socket {
        state.rtp_demux_remove(*ssrc);
    }
    drop(sink);
}

fn forward(sink: &AudioSink, out: &mut Vec<Vec<i16>>) {
    for pcm in out.drain(..) {
        sink.push(pcm);
    }
}

fn report(state: &State, now: &JitterStats, seen: &mut JitterStats) {
    let m = &state.metrics;
    m.dropped(DropReason::RtpLost, now.lost - seen.lost);
    m.dropped(DropReason::RtpLate, now.late - seen.late);
    m.dropped(DropReason::RtpDuplicate, now.duplicate - seen.duplicate);
    *seen = *now;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: i16) -> Vec<i16> {
        vec![tag; 4]
    }

    #[test]
    fn reorders_within_depth_and_conceals_losses() {
        let mut jb = JitterBuffer::new(3);
        let mut out = Vec::new();
        // 65534, 65535 wrap to 0; 1 arrives before 0; 3 is lost.
        for s in [65534u16, 65535, 1, 0, 2, 4, 5, 6, 7] {
            jb.push(s, frame(s as i16), &mut out);
        }
        jb.flush(&mut out);
        let tags: Vec<i16> = out.iter().map(|f| f[0]).collect();
        // Expected order: 65534(-2), 65535(-1), 0, 1, 2, silence for 3, 4..7.
        assert_eq!(tags, vec![-2, -1, 0, 1, 2, 0, 4, 5, 6, 7]);
        assert_eq!(jb.stats.lost, 1);
        assert_eq!(jb.stats.played, 9);
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped() {
        let mut jb = JitterBuffer::new(2);
        let mut out = Vec::new();
        for s in [10u16, 11, 12, 11, 14, 14] {
            jb.push(s, frame(s as i16), &mut out);
        }
        assert_eq!(jb.stats.late, 1);
        assert_eq!(jb.stats.duplicate, 1);
        jb.flush(&mut out);
        assert_eq!(
            out.iter().map(|f| f[0]).collect::<Vec<_>>(),
            vec![10, 11, 12, 0, 14]
        );
    }

    #[test]
    fn parser_rejects_garbage_and_accepts_extensions() {
        assert_eq!(parse(&[0x80; 5]), Err(RtpError::TooShort(5)));
        let mut p = build(0, 1, 2, 3, &[1, 2, 3]);
        p[0] = 0x40;
        assert_eq!(parse(&p), Err(RtpError::Version(1)));
        let mut p = build(0, 1, 2, 3, &[1, 2, 3]);
        p[0] = 0x8f; // 15 CSRCs claimed
        assert_eq!(parse(&p), Err(RtpError::Truncated));
        // Extension of one word, padding of 2 bytes.
        let mut p = build(8, 7, 9, 0xdead, &[]);
        p[0] |= 0x30;
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9, 5, 6, 0, 2]);
        let q = parse(&p).unwrap();
        assert_eq!(
            (q.payload_type, q.seq, q.timestamp, q.ssrc),
            (8, 7, 9, 0xdead)
        );
        assert_eq!(q.payload, &[5, 6]);
    }
}
