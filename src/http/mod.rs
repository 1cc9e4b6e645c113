//! The HTTP edge: the callback listener and the admin listener.
//!
//! Callback listener: `GET|POST /adjust` (global) and `GET|POST /adjust/{trigger}`
//! (single-activity). The order of work per request: allowlist → [`row::build`] → queue; the
//! answer is 200 once the queue (or the write-ahead log, after fsync) holds the row, 403 for a
//! source outside the allowlist, 503 with `Retry-After` when the row cannot be taken now. Never a
//! 4xx for content: Adjust would drop the callback for good.
//!
//! Admin listener: `/metrics`, `/healthz`, `/readyz`.

pub mod allowlist;
pub mod longuri;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_http::{HttpService, KeepAlive, Protocol, error::DispatchError};
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::http::header;
use actix_web::rt::net::TcpStream;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::metrics::{Metrics, Outcome, Route};
use crate::pipeline::{Producer, Refusal};
use crate::row::{self, Received};
use crate::shutdown::Shutdown;
use allowlist::{Allowlist, client_ip};

/// Adjust forwards callbacks of up to 1 MB; bodies are accepted up to 1 MiB.
pub const MAX_BODY: usize = 1 << 20;

/// Everything a handler needs; `P` is the queue's ingest half (memory or write-ahead log).
pub struct AppState<P> {
    pub row: row::Options,
    pub allow: Allowlist,
    pub trusted_proxies: Allowlist,
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

async fn callback<P: Producer>(
    req: HttpRequest,
    body: web::Bytes,
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

    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let xff = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    let client = client_ip(peer, xff, &state.trusted_proxies);
    let Some(client) = client.filter(|ip| state.allow.contains(*ip)) else {
        m.request(route, Outcome::Forbidden, started);
        let who = client.map_or_else(
            || "unparsable X-Forwarded-For".to_string(),
            |ip| ip.to_string(),
        );
        tracing::debug!(source = %who, "callback from outside the allowlist");
        return HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body(format!("forbidden: source {who} is not in the allowlist\n"));
    };
    if state.shutdown.is_stopping() {
        m.request(route, Outcome::ShuttingDown, started);
        return unavailable(5, "shutting down");
    }

    // A target too long for actix arrives without its query, which comes in a header only the
    // listener's connection wrapper can add (see `longuri`).
    let query = match req.headers().get(longuri::query_header()) {
        Some(rescued) => rescued.as_bytes(),
        None => req.query_string().as_bytes(),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let received_at = crate::clock::unix_now();
    let built = row::build(
        &Received {
            query,
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

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body(
        "not found: callbacks go to /adjust (global) or /adjust/{trigger} (single activity, [a-z0-9_]+)\n",
    )
}

/// Configures the callback routes (used by the server and by in-process tests).
pub fn routes<P: Producer>(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .route("/adjust", web::get().to(callback::<P>))
        .route("/adjust", web::post().to(callback::<P>))
        .route("/adjust/{trigger:[a-z0-9_]+}", web::get().to(callback::<P>))
        .route(
            "/adjust/{trigger:[a-z0-9_]+}",
            web::post().to(callback::<P>),
        );
}

/// The callback server on an already bound listener.
///
/// Built like `HttpServer::listen` builds its services, but over [`longuri::LongUri`]
/// connections, so that GET callbacks with targets beyond what `http::Uri` takes (65,534 bytes)
/// are accepted up to actix-http's request-head limit (128 KiB; 431 beyond).
pub fn callback_server<P: Producer>(
    state: web::Data<AppState<P>>,
    listener: TcpListener,
    workers: usize,
    shutdown_timeout: Duration,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    Ok(Server::build()
        .workers(workers)
        .backlog(4096)
        .shutdown_timeout(shutdown_timeout.as_secs().max(1))
        .disable_signals()
        .listen(format!("adjust-callbacks-{addr}"), listener, move || {
            let app = App::new()
                .app_data(state.clone())
                .configure(routes::<P>)
                .default_service(web::to(not_found))
                .into_factory()
                .map_err(|err: actix_web::Error| err.error_response());
            let http = HttpService::build()
                .keep_alive(KeepAlive::default())
                .client_request_timeout(Duration::from_secs(30))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .finish(map_config(app, |_| AppConfig::default()));
            fn_service(|io: TcpStream| async move {
                // The TCP peer, for the allowlist (`HttpRequest::peer_addr`).
                let peer = io.peer_addr().ok();
                Ok::<_, DispatchError>((longuri::LongUri::new(io), Protocol::Http1, peer))
            })
            .and_then(http)
        })?
        .run())
}

async fn metrics<P: Producer>(state: web::Data<AppState<P>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
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

/// The admin server (metrics and probes) on an already bound listener.
pub fn admin_server<P: Producer>(
    state: web::Data<AppState<P>>,
    listener: TcpListener,
) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(metrics::<P>))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz::<P>))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}
