//! Watches over etcd.
//!
//! Each [`Store::watch`](crate::Store::watch) runs one task that owns one etcd watch and
//! feeds a bounded channel. The task keeps a cursor: the revision up to which the consumer
//! has seen every event (the last delivered event, or a progress notification's revision).
//!
//! The etcd watch starts AT the cursor, not after it, and events at the cursor are skipped:
//! etcd refuses a start revision below its compacted revision, so starting at the cursor
//! makes etcd itself check the trait's rule "`Compacted` if `after` is below the compacted
//! revision" with no race against a concurrent compaction.
//!
//! When the stream breaks for a transport reason (member killed, leader lost: the client
//! sets `require_leader`), the task opens a new etcd watch from the cursor on whichever
//! member answers, so the consumer sees every event once and in order. If history up to
//! the cursor was compacted meanwhile, the consumer gets [`Error::Compacted`] as the last
//! item and must relist: it never silently misses an event (the failure kine had, kine#220).

use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchResponse};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{prefix_end, to_entry, EtcdStore};
use crate::{Entry, Error, Event, EventKind, Result, Revision, WatchStream};

/// Events buffered per watch before the task waits for its consumer.
const CHANNEL: usize = 1024;
/// Longest the task keeps retrying to re-open a broken watch before giving up.
const RESUME_LIMIT: Duration = Duration::from_secs(60);

/// Opens the watch; fails at once if `after` is compacted or etcd is unreachable.
pub(super) async fn start(store: EtcdStore, prefix: String, after: Revision) -> Result<WatchStream> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let first = open(&store, &prefix, after).await?;
    tokio::spawn(run(store, prefix, after, first, tx));
    Ok(ReceiverStream::new(rx).boxed())
}

type EtcdWatch = etcd_client::WatchStream;

/// Opens an etcd watch that will deliver every event after `cursor` under `prefix`.
async fn open(store: &EtcdStore, prefix: &str, cursor: Revision) -> Result<EtcdWatch> {
    let options = WatchOptions::new()
        .with_range(prefix_end(prefix.as_bytes()))
        .with_start_revision(cursor.0.max(1))
        .with_prev_key()
        .with_progress_notify();
    let key = if prefix.is_empty() { vec![0] } else { prefix.as_bytes().to_vec() };
    if cursor.0 > 0 {
        check_not_compacted(store, &key, cursor).await?;
    }
    let mut watch = store
        .retry("watch", |c, _| {
            let (key, options) = (key.clone(), options.clone());
            async move { c.watch_client().watch(key, Some(options)).await }
        })
        .await?;
    // The first answer says whether etcd accepted the watch.
    let created = tokio::time::timeout(Duration::from_secs(10), watch.message()).await;
    match created {
        Ok(Ok(Some(response))) if response.canceled() => Err(canceled(&response, cursor)),
        Ok(Ok(Some(response))) if response.created() => Ok(watch),
        Ok(Ok(Some(_))) => Err(Error::Unavailable("etcd watch did not start".into())),
        Ok(Ok(None)) => Err(Error::Unavailable("etcd closed the watch".into())),
        Ok(Err(e)) => Err(store.map_error(e)),
        Err(_) => Err(Error::Unavailable("etcd did not confirm the watch".into())),
    }
}

/// Fails with `Compacted` if history at `cursor` is gone. etcd would accept a watch from
/// the compacted revision itself and report a compaction below it only after confirming
/// the watch, so a read at the cursor answers first. (A compaction racing with this check
/// reaches the consumer as a `Compacted` item instead.)
async fn check_not_compacted(store: &EtcdStore, key: &[u8], cursor: Revision) -> Result<()> {
    let read = store
        .retry("watch", |mut c, _| {
            let key = key.to_vec();
            async move {
                let options = GetOptions::new().with_count_only().with_revision(cursor.0);
                c.get(key, Some(options)).await
            }
        })
        .await;
    match read {
        Ok(_) => Ok(()),
        Err(e) => match store.revision_error(e, cursor).await {
            e @ Error::Compacted { .. } => Err(e),
            // A cursor ahead of etcd: the watch waits for it.
            Error::FutureRevision { .. } => Ok(()),
            e => Err(e),
        },
    }
}

