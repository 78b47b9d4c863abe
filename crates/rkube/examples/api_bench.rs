//! API server benchmark: `rkube server --disable-agent` driven over HTTPS/HTTP/2 by a raw
//! hyper client (as client-go talks to kube-apiserver), beside a real etcd in the same run.
//!
//! ```text
//! scripts/bench-api [--seconds 3] [--rounds 2] [--only create,list,watch,apply]
//! ```
//!
//! `scripts/bench-api` builds the release binary and this example in one cargo invocation and
//! runs it; the example starts `target/release/rkube server` (next to its own `examples/`
//! directory, or `--rkube PATH`) on a temporary data dir and a free loopback port, and
//! Debian's `/usr/bin/etcd` (or `$ETCD_BIN`) on free loopback ports, and kills both at the end.
//! It measures, with the goals of issue 3 beside each figure:
//!
//! 1. `create`: ~1 KB ConfigMaps POSTed by 1 client (sequential latency) and by 64 clients,
//!    each on its own HTTP/2 connection, durable; beside etcd's raw `/v3/kv/put` of the same
//!    bytes by 64 clients (JSON gateway, one keep-alive HTTP/1.1 connection each), in
//!    alternating slices so both see the same machine.
//! 2. `list`: a consistent LIST (no resourceVersion) of 10,000 pods, served from the watch
//!    cache, and a walk through them in `limit=500` pages.
//! 3. `watch`: 1,000 watchers on one namespace's ConfigMaps (100 streams on each of 10 HTTP/2
//!    connections); the server's RSS growth while they idle; then 1,000 creates/s: event
//!    deliveries per second and write-to-delivery latency (from the moment the create was sent
//!    to the moment a watcher read the event).
//! 4. `apply`: server-side apply of an unchanged ~5 KB Deployment, sequentially; the
//!    resourceVersion must not move.
//!
//! Prints the machine (nproc, CPU model, load average per phase) and a Markdown table for
//! BENCHMARKS.md. Each phase runs against a fresh server; `--perf FILE` records each phase's
//! server with `perf record -g` into `FILE.<phase>`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
// A benchmark measures wall time; the project's rule against `Instant::now` protects
// simulated components, which this program is not.
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

type Sender = SendRequest<Full<Bytes>>;

struct Args {
    seconds: u64,
    rounds: u32,
    clients: usize,
    pods: usize,
    watchers: usize,
    write_rate: usize,
    only: Vec<String>,
    rkube: Option<String>,
    perf: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        seconds: 3,
        rounds: 2,
        clients: 64,
        pods: 10_000,
        watchers: 1000,
        write_rate: 1000,
        only: vec![],
        rkube: None,
        perf: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse()?,
            "--rounds" => a.rounds = value.parse()?,
            "--clients" => a.clients = value.parse()?,
            "--pods" => a.pods = value.parse()?,
            "--watchers" => a.watchers = value.parse()?,
            "--write-rate" => a.write_rate = value.parse()?,
            "--only" => a.only = value.split(',').map(str::to_owned).collect(),
            "--rkube" => a.rkube = Some(value),
            "--perf" => a.perf = Some(value),
            other => bail!(
                "unknown flag {other}; flags: --seconds N --rounds N --clients N --pods N \
                 --watchers N --write-rate N --only create,list,watch,apply --rkube PATH --perf FILE"
            ),
        }
    }
    Ok(a)
}

impl Args {
    fn runs(&self, phase: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == phase)
    }
}

// ---------------------------------------------------------------------------------------
// Processes

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A child process killed (and waited for) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn load_average() -> String {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn rkube_binary(args: &Args) -> Result<String> {
    if let Some(p) = &args.rkube {
        return Ok(p.clone());
    }
    // target/release/examples/api_bench -> target/release/rkube
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .context("no parent of the example")?;
    Ok(dir.join("rkube").to_string_lossy().into_owned())
}

/// The API server under test and a client TLS configuration for it.
struct Server {
    proc: Proc,
    port: u16,
    tls: TlsConnector,
    _dir: tempfile::TempDir,
}

async fn start_server(binary: &str) -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let child = Command::new(binary)
        .args([
            "server",
            "--disable-agent",
            "--bind-address",
            "127.0.0.1",
            "--https-port",
        ])
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(&data)
        .env("RKUBE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {binary}"))?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            bail!(
                "rkube server did not become ready within 60 s; see {}",
                dir.path().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(tls) = client_tls(&data.join("tls")) else {
            continue;
        };
        let Ok(mut s) = connect(port, &tls).await else {
            continue;
        };
        if let Ok((StatusCode::OK, _)) =
            send(&mut s, Method::GET, port, "/readyz", None, Bytes::new()).await
        {
            return Ok(Server {
                proc,
                port,
                tls,
                _dir: dir,
            });
        }
    }
}

