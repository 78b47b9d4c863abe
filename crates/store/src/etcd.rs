//! The etcd backend: the [`Store`] trait over the real etcd v3 gRPC API.
//!
//! # Mapping
//!
//! - `get`/`list` are Range requests; `list` pages with `limit` and a range that starts just
//!   after `start_after`, and reports `count - returned` as `remaining`.
//! - `create`/`update`/`delete` are one transaction each, as kube-apiserver's etcd3 store
//!   does: compare the key's `create_revision == 0` (create) or `mod_revision == expected`
//!   (update, conditional delete) and put/delete; on a failed compare the else branch reads
//!   the key, so the error (`AlreadyExists`, `NotFound`, `Conflict`) costs no extra round trip.
//! - `watch` is one etcd watch per call with `prev_kv` and progress notifications; see
//!   [`watch`] for how it resumes on another endpoint and when it reports compaction.
//! - `compact` is etcd's physical compaction; compacting at or below the compacted revision
//!   is harmless, as the trait says.
//! - `compacted_revision`: etcd has no read for it, but a watch from revision 1 is refused
//!   with the compacted revision, so that is how it is read.
//!
//! # Availability
//!
//! Several endpoints share one balanced gRPC channel. A request that fails for a transport
//! reason (endpoint down, leader lost) is retried with capped backoff until
//! [`EtcdOptions::request_timeout`] runs out. A retried write whose first attempt may
//! have committed is recognised by its own value: a create that finds the key holding
//! exactly the bytes it wrote, or an update that finds them at a newer revision, succeeded.

pub mod process;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, CompactionOptions, ConnectOptions, DeleteOptions, GetOptions,
    KeyValue, Txn, TxnOp, TxnOpResponse, TxnResponse,
};

use crate::{Deleted, Entry, Error, ListOptions, Page, Result, Revision, Store, WatchStream};

/// How to reach etcd.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// `http://host:port` or `https://host:port` URLs of the cluster's members.
    pub endpoints: Vec<String>,
    /// PEM file of the CA that signed etcd's serving certificates (`--datastore-cafile`).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key for etcd's client-certificate auth
    /// (`--datastore-certfile`, `--datastore-keyfile`).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// How long one store call may take, retries included, before it fails with
    /// [`Error::Unavailable`] (default 30 s; an etcd leader election takes a few seconds).
    pub request_timeout: Duration,
    /// How long [`EtcdStore::connect`] waits for etcd to answer; `None` waits forever,
    /// logging a warning that names the endpoints every few seconds (default `None`).
    pub startup_timeout: Option<Duration>,
}

impl EtcdOptions {
    /// Options for `endpoints`, a comma-separated list as `--datastore-endpoint` takes it.
    pub fn new(endpoints: &str) -> EtcdOptions {
        EtcdOptions {
            endpoints: endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(String::from)
                .collect(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            request_timeout: Duration::from_secs(30),
            startup_timeout: None,
        }
    }
}

/// The store over a real etcd cluster. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    options: std::sync::Arc<EtcdOptions>,
}

/// First retry delay after a transport failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The limit on one attempt, so a request sent to a dead member fails over.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

