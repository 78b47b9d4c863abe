//! The embedded backend: the default datastore, durable on local disk.
//!
//! # Design
//!
//! - **Log**: an append-only file of CRC-framed batches. One
//!   writer thread takes every queued write, checks preconditions, appends one frame per
//!   batch and makes it durable with ONE `fdatasync` (group commit). Log space is written
//!   with zeros ahead of use, so the sync flushes data only, never file size or block
//!   allocation metadata. A write is acknowledged only after its batch is synced.
//! - **Index**: all retained history lives in memory, per key a list of versions (value or
//!   tombstone), serving `get`/`list` at any retained revision and watch replay. Values are
//!   reference-counted [`Bytes`], so reads do not copy them.
//! - **Watch**: replay from the index, then live batches from a broadcast channel; the
//!   broadcast is sent while the index is write-locked and a watch registers under the read
//!   lock, so no event is lost or repeated between the two. A watcher more than
//!   [`EmbeddedOptions::watch_buffer`] batches behind gets [`Error::WatchLagged`].
//! - **Compaction** drops history below the revision, switches writes to a fresh
//!   `log.<gen>` and, on a background thread, writes the retained state as of the switch as
//!   a snapshot (`snap.<gen>`, via a temporary name and an atomic rename), then deletes the
//!   older files, so disk use stays proportional to the retained history and writes do not
//!   wait for the snapshot.
//! - **Recovery**: load the newest snapshot, replay its log, cut a torn tail (a damaged last
//!   frame); damage followed by intact newer frames is [`Error::Corrupt`]. A `FORMAT` file
//!   names the on-disk version; an unknown one is [`Error::UnsupportedFormat`]. A `LOCK`
//!   file (flock) keeps a second process out.
//!
//! # Why this engine
//!
//! Measured on the project's machines (see DESIGN.md §7 and BENCHMARKS.md): SQLite with
//! `synchronous=FULL` does 4.8k durable writes/s, `NORMAL` (not durable on power loss in WAL
//! mode) 15.7k, redb 3.8k; rocksdb was rejected for its 16-minute build. All of them sync
//! per transaction, so their rate is the sync rate unless we batch on top, and batching on
//! top of a B-tree still pays page writes and its own locking per batch. The Store needs
//! neither a B-tree on disk nor SQL: the API server keeps everything in memory anyway (the
//! watch cache), etcd itself keeps only an in-memory index plus a log and snapshots, and
//! one frame append plus one `fdatasync` per batch is the least work a durable write can
//! cost. With group commit the rate is then bounded by CPU, not the disk: see BENCHMARKS.md
//! for the measured rates against real etcd at 1, 16 and 64 writers.
//!
//! Trade-offs: all retained history must fit in memory (as for etcd's index plus the API
//! server's watch cache), open time grows with the log since the last compaction, and a
//! compaction holds the index's write lock while it drops old versions (a pass over the
//! keys, no I/O).

mod files;
mod index;
mod log;
mod snapshot;
mod writer;

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    Deleted, Entry, Error, Event, ListOptions, Page, Result, Revision, Store, WatchStream,
};
pub use files::FORMAT_VERSION;
use index::Index;
use writer::{Request, Writer};

/// Tuning of an [`EmbeddedStore`]; the defaults suit a server.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Bytes of zeroed log space kept ahead of the write position (default 16 MiB: about
    /// 50k small writes between extensions, each of which writes and syncs this many zeros
    /// inside one commit). Smaller values suit tests with many small stores.
    pub preallocate: u64,
    /// Most writes made durable by one sync (default 4096).
    pub max_batch: usize,
    /// Writes queued for the writer before callers wait for room (default 16384).
    pub queue: usize,
    /// Commit batches a watcher may fall behind before it is dropped with
    /// [`Error::WatchLagged`] (default 1024).
    pub watch_buffer: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions { preallocate: 16 << 20, max_batch: 4096, queue: 16384, watch_buffer: 1024 }
    }
}

/// State shared by the store handle, the writer thread and nothing else.
struct Shared {
    index: RwLock<Index>,
    events: broadcast::Sender<Arc<Vec<Event>>>,
}

/// The default, durable, on-disk backend. See the [module docs](self).
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
    writer: std::thread::JoinHandle<()>,
}

impl EmbeddedStore {
    /// Opens the store in `dir` (created if missing) with default options, recovering
    /// everything acknowledged before the last shutdown or crash.
    pub async fn open(dir: &Path) -> Result<EmbeddedStore> {
        Self::open_with(dir, EmbeddedOptions::default()).await
    }

