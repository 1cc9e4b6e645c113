//! The bare HTTP ceiling: a minimal actix-web server with the sink's worker count that, on
//! `GET|POST /adjust`, only splits and percent-decodes the query string and answers 200 `OK`.
//! Whatever rate the load generator reaches against it is the most the sink could reach on the
//! same machine; the sink's rate divided by this one is the share left after decoding, encoding
//! and queueing.
//!
//! ```text
//! cargo run --release --example ceiling -- --listen 127.0.0.1:0
//! ```
//!
//! Prints `listening <addr>` on stdout once bound; stops on SIGINT/SIGTERM.

use std::hint::black_box;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use clap::Parser;

/// Minimal callback endpoint: decodes the query and answers 200.
#[derive(Debug, Parser)]
#[command(name = "ceiling", max_term_width = 100)]
struct Args {
    /// Listen address (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// HTTP worker threads (default: one per CPU core, as the sink).
    #[arg(long)]
    workers: Option<usize>,
}

async fn adjust(req: HttpRequest) -> HttpResponse {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    black_box(pairs);
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK\n")
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let listener = TcpListener::bind(args.listen)?;
    let addr = listener.local_addr()?;
    actix_web::rt::System::new().block_on(async move {
        // The same server settings as the sink's callback listener.
        let server = HttpServer::new(|| {
            App::new()
                .route("/adjust", web::get().to(adjust))
                .route("/adjust", web::post().to(adjust))
        })
        .workers(workers.max(1))
        .backlog(4096)
        .max_connection_rate(4096)
        .client_request_timeout(Duration::from_secs(30))
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {addr}")?;
        out.flush()?;
        drop(out);
        server.await
    })
}