impl EtcdStore {
    /// Connects to the endpoints in `options` and waits until etcd answers (see
    /// [`EtcdOptions::startup_timeout`]). Fails for bad URLs or TLS files at once, naming them.
    pub async fn connect(options: EtcdOptions) -> Result<EtcdStore> {
        if options.endpoints.is_empty() {
            return Err(unavailable("no etcd endpoint given".to_string()));
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            // A member cut off from its cluster must not serve stale watches.
            .with_require_leader(true);
        if let Some(tls) = tls_options(&options)? {
            connect = connect.with_tls(tls);
        }
        let client = Client::connect(&options.endpoints, Some(connect))
            .await
            .map_err(|e| unavailable(format!("etcd at {}: {e}", options.endpoints.join(","))))?;
        let store = EtcdStore { client, options: std::sync::Arc::new(options) };
        store.wait_until_reachable().await?;
        Ok(store)
    }

    /// The endpoints this store talks to, comma-separated (for messages).
    pub fn endpoints(&self) -> String {
        self.options.endpoints.join(",")
    }

    /// The raw etcd client, for maintenance calls (snapshot, status) that the trait lacks.
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn wait_until_reachable(&self) -> Result<()> {
        let started = tokio::time::Instant::now();
        loop {
            let mut client = self.client.clone();
            let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, client.get("/", None)).await;
            let error = match attempt {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer".to_string(),
            };
            if let Some(limit) = self.options.startup_timeout {
                if started.elapsed() >= limit {
                    return Err(unavailable(format!(
                        "etcd at {} is unreachable: {error}",
                        self.endpoints()
                    )));
                }
            }
            tracing::warn!(endpoints = %self.endpoints(), error, "etcd is unreachable; retrying");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Runs `call` until it succeeds, fails for a non-transport reason, or the request
    /// timeout runs out. `call` gets the attempt number (0 first).
    async fn retry<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut(Client, u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.options.request_timeout;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0.. {
            let result = tokio::time::timeout(ATTEMPT_TIMEOUT, call(self.client.clone(), attempt))
                .await
                .unwrap_or_else(|_| Err(etcd_client::Error::Internal("no answer".into())));
            match result {
                Ok(value) => return Ok(value),
                Err(e) if is_transient(&e) && tokio::time::Instant::now() + backoff < deadline => {
                    tracing::debug!(op = what, attempt, error = %e, "etcd request failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(self.map_error(e)),
            }
        }
        unreachable!("the retry loop returns")
    }

    fn map_error(&self, e: etcd_client::Error) -> Error {
        unavailable(format!("etcd at {}: {e}", self.endpoints()))
    }

    /// Maps etcd's "compacted"/"future revision" answers for a read at `requested`.
    async fn revision_error(&self, e: Error, requested: Revision) -> Error {
        let text = e.to_string();
        let source = match &e {
            Error::Unavailable(source) => source.to_string(),
            _ => text,
        };
        if source.contains("required revision has been compacted") {
            let oldest = self.compacted_revision().await.unwrap_or(Revision(0));
            return Error::Compacted { requested, oldest };
        }
        if source.contains("required revision is a future revision") {
            let current = self.current_revision().await.unwrap_or(Revision(0));
            return Error::FutureRevision { requested, current };
        }
        e
    }
}

fn unavailable(message: String) -> Error {
    Error::Unavailable(message.into())
}

/// Builds the TLS settings from the CA, certificate and key files, if any is set.
fn tls_options(options: &EtcdOptions) -> Result<Option<etcd_client::TlsOptions>> {
    let read = |path: &PathBuf, flag: &str| {
        std::fs::read(path).map_err(|e| {
            unavailable(format!("cannot read {flag} {}: {e}", path.display()))
        })
    };
    let any = options.ca_file.is_some() || options.cert_file.is_some() || options.key_file.is_some();
    if !any {
        return Ok(None);
    }
    if options.endpoints.iter().any(|e| e.starts_with("http://")) {
        return Err(unavailable(
            "--datastore-cafile/--datastore-certfile/--datastore-keyfile need https:// endpoints"
                .to_string(),
        ));
    }
    let mut tls = etcd_client::TlsOptions::new();
    if let Some(ca) = &options.ca_file {
        tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca, "--datastore-cafile")?));
    }
    match (&options.cert_file, &options.key_file) {
        (Some(cert), Some(key)) => {
            let cert = read(cert, "--datastore-certfile")?;
            let key = read(key, "--datastore-keyfile")?;
            tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
        }
        (None, None) => {}
        _ => {
            return Err(unavailable(
                "--datastore-certfile and --datastore-keyfile go together".to_string(),
            ))
        }
    }
    Ok(Some(tls))
}

/// Transport failures and leader loss: the request may succeed on a retry.
fn is_transient(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::TransportError(_)
        | etcd_client::Error::IoError(_)
        | etcd_client::Error::Internal(_) => true,
        etcd_client::Error::GRpcStatus(status) => match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Unknown => true,
            // etcd's "no leader", "leader changed", "too many requests".
            _ => {
                let m = status.message();
                m.contains("leader") || m.contains("too many requests") || m.contains("timed out")
            }
        },
        _ => false,
    }
}

/// The smallest key greater than every key starting with `prefix` (etcd's prefix range end);
/// `"\0"` (all keys) for an empty prefix.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn to_entry(kv: &KeyValue) -> Entry {
    Entry {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: Revision(kv.create_revision()),
        mod_revision: Revision(kv.mod_revision()),
        version: kv.version(),
    }
}

fn header_revision(txn: &TxnResponse) -> Revision {
    Revision(txn.header().map(|h| h.revision()).unwrap_or(0))
}

