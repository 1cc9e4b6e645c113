//! Test support: a fresh ClickHouse database per test, the sink binary on port 0, and a second,
//! private ClickHouse server for outage tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The local cluster is shared by the tests that use it, and some of them SIGKILL a node: they
/// take turns, so that no test's `ON CLUSTER` DDL or load meets a node another test killed.
pub static CLUSTER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The ClickHouse the tests use (started by `deploy/local/clickhouse.sh`).
pub fn clickhouse_url() -> String {
    std::env::var("ADJUST_SINK_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18123".to_string())
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Drops the `e2e_<test>_<pid>` databases whose process is gone, so that test runs do not pile
/// databases (and their background work) up on a developer's server. Best effort: a server that
/// does not answer is reported by the test's own first query.
async fn drop_ended_runs(url: &str) {
    let db = Db {
        url: url.to_string(),
        name: String::new(),
        client: reqwest::Client::new(),
    };
    let Ok(names) = db
        .try_query("SELECT name FROM system.databases WHERE startsWith(name, 'e2e_')")
        .await
    else {
        return;
    };
    for name in names.lines() {
        let ended = name
            .rsplit('_')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| {
                pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
            });
        if ended {
            let _ = db
                .try_query(&format!("DROP DATABASE IF EXISTS {name}"))
                .await;
        }
    }
}

/// A database of its own on a ClickHouse server.
#[derive(Clone)]
pub struct Db {
    pub url: String,
    pub name: String,
    client: reqwest::Client,
}

impl Db {
    /// A new, empty database named after the test (dropped first if a previous run left it).
    /// A run keeps its databases for inspection; the first test of the next run drops those of
    /// runs that have ended.
    pub async fn fresh(test: &str) -> Db {
        let url = clickhouse_url();
        SWEPT.get_or_init(|| drop_ended_runs(&url)).await;
        Db::fresh_on(&url, test).await
    }

    pub async fn fresh_on(url: &str, test: &str) -> Db {
        let name = format!("e2e_{test}_{}", std::process::id());
        let db = Db {
            url: url.to_string(),
            name,
            client: reqwest::Client::new(),
        };
        if let Err(e) = db
            .try_query(&format!("DROP DATABASE IF EXISTS {}", db.name))
            .await
        {
            panic!(
                "ClickHouse at {url} is not usable ({e}).\nStart it with `deploy/local/clickhouse.sh start` \
                 or run the whole suite with `scripts/test.sh`."
            );
        }
        db
    }

    /// The same database through another server (a node of a cluster).
    pub fn at(&self, url: &str) -> Db {
        Db {
            url: url.to_string(),
            ..self.clone()
        }
    }