/// Why etcd cancelled a watch: compaction (with the compacted revision) or anything else.
fn canceled(response: &WatchResponse, cursor: Revision) -> Error {
    if response.compact_revision() > 0 {
        return Error::Compacted { requested: cursor, oldest: Revision(response.compact_revision()) };
    }
    Error::Unavailable(format!("etcd cancelled the watch: {}", response.cancel_reason()).into())
}

/// The watch task: forwards events, resumes on transport errors, ends on compaction.
async fn run(
    store: EtcdStore,
    prefix: String,
    mut cursor: Revision,
    first: EtcdWatch,
    tx: mpsc::Sender<Result<Event>>,
) {
    let mut watch = Some(first);
    loop {
        let mut current = match watch.take() {
            Some(w) => w,
            None => match resume(&store, &prefix, cursor, &tx).await {
                Some(w) => w,
                None => return,
            },
        };
        loop {
            let message = tokio::select! {
                m = current.message() => m,
                // The consumer dropped the stream: stop (dropping the etcd watch cancels it).
                _ = tx.closed() => return,
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) | Err(_) => break, // broken stream: resume from the cursor
            };
            if response.canceled() {
                let error = canceled(&response, cursor);
                if matches!(error, Error::Compacted { .. }) {
                    let _ = tx.send(Err(error)).await;
                    return;
                }
                tracing::debug!(prefix, error = %error, "etcd cancelled a watch; resuming");
                break;
            }
            if response.events().is_empty() {
                // A progress notification: every event up to its revision was delivered.
                if let Some(h) = response.header() {
                    cursor = cursor.max(Revision(h.revision()));
                }
                continue;
            }
            for event in response.events() {
                let Some(event) = convert(event) else { continue };
                if event.revision() <= cursor {
                    continue;
                }
                let revision = event.revision();
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
                cursor = revision;
            }
        }
    }
}

/// Re-opens the watch after a break, with backoff; `None` (after telling the consumer)
/// when history is compacted or etcd stays away longer than [`RESUME_LIMIT`].
async fn resume(
    store: &EtcdStore,
    prefix: &str,
    cursor: Revision,
    tx: &mpsc::Sender<Result<Event>>,
) -> Option<EtcdWatch> {
    let deadline = tokio::time::Instant::now() + RESUME_LIMIT;
    let mut backoff = Duration::from_millis(50);
    loop {
        if tx.is_closed() {
            return None;
        }
        match open(store, prefix, cursor).await {
            Ok(watch) => return Some(watch),
            Err(e @ Error::Compacted { .. }) => {
                let _ = tx.send(Err(e)).await;
                return None;
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(prefix, error = %e, "etcd watch could not be resumed");
                let _ = tx.send(Err(e)).await;
                return None;
            }
            Err(e) => {
                tracing::debug!(prefix, error = %e, "etcd watch broke; resuming");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// An etcd event as the trait's [`Event`]: a delete carries the last value, with the
/// delete's revision as `mod_revision`.
fn convert(event: &etcd_client::Event) -> Option<Event> {
    let kv = event.kv()?;
    let prev = event.prev_kv().map(to_entry);
    match event.event_type() {
        EventType::Put => Some(Event { kind: EventKind::Put, entry: to_entry(kv), prev }),
        EventType::Delete => {
            let mut entry = prev.clone().unwrap_or_else(|| Entry {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: Default::default(),
                create_revision: Revision(0),
                mod_revision: Revision(0),
                version: 0,
            });
            entry.mod_revision = Revision(kv.mod_revision());
            Some(Event { kind: EventKind::Delete, entry, prev })
        }
    }
}

/// The compacted revision, from a HashKV answer (etcd has no cheaper read of it; 0 if never
/// compacted). HashKV hashes the keyspace, so this is for tests and error paths only.
pub(super) async fn probe_compacted(store: &EtcdStore) -> Result<Revision> {
    let response = store
        .retry("hash_kv", |mut c, _| async move { c.hash_kv(0).await })
        .await?;
    Ok(Revision(response.compact_version()))
}
