//! The HTTP edge: the callback listener and the admin listener.
//!
//! Callback listener: `GET|POST /adjust` (global) and `GET|POST /adjust/{trigger}`
//! (single-activity), over HTTP or HTTPS ([`tls`]). The order of work per request: allowlist and,
//! when the query carries it, the token (from the connection and the head: a refused request gets
//! 403 and its connection is closed, its body never read) → the body, as it came, up to
//! [`MAX_BODY`] within the body timeout ([`edge`]) → the token pair cut out ([`token`]) →
//! [`row::build`] → queue. The answer is 200 once the queue (or the write-ahead log, after fsync)
//! holds the row, 503 with `Retry-After` when the row cannot be taken now. The 4xx answers are for
//! requests that are not Adjust callbacks: 403 (source or token), 413 (body over 1 MiB), 415
//! (compressed body: Adjust never compresses), 408 (body not received in time). Never a 4xx for
//! content: Adjust would drop the callback for good.
//!
//! Admin listener: `/metrics`, `/healthz`, `/readyz`.

pub mod allowlist;
pub mod conn;
pub mod edge;
pub mod gate;
pub mod held;
pub mod listen;
pub mod longuri;
pub mod settings;
pub mod tls;
pub mod token;

use std::borrow::Cow;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::{HttpService, KeepAlive, Protocol, error::DispatchError};
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::http::{StatusCode, header};
use actix_web::rt::net::TcpStream;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::adjust::decode::Body;
use crate::metrics::{Metrics, Outcome, Route};
use crate::pipeline::{Producer, Refusal};
use crate::row::{self, Received};
use crate::shutdown::Shutdown;
use allowlist::{Allowlist, client_ip};
use edge::{BodyError, EdgeConfig};

/// Adjust forwards callbacks of up to 1 MB; bodies are accepted up to 1 MiB.
pub const MAX_BODY: usize = 1 << 20;

/// Everything a handler needs; `P` is the queue's ingest half (memory or write-ahead log).
pub struct AppState<P> {
    pub row: row::Options,
    pub allow: Allowlist,
    pub trusted_proxies: Allowlist,
    pub edge: EdgeConfig,
    pub queue: P,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
    /// `Retry-After` seconds for a full queue or a spent disk budget.
    pub retry_after: u32,
}

fn unavailable(seconds: u32, why: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, seconds.to_string()))
        .content_type("text/plain; charset=utf-8")
        .body(format!("{why}; retry later\n"))
}

/// A refusal: the connection is closed after it (its body, if any, is never read).
fn refuse(status: StatusCode, why: &str) -> HttpResponse {
    HttpResponse::build(status)
        .force_close()
        .content_type("text/plain; charset=utf-8")
        .body(format!("{why}\n"))
}

/// The client if it may send callbacks, or why not (the 403's text).
fn admitted<P>(req: &HttpRequest, state: &AppState<P>) -> Result<IpAddr, String> {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let xff = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    match client_ip(peer, xff, &state.trusted_proxies) {
        Some(ip) if state.allow.contains(ip) => Ok(ip),
        Some(ip) => Err(format!("source {ip} is not in the allowlist")),
        None => Err(format!(
            "trusted proxy {peer} sent no usable X-Forwarded-For"
        )),
    }
}

