//! Durable-write benchmark: the embedded store against a real etcd started by this program.
//!
//! ```text
//! cargo run --release -p rkube-store --example store_bench [-- --rounds 5 --writers 1,16,64]
//! ```
//!
//! For each writer count, that many tasks write 256-byte values to distinct keys, in
//! `rounds` one-second slices alternating between a fresh embedded store and etcd (so both
//! see the same drifting disk and CPU conditions of a shared machine); etcd is (Debian's `etcd-server`,
//! `/usr/bin/etcd` or `$ETCD_BIN`, on loopback with free ports and a temporary data dir,
//! default durability: it syncs its WAL before answering). Embedded writes are `create`s
//! (a checked insert, as the API server does); etcd writes are plain `/v3/kv/put`s through
//! its JSON gateway, one keep-alive HTTP/1.1 connection per writer. Prints puts/s, p99
//! latency and the embedded/etcd ratio, as a Markdown table for BENCHMARKS.md. A third store
//! per slice is rkube's etcd backend (`EtcdStore` creates: a transaction per write, over one
//! gRPC connection) against the same etcd, reported as a share of the raw puts/s.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
// A benchmark measures wall time; the project's rule against `Instant::now` protects
// simulated components, which this binary is not.
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_store::{EmbeddedStore, Store};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const VALUE_LEN: usize = 256;
const SLICE: Duration = Duration::from_secs(1);

struct Args {
    rounds: u32,
    writers: Vec<usize>,
}

fn parse_args() -> Args {
    let mut args = Args { rounds: 5, writers: vec![1, 16, 64] };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rounds" => args.rounds = value.parse().expect("--rounds N"),
            "--writers" => {
                args.writers =
                    value.split(',').map(|w| w.parse().expect("--writers 1,16")).collect()
            }
            other => panic!("unknown flag {other}; use --rounds N --writers 1,16,64"),
        }
    }
    args
}

/// What one run measured.
struct Stats {
    puts: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.puts as f64 / self.elapsed.as_secs_f64()
    }

    fn of(latencies: Vec<Vec<Duration>>, elapsed: Duration) -> Stats {
        let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
        all.sort_unstable();
        let at = |pct: usize| {
            let i = (all.len() * pct / 100).min(all.len().saturating_sub(1));
            all.get(i).copied().unwrap_or_default()
        };
        Stats { puts: all.len(), elapsed, p50: at(50), p99: at(99) }
    }
}

/// Latencies of every write of one slice, and how long the slice took.
type Slice = (Vec<Duration>, Duration);

