//! HTTP API (axum). See `openapi.json` (served at `/openapi.json`).

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::audiosocket::canonical_uuid;
use crate::calls::{EventJson, NumberState, OpenError, State, Transport};

type S = Arc<State>;

/// The checked-in OpenAPI description.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Builds the router.
pub fn router(state: S) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/v1/calls", post(start_call).get(list_calls))
        .route("/v1/calls/{id}", get(get_call).delete(end_call))
        .route("/v1/calls/{id}/end", post(end_call))
        .route("/v1/calls/{id}/events", get(call_events))
        .route("/v1/events", get(all_events))
        .route("/v1/speakers", get(list_speakers))
        .route(
            "/v1/speakers/{speaker}",
            axum::routing::delete(remove_speaker),
        )
        .route(
            "/v1/speakers/{speaker}/enrollment",
            post(enroll).layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .with_state(state)
}

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

async fn readyz(AxState(s): AxState<S>) -> Response {
    let ready = s.ready.load(Relaxed) && !s.shutting_down();
    let body = Json(json!({
        "ready": ready,
        "shutting_down": s.shutting_down(),
        "speakers": s.backend.speakers().len(),
        "calls_active": s.metrics.calls_active(),
        "model_version": s.backend.model_version(),
    }));
    if ready {
        (StatusCode::OK, body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn metrics(AxState(s): AxState<S>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

/// `POST /v1/calls` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartCall {
    /// AudioSocket call UUID (as passed to `AudioSocket()`); alias of `call_id`.
    pub uuid: Option<String>,
    /// Call id (RTP calls; generated when absent).
    pub call_id: Option<String>,
    /// Calling number; `null` or absent = withheld.
    pub caller_number: Option<String>,
    /// `audiosocket` (default) or `rtp`.
    #[serde(default)]
    pub transport: Option<String>,
    /// RTP on the shared port: the SSRC the call's stream will use.
    #[serde(default)]
    pub ssrc: Option<u32>,
}

async fn start_call(AxState(s): AxState<S>, body: Bytes) -> Response {
    let req: StartCall = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            s.metrics.bad_input("http", "bad_request");
            return err(StatusCode::BAD_REQUEST, format!("body: {e}"));
        }
    };
    if s.shutting_down() {
        return err(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let number = req.caller_number.filter(|n| !n.trim().is_empty());
    if let Some(n) = &number {
        if let Err(e) = quivox::engine::PhoneNumber::parse(n) {
            s.metrics.bad_input("http", "bad_request");
            return err(StatusCode::BAD_REQUEST, format!("caller_number: {e}"));
        }
    }
    match req.transport.as_deref().unwrap_or("audiosocket") {
        "audiosocket" => {
            let Some(raw) = req.uuid.or(req.call_id) else {
                return err(
                    StatusCode::BAD_REQUEST,
                    "uuid: expected the AudioSocket call UUID",
                );
            };
            let Some(id) = canonical_uuid(&raw) else {
                s.metrics.bad_input("http", "bad_request");
                return err(
                    StatusCode::BAD_REQUEST,
                    format!("uuid {raw:?}: expected 32 hex digits"),
                );
            };
            if let Some(call) = s.call(&id) {
                if call.set_number(number.clone()) {
                    return (
                        StatusCode::OK,
                        Json(json!({"call_id": id, "state": "active", "number_applied": true})),
                    )
                        .into_response();
                }
                if call.number() == NumberState::Known(number.clone()) {
                    return (
                        StatusCode::OK,
                        Json(json!({"call_id": id, "state": "active", "number_applied": true})),
                    )
                        .into_response();
                }
                s.metrics.late_number();
                tracing::warn!(call = %id, "caller number announced after the session started without it: not used");
                return (StatusCode::CONFLICT, Json(json!({"call_id": id, "state": "active", "number_applied": false,
                    "error": "the call's session already started without this number (announce before or within number_wait_ms of the socket opening)"}))).into_response();
            }
            if !s.announce(&id, number) {
                return err(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many pending announcements",
                );
            }
            (
                StatusCode::CREATED,
                Json(json!({"call_id": id, "state": "announced"})),
            )
                .into_response()
        }
        "rtp" => {
            if !s.config.rtp.enabled {
                return err(
                    StatusCode::BAD_REQUEST,
                    "RTP ingress is disabled in the configuration",
                );
            }
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let id = req.call_id.or(req.uuid).unwrap_or_else(|| {
                format!(
                    "rtp-{}-{}",
                    crate::calls::unix_ms(),
                    NEXT.fetch_add(1, Relaxed)
                )
            });
            let (source, local, shared_tx) = match (req.ssrc, s.rtp_shared_addr()) {
                (Some(ssrc), Some(shared)) => {
                    let (tx, rx) = tokio::sync::mpsc::channel(256);
                    (
                        crate::rtp::Source::Shared(ssrc, rx),
                        shared,
                        Some((ssrc, tx)),
                    )
                }
                (Some(_), None) => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        "ssrc given but no shared RTP port is configured ([rtp] shared_listen)",
                    )
                }
                (None, _) => {
                    let socket = match crate::rtp::bind_port(&s).await {
                        Ok(sock) => sock,
                        Err(e) => {
                            return err(
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("no free RTP port: {e}"),
                            )
                        }
                    };
                    let local = match socket.local_addr() {
                        Ok(a) => a,
                        Err(e) => return err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    };
                    (crate::rtp::Source::Socket(socket), local, None)
                }
            };
            if let Some((ssrc, tx)) = shared_tx {
                if !s.rtp_demux_insert(ssrc, tx) {
                    return err(
                        StatusCode::CONFLICT,
                        format!("SSRC {ssrc} is already announced for another call"),
                    );
                }
            }
            let sink = match s.open_call(&id, Transport::Rtp, Some(number), Some(local.port())) {
                Ok(sink) => sink,
                Err(e) => {
                    if let crate::rtp::Source::Shared(ssrc, _) = &source {
                        s.rtp_demux_remove(*ssrc);
                    }
                    return open_error(&s, e, &id);
                }
            };
            tokio::spawn(crate::rtp::run(Arc::clone(&s), source, sink));
            let mut body = json!({"call_id": id, "state": "active", "rtp_ip": local.ip().to_string(), "rtp_port": local.port()});
            if let Some(ssrc) = req.ssrc {
                body["ssrc"] = ssrc.into();
            }
            (StatusCode::CREATED, Json(body)).into_response()
        }
        other => err(
            StatusCode::BAD_REQUEST,
            format!("transport {other:?}: expected \"audiosocket\" or \"rtp\""),
        ),
    }
}

fn open_error(s: &State, e: OpenError, id: &str) -> Response {
    match e {
        OpenError::Duplicate => err(StatusCode::CONFLICT, format!("call {id} is in progress")),
        OpenError::TooMany => {
            s.metrics.bad_input("rtp", "too_many_calls");
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                "max_active calls in progress",
            )
        }
        OpenError::ShuttingDown => err(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}

async fn list_calls(AxState(s): AxState<S>) -> Response {
    let calls: Vec<_> = s.active_calls().iter().map(|c| c.snapshot(false)).collect();
    Json(json!({ "calls": calls, "announced": s.announced_count() })).into_response()
}

fn norm_id(id: &str) -> String {
    canonical_uuid(id).unwrap_or_else(|| id.to_string())
}

async fn get_call(AxState(s): AxState<S>, Path(id): Path<String>) -> Response {
    let id = norm_id(&id);
    match s.call(&id) {
        Some(c) => Json(c.snapshot(true)).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("no call {id}")),
    }
}

async fn end_call(AxState(s): AxState<S>, Path(id): Path<String>) -> Response {
    let id = norm_id(&id);
    let Some(call) = s.call(&id) else {
        if s.cancel_announcement(&id) {
            return Json(json!({"call_id": id, "state": "cancelled"})).into_response();
        }
        return err(StatusCode::NOT_FOUND, format!("no call {id}"));
    };
    call.stop("ended_over_http");
    if !call.wait_done(Duration::from_secs(30)).await {
        return err(
            StatusCode::GATEWAY_TIMEOUT,
            "the call did not finish within 30 s",
        );
    }
    Json(call.snapshot(true)).into_response()
}

struct SseGuard(Arc<State>);
impl Drop for SseGuard {
    fn drop(&mut self) {
        self.0.metrics.sse_client(false);
    }
}

fn event_of(ev: &EventJson) -> Event {
    Event::default()
        .event("decision")
        .id(format!("{}:{}", ev.call_id, ev.seq))
        .json_data(ev)
        .unwrap_or_else(|_| Event::default().comment("unserialisable event"))
}

/// A decision stream: catch-up events first (per-call streams), then live ones; slow clients
/// lose events (counted, and told with a `lagged` event), they never hold up a call.
pub fn event_stream(
    s: S,
    call: Option<String>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let rx = s.events.subscribe();
    let shutdown = s.shutdown.subscribe();
    s.metrics.sse_client(true);
    let guard = SseGuard(Arc::clone(&s));
    let (backlog, done) = match call.as_deref().and_then(|id| s.call(id)) {
        Some(c) => c.events_so_far(),
        None => (Vec::new(), false),
    };
    let last_seq = backlog.last().map_or(0, |e| e.seq);
    let finished_already = backlog.last().is_some_and(|e| e.is_final) || done;
    let backlog: std::collections::VecDeque<_> = backlog.into();
    struct St {
        rx: tokio::sync::broadcast::Receiver<Arc<EventJson>>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        call: Option<String>,
        backlog: std::collections::VecDeque<Arc<EventJson>>,
        last_seq: u32,
        ended: bool,
        closing: bool,
        _guard: SseGuard,
        s: S,
    }
    let st = St {
        rx,
        shutdown,
        call,
        backlog,
        last_seq,
        ended: finished_already,
        closing: false,
        _guard: guard,
        s,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        if let Some(ev) = st.backlog.pop_front() {
            return Some((Ok(event_of(&ev)), st));
        }
        if st.ended {
            return None;
        }
        loop {
            let r = if st.closing {
                // Shutdown: deliver what is already queued (final decisions), then end.
                match st.rx.try_recv() {
                    Ok(ev) => Ok(ev),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                        Err(RecvError::Lagged(n))
                    }
                    Err(_) => return None,
                }
            } else {
                tokio::select! {
                    r = st.rx.recv() => r,
                    _ = crate::calls::until_true(&mut st.shutdown) => {
                        st.closing = true;
                        continue;
                    }
                }
            };
            match r {
                Ok(ev) => {
                    if let Some(id) = &st.call {
                        if ev.call_id != *id || ev.seq <= st.last_seq {
                            continue;
                        }
                        st.last_seq = ev.seq;
                        st.ended = ev.is_final;
                    }
                    return Some((Ok(event_of(&ev)), st));
                }
                Err(RecvError::Lagged(n)) => {
                    st.s.metrics.sse_dropped(n);
                    tracing::warn!(dropped = n, "slow SSE client: events dropped");
                    return Some((Ok(Event::default().event("lagged").data(n.to_string())), st));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

async fn all_events(AxState(s): AxState<S>) -> Response {
    Sse::new(event_stream(s, None))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn call_events(AxState(s): AxState<S>, Path(id): Path<String>) -> Response {
    let id = norm_id(&id);
    Sse::new(event_stream(s, Some(id)))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn list_speakers(AxState(s): AxState<S>) -> Response {
    Json(json!({ "speakers": s.backend.speakers() })).into_response()
}

async fn remove_speaker(AxState(s): AxState<S>, Path(speaker): Path<String>) -> Response {
    let s2 = Arc::clone(&s);
    let sp = speaker.clone();
    match tokio::task::spawn_blocking(move || s2.backend.remove(&sp)).await {
        Ok(Ok(true)) => Json(json!({"speaker": speaker, "removed": true})).into_response(),
        Ok(Ok(false)) => err(
            StatusCode::NOT_FOUND,
            format!("speaker {speaker} is not enrolled"),
        ),
        Ok(Err(e)) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /v1/speakers/{speaker}/enrollment` query.
#[derive(Debug, Deserialize)]
pub struct EnrollQuery {
    /// Comma-separated numbers the speaker is known on.
    #[serde(default)]
    pub numbers: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// How consent was given (default `api`).
    #[serde(default)]
    pub consent_method: Option<String>,
    /// Consent reference (document id, call id).
    #[serde(default)]
    pub consent_reference: Option<String>,
}

async fn enroll(
    AxState(s): AxState<S>,
    Path(speaker): Path<String>,
    Query(q): Query<EnrollQuery>,
    body: Bytes,
) -> Response {
    if speaker.is_empty() || speaker.len() > 128 {
        return err(
            StatusCode::BAD_REQUEST,
            "speaker id: expected 1 to 128 characters",
        );
    }
    let numbers: Vec<String> = q
        .numbers
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    for n in &numbers {
        if let Err(e) = quivox::engine::PhoneNumber::parse(n) {
            return err(StatusCode::BAD_REQUEST, format!("number {n:?}: {e}"));
        }
    }
    let opts = quivox::audio::ReadOptions {
        channels: quivox::audio::ChannelPolicy::RequireMono,
        target_sample_rate_hz: Some(8000),
    };
    let wave = match quivox::audio::read_wav_bytes(&body, &opts) {
        Ok(w) => w,
        Err(e) => {
            s.metrics.bad_input("http", "bad_request");
            return err(
                StatusCode::BAD_REQUEST,
                format!("body: expected a mono WAV file: {e}"),
            );
        }
    };
    let s2 = Arc::clone(&s);
    let sp = speaker.clone();
    let name = q.name.unwrap_or_else(|| speaker.clone());
    let method = q.consent_method.unwrap_or_else(|| "api".into());
    let reference = q.consent_reference.unwrap_or_default();
    match tokio::task::spawn_blocking(move || {
        s2.backend
            .enroll(&sp, &name, &numbers, vec![wave], &method, &reference)
    })
    .await
    {
        Ok(Ok(r)) => (
            if r.new_speaker { StatusCode::CREATED } else { StatusCode::OK },
            Json(json!({"speaker": speaker, "new_speaker": r.new_speaker, "net_speech_ms": r.net_speech_ms, "model_revision": r.model_revision})),
        )
            .into_response(),
        Ok(Err(e)) => err(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