async fn callback<P: Producer>(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState<P>>,
) -> HttpResponse {
    let started = Instant::now();
    let trigger = req.match_info().get("trigger").unwrap_or("");
    let route = if trigger.is_empty() {
        Route::Global
    } else {
        Route::Trigger
    };
    let m = &state.metrics;

    // Decided from the connection and the head alone: nothing of the body is read before.
    let client = match admitted(&req, &state) {
        Ok(ip) => ip,
        Err(why) => {
            m.request(route, Outcome::Forbidden, started);
            tracing::debug!(%why, "callback refused");
            return refuse(StatusCode::FORBIDDEN, &format!("forbidden: {why}"));
        }
    };
    if state.shutdown.is_stopping() {
        m.request(route, Outcome::ShuttingDown, started);
        return unavailable(5, "shutting down");
    }

    // On the callback listener the query comes in a header only its connection wrapper can add
    // (see `longuri`); a connection it lets pass through, and in-process tests, have it in the
    // target.
    let query = match req.headers().get(longuri::query_header()) {
        Some(rescued) => rescued.as_bytes(),
        None => req.query_string().as_bytes(),
    };
    // The token pair goes before anything decodes, stores or logs the query.
    let (query, mut tokens) = token::strip_pairs(query);
    let bad_token = |m: &Metrics| {
        m.request(route, Outcome::BadToken, started);
        tracing::debug!(source = %client, "callback without a valid token");
        refuse(StatusCode::FORBIDDEN, "forbidden: no valid sink_token")
    };
    let needs_token = state.edge.tokens.required();
    if needs_token && !tokens.is_empty() && !state.edge.tokens.admit(&tokens) {
        return bad_token(m);
    }
    let headers = req.headers();
    let declared = edge::content_length(headers);
    let has_body =
        declared.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    if needs_token && tokens.is_empty() && !has_body {
        return bad_token(m);
    }
    if has_body && edge::is_encoded(headers) {
        m.request(route, Outcome::Compressed, started);
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported: Content-Encoding (callbacks are taken uncompressed)",
        );
    }
    let body = if has_body {
        match edge::read_body(payload, declared, MAX_BODY, state.edge.body_timeout).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                m.request(route, Outcome::TooLarge, started);
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("too large: bodies are taken up to {MAX_BODY} bytes"),
                );
            }
            Err(e) => {
                m.request(route, Outcome::BodyIncomplete, started);
                tracing::debug!(source = %client, error = ?e, "callback body not received");
                return refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time",
                );
            }
        }
    } else {
        web::Bytes::new()
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (body, in_body) = match Body::from_content_type(content_type, &body) {
        Body::Json(json) => token::strip_json(json),
        Body::Form(form) => token::strip_pairs(form),
        Body::None => (Cow::Borrowed(&body[..]), Vec::new()),
    };
    tokens.extend(in_body);
    if needs_token && !state.edge.tokens.admit(&tokens) {
        return bad_token(m);
    }

    let received_at = crate::clock::unix_now();
    let built = row::build(
        &Received {
            query: &query,
            body: &body,
            content_type,
            trigger,
            source_ip: client,
            received_at,
        },
        &state.row,
    );
    for p in &built.problems {
        m.decode_problems.inc(p.kind);
    }
    let kind = built.activity;

    match state.queue.accept(built.row).await {
        Ok(()) => {
            m.request(route, Outcome::Accepted, started);
            m.callback(kind, received_at);
            HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body("OK\n")
        }
        Err(Refusal::ShuttingDown) => {
            m.request(route, Outcome::ShuttingDown, started);
            unavailable(5, "shutting down")
        }
        Err(refusal) => {
            m.request(route, Outcome::Shed, started);
            unavailable(state.retry_after, &refusal.to_string())
        }
    }
}

/// Any other path. The connection is closed unless the client is allowed (a misrouted callback
/// from an allowed client may keep its connection).
async fn not_found<P: Producer>(req: HttpRequest, state: web::Data<AppState<P>>) -> HttpResponse {
    refusal(
        HttpResponse::NotFound(),
        &req,
        &state,
        "not found: callbacks go to /adjust (global) or /adjust/{trigger} (single activity, [a-z0-9_]+)\n",
    )
}

/// A callback path asked with another method than `GET` or `POST` (a `HEAD` probe, say):
/// `405` with `Allow`, nothing stored; the connection as after [`not_found`].
async fn method_not_allowed<P: Producer>(
    req: HttpRequest,
    state: web::Data<AppState<P>>,
) -> HttpResponse {
    let mut answer = HttpResponse::MethodNotAllowed();
    answer.insert_header((header::ALLOW, "GET, POST"));
    refusal(
        answer,
        &req,
        &state,
        "method not allowed: callbacks are sent with GET or POST\n",
    )
}

/// `answer` with `text`, closing the connection unless the client is allowed.
fn refusal<P: Producer>(
    mut answer: actix_web::HttpResponseBuilder,
    req: &HttpRequest,
    state: &web::Data<AppState<P>>,
    text: &'static str,
) -> HttpResponse {
    if admitted(req, state).is_err() {
        answer.force_close();
    }
    answer.content_type("text/plain; charset=utf-8").body(text)
}

/// Configures the callback routes (used by the server and by in-process tests). Each path is
/// taken with a trailing slash too (a URL pasted as `…/adjust/`): Adjust never retries the 404
/// it would get, so those callbacks would be lost.
pub fn routes<P: Producer>(cfg: &mut web::ServiceConfig) {
    for path in [
        "/adjust",
        "/adjust/",
        "/adjust/{trigger:[a-z0-9_]+}",
        "/adjust/{trigger:[a-z0-9_]+}/",
    ] {
        cfg.service(
            web::resource(path)
                .route(web::get().to(callback::<P>))
                .route(web::post().to(callback::<P>))
                .default_service(web::to(method_not_allowed::<P>)),
        );
    }
}