fn client_tls(tls_dir: &std::path::Path) -> Result<TlsConnector> {
    let read = |name: &str| std::fs::read(tls_dir.join(name));
    let (ca, cert, key) = (read("ca.crt")?, read("admin.crt")?, read("admin.key")?);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca.as_slice()) {
        roots.add(c?)?;
    }
    let chain = rustls_pemfile::certs(&mut cert.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut key.as_slice())?.context("no key in admin.key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// One HTTP/2 connection (TLS, ALPN h2), as client-go opens.
async fn connect(port: u16, tls: &TlsConnector) -> Result<Sender> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?.to_owned();
    let stream = tls.connect(name, tcp).await?;
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn connect_many(server: &Server, n: usize) -> Result<Vec<Sender>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(connect(server.port, &server.tls).await?);
    }
    Ok(out)
}

fn request(
    method: Method,
    port: u16,
    path: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("https://127.0.0.1:{port}{path}"))
        .header("accept", "application/json")
        .header("user-agent", "api-bench");
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(Full::new(body)).expect("a valid request")
}

/// Sends a request and reads the whole answer.
async fn send(
    s: &mut Sender,
    method: Method,
    port: u16,
    path: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<(StatusCode, Bytes)> {
    s.ready().await?;
    let resp = s
        .send_request(request(method, port, path, content_type, body))
        .await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn must(
    s: &mut Sender,
    method: Method,
    port: u16,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    let (ct, bytes) = match body {
        Some(v) => (
            Some("application/json"),
            Bytes::from(serde_json::to_vec(&v)?),
        ),
        None => (None, Bytes::new()),
    };
    let (status, body) = send(s, method.clone(), port, path, ct, bytes).await?;
    if !status.is_success() {
        bail!(
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(serde_json::from_slice(&body)?)
}

async fn create_namespace(s: &mut Sender, port: u16, name: &str) -> Result<()> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    must(s, Method::POST, port, "/api/v1/namespaces", Some(ns))
        .await
        .map(drop)
}

// ---------------------------------------------------------------------------------------
// Statistics

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Percentile `pct` (0–100) of sorted values.
fn pct<T: Copy + Default>(sorted: &[T], pct: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() as f64 * pct / 100.0) as usize).min(sorted.len() - 1);
    sorted[i]
}

/// The outcome of a closed-loop load.
struct Load {
    latencies: Vec<Duration>,
    elapsed: Duration,
    errors: usize,
    first_error: Option<String>,
}

impl Load {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn merge(mut self, other: Load) -> Load {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
        self.errors += other.errors;
        self.first_error = self.first_error.or(other.first_error);
        self
    }
    fn sorted(mut self) -> Load {
        self.latencies.sort_unstable();
        self
    }
}

/// What a load sends: method, path, content type and body for request number `seq`.
type MakeRequest = dyn Fn(usize) -> (Method, String, &'static str, Bytes) + Send + Sync;

/// `clients` tasks (client `i` on connection `i % senders.len()`), each sending one request at
/// a time until `count` requests were sent in total or `duration` passed.
async fn closed_loop(
    senders: &[Sender],
    port: u16,
    clients: usize,
    count: Option<usize>,
    duration: Option<Duration>,
    expect: StatusCode,
    make: Arc<MakeRequest>,
) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut s = senders[c % senders.len()].clone();
        let (next, make) = (next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut first) = (Vec::new(), 0, None);
            loop {
                if duration.is_some_and(|d| start.elapsed() >= d) {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|n| seq >= n) {
                    break;
                }
                let (method, path, ct, body) = make(seq);
                let t = Instant::now();
                match send(&mut s, method, port, &path, Some(ct), body).await {
                    Ok((status, _)) if status == expect => lat.push(t.elapsed()),
                    Ok((status, body)) => {
                        errors += 1;
                        first.get_or_insert_with(|| {
                            format!("{status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        errors += 1;
                        first.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (lat, errors, first)
        }));
    }
    let mut load = Load {
        latencies: vec![],
        elapsed: Duration::ZERO,
        errors: 0,
        first_error: None,
    };
    for t in tasks {
        let (lat, errors, first) = t.await.expect("client task");
        load.latencies.extend(lat);
        load.errors += errors;
        load.first_error = load.first_error.or(first);
    }
    load.elapsed = start.elapsed();
    load
}

/// One row of the results table.
struct Row {
    what: String,
    measured: String,
    goal: String,
    met: Option<bool>,
}

fn row(
    what: impl Into<String>,
    measured: impl Into<String>,
    goal: impl Into<String>,
    met: Option<bool>,
) -> Row {
    Row {
        what: what.into(),
        measured: measured.into(),
        goal: goal.into(),
        met,
    }
}

// ---------------------------------------------------------------------------------------
// 1. Creates, beside etcd

/// A ~1 KB ConfigMap.
fn config_map(name: &str) -> Bytes {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "load"}},
        "data": {"payload": "x".repeat(880)},
    });
    Bytes::from(serde_json::to_vec(&cm).expect("json"))
}