    /// Opens the store in `dir` with `options`.
    ///
    /// Fails with [`Error::UnsupportedFormat`] for another on-disk format version,
    /// [`Error::Corrupt`] for damage recovery cannot repair, and [`Error::Unavailable`] when
    /// another process has the directory open.
    pub async fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedStore> {
        let path = dir.to_path_buf();
        let preallocate = options.preallocate;
        let recovered = tokio::task::spawn_blocking(move || files::open(&path, preallocate))
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))??;
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let shared = Arc::new(Shared { index: RwLock::new(recovered.index), events });
        let (requests, rx) = mpsc::channel(options.queue.max(1));
        let writer = Writer {
            shared: Arc::clone(&shared),
            dir: recovered.dir,
            log: recovered.log,
            max_batch: options.max_batch.max(1),
            failed: None,
            snapshot: None,
        };
        let writer = std::thread::Builder::new()
            .name("rkube-store-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(EmbeddedStore { shared, requests, writer })
    }

    /// Finishes queued writes, closes the files and releases the directory lock. Dropping
    /// the store does the same in the background; `close` waits for it, so the directory can
    /// be reopened right after.
    pub async fn close(self) {
        let EmbeddedStore { shared, requests, writer } = self;
        drop(requests);
        drop(shared);
        // The writer exits once the queue is closed and drained; a panic there was already
        // reported by the panic hook and leaves nothing more to clean up.
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }

    /// Creates a store directory at `dir` (which must not exist) holding exactly `entries`
    /// (sorted by key, each with its original revisions) as the state at `revision`, for
    /// snapshot restore; history before `revision` is compacted away.
    pub fn create_restored(dir: &Path, revision: Revision, entries: &[Entry]) -> Result<()> {
        files::create_restored(dir, revision.0, entries)
    }

    /// Locks an existing store directory against other processes for as long as the
    /// returned file lives; [`Error::Unavailable`] if a running store has it open.
    pub fn lock_dir(dir: &Path) -> Result<std::fs::File> {
        files::lock_existing(dir)
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.shared.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let closed = || Error::Unavailable("the store's writer has stopped".into());
        self.requests.send(make(tx)).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>> {
        Ok(self.index().get(key))
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.index().list(prefix, &options)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        check_size(&value)?;
        self.call(|reply| Request::Create { key: key.to_string(), value, reply }).await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        check_size(&value)?;
        self.call(|reply| Request::Update { key: key.to_string(), value, expected, reply }).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted> {
        self.call(|reply| Request::Delete { key: key.to_string(), expected, reply }).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let (replay, receiver) = {
            let index = self.index();
            if after.0 < index.compacted() {
                return Err(Error::Compacted {
                    requested: after,
                    oldest: Revision(index.compacted()),
                });
            }
            (index.events_after(prefix, after.0), self.shared.events.subscribe())
        };
        let live = Live { receiver, prefix: prefix.to_string(), after: after.0, queue: Vec::new() };
        let live = stream::unfold(Some(live), |live| async move {
            let mut live = live?;
            let item = live.next().await?;
            let keep_going = item.is_ok();
            Some((item, keep_going.then_some(live)))
        });
        Ok(stream::iter(replay.into_iter().map(Ok)).chain(live).boxed())
    }

    async fn compact(&self, up_to: Revision) -> Result<()> {
        self.call(|reply| Request::Compact { up_to, reply }).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(Revision(self.index().current()))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(Revision(self.index().compacted()))
    }
}

/// Refuses values the log cannot frame.
fn check_size(value: &Bytes) -> Result<()> {
    if value.len() > writer::MAX_VALUE_BYTES {
        let message = format!("value of {} bytes exceeds {}", value.len(), writer::MAX_VALUE_BYTES);
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, message).into());
    }
    Ok(())
}

/// The live half of a watch: broadcast batches filtered to one prefix.
struct Live {
    receiver: broadcast::Receiver<Arc<Vec<Event>>>,
    prefix: String,
    after: i64,
    /// Matching events of the current batch, reversed (popped from the end).
    queue: Vec<Event>,
}

impl Live {
    /// The next matching event; `None` when the store is gone, `Err` (last) when lagging.
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.queue.pop() {
                return Some(Ok(event));
            }
            match self.receiver.recv().await {
                Ok(batch) => {
                    let matching = batch.iter().rev().filter(|e| {
                        e.entry.key.starts_with(&self.prefix) && e.revision().0 > self.after
                    });
                    self.queue.extend(matching.cloned());
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(Err(Error::WatchLagged))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