/// The callback server on an already bound listener.
///
/// Built like `HttpServer::listen` builds its services, but over connections of its own. At
/// accept, the [`gate::Gate`] decides from the TCP peer alone: outside the allowlist and not a
/// trusted proxy, or over its share of connections, it is closed at once (no request read, no
/// TLS handshake). An admitted connection gets, inside out: the TLS handshake (with `tls`,
/// bounded by the head timeout), a [`conn::Deadline`], [`longuri::LongUri`] (the query moves
/// into a header: checked faster than `http::Uri` does, and GET callbacks with targets beyond
/// what it takes, 65,534 bytes, are accepted up to actix-http's request-head limit, 128 KiB; 431
/// beyond), and [`held::Held`], which charges its unfinished
/// request head to the [`held::HeldBudget`] shared by all connections.
pub fn callback_server<P: Producer>(
    state: web::Data<AppState<P>>,
    listener: TcpListener,
    workers: usize,
    shutdown_timeout: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let edge = state.edge.clone();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let gate = Arc::new(gate::Gate::new(
        state.allow.clone(),
        state.trusted_proxies.clone(),
        edge.max_per_source,
        state.metrics.clone(),
    ));
    let held = held::HeldBudget::new(edge.max_held_bytes, state.metrics.clone());
    Ok(Server::build()
        .workers(workers)
        .max_concurrent_connections(edge.per_worker(workers))
        .shutdown_timeout(shutdown_timeout.as_secs().max(1))
        .disable_signals()
        .listen(format!("adjust-callbacks-{addr}"), listener, move || {
            let app = App::new()
                .app_data(state.clone())
                .configure(routes::<P>)
                .default_service(web::to(not_found::<P>))
                .into_factory()
                .map_err(|err: actix_web::Error| err.error_response());
            let http = HttpService::build()
                .keep_alive(KeepAlive::Timeout(edge.keep_alive))
                .client_request_timeout(edge.head_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .finish(map_config(app, |_| AppConfig::default()));
            let acceptor = acceptor.clone();
            let handshake = edge.head_timeout;
            let budget = edge.request_budget();
            let gate = gate.clone();
            let held = held.clone();
            fn_service(move |io: TcpStream| {
                let acceptor = acceptor.clone();
                let gate = gate.clone();
                let held = held.clone();
                async move {
                    // The TCP peer decides first; it is also the peer of `HttpRequest::peer_addr`
                    // (IPv4 clients of a dual-stack listener as IPv4).
                    let Some(peer) = io.peer_addr().ok().map(gate::canonical_peer) else {
                        return Err(DispatchError::Io(std::io::ErrorKind::NotConnected.into()));
                    };
                    let admission = match gate.admit(peer.ip()) {
                        Ok(admission) => admission,
                        Err(refusal) => {
                            // A reset, so that the closed connection leaves nothing behind here.
                            let _ = io.set_zero_linger();
                            drop(io);
                            return Err(DispatchError::Io(std::io::Error::new(
                                std::io::ErrorKind::PermissionDenied,
                                refusal.as_str(),
                            )));
                        }
                    };
                    let io = match acceptor {
                        None => conn::Conn::Plain(io),
                        Some(acceptor) => {
                            match tokio::time::timeout(handshake, acceptor.accept(io)).await {
                                Ok(Ok(tls)) => conn::Conn::Tls(Box::new(tls)),
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return Err(DispatchError::Io(e));
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return Err(DispatchError::SlowRequestTimeout);
                                }
                            }
                        }
                    };
                    let io = longuri::LongUri::new(conn::Deadline::new(io, budget));
                    let io = held::Held::new(io, held, admission);
                    Ok::<_, DispatchError>((io, Protocol::Http1, Some(peer)))
                }
            })
            .and_then(http)
        })?
        .run())
}

async fn metrics<P: Producer>(state: web::Data<AppState<P>>) -> HttpResponse {
    exposition(&state.metrics)
}

/// The registry in Prometheus' text format.
fn exposition(metrics: &crate::metrics::Metrics) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok\n")
}

/// Room a queue must have left to count as ready: a few dozen callbacks.
const READY_HEADROOM: u64 = 64 << 10;

/// Ready when callbacks are accepted now: not shutting down, and the queue (memory) or the disk
/// budget (wal) has room. ClickHouse being down does not make a `wal` sink unready.
async fn readyz<P: Producer>(state: web::Data<AppState<P>>) -> HttpResponse {
    let m = &state.metrics;
    let usage = state.queue.usage();
    let (ready, detail) = if state.shutdown.is_stopping() {
        (false, "shutting down".to_string())
    } else {
        (usage.has_room(READY_HEADROOM), usage.to_string())
    };
    let ch = if m.clickhouse_up.get() == 1 {
        "up"
    } else {
        "not confirmed"
    };
    let body = serde_json::json!({ "ready": ready, "queue": detail, "clickhouse": ch });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// An admin path: answered to `GET` and to `HEAD` (a probe that asks for the status and headers
/// only; the body is left out), `405` with `Allow` to any other method.
fn probe<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    use actix_web::guard;
    web::resource(path)
        .route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(handler),
        )
        .default_service(web::to(|| async {
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, "GET, HEAD"))
                .content_type("text/plain; charset=utf-8")
                .body("method not allowed: GET or HEAD\n")
        }))
}

/// The admin server of a command without callbacks (`import --follow`): `/metrics` and
/// `/healthz` on an already bound listener. Call it inside a Tokio runtime.
pub fn metrics_server(
    metrics: crate::metrics::Metrics,
    listener: TcpListener,
) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        let metrics = metrics.clone();
        App::new()
            .service(probe("/metrics", move || {
                std::future::ready(exposition(&metrics))
            }))
            .service(probe("/healthz", healthz))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

/// The admin server (metrics and probes) on an already bound listener.
pub fn admin_server<P: Producer>(
    state: web::Data<AppState<P>>,
    listener: TcpListener,
) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .service(probe("/metrics", metrics::<P>))
            .service(probe("/healthz", healthz))
            .service(probe("/readyz", readyz::<P>))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}
