//! The single writer: group commit of every queued write with one `fdatasync` per batch.
//!
//! The writer runs on its own OS thread (all its work is blocking file I/O). It takes the
//! first queued request, drains whatever else is queued (up to `max_batch`), checks each
//! write's precondition against the index plus the earlier writes of the same batch, assigns
//! consecutive revisions, appends ONE frame and syncs it, and only then applies the batch
//! to the index, broadcasts its events and answers the callers. While it syncs, new requests
//! queue up and form the next batch, so the sync rate never caps the write rate.
//!
//! After a failed write or sync the file position and the kernel's page state are unknown
//! (see the PostgreSQL "fsyncgate" discussion), so the writer refuses every later write;
//! reads keep working and a restart recovers from the log. A full disk is the exception: it
//! shows when the log grows its preallocated space, before any byte of a frame is written,
//! so that batch fails with [`Error::NoSpace`] and writes resume once space returns.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::files::{self, AppendError, DataDir, LogFile};
use super::index::Op;
use super::{log, Shared};
use crate::{Deleted, Error, Result, Revision};

/// A request to the writer.
pub(crate) enum Request {
    Create {
        key: String,
        value: Bytes,
        reply: oneshot::Sender<Result<Revision>>,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
        reply: oneshot::Sender<Result<Revision>>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
        reply: oneshot::Sender<Result<Deleted>>,
    },
    Compact {
        up_to: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Request {
    /// Roughly the bytes this request adds to a log frame.
    fn size(&self) -> usize {
        match self {
            Request::Create { key, value, .. } | Request::Update { key, value, .. } => {
                key.len() + value.len() + 17
            }
            Request::Delete { key, .. } => key.len() + 13,
            Request::Compact { .. } => 0,
        }
    }
}

/// A batch stops taking more writes past this many bytes, which keeps frames (and their
/// 32-bit length) bounded whatever the value sizes.
const MAX_BATCH_BYTES: usize = 16 << 20;

/// Largest value accepted; far above what the API server stores (etcd's default request
/// limit is 1.5 MiB), and low enough that a frame's 32-bit length never overflows.
pub(crate) const MAX_VALUE_BYTES: usize = 512 << 20;

/// How a write accepted into a batch is answered once the batch is durable.
enum Reply {
    Revision(oneshot::Sender<Result<Revision>>),
    Deleted(oneshot::Sender<Result<Deleted>>),
}

impl Reply {
    fn fail(self, error: Error) {
        // A caller that went away no longer needs its answer.
        let _ = match self {
            Reply::Revision(tx) => tx.send(Err(error)).is_ok(),
            Reply::Deleted(tx) => tx.send(Err(error)).is_ok(),
        };
    }
}

pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub dir: DataDir,
    pub log: LogFile,
    pub max_batch: usize,
    /// Set after an I/O failure: the reason every later write is refused.
    pub failed: Option<String>,
    /// The thread writing the latest compaction's snapshot.
    pub snapshot: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Serves requests until every sender is gone.
    pub fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut frame = Vec::new();
        while let Some(first) = requests.blocking_recv() {
            let mut bytes = first.size();
            batch.push(first);
            while batch.len() < self.max_batch && bytes < MAX_BATCH_BYTES {
                match requests.try_recv() {
                    Ok(request) => {
                        bytes += request.size();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            let mut writes = Vec::with_capacity(batch.len());
            for request in batch.drain(..) {
                match Write::of(request) {
                    Ok(write) => writes.push(write),
                    Err((up_to, reply)) => {
                        self.commit(std::mem::take(&mut writes), &mut frame);
                        let _ = reply.send(self.compact(up_to));
                    }
                }
            }
            self.commit(writes, &mut frame);
        }
        self.finish_snapshot();
    }

    fn unavailable(&self) -> Option<Error> {
        let reason = self.failed.as_ref()?;
        Some(Error::Unavailable(format!("writes disabled after an I/O error: {reason}").into()))
    }

    /// Checks, persists and applies one batch of writes.
    fn commit(&mut self, writes: Vec<Write>, frame: &mut Vec<u8>) {
        if writes.is_empty() {
            return;
        }
        let (ops, replies) = self.plan(writes);
        if ops.is_empty() {
            return;
        }
        frame.clear();
        log::encode_frame(&ops, frame);
        match self.log.append(frame) {
            Ok(()) => {}
            Err(AppendError::NoSpace(e)) => {
                tracing::warn!(error = %e, writes = replies.len(), "datastore disk full: writes refused until space returns");
                for reply in replies {
                    reply.fail(Error::NoSpace(io::Error::new(e.kind(), e.to_string())));
                }
                return;
            }
            Err(AppendError::Io(e)) => {
                self.failed = Some(e.to_string());
                for reply in replies {
                    reply.fail(io::Error::new(e.kind(), e.to_string()).into());
                }
                return;
            }
        }
        let events = {
            let mut index = self.shared.index.write().unwrap_or_else(PoisonError::into_inner);
            let mut events = Vec::with_capacity(ops.len());
            for op in ops {
                match index.apply(op) {
                    Ok(event) => events.push(event),
                    // Unreachable: `plan` checked every precondition under this writer.
                    Err(reason) => self.failed = Some(reason),
                }
            }
            let events = Arc::new(events);
            // Sent while the index is locked, so a watch registering under the read lock
            // sees each batch either in its replay or on its receiver, never both or neither.
            let _ = self.shared.events.send(Arc::clone(&events));
            events
        };
        for (reply, event) in replies.into_iter().zip(events.iter()) {
            let revision = event.revision();
            let _ = match reply {
                Reply::Revision(tx) => tx.send(Ok(revision)).is_ok(),
                Reply::Deleted(tx) => match event.prev.clone() {
                    Some(prev) => tx.send(Ok(Deleted { prev, revision })).is_ok(),
                    None => {
                        tx.send(Err(Error::Unavailable("delete lost its value".into()))).is_ok()
                    }
                },
            };
        }
    }

    /// Decides which writes of a batch succeed, in order, and gives them revisions. Failed
    /// preconditions are answered at once; they write nothing.
    fn plan(&self, writes: Vec<Write>) -> (Vec<Op>, Vec<Reply>) {
        let index = self.shared.index.read().unwrap_or_else(PoisonError::into_inner);
        let mut next = index.current() + 1;
        // The live mod revision of keys written earlier in this batch (None: deleted).
        let mut pending: HashMap<String, Option<i64>> = HashMap::new();
        let mut ops = Vec::with_capacity(writes.len());
        let mut replies = Vec::with_capacity(writes.len());
        for Write { key, value, check, reply } in writes {
            let live = match pending.get(&key) {
                Some(live) => *live,
                None => index.live_revision(&key),
            };
            if let Some(error) = self.unavailable().or_else(|| check.verify(&key, live)) {
                reply.fail(error);
                continue;
            }
            pending.insert(key.clone(), value.is_some().then_some(next));
            ops.push(Op { rev: next, key, value });
            replies.push(reply);
            next += 1;
        }
        (ops, replies)
    }

    fn compact(&mut self, up_to: Revision) -> Result<()> {
        if let Some(error) = self.unavailable() {
            return Err(error);
        }
        // One snapshot at a time: it reads the index assuming no compaction runs meanwhile.
        self.finish_snapshot();
        let index = self.shared.index.read().unwrap_or_else(PoisonError::into_inner);
        if up_to.0 > index.current() {
            return Err(Error::FutureRevision {
                requested: up_to,
                current: Revision(index.current()),
            });
        }
        if up_to.0 <= index.compacted() {
            return Ok(());
        }
        drop(index);
        // Writes from here on go to the new log; the snapshot of `at` is written beside them.
        // The new log comes first: if it cannot be made (a full disk), nothing has changed
        // and the compaction fails, to be retried.
        let generation = match self.dir.start_generation(&mut self.log) {
            Ok(generation) => generation,
            Err(e) if matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) => {
                return Err(Error::NoSpace(e));
            }
            Err(e) => {
                self.failed = Some(e.to_string());
                return Err(e.into());
            }
        };
        let at = {
            let mut index = self.shared.index.write().unwrap_or_else(PoisonError::into_inner);
            index.compact(up_to.0);
            index.current()
        };
        let shared = Arc::clone(&self.shared);
        let dir = self.dir.path().to_path_buf();
        let snapshot = std::thread::Builder::new().name("rkube-store-snapshot".into()).spawn(
            move || {
                if let Err(e) = files::write_snapshot(&dir, &shared.index, generation, at) {
                    // Nothing is lost: recovery replays the older snapshot and every log. The
                    // partial snapshot goes, so a full disk gets its space back.
                    let _ = std::fs::remove_file(dir.join(files::SNAP_TMP));
                    tracing::warn!(error = %e, generation, "writing the compaction snapshot failed");
                }
            },
        )?;
        self.snapshot = Some(snapshot);
        Ok(())
    }

    /// Waits for the background snapshot, if one is being written.
    pub fn finish_snapshot(&mut self) {
        if let Some(snapshot) = self.snapshot.take() {
            // A panic there was reported by the panic hook; the logs still hold everything.
            let _ = snapshot.join();
        }
    }
}

/// The precondition of a write.
enum Check {
    /// Create: the key must not be live.
    Absent,
    /// Update/delete: the key must be live, at this mod revision if one is given.
    At(Option<Revision>),
}

impl Check {
    fn verify(&self, key: &str, live: Option<i64>) -> Option<Error> {
        match (self, live) {
            (Check::Absent, None) => None,
            (Check::Absent, Some(_)) => Some(Error::AlreadyExists { key: key.to_string() }),
            (Check::At(_), None) => Some(Error::NotFound { key: key.to_string() }),
            (Check::At(Some(expected)), Some(found)) if expected.0 != found => {
                Some(Error::Conflict {
                    key: key.to_string(),
                    expected: *expected,
                    found: Revision(found),
                })
            }
            (Check::At(_), Some(_)) => None,
        }
    }
}

/// One write of a batch, split into its parts.
struct Write {
    key: String,
    /// `None` deletes.
    value: Option<Bytes>,
    check: Check,
    reply: Reply,
}

impl Write {
    /// The write a request asks for, or the compaction it asks for.
    #[allow(clippy::type_complexity)] // a one-off split, clearer inline than as an alias
    fn of(request: Request) -> Result<Write, (Revision, oneshot::Sender<Result<()>>)> {
        Ok(match request {
            Request::Create { key, value, reply } => Write {
                key,
                value: Some(value),
                check: Check::Absent,
                reply: Reply::Revision(reply),
            },
            Request::Update { key, value, expected, reply } => Write {
                key,
                value: Some(value),
                check: Check::At(Some(expected)),
                reply: Reply::Revision(reply),
            },
            Request::Delete { key, expected, reply } => {
                Write { key, value: None, check: Check::At(expected), reply: Reply::Deleted(reply) }
            }
            Request::Compact { up_to, reply } => return Err((up_to, reply)),
        })
    }
}