/// Debian's etcd on free loopback ports in a temporary dir.
struct Etcd {
    _proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

fn etcd_bin() -> String {
    std::env::var("ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into())
}

/// Starts etcd as crates/store/examples/store_bench.rs does (default durability: it syncs its
/// WAL before answering).
async fn start_etcd() -> Result<Etcd> {
    let dir = tempfile::tempdir()?;
    let (port, peer) = (free_port(), free_port());
    let client = format!("http://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::File::create(dir.path().join("etcd.log"))?;
    let child = Command::new(etcd_bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--name", "bench", "--listen-client-urls", &client])
        .args([
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer_url,
        ])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("bench={peer_url}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", etcd_bin()))?;
    let etcd = Etcd {
        _proc: Proc(child),
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = etcd_connect(port).await {
            if etcd_put(&mut c, port, b"/bench/ready", b"1").await.is_ok() {
                return Ok(etcd);
            }
        }
        if Instant::now() > deadline {
            bail!("etcd did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type EtcdConn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn etcd_connect(port: u16) -> Result<EtcdConn> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// A `/v3/kv/put` through etcd's JSON gateway.
async fn etcd_put(c: &mut EtcdConn, port: u16, key: &[u8], value: &[u8]) -> Result<()> {
    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key), base64(value));
    c.ready().await?;
    let req = Request::post(format!("http://127.0.0.1:{port}/v3/kv/put"))
        .header("host", format!("127.0.0.1:{port}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = c.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK || !body.windows(8).any(|w| w == b"revision") {
        bail!("etcd answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// Standard base64 (a small duplicate of store_bench's: examples of different crates cannot
/// share a module, and the `base64` crate is not a dependency of this one).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

async fn etcd_slice(port: u16, writers: usize, duration: Duration, round: u32) -> Result<Load> {
    let value = config_map("etcd-value").to_vec();
    let mut conns = Vec::new();
    for _ in 0..writers {
        conns.push(etcd_connect(port).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, mut c) in conns.into_iter().enumerate() {
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while start.elapsed() < duration {
                let key = format!("/registry/configmaps/bench/r{round}-w{w}-{}", lat.len());
                let t = Instant::now();
                etcd_put(&mut c, port, key.as_bytes(), &value).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut load = Load {
        latencies: vec![],
        elapsed: Duration::ZERO,
        errors: 0,
        first_error: None,
    };
    for t in tasks {
        load.latencies.extend(t.await??);
    }
    load.elapsed = start.elapsed();
    Ok(load)
}

fn create_requests(prefix: &'static str) -> Arc<MakeRequest> {
    Arc::new(move |seq| {
        let name = format!("{prefix}-{seq:08}");
        (
            Method::POST,
            "/api/v1/namespaces/bench/configmaps".into(),
            "application/json",
            config_map(&name),
        )
    })
}

async fn bench_create(server: &Server, args: &Args, rows: &mut Vec<Row>) -> Result<()> {
    let port = server.port;
    let mut admin = connect(port, &server.tls).await?;
    create_namespace(&mut admin, port, "bench").await?;
    let one = vec![admin.clone()];
    // Warm-up: the ConfigMap watch cache, the allocator, the connection.
    closed_loop(
        &one,
        port,
        1,
        Some(200),
        None,
        StatusCode::CREATED,
        create_requests("warm"),
    )
    .await;
    let seq = closed_loop(
        &one,
        port,
        1,
        Some(2000),
        None,
        StatusCode::CREATED,
        create_requests("seq"),
    )
    .await
    .sorted();
    println!(
        "sequential creates: {} at {:.0}/s, p50 {:.3} ms, p99 {:.3} ms, errors {} {:?}",
        seq.latencies.len(),
        seq.rate(),
        ms(pct(&seq.latencies, 50.0)),
        ms(pct(&seq.latencies, 99.0)),
        seq.errors,
        seq.first_error
    );
    let etcd = start_etcd().await?;
    let senders = connect_many(server, args.clients).await?;
    let slice = Duration::from_secs(args.seconds);
    let mut api: Option<Load> = None;
    let mut raw: Option<Load> = None;
    for round in 0..args.rounds {
        println!("  round {round}: load average {}", load_average());
        let prefix: &'static str = Box::leak(format!("c{round}").into_boxed_str());
        let l = closed_loop(
            &senders,
            port,
            args.clients,
            None,
            Some(slice),
            StatusCode::CREATED,
            create_requests(prefix),
        )
        .await;
        println!(
            "  rkube {:.0}/s ({} errors {:?})",
            l.rate(),
            l.errors,
            l.first_error
        );
        api = Some(match api {
            Some(a) => a.merge(l),
            None => l,
        });
        let e = etcd_slice(etcd.port, args.clients, slice, round).await?;
        println!("  etcd  {:.0}/s", e.rate());
        raw = Some(match raw {
            Some(a) => a.merge(e),
            None => e,
        });
    }
    let (api, raw) = (
        api.context("no rounds")?.sorted(),
        raw.context("no rounds")?.sorted(),
    );
    let version = Command::new(etcd_bin())
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })?;
    drop(etcd);
    let (p50, p99) = (ms(pct(&api.latencies, 50.0)), ms(pct(&api.latencies, 99.0)));
    rows.push(row(
        format!(
            "create ~1 KB ConfigMap, {} clients (HTTP/2 conn each), durable",
            args.clients
        ),
        format!("{:.0}/s ({} errors)", api.rate(), api.errors),
        "≥ 10,000/s",
        Some(api.rate() >= 10_000.0 && api.errors == 0),
    ));
    rows.push(row(
        "  its p50 / p99",
        format!("{p50:.2} / {p99:.2} ms"),
        "p99 ≤ 25 ms",
        Some(p99 <= 25.0),
    ));
    rows.push(row(
        format!(
            "  etcd raw put of the same bytes, {} clients ({version})",
            args.clients
        ),
        format!(
            "{:.0}/s, p50 / p99 {:.2} / {:.2} ms; rkube/etcd = {:.1}x",
            raw.rate(),
            ms(pct(&raw.latencies, 50.0)),
            ms(pct(&raw.latencies, 99.0)),
            api.rate() / raw.rate()
        ),
        "baseline",
        None,
    ));
    let seq50 = ms(pct(&seq.latencies, 50.0));
    rows.push(row(
        "sequential create (1 client)",
        format!(
            "p50 {seq50:.3} ms, p99 {:.3} ms ({:.0}/s)",
            ms(pct(&seq.latencies, 99.0)),
            seq.rate()
        ),
        "p50 ≤ 1 ms",
        Some(seq50 <= 1.0 && seq.errors == 0),
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 2. LIST of 10,000 pods

fn pod_requests() -> Arc<MakeRequest> {
    Arc::new(|seq| {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("pod-{seq:06}"), "labels": {"app": "bench", "shard": (seq % 16).to_string()}},
            "spec": {"containers": [{"name": "app", "image": "registry.local/bench:1.0",
                "ports": [{"containerPort": 8080}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
        });
        let body = Bytes::from(serde_json::to_vec(&pod).expect("json"));
        (
            Method::POST,
            "/api/v1/namespaces/list/pods".into(),
            "application/json",
            body,
        )
    })
}

async fn bench_list(server: &Server, args: &Args, rows: &mut Vec<Row>) -> Result<()> {
    let port = server.port;
    let mut admin = connect(port, &server.tls).await?;
    create_namespace(&mut admin, port, "list").await?;
    let senders = connect_many(server, 8).await?;
    let t = Instant::now();
    let made = closed_loop(
        &senders,
        port,
        args.clients,
        Some(args.pods),
        None,
        StatusCode::CREATED,
        pod_requests(),
    )
    .await;
    if made.errors > 0 {
        bail!("creating pods failed: {:?}", made.first_error);
    }
    println!(
        "created {} pods in {:.1} s; load average {}",
        args.pods,
        t.elapsed().as_secs_f64(),
        load_average()
    );
    let path = "/api/v1/namespaces/list/pods";
    let (mut full, mut size) = (Vec::new(), 0);
    for _ in 0..11 {
        let t = Instant::now();
        let (status, body) = send(&mut admin, Method::GET, port, path, None, Bytes::new()).await?;
        full.push(t.elapsed());
        if status != StatusCode::OK {
            bail!("list: {status}");
        }
        size = body.len();
    }
    // The first list built the cache: keep it out of the figure but report it.
    let first = full.remove(0);
    let check: Value = {
        let (_, body) = send(&mut admin, Method::GET, port, path, None, Bytes::new()).await?;
        serde_json::from_slice(&body)?
    };
    let items = check["items"].as_array().map_or(0, Vec::len);
    full.sort_unstable();
    let (p50, max) = (
        ms(pct(&full, 50.0)),
        ms(*full.last().unwrap_or(&Duration::ZERO)),
    );
    println!("consistent list of {items} pods ({:.1} MB): first {:.1} ms, then p50 {p50:.1} ms, max {max:.1} ms", size as f64 / 1e6, ms(first));
    rows.push(row(
        format!(
            "consistent LIST of {items} pods ({:.1} MB JSON), 10 runs",
            size as f64 / 1e6
        ),
        format!("p50 {p50:.1} ms, max {max:.1} ms"),
        "≤ 50 ms",
        Some(p50 <= 50.0 && items == args.pods),
    ));
    let mut pages = Vec::new();
    let mut seen = 0;
    for _ in 0..3 {
        let mut cont = String::new();
        seen = 0;
        loop {
            let mut p = format!("{path}?limit=500");
            if !cont.is_empty() {
                p.push_str("&continue=");
                p.push_str(&cont);
            }
            let t = Instant::now();
            let (status, body) =
                send(&mut admin, Method::GET, port, &p, None, Bytes::new()).await?;
            pages.push(t.elapsed());
            if status != StatusCode::OK {
                bail!("paged list: {status}: {}", String::from_utf8_lossy(&body));
            }
            let v: Value = serde_json::from_slice(&body)?;
            seen += v["items"].as_array().map_or(0, Vec::len);
            match v["metadata"]["continue"].as_str() {
                Some(c) if !c.is_empty() => cont = c.to_owned(),
                _ => break,
            }
        }
    }
    pages.sort_unstable();
    let (p50, p99, max) = (
        ms(pct(&pages, 50.0)),
        ms(pct(&pages, 99.0)),
        ms(*pages.last().unwrap_or(&Duration::ZERO)),
    );
    rows.push(row(
        format!(
            "LIST limit=500 pages ({} pages over 3 walks, {seen} pods a walk)",
            pages.len()
        ),
        format!("p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms"),
        "each ≤ 5 ms",
        Some(max <= 5.0 && seen == args.pods),
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. 1,000 watchers

/// What one watcher saw.
#[derive(Default)]
struct Seen {
    events: usize,
    /// Write-to-delivery latencies, µs.
    latencies: Vec<u32>,
    /// When the last event arrived, ns since the run's epoch.
    last: u64,
    /// The stream ended before the watcher was told to stop.
    ended: bool,
}

/// Finds `"name":"w-` in a watch event line and parses the write number after it.
fn write_number(line: &[u8]) -> Option<usize> {
    const MARK: &[u8] = b"\"name\":\"w-";
    let at = line.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit());
    Some(digits.fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

async fn watcher(
    mut s: Sender,
    port: u16,
    path: String,
    opened: Arc<AtomicUsize>,
    sent: Arc<Vec<AtomicU64>>,
    epoch: Instant,
    stop: CancellationToken,
) -> Result<Seen> {
    let want = sent.len();
    s.ready().await?;
    let resp = s
        .send_request(request(Method::GET, port, &path, None, Bytes::new()))
        .await?;
    if resp.status() != StatusCode::OK {
        bail!("watch: {}", resp.status());
    }
    opened.fetch_add(1, Ordering::Relaxed);
    let mut body = resp.into_body();
    let (mut seen, mut partial) = (Seen::default(), Vec::new());
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return Ok(seen),
            f = body.frame() => f,
        };
        let Some(frame) = frame else {
            seen.ended = true;
            return Ok(seen);
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let now = epoch.elapsed().as_nanos() as u64;
        let mut rest: &[u8] = &data;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let line = if partial.is_empty() {
                &rest[..nl]
            } else {
                partial.extend_from_slice(&rest[..nl]);
                &partial[..]
            };
            if let Some(n) = write_number(line).filter(|n| *n < sent.len()) {
                let at = sent[n].load(Ordering::Relaxed);
                seen.latencies.push((now.saturating_sub(at) / 1000) as u32);
            }
            seen.events += 1;
            seen.last = now;
            partial.clear();
            rest = &rest[nl + 1..];
        }
        partial.extend_from_slice(rest);
        if seen.events >= want {
            return Ok(seen);
        }
    }
}

async fn bench_watch(server: &Server, args: &Args, rows: &mut Vec<Row>) -> Result<()> {
    let port = server.port;
    let mut admin = connect(port, &server.tls).await?;
    create_namespace(&mut admin, port, "watch").await?;
    let list = must(
        &mut admin,
        Method::GET,
        port,
        "/api/v1/namespaces/watch/configmaps",
        None,
    )
    .await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let writes = args.write_rate * args.seconds as usize;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..writes).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_kib(server.proc.0.id());
    // 100 streams a connection: hyper's server allows 200 concurrent streams a connection.
    let conns = connect_many(server, args.watchers.div_ceil(100)).await?;
    let (opened, stop) = (Arc::new(AtomicUsize::new(0)), CancellationToken::new());
    let path = format!("/api/v1/namespaces/watch/configmaps?watch=1&resourceVersion={rv}");
    let mut tasks = Vec::new();
    for w in 0..args.watchers {
        let s = conns[w % conns.len()].clone();
        let (path, opened, sent, stop) = (path.clone(), opened.clone(), sent.clone(), stop.clone());
        tasks.push(tokio::spawn(watcher(
            s, port, path, opened, sent, epoch, stop,
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while opened.load(Ordering::Relaxed) < args.watchers {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} watches opened",
                opened.load(Ordering::Relaxed),
                args.watchers
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(server.proc.0.id());
    let per_watcher = (rss_idle.saturating_sub(rss_before)) as f64 * 1024.0 / args.watchers as f64;
    println!(
        "{} watchers open on {} connections: server RSS {rss_before} KiB -> {rss_idle} KiB ({:.0} B a watcher); load average {}",
        args.watchers,
        conns.len(),
        per_watcher,
        load_average()
    );
    // The writer: `write_rate` creates a second, paced, up to 64 in flight on 4 connections.
    let writers = connect_many(server, 4).await?;
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut inflight = Vec::new();
    for i in 0..writes {
        let due = start + Duration::from_secs_f64(i as f64 / args.write_rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = gate.clone().acquire_owned().await?;
        let mut s = writers[i % writers.len()].clone();
        let (sent, failed) = (sent.clone(), failed.clone());
        inflight.push(tokio::spawn(async move {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("w-{i:07}")}, "data": {"k": "v"}});
            let body = Bytes::from(serde_json::to_vec(&cm).expect("json"));
            sent[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let path = "/api/v1/namespaces/watch/configmaps";
            match send(
                &mut s,
                Method::POST,
                port,
                path,
                Some("application/json"),
                body,
            )
            .await
            {
                Ok((StatusCode::CREATED, _)) => {}
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        }));
    }
    for t in inflight {
        t.await?;
    }
    let write_secs = start.elapsed().as_secs_f64();
    let first_sent = sent[0].load(Ordering::Relaxed);
    println!(
        "{writes} writes in {write_secs:.2} s ({} failed); load average {}",
        failed.load(Ordering::Relaxed),
        load_average()
    );
    // Let the watchers drain (bounded), then stop them.
    let drain = Instant::now() + Duration::from_secs(30);
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(drain.into()).await;
            stop.cancel();
        })
    };
    let (mut delivered, mut last, mut ended, mut lat, mut complete) =
        (0usize, 0u64, 0, Vec::new(), 0);
    for t in tasks {
        // A watcher returns when it has every event, or at the drain deadline.
        let seen = t.await??;
        delivered += seen.events;
        last = last.max(seen.last);
        ended += usize::from(seen.ended);
        complete += usize::from(seen.events >= writes);
        lat.extend(seen.latencies);
    }
    stopper.abort();
    lat.sort_unstable();
    let span = Duration::from_nanos(last.saturating_sub(first_sent)).as_secs_f64();
    let rate = delivered as f64 / span;
    let p50 = f64::from(pct(&lat, 50.0)) / 1000.0;
    let p99 = f64::from(pct(&lat, 99.0)) / 1000.0;
    println!("delivered {delivered} of {} events in {span:.2} s; {complete} watchers complete, {ended} streams ended early", writes * args.watchers);
    rows.push(row(
        format!(
            "{} watchers, {} creates/s for {} s: event deliveries",
            args.watchers, args.write_rate, args.seconds
        ),
        format!(
            "{rate:.0}/s ({delivered} of {}, {ended} streams closed early)",
            writes * args.watchers
        ),
        "≥ 500,000/s",
        Some(rate >= 500_000.0 && delivered == writes * args.watchers),
    ));
    rows.push(row(
        "  write-to-delivery (create sent → event read)",
        format!("p50 {p50:.1} ms, p99 {p99:.1} ms"),
        "p99 ≤ 100 ms",
        Some(p99 <= 100.0),
    ));
    rows.push(row(
        format!(
            "  server memory per idle watcher (RSS delta / {})",
            args.watchers
        ),
        format!(
            "{:.2} KB ({rss_before} → {rss_idle} KiB)",
            per_watcher / 1024.0
        ),
        "≤ 2 KB",
        Some(per_watcher <= 2048.0),
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 4. Server-side apply of an unchanged Deployment

/// A Deployment of about 5 KB of JSON.
fn deployment() -> Value {
    let env: Vec<Value> = (0..36)
        .map(|i| json!({"name": format!("SETTING_{i:02}"), "value": format!("value-of-setting-number-{i:02}")}))
        .collect();
    let container = |name: &str, port: i64| {
        json!({
            "name": name, "image": format!("registry.local/{name}:1.2.3"),
            "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
            "env": env,
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": port}, "periodSeconds": 5},
        })
    };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apply",
            "labels": {"app": "web", "team": "bench", "tier": "frontend"},
            "annotations": {"description": "a deployment applied again and again without change"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {"containers": [container("web", 8080), container("sidecar", 9090)]},
            },
        },
    })
}

async fn bench_apply(server: &Server, rows: &mut Vec<Row>) -> Result<()> {
    let port = server.port;
    let mut s = connect(port, &server.tls).await?;
    create_namespace(&mut s, port, "apply").await?;
    let body = Bytes::from(serde_json::to_vec(&deployment())?);
    let path = "/apis/apps/v1/namespaces/apply/deployments/web?fieldManager=bench&force=true";
    let ct = Some("application/apply-patch+yaml");
    let (status, created) = send(&mut s, Method::PATCH, port, path, ct, body.clone()).await?;
    if status != StatusCode::CREATED {
        bail!(
            "first apply: {status}: {}",
            String::from_utf8_lossy(&created)
        );
    }
    let rv_of = |b: &[u8]| -> Result<String> {
        let v: Value = serde_json::from_slice(b)?;
        Ok(v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    };
    let rv = rv_of(&created)?;
    let (mut lat, mut moved) = (Vec::new(), 0);
    for _ in 0..1000 {
        let t = Instant::now();
        let (status, answer) = send(&mut s, Method::PATCH, port, path, ct, body.clone()).await?;
        lat.push(t.elapsed());
        if status != StatusCode::OK {
            bail!("apply: {status}: {}", String::from_utf8_lossy(&answer));
        }
        moved += usize::from(rv_of(&answer)? != rv);
    }
    let stored = must(
        &mut s,
        Method::GET,
        port,
        "/apis/apps/v1/namespaces/apply/deployments/web",
        None,
    )
    .await?;
    let unchanged =
        stored["metadata"]["resourceVersion"].as_str() == Some(rv.as_str()) && moved == 0;
    lat.sort_unstable();
    let p50 = ms(pct(&lat, 50.0));
    rows.push(row(
        format!(
            "server-side apply of an unchanged {:.1} KB Deployment, 1000 sequential",
            body.len() as f64 / 1024.0
        ),
        format!(
            "p50 {p50:.3} ms, p99 {:.3} ms; resourceVersion {}",
            ms(pct(&lat, 99.0)),
            if unchanged {
                "unchanged".to_owned()
            } else {
                format!("MOVED ({moved} answers)")
            }
        ),
        "p50 ≤ 1 ms, no write",
        Some(p50 <= 1.0 && unchanged),
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------

fn machine() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let lscpu = Command::new("lscpu")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let model = lscpu
        .lines()
        .find_map(|l| l.strip_prefix("Model name:"))
        .map(str::trim)
        .unwrap_or("unknown")
        .to_owned();
    format!("nproc {nproc}, CPU {model}")
}

fn start_perf(file: &str, pid: u32) -> Result<Proc> {
    let child = Command::new("perf")
        .args(["record", "-g", "-o", file, "-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("perf (Debian linux-perf) is needed for --perf")?;
    Ok(Proc(child))
}

/// Runs one phase against a fresh server (so one phase's garbage does not hide in the next
/// one's memory figures), recorded by perf when asked.
async fn phase(args: &Args, name: &str, rows: &mut Vec<Row>) -> Result<()> {
    if !args.runs(name) {
        return Ok(());
    }
    let server = start_server(&rkube_binary(args)?).await?;
    println!(
        "\n{name}: rkube server pid {} on 127.0.0.1:{}",
        server.proc.0.id(),
        server.port
    );
    let perf = match &args.perf {
        Some(f) => Some(start_perf(&format!("{f}.{name}"), server.proc.0.id())?),
        None => None,
    };
    match name {
        "create" => bench_create(&server, args, rows).await?,
        "list" => bench_list(&server, args, rows).await?,
        "watch" => bench_watch(&server, args, rows).await?,
        _ => bench_apply(&server, rows).await?,
    }
    if let Some(mut p) = perf {
        // SIGINT lets perf write its file.
        let _ = Command::new("kill")
            .args(["-INT", &p.0.id().to_string()])
            .status();
        let _ = p.0.wait();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    println!(
        "machine: {}; load average at start {}",
        machine(),
        load_average()
    );
    let mut rows = Vec::new();
    for name in ["create", "list", "watch", "apply"] {
        phase(&args, name, &mut rows).await?;
    }
    println!("\nload average at the end {}\n", load_average());
    println!("| what | measured | goal | met |");
    println!("|--|--|--|--|");
    for r in &rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!("| {} | {} | {} | {met} |", r.what, r.measured, r.goal);
    }
    Ok(())
}
