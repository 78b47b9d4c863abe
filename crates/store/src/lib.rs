//! rkube-store: the datastore behind the API server.
//!
//! [`Store`] is an MVCC key-value store with etcd v3 semantics: one global, strictly
//! increasing [`Revision`] bumped by every write; per key a create revision, a mod revision
//! and a version; reads at a past revision; compare-and-swap writes on the mod revision;
//! watches that replay every event after a revision, in order; and compaction, after which
//! reads and watches below the compacted revision fail with [`Error::Compacted`].
//!
//! Backends:
//! - [`embedded`]: the default, durable on local disk: an append-only log of CRC-framed
//!   batches with group commit (one `fdatasync` per batch), an in-memory MVCC index,
//!   snapshots on compaction and torn-tail recovery. Its docs say why this engine and not
//!   SQLite or redb; BENCHMARKS.md has its rates against real etcd.
//! - [`etcd`]: the real etcd v3 API (`--datastore-endpoint`), through the `etcd-client`
//!   crate, with fail-over between endpoints, TLS client certificates and resumable watches.
//!   [`etcd::process`] starts real etcd members on loopback for tests and benchmarks.
//!
//! [`compactor`] compacts any backend on a schedule (kube-apiserver's
//! `--etcd-compaction-interval`), retrying failures.
//!
//! [`encryption`] wraps any backend to encrypt chosen prefixes (Secrets) at rest.
//!
//! [`metrics`] times every call of any backend for `/metrics`.
//!
//! [`snapshot`] captures every key at one revision into a checksummed file and restores
//! it as an embedded data directory (`rkube snapshot save|restore|ls`).
//!
//! [`suite`] is the conformance suite every backend runs: one `pub async fn(&dyn Store)`
//! per behaviour, and [`store_suite!`] to turn them into `#[tokio::test]`s for a backend's
//! store factory.
//!
//! Keys follow the seed: `/registry/<resource>/<namespace>/<name>`; values are opaque bytes
//! (the API server stores JSON).

use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

pub mod compactor;
pub mod embedded;
pub mod encryption;
pub mod etcd;
pub mod metrics;
pub mod snapshot;
pub mod suite;

pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use etcd::{EtcdOptions, EtcdStore};

/// A point in the store's history. Revision 0 means "nothing written yet"; the first write
/// gets revision 1, as in etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(pub i64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One key as stored at some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
    /// Number of writes since the key was (re)created; 1 after a create.
    pub version: i64,
}

/// Options of [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Read the state as of this revision; `None` reads the latest. A revision below the
    /// compacted one fails with [`Error::Compacted`]; one above the current fails with
    /// [`Error::FutureRevision`].
    pub revision: Option<Revision>,
    /// Only keys strictly greater than this one (pagination: the last key of the previous page).
    pub start_after: Option<String>,
    /// At most this many entries; `None` or 0 means no limit.
    pub limit: Option<usize>,
}

/// The answer to [`Store::list`]: entries in key order.
#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// The revision the read was served at (the store's current revision when
    /// `ListOptions::revision` was `None`).
    pub revision: Revision,
    /// How many more keys under the prefix follow this page (0 when the page is complete).
    pub remaining: usize,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as delivered by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For `Put` the new entry; for `Delete` the last value the key had, with
    /// `mod_revision` set to the revision of the delete.
    pub entry: Entry,
    /// The value before this event, if the key existed.
    pub prev: Option<Entry>,
}

impl Event {
    /// The revision at which this event happened.
    pub fn revision(&self) -> Revision {
        self.entry.mod_revision
    }
}

/// A watch: events in revision order. The stream ends only when the store shuts down or the
/// watcher falls too far behind (then its last item is [`Error::WatchLagged`]).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// The result of a successful delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The value the key held before the delete.
    pub prev: Entry,
    /// The revision of the delete itself.
    pub revision: Revision,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("key {key} changed: expected revision {expected}, found {found}")]
    Conflict { key: String, expected: Revision, found: Revision },
    #[error("revision {requested} is compacted; oldest kept is {oldest}")]
    Compacted { requested: Revision, oldest: Revision },
    #[error("revision {requested} is in the future; current is {current}")]
    FutureRevision { requested: Revision, current: Revision },
    #[error("watcher fell too far behind and was dropped")]
    WatchLagged,
    #[error("data in {path} is format version {found}, this build reads version {supported}")]
    UnsupportedFormat { path: String, found: u32, supported: u32 },
    #[error("data in {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("datastore I/O failed")]
    Io(#[from] std::io::Error),
    /// The disk is full: the write was not made, and writes succeed again once space returns.
    #[error("no space left on the datastore's disk")]
    NoSpace(#[source] std::io::Error),
    #[error("datastore unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The narrow datastore interface the API server needs, in etcd v3 terms.
///
/// Every write is atomic and, once its future resolves `Ok`, durable (it survives `kill -9`
/// and power loss) and visible to every later read and watch.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Entry>>;
    /// Keys starting with `prefix`, in key order, as of `options.revision`.
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page>;
    /// Creates `key`; fails with `AlreadyExists` if it exists. Returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision>;
    /// Replaces `key` if its mod revision is `expected`; `NotFound` if the key is absent,
    /// `Conflict` if it moved on. Returns the new revision.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision>;
    /// Deletes `key`, if `expected` is given only when its mod revision matches.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted>;
    /// Every event under `prefix` with a revision strictly greater than `after`, then live
    /// events as they happen. `Compacted` if `after` is below the compacted revision.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;
    /// Forgets history older than `up_to` (the state at `up_to` stays readable).
    async fn compact(&self, up_to: Revision) -> Result<()>;
    /// The revision of the latest write (0 when empty).
    async fn current_revision(&self) -> Result<Revision>;
    /// The revision below which history is gone (0 when never compacted).
    async fn compacted_revision(&self) -> Result<Revision>;
}