    pub async fn try_query(&self, sql: &str) -> Result<String, String> {
        let resp = self
            .client
            .post(&self.url)
            .body(sql.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("{status}: {text}"))
        }
    }

    /// [`Db::query`] with URL settings (`name=value&…`), e.g. for LowCardinality on 18.16.
    pub async fn query_with(&self, sql: &str, settings: &str) -> String {
        let resp = self
            .client
            .post(format!("{}/?{settings}", self.url.trim_end_matches('/')))
            .body(sql.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("query failed: {sql}\n{e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "query failed: {sql}\n{status}: {text}");
        text
    }

    pub async fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .await
            .unwrap_or_else(|e| panic!("query failed: {sql}\n{e}"))
    }

    /// A single number from `sql`.
    pub async fn number(&self, sql: &str) -> u64 {
        let out = self.query(sql).await;
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a number from {sql}: {out:?}"))
    }

    /// The flags naming this database and a data directory, for `replay`, `check` and the like.
    pub fn with_data_dir<'a>(&'a self, data_dir: &'a str) -> [&'a str; 6] {
        [
            "--clickhouse-url",
            &self.url,
            "--database",
            &self.name,
            "--data-dir",
            data_dir,
        ]
    }

    pub fn table(&self) -> String {
        format!("{}.callbacks", self.name)
    }

    /// Rows in the callbacks table (0 when it does not exist yet).
    pub async fn rows(&self) -> u64 {
        match self
            .try_query(&format!("SELECT count() FROM {}", self.table()))
            .await
        {
            Ok(s) => s.trim().parse().unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// (rows, rows after collapsing duplicates, distinct callback ids).
    pub async fn counts(&self) -> (u64, u64, u64) {
        let t = self.table();
        (
            self.number(&format!("SELECT count() FROM {t}")).await,
            self.number(&format!("SELECT count() FROM {t} FINAL")).await,
            self.number(&format!("SELECT uniqExact(callback_id) FROM {t}"))
                .await,
        )
    }

    /// One row as JSON (column → value), selected with `toString` for every listed column.
    pub async fn row_where(
        &self,
        columns: &[&str],
        cond: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let cols: Vec<String> = columns
            .iter()
            .map(|c| format!("toString({c}) AS `{c}`"))
            .collect();
        let out = self
            .query(&format!(
                "SELECT {} FROM {} WHERE {cond} FORMAT JSONEachRow",
                cols.join(", "),
                self.table()
            ))
            .await;
        let line = out
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no row where {cond}"));
        serde_json::from_str(line).expect("JSONEachRow line")
    }

    /// Waits until the table holds at least `n` rows.
    pub async fn wait_rows(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.rows().await;
            if rows >= n || Instant::now() >= deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The sink binary, running.
pub struct Sink {
    child: Option<Child>,
    pub main: SocketAddr,
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    logs: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

/// Arguments every test sink gets: loopback listeners on port 0, only 127.0.0.1 allowed, quick
/// batches.
pub fn base_args(db: &Db, data_dir: &Path) -> Vec<String> {
    args_allowing(db, data_dir, "127.0.0.1/32")
}

/// [`base_args`] with another allowlist.
pub fn args_allowing(db: &Db, data_dir: &Path, allow: &str) -> Vec<String> {
    [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--clickhouse-url",
        &db.url,
        "--database",
        &db.name,
        "--no-default-allow",
        "--allow",
        allow,
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
        "--batch-max-age",
        "200ms",
        "--log",
        "info",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl Sink {
    /// Starts a sink for `db` with a temporary data directory; `extra` flags come after the
    /// base ones (a repeated flag like `--allow` adds, a single-valued one overrides).
    pub async fn start(db: &Db, extra: &[&str]) -> Sink {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut sink = Sink::start_in(db, tmp.path(), extra).await;
        sink._tmp = Some(tmp);
        sink
    }

    /// Starts a sink whose allowlist is only `allow` (plus `extra` flags).
    pub async fn start_allowing(db: &Db, allow: &str, extra: &[&str]) -> Sink {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut args = args_allowing(db, tmp.path(), allow);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut sink = Sink::spawn(args, tmp.path().to_path_buf()).await;
        sink._tmp = Some(tmp);
        sink
    }

    /// Starts a sink in `data_dir` whose ClickHouse is unreachable (everything stays in its
    /// write-ahead log) and that gives up flushing 1 s after SIGTERM.
    pub async fn start_offline(db: &Db, data_dir: &Path) -> Sink {
        Sink::start_offline_env(db, data_dir, &[]).await
    }

    /// [`Sink::start_offline`] with environment variables set for the process.
    pub async fn start_offline_env(db: &Db, data_dir: &Path, env: &[(&str, &str)]) -> Sink {
        let mut args = base_args(db, data_dir);
        let url = args
            .iter()
            .position(|a| a == "--clickhouse-url")
            .expect("url flag")
            + 1;
        args[url] = "http://127.0.0.1:9".into();
        args.extend(["--shutdown-timeout".into(), "1s".into()]);
        Sink::spawn_env(args, data_dir.to_path_buf(), env).await
    }

    /// Starts a sink with a given data directory (kept by the caller, e.g. across restarts).
    pub async fn start_in(db: &Db, data_dir: &Path, extra: &[&str]) -> Sink {
        let mut args = base_args(db, data_dir);
        args.extend(extra.iter().map(|s| s.to_string()));
        Sink::spawn(args, data_dir.to_path_buf()).await
    }

    /// Starts the binary with exactly these arguments.
    pub async fn spawn(args: Vec<String>, data_dir: PathBuf) -> Sink {
        Sink::spawn_env(args, data_dir, &[]).await
    }

    /// [`Sink::spawn`] with environment variables set for the process.
    pub async fn spawn_env(args: Vec<String>, data_dir: PathBuf, env: &[(&str, &str)]) -> Sink {
        let mut child = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
            .args(&args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn adjust-sink");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink_logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(" listening ") {
                    let _ = tx.send(line.clone());
                }
                sink_logs.lock().unwrap().push(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "sink did not start; log:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        let addr = |key: &str| -> SocketAddr {
            let start = line
                .find(&format!("{key}="))
                .expect("address in listening line")
                + key.len()
                + 1;
            line[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .expect("socket address")
        };
        Sink {
            main: addr("main"),
            admin: addr("admin"),
            child: Some(child),
            data_dir,
            _tmp: None,
            logs,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.main)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `/readyz`: its status and body.
    pub async fn readyz(&self) -> (u16, String) {
        self.admin_get("/readyz").await
    }

    /// The status of a GET on the admin listener (`/readyz`, `/healthz`).
    pub async fn admin_status(&self, path: &str) -> u16 {
        self.admin_get(path).await.0
    }

    /// A GET on the admin listener: its status and body.
    async fn admin_get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(format!("http://{}{path}", self.admin))
            .send()
            .await
            .expect("admin request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// A request with `method` and no body on the main listener.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path_and_query))
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request")
    }

    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.admin);
        self.client
            .get(url)
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of one series, e.g. `adjust_sink_rows_written_total` or
    /// `adjust_sink_requests_total{outcome="forbidden",route="global"}` (labels in the order the
    /// exposition prints them: alphabetical).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        series_value(&text, series).unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    }

    /// Polls the metric `series` until it reaches `at_least` (panics after `timeout`, with the
    /// sink's log).
    pub async fn wait_metric(&self, series: &str, at_least: f64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.metric(series).await >= at_least {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} stayed below {at_least}; log:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits for the exit (at most `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        self.wait(timeout)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!(
                    "sink did not exit within {timeout:?}; log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Resident memory of the sink process, in bytes.
    pub fn rss(&self) -> u64 {
        self.proc_status_kb("VmRSS:") * 1024
    }

    /// Peak resident memory of the sink process so far, in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.proc_status_kb("VmHWM:") * 1024
    }

    fn proc_status_kb(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/<pid>/status"))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private ClickHouse server that a test may stop and start (outage tests), on its own ports
/// and data directory.
pub struct PrivateClickHouse {
    dir: PathBuf,
    http_port: u16,
    tcp_port: u16,
    /// More `clickhouse.sh` settings (HTTPS).
    env: Vec<(&'static str, String)>,
}

/// Ports free right now (bound to port 0, then released).
/// Runs `adjust-sink <args>`; returns success, stdout and stderr.
pub fn sink_cmd(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args(args)
        .output()
        .expect("run adjust-sink");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `adjust-sink import` into `db`'s table with `data_dir` as its data directory; the caller adds
/// the files and any other flag.
pub fn import_command(db: &Db, data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_adjust-sink"));
    command
        .args([
            "import",
            "--clickhouse-url",
            &db.url,
            "--database",
            &db.name,
        ])
        .arg("--data-dir")
        .arg(data_dir);
    command
}

/// The value of one series (`name` or `name{labels}`, as exposed) in a /metrics text.
pub fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().expect("metric value"))
}

pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

impl PrivateClickHouse {
    pub fn start(name: &str, http_port: u16) -> PrivateClickHouse {
        let ch = PrivateClickHouse {
            dir: repo().join("target").join(format!("clickhouse-{name}")),
            http_port,
            tcp_port: http_port + 1000,
            env: Vec::new(),
        };
        ch.run("start");
        ch
    }

    /// A server that also serves HTTPS on free ports, with this certificate and key (PEM),
    /// and with its own users file when given.
    pub fn start_https(
        name: &str,
        cert: &Path,
        key: &Path,
        users: Option<&Path>,
    ) -> PrivateClickHouse {
        let [http_port, tcp_port, https_port] = free_ports();
        let mut env = vec![
            ("ADJUST_SINK_CH_HTTPS_PORT", https_port.to_string()),
            ("ADJUST_SINK_CH_TLS_CERT", cert.display().to_string()),
            ("ADJUST_SINK_CH_TLS_KEY", key.display().to_string()),
        ];
        if let Some(users) = users {
            env.push(("ADJUST_SINK_CH_USERS_XML", users.display().to_string()));
        }
        let ch = PrivateClickHouse {
            dir: repo().join("target").join(format!("clickhouse-{name}")),
            http_port,
            tcp_port,
            env,
        };
        ch.run("start");
        ch
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The HTTPS URL (for a server started with [`PrivateClickHouse::start_https`]), with the
    /// host name the certificate is for.
    pub fn https_url(&self, host: &str) -> String {
        let port = self
            .env
            .iter()
            .find(|(k, _)| *k == "ADJUST_SINK_CH_HTTPS_PORT")
            .map(|(_, v)| v.as_str())
            .expect("started with HTTPS");
        format!("https://{host}:{port}")
    }

    fn script(&self, action: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("deploy/local/clickhouse.sh"))
            .arg(action)
            .env("ADJUST_SINK_CH_DIR", &self.dir)
            .env("ADJUST_SINK_CH_HTTP_PORT", self.http_port.to_string())
            .env("ADJUST_SINK_CH_TCP_PORT", self.tcp_port.to_string())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null());
        cmd
    }

    fn run(&self, action: &str) {
        let status = self.script(action).status().expect("clickhouse.sh");
        assert!(
            status.success(),
            "clickhouse.sh {action} failed for {}",
            self.dir.display()
        );
    }

    /// Stops the server; fails when something still answers on its port afterwards (a server
    /// the script did not start, which it leaves alone).
    pub fn stop(&self) {
        self.run("stop");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.http_port));
        assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            "something still answers on {addr} after stopping the server of {}",
            self.dir.display()
        );
    }

    pub fn resume(&self) {
        self.run("start");
    }

    /// Freezes the server (`SIGSTOP`): connections are accepted by the kernel and never
    /// answered, as with a server that hangs.
    pub fn freeze(&self) {
        assert!(self.signal("-STOP"), "kill -STOP {}", self.dir.display());
    }

    /// Lets a frozen server run again (`SIGCONT`).
    pub fn thaw(&self) {
        assert!(self.signal("-CONT"), "kill -CONT {}", self.dir.display());
    }

    /// Sends `signal` to the server of the pid file; whether that worked.
    fn signal(&self, signal: &str) -> bool {
        std::fs::read_to_string(self.dir.join("clickhouse-server.pid")).is_ok_and(|pid| {
            Command::new("kill")
                .args([signal, pid.trim()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        // A server a failed test left frozen would not stop.
        self.signal("-CONT");
        let _ = self.script("stop").stderr(Stdio::null()).status();
    }
}

/// Sends `n` distinct callbacks with at most `concurrency` in flight; returns the nonces
/// answered 200 and the count of every status (0 = no answer).
pub async fn blast(
    sink: &Sink,
    n: usize,
    concurrency: usize,
    tag: &str,
) -> (Vec<String>, std::collections::BTreeMap<u16, usize>) {
    blast_to(
        sink.client().clone(),
        sink.url("/adjust"),
        n,
        concurrency,
        tag.to_string(),
    )
    .await
}

/// The query of [`blast`]'s `i`-th callback (a click of ~400 bytes).
pub fn blast_query(nonce: &str, i: usize) -> String {
    format!(
        "activity_kind=click&app_token=4w565xzmb54d&adid=18546f6171f67e29d1cb983322ad13{:02x}\
         &created_at=1700000000&nonce={nonce}&country=de&os_name=android&tracker_name=Net%3A%3ACamp\
         &user_agent=Mozilla%2F5.0+%28Linux%3B+Android+13%29+AppleWebKit%2F537.36+%28KHTML%2C+like+Gecko%29\
         &ip_address=203.0.113.{}&label=load+test",
        i % 256,
        i % 250
    )
}

/// [`blast`] without borrowing the sink (to run while the test stops or kills it).
pub async fn blast_to(
    client: reqwest::Client,
    base: String,
    n: usize,
    concurrency: usize,
    tag: String,
) -> (Vec<String>, std::collections::BTreeMap<u16, usize>) {
    use futures_util::StreamExt;
    let results: Vec<(String, Option<u16>)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let nonce = format!("{tag}-{i}");
            let url = format!("{base}?{}", blast_query(&nonce, i));
            async move {
                let status = client
                    .get(url)
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status().as_u16());
                (nonce, status)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut counts = std::collections::BTreeMap::new();
    let mut ok = Vec::new();
    for (nonce, status) in results {
        *counts.entry(status.unwrap_or(0)).or_insert(0) += 1;
        if status == Some(200) {
            ok.push(nonce);
        }
    }
    (ok, counts)
}

/// Asserts that every nonce in `acknowledged` is stored, and that no callback is stored twice
/// once the engine has collapsed duplicates (`FINAL`, and physically after `OPTIMIZE … FINAL`).
pub async fn assert_exactly_once(db: &Db, acknowledged: &[String]) {
    let t = db.table();
    let stored: std::collections::HashSet<String> = db
        .query(&format!("SELECT DISTINCT nonce FROM {t}"))
        .await
        .lines()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !stored.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged callbacks missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let (rows, collapsed, distinct) = db.counts().await;
    assert_eq!(
        collapsed, distinct,
        "FINAL still shows duplicates (rows {rows})"
    );
    assert_eq!(distinct as usize, stored.len(), "one callback_id per nonce");
    // OPTIMIZE does nothing (and says nothing) while merges of the same parts are under way,
    // as after many retried INSERTs: repeated until it has merged, for a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after;
    loop {
        db.query(&format!("OPTIMIZE TABLE {t} FINAL")).await;
        after = db.number(&format!("SELECT count() FROM {t}")).await;
        if after == distinct || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(after, distinct, "duplicates left after merging");
}

/// Waits up to `timeout` for as many rows as `acknowledged` callbacks once duplicates collapse
/// (`FINAL`: a retried INSERT may land twice), with the sink's log in the message if they do
/// not come, then [`assert_exactly_once`].
pub async fn assert_all_land(db: &Db, sink: &Sink, acknowledged: &[String], timeout: Duration) {
    let n = acknowledged.len() as u64;
    let t = db.table();
    let deadline = Instant::now() + timeout;
    let mut landed = 0;
    while Instant::now() < deadline {
        if let Ok(count) = db
            .try_query(&format!("SELECT count() FROM {t} FINAL"))
            .await
        {
            landed = count.trim().parse().unwrap_or(0);
            if landed >= n {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(landed, n, "{}", sink.logs());
    assert_exactly_once(db, acknowledged).await;
}

/// Runs `adjust-sink migrate` for `db` and asserts it succeeded.
pub fn migrate(db: &Db) {
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args([
            "migrate",
            "--clickhouse-url",
            &db.url,
            "--database",
            &db.name,
        ])
        .output()
        .expect("run migrate");
    assert!(
        out.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The data rows whole in what can be decoded of a gzip'd CSV cut short (the header is its first
/// line): what an import of it lands.
pub fn whole_rows_of_cut_gzip(cut: &[u8]) -> u64 {
    let mut decoded = Vec::new();
    // The error at the cut is the point: what came before it is what counts.
    let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(cut), &mut decoded);
    decoded.iter().filter(|b| **b == b'\n').count() as u64 - 1
}