async fn slice_store(store: &Arc<dyn Store>, prefix: &str, writers: usize, round: u32) -> Slice {
    let value = Bytes::from(vec![b'v'; VALUE_LEN]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, value, prefix) = (Arc::clone(store), value.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while start.elapsed() < SLICE {
                let key = format!("{prefix}/r{round}/w{w}/{:09}", latencies.len());
                let t = Instant::now();
                store.create(&key, value.clone()).await.expect("store create");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer task"));
    }
    (latencies, start.elapsed())
}

/// A real etcd on loopback, killed and its data removed on drop.
struct Etcd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn start_etcd() -> Etcd {
    let bin = std::env::var("ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, peer) = (free_port(), free_port());
    let client = format!("http://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log file");
    let child = Command::new(&bin)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--name", "bench", "--listen-client-urls", &client])
        .args(["--advertise-client-urls", &client, "--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("bench={peer_url}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let etcd = Etcd { child, port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut conn) = EtcdConn::connect(port).await {
            if conn.put(b"/bench/ready", b"1").await.is_ok() {
                return etcd;
            }
        }
        assert!(Instant::now() < deadline, "etcd did not answer within 30s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One keep-alive HTTP/1.1 connection to etcd's JSON gateway.
struct EtcdConn {
    stream: BufReader<TcpStream>,
    port: u16,
    body: Vec<u8>,
}

impl EtcdConn {
    async fn connect(port: u16) -> std::io::Result<EtcdConn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(EtcdConn { stream: BufReader::new(stream), port, body: Vec::new() })
    }

    async fn put(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key), base64(value));
        let request = format!(
            "POST /v3/kv/put HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let ok = line.starts_with("HTTP/1.1 200");
        let mut length = 0;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(std::io::Error::other)?;
                }
            }
        }
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await?;
        if !ok || !self.body.windows(8).any(|w| w == b"revision") {
            let body = String::from_utf8_lossy(&self.body);
            return Err(std::io::Error::other(format!("etcd answered {line}: {body}")));
        }
        Ok(())
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn slice_etcd(port: u16, writers: usize, round: u32) -> Slice {
    let value = vec![b'v'; VALUE_LEN];
    let mut conns = Vec::new();
    for _ in 0..writers {
        conns.push(EtcdConn::connect(port).await.expect("connect to etcd"));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, mut conn) in conns.into_iter().enumerate() {
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while start.elapsed() < SLICE {
                let key = format!("/registry/bench/{writers}/r{round}/w{w}/{:09}", latencies.len());
                let t = Instant::now();
                conn.put(key.as_bytes(), &value).await.expect("etcd put");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer task"));
    }
    (latencies, start.elapsed())
}

/// The three stores at one writer count, in alternating slices: embedded creates, raw etcd
/// puts, and creates through rkube's etcd backend (one gRPC connection, as the API server).
async fn level(port: u16, writers: usize, rounds: u32, dir: &Path) -> (Stats, Stats, Stats) {
    let owned = Arc::new(EmbeddedStore::open(dir).await.expect("open"));
    let store: Arc<dyn Store> = owned.clone();
    let options = rkube_store::EtcdOptions::new(&format!("http://127.0.0.1:{port}"));
    let backend: Arc<dyn Store> =
        Arc::new(rkube_store::EtcdStore::connect(options).await.expect("etcd backend"));
    let (mut embedded, mut etcd) = ((Vec::new(), Duration::ZERO), (Vec::new(), Duration::ZERO));
    let mut through = (Vec::new(), Duration::ZERO);
    for round in 0..rounds {
        let (latencies, took) = slice_store(&store, "/registry/bench", writers, round).await;
        embedded.0.push(latencies);
        embedded.1 += took;
        let (latencies, took) = slice_etcd(port, writers, round).await;
        etcd.0.push(latencies);
        etcd.1 += took;
        let prefix = format!("/registry/backend/{writers}");
        let (latencies, took) = slice_store(&backend, &prefix, writers, round).await;
        through.0.push(latencies);
        through.1 += took;
    }
    drop(store);
    // Every writer task has finished, so this is the last handle: close it for a reopen.
    if let Ok(store) = Arc::try_unwrap(owned) {
        store.close().await;
    }
    (Stats::of(embedded.0, embedded.1), Stats::of(etcd.0, etcd.1), Stats::of(through.0, through.1))
}

/// Maintenance costs of the store the last level filled: compaction of all history (writes
/// wait for the in-memory part only), its background snapshot, and a reopen.
async fn maintenance(dir: &Path) {
    let store = EmbeddedStore::open(dir).await.expect("reopen");
    let keys = store.list("/", Default::default()).await.expect("list").entries.len();
    let current = store.current_revision().await.expect("revision");
    let t = Instant::now();
    store.compact(current).await.expect("compact");
    let compact = t.elapsed();
    // Close waits for the background snapshot of the compaction.
    store.close().await;
    let snapshot = t.elapsed();
    let t = Instant::now();
    let store = EmbeddedStore::open(dir).await.expect("reopen");
    let reopen = t.elapsed();
    assert_eq!(store.current_revision().await.expect("revision"), current);
    store.close().await;
    println!(
        "\nembedded store with {keys} keys: compact() returns in {:.0} ms (writes wait that \
         long), its snapshot is on disk after {:.0} ms; reopen takes {:.0} ms",
        ms(compact),
        ms(snapshot),
        ms(reopen)
    );
}

/// The disk's floor for one durable write: 300-byte writes into preallocated space, each
/// followed by `fdatasync`, one at a time, for a second.
fn sync_rate() -> f64 {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::create(dir.path().join("sync")).expect("create");
    file.write_all_at(&vec![0; 8 << 20], 0).expect("preallocate");
    file.sync_all().expect("sync");
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        file.write_all_at(&[b'x'; 300], n * 300).expect("write");
        file.sync_data().expect("fdatasync");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    assert_eq!(
        (base64(b"foob"), base64(b"fooba"), base64(b"foo")),
        ("Zm9vYg==".into(), "Zm9vYmE=".into(), "Zm9v".into())
    );
    let etcd = start_etcd().await;
    let version =
        Command::new(std::env::var("ETCD_BIN").unwrap_or_else(|_| "/usr/bin/etcd".into()))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string())
            .unwrap_or_default();
    println!("durable puts of {VALUE_LEN}-byte values, {} alternating 1s slices per store and writer count; etcd: {version}", args.rounds);
    println!("temp dirs under {}", std::env::temp_dir().display());
    println!("disk floor: {:.0} sequential write+fdatasync/s", sync_rate());
    println!();
    println!("| writers | embedded puts/s | p50 / p99 ms | etcd puts/s | p50 / p99 ms | ratio | etcd backend creates/s | p50 / p99 ms | backend / raw etcd |");
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut last_dir = None;
    for &writers in &args.writers {
        let dir = tempfile::tempdir().expect("temp dir");
        let (embedded, remote, backend) = level(etcd.port, writers, args.rounds, dir.path()).await;
        println!(
            "| {writers} | {:.0} | {:.2} / {:.2} | {:.0} | {:.2} / {:.2} | {:.1}x | {:.0} | {:.2} / {:.2} | {:.0}% |",
            embedded.rate(),
            ms(embedded.p50),
            ms(embedded.p99),
            remote.rate(),
            ms(remote.p50),
            ms(remote.p99),
            embedded.rate() / remote.rate(),
            backend.rate(),
            ms(backend.p50),
            ms(backend.p99),
            100.0 * backend.rate() / remote.rate()
        );
        debug_assert!(embedded.puts > 0 && remote.puts > 0);
        last_dir = Some(dir);
    }
    drop(etcd);
    if let Some(dir) = last_dir {
        maintenance(dir.path()).await;
    }
}