/// The key read by a transaction's else branch (`TxnOp::get`), if it exists.
fn else_get(txn: &TxnResponse) -> Option<Entry> {
    txn.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(to_entry),
        _ => None,
    })
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>> {
        let response = self
            .retry("get", |mut c, _| async move { c.get(key.as_bytes(), None).await })
            .await?;
        Ok(response.kvs().first().map(to_entry))
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        let end = prefix_end(prefix.as_bytes());
        let start = match &options.start_after {
            Some(after) => {
                let mut k = after.as_bytes().to_vec();
                k.push(0);
                k
            }
            None if prefix.is_empty() => vec![0],
            None => prefix.as_bytes().to_vec(),
        };
        let limit = options.limit.filter(|l| *l > 0).unwrap_or(0) as i64;
        let revision = options.revision.map(|r| r.0).unwrap_or(0);
        let result = self
            .retry("list", |mut c, _| {
                let (start, end) = (start.clone(), end.clone());
                async move {
                    let get = GetOptions::new().with_range(end).with_limit(limit);
                    c.get(start, Some(get.with_revision(revision))).await
                }
            })
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => return Err(self.revision_error(e, Revision(revision)).await),
        };
        let entries: Vec<Entry> = response.kvs().iter().map(to_entry).collect();
        let remaining = (response.count() as usize).saturating_sub(entries.len());
        let served = response.header().map(|h| h.revision()).unwrap_or(0);
        let revision = options.revision.unwrap_or(Revision(served));
        Ok(Page { entries, revision, remaining })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        let txn = self
            .retry("create", |mut c, attempt| {
                let value = value.clone();
                async move {
                    let txn = Txn::new()
                        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(key, value.to_vec(), None)])
                        .or_else([TxnOp::get(key, None)]);
                    c.txn(txn).await.map(|r| (r, attempt))
                }
            })
            .await;
        let (txn, attempt) = txn?;
        if txn.succeeded() {
            return Ok(header_revision(&txn));
        }
        match else_get(&txn) {
            // A retry found what the first attempt wrote: that attempt committed.
            Some(found) if attempt > 0 && found.value == value && found.version == 1 => {
                Ok(found.mod_revision)
            }
            _ => Err(Error::AlreadyExists { key: key.to_string() }),
        }
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        let txn = self
            .retry("update", |mut c, attempt| {
                let value = value.clone();
                async move {
                    let txn = Txn::new()
                        .when([
                            Compare::mod_revision(key, CompareOp::Equal, expected.0),
                            Compare::version(key, CompareOp::Greater, 0),
                        ])
                        .and_then([TxnOp::put(key, value.to_vec(), None)])
                        .or_else([TxnOp::get(key, None)]);
                    c.txn(txn).await.map(|r| (r, attempt))
                }
            })
            .await;
        let (txn, attempt) = txn?;
        if txn.succeeded() {
            return Ok(header_revision(&txn));
        }
        match else_get(&txn) {
            None => Err(Error::NotFound { key: key.to_string() }),
            Some(found) if attempt > 0 && found.value == value && found.mod_revision > expected => {
                Ok(found.mod_revision)
            }
            Some(found) => {
                Err(Error::Conflict { key: key.to_string(), expected, found: found.mod_revision })
            }
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted> {
        let txn = self
            .retry("delete", |mut c, _| async move {
                let mut when = vec![Compare::version(key, CompareOp::Greater, 0)];
                if let Some(expected) = expected {
                    when.push(Compare::mod_revision(key, CompareOp::Equal, expected.0));
                }
                let txn = Txn::new()
                    .when(when)
                    .and_then([TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()))])
                    .or_else([TxnOp::get(key, None)]);
                c.txn(txn).await
            })
            .await?;
        if txn.succeeded() {
            let prev = txn.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().map(to_entry),
                _ => None,
            });
            let prev = prev.ok_or_else(|| unavailable("etcd deleted without prev_kv".into()))?;
            return Ok(Deleted { prev, revision: header_revision(&txn) });
        }
        match (else_get(&txn), expected) {
            (Some(found), Some(expected)) => {
                Err(Error::Conflict { key: key.to_string(), expected, found: found.mod_revision })
            }
            _ => Err(Error::NotFound { key: key.to_string() }),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        watch::start(self.clone(), prefix.to_string(), after).await
    }

    async fn compact(&self, up_to: Revision) -> Result<()> {
        let result = self
            .retry("compact", |mut c, _| async move {
                c.compact(up_to.0, Some(CompactionOptions::new().with_physical())).await
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match self.revision_error(e, up_to).await {
                // Already compacted at or beyond: nothing to do.
                Error::Compacted { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        let response = self
            .retry("revision", |mut c, _| async move {
                // A count-only read of one key: the header carries the store's revision.
                c.get("/", Some(GetOptions::new().with_count_only())).await
            })
            .await?;
        Ok(Revision(response.header().map(|h| h.revision()).unwrap_or(0)))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        watch::probe_compacted(self).await
    }
}
