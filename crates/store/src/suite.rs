//! The conformance suite every [`Store`] backend runs.
//!
//! Each case is a `pub async fn(&dyn Store)` that panics on a violation. A case needs a store
//! that nothing else writes to while it runs (it checks that revisions follow each other and
//! compacts), but not an empty one: it writes under its own key prefix and only compares
//! revisions with each other, so the same cases run against a fresh embedded store and
//! against a real etcd that keeps its revision counter.
//!
//! A backend runs them all with [`store_suite!`](crate::store_suite), which generates one
//! `#[tokio::test]` per case from a factory:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use rkube_store::{EmbeddedStore, Store};
//! async fn fresh_store() -> Arc<dyn Store> {
//!     let dir = std::env::temp_dir().join("rkube-suite-example");
//!     Arc::new(EmbeddedStore::open(&dir).await.unwrap())
//! }
//! rkube_store::store_suite!(fresh_store);
//! ```
//!
//! The factory is any `async fn() -> T` where `T` derefs to `dyn Store` (so it can also own
//! a temporary directory or an etcd child process and clean up when dropped).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use std::collections::BTreeMap;

use crate::{Error, Event, EventKind, ListOptions, Revision, Store, WatchStream};

/// Every case, by name, for backends that want to loop instead of using the macro.
pub const CASES: &[&str] = &[
    "revisions_strictly_increase",
    "versions_and_create_revisions",
    "create_conflicts",
    "update_preconditions",
    "delete_preconditions",
    "list_pages",
    "list_at_past_revision",
    "compaction",
    "watch_replay_then_live",
    "watch_delete_events_carry_prev",
    "watch_under_compaction_never_misses_an_event",
];

/// Generates one `#[tokio::test]` per suite case, each with a store from `$make`
/// (an `async fn() -> T` where `T: Deref<Target = dyn Store>`).
#[macro_export]
macro_rules! store_suite {
    ($make:path) => {
        $crate::store_suite!(@cases $make;
            revisions_strictly_increase, versions_and_create_revisions, create_conflicts,
            update_preconditions, delete_preconditions, list_pages, list_at_past_revision,
            compaction, watch_replay_then_live, watch_delete_events_carry_prev,
            watch_under_compaction_never_misses_an_event);
    };
    (@cases $make:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make().await;
                $crate::suite::$case(&*store).await;
            }
        )*
    };
}

/// How long a watch may take to deliver an expected event before the case fails. Generous:
/// it only bounds a hang, it is not a latency assertion.
const WATCH_DEADLINE: Duration = Duration::from_secs(20);

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The next watch item, failing the case if the stream ends or stalls.
pub async fn next_event(stream: &mut WatchStream) -> Event {
    match tokio::time::timeout(WATCH_DEADLINE, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {WATCH_DEADLINE:?}"),
    }
}

/// Every write returns a revision above all earlier ones; the current revision follows.
pub async fn revisions_strictly_increase(store: &dyn Store) {
    let p = "/suite/revisions/";
    let before = store.current_revision().await.unwrap();
    let r1 = store.create(&format!("{p}a"), val("1")).await.unwrap();
    let r2 = store.create(&format!("{p}b"), val("1")).await.unwrap();
    let r3 = store.update(&format!("{p}a"), val("2"), r1).await.unwrap();
    let r4 = store.delete(&format!("{p}b"), None).await.unwrap().revision;
    assert!(before < r1 && r1 < r2 && r2 < r3 && r3 < r4, "{before} {r1} {r2} {r3} {r4}");
    assert_eq!(store.current_revision().await.unwrap(), r4);
    // A failed write changes nothing.
    assert!(store.create(&format!("{p}a"), val("x")).await.is_err());
    assert_eq!(store.current_revision().await.unwrap(), r4);
}

/// create_revision, mod_revision and version as etcd keeps them, across a re-create.
pub async fn versions_and_create_revisions(store: &dyn Store) {
    let key = "/suite/versions/a";
    assert_eq!(store.get(key).await.unwrap(), None);
    let r1 = store.create(key, val("1")).await.unwrap();
    let e = store.get(key).await.unwrap().unwrap();
    assert_eq!((e.key.as_str(), &e.value[..]), (key, &b"1"[..]));
    assert_eq!((e.create_revision, e.mod_revision, e.version), (r1, r1, 1));
    let r2 = store.update(key, val("2"), r1).await.unwrap();
    let r3 = store.update(key, val("3"), r2).await.unwrap();
    let e = store.get(key).await.unwrap().unwrap();
    assert_eq!((e.create_revision, e.mod_revision, e.version), (r1, r3, 3));
    assert_eq!(&e.value[..], b"3");
    store.delete(key, Some(r3)).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), None);
    let r5 = store.create(key, val("again")).await.unwrap();
    let e = store.get(key).await.unwrap().unwrap();
    assert_eq!((e.create_revision, e.mod_revision, e.version), (r5, r5, 1));
}

/// Creating a live key is `AlreadyExists`; creating after a delete works.
pub async fn create_conflicts(store: &dyn Store) {
    let key = "/suite/create/a";
    store.create(key, val("1")).await.unwrap();
    match store.create(key, val("2")).await {
        Err(Error::AlreadyExists { key: k }) => assert_eq!(k, key),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(&store.get(key).await.unwrap().unwrap().value[..], b"1");
    store.delete(key, None).await.unwrap();
    store.create(key, val("3")).await.unwrap();
}

/// Update needs a live key at the expected mod revision.
pub async fn update_preconditions(store: &dyn Store) {
    let key = "/suite/update/a";
    match store.update(key, val("x"), Revision(1)).await {
        Err(Error::NotFound { key: k }) => assert_eq!(k, key),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let r1 = store.create(key, val("1")).await.unwrap();
    let r2 = store.update(key, val("2"), r1).await.unwrap();
    match store.update(key, val("stale"), r1).await {
        Err(Error::Conflict { key: k, expected, found }) => {
            assert_eq!((k.as_str(), expected, found), (key, r1, r2));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(&store.get(key).await.unwrap().unwrap().value[..], b"2");
    store.delete(key, None).await.unwrap();
    assert!(matches!(store.update(key, val("x"), r2).await, Err(Error::NotFound { .. })));
}

/// Delete with and without an expected revision; the answer carries the last value.
pub async fn delete_preconditions(store: &dyn Store) {
    let p = "/suite/delete/";
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    assert!(matches!(store.delete(&a, None).await, Err(Error::NotFound { .. })));
    let ra = store.create(&a, val("va")).await.unwrap();
    let rb = store.create(&b, val("vb")).await.unwrap();

    let deleted = store.delete(&a, None).await.unwrap();
    assert_eq!((deleted.prev.key.as_str(), &deleted.prev.value[..]), (a.as_str(), &b"va"[..]));
    assert_eq!((deleted.prev.mod_revision, deleted.prev.create_revision), (ra, ra));
    assert!(deleted.revision > rb);
    assert_eq!(store.current_revision().await.unwrap(), deleted.revision);
    assert_eq!(store.get(&a).await.unwrap(), None);

    match store.delete(&b, Some(ra)).await {
        Err(Error::Conflict { expected, found, .. }) => assert_eq!((expected, found), (ra, rb)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(store.get(&b).await.unwrap().is_some());
    let deleted = store.delete(&b, Some(rb)).await.unwrap();
    assert_eq!(&deleted.prev.value[..], b"vb");
    assert!(matches!(store.delete(&b, Some(rb)).await, Err(Error::NotFound { .. })));
}

/// Prefix, limit, start_after and remaining, as the API server paginates.
pub async fn list_pages(store: &dyn Store) {
    let p = "/suite/list/pods/";
    for name in ["e", "a", "c", "b", "d"] {
        store.create(&format!("{p}{name}"), val(name)).await.unwrap();
    }
    // Neighbours that a prefix match must exclude.
    store.create("/suite/list/pods", val("x")).await.unwrap();
    store.create("/suite/list/podsx/a", val("x")).await.unwrap();
    let last = store.create("/suite/list/pod/a", val("x")).await.unwrap();

    let all = store.list(p, ListOptions::default()).await.unwrap();
    let keys: Vec<_> = all.entries.iter().map(|e| e.key.trim_start_matches(p)).collect();
    assert_eq!(keys, ["a", "b", "c", "d", "e"]);
    assert_eq!((all.remaining, all.revision), (0, last));

    let options = ListOptions { limit: Some(2), ..Default::default() };
    let page1 = store.list(p, options).await.unwrap();
    let keys: Vec<_> = page1.entries.iter().map(|e| e.key.trim_start_matches(p)).collect();
    assert_eq!((keys, page1.remaining), (vec!["a", "b"], 3));

    let start_after = Some(page1.entries[1].key.clone());
    let options = ListOptions { limit: Some(2), start_after, revision: Some(page1.revision) };
    let page2 = store.list(p, options).await.unwrap();
    let keys: Vec<_> = page2.entries.iter().map(|e| e.key.trim_start_matches(p)).collect();
    assert_eq!((keys, page2.remaining, page2.revision), (vec!["c", "d"], 1, page1.revision));

    let start_after = Some(format!("{p}d"));
    let page3 = store.list(p, ListOptions { start_after, ..Default::default() }).await.unwrap();
    assert_eq!((page3.entries.len(), page3.remaining), (1, 0));
    assert_eq!(&page3.entries[0].value[..], b"e");

    let options = ListOptions { limit: Some(0), ..Default::default() };
    assert_eq!(store.list(p, options).await.unwrap().entries.len(), 5, "limit 0 is no limit");
    let empty = store.list("/suite/list/none/", ListOptions::default()).await.unwrap();
    assert_eq!((empty.entries.len(), empty.remaining), (0, 0));
}

/// A list at a past revision sees the state of then; a future revision is refused.
pub async fn list_at_past_revision(store: &dyn Store) {
    let p = "/suite/history/";
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let ra = store.create(&a, val("a1")).await.unwrap();
    let rb = store.create(&b, val("b1")).await.unwrap();
    store.update(&a, val("a2"), ra).await.unwrap();
    let gone = store.delete(&b, None).await.unwrap().revision;

    let at = |r: Revision| ListOptions { revision: Some(r), ..Default::default() };
    let then = store.list(p, at(rb)).await.unwrap();
    let seen: Vec<_> = then.entries.iter().map(|e| (e.key.as_str(), &e.value[..])).collect();
    assert_eq!(seen, [(a.as_str(), &b"a1"[..]), (b.as_str(), &b"b1"[..])]);
    assert_eq!(then.revision, rb);
    assert_eq!(then.entries[0].mod_revision, ra);
    let early = store.list(p, at(ra)).await.unwrap();
    assert_eq!(early.entries.len(), 1);
    let now = store.list(p, at(gone)).await.unwrap();
    let seen: Vec<_> = now.entries.iter().map(|e| &e.value[..]).collect();
    assert_eq!(seen, [&b"a2"[..]]);

    let future = Revision(gone.0 + 1);
    match store.list(p, at(future)).await {
        Err(Error::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (future, gone));
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
}

/// After compaction, reads and watches below the compacted revision fail; the state at it
/// and everything newer stay.
pub async fn compaction(store: &dyn Store) {
    let p = "/suite/compact/";
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let r1 = store.create(&a, val("1")).await.unwrap();
    let r2 = store.update(&a, val("2"), r1).await.unwrap();
    store.create(&b, val("b")).await.unwrap();
    let r4 = store.delete(&b, None).await.unwrap().revision;
    let r5 = store.update(&a, val("3"), r2).await.unwrap();

    store.compact(r4).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), r4);
    let at = |r: Revision| ListOptions { revision: Some(r), ..Default::default() };
    match store.list(p, at(r2)).await {
        Err(Error::Compacted { requested, oldest }) => assert_eq!((requested, oldest), (r2, r4)),
        other => panic!("expected Compacted, got {other:?}"),
    }
    let kept = store.list(p, at(r4)).await.unwrap();
    let seen: Vec<_> = kept.entries.iter().map(|e| (e.key.as_str(), &e.value[..])).collect();
    assert_eq!(seen, [(a.as_str(), &b"2"[..])]);
    assert_eq!(kept.entries[0].create_revision, r1);
    let latest = store.get(&a).await.unwrap().unwrap();
    assert_eq!((latest.mod_revision, latest.version), (r5, 3));

    match store.watch(p, Revision(r4.0 - 1)).await {
        Err(Error::Compacted { oldest, .. }) => assert_eq!(oldest, r4),
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(_) => panic!("expected Compacted, got a watch"),
    }
    let mut watch = store.watch(p, r4).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!((event.revision(), event.prev.map(|p| p.mod_revision)), (r5, Some(r2)));

    // Compacting again at or below is harmless; beyond the current revision is refused.
    store.compact(r4).await.unwrap();
    let future = Revision(r5.0 + 1);
    assert!(matches!(store.compact(future).await, Err(Error::FutureRevision { .. })));
    assert_eq!(store.compacted_revision().await.unwrap(), r4);
}

/// Replay of history after a revision, then live events, in order, filtered by prefix.
pub async fn watch_replay_then_live(store: &dyn Store) {
    let p = "/suite/watch/";
    let start = store.current_revision().await.unwrap();
    let r1 = store.create(&format!("{p}a"), val("a1")).await.unwrap();
    store.create("/suite/other/a", val("no")).await.unwrap();
    let r3 = store.create(&format!("{p}b"), val("b1")).await.unwrap();
    let r4 = store.update(&format!("{p}a"), val("a2"), r1).await.unwrap();

    let mut from_start = store.watch(p, start).await.unwrap();
    let mut from_r3 = store.watch(p, r3).await.unwrap();
    let mut live_only = store.watch(p, r4).await.unwrap();
    for (kind, rev, prev) in [(EventKind::Put, r1, None), (EventKind::Put, r3, None)] {
        let e = next_event(&mut from_start).await;
        assert_eq!((e.kind, e.revision(), e.prev.map(|p| p.mod_revision)), (kind, rev, prev));
    }
    let e = next_event(&mut from_start).await;
    assert_eq!((e.revision(), &e.entry.value[..], e.entry.version), (r4, &b"a2"[..], 2));
    assert_eq!(e.prev.map(|p| (p.mod_revision, p.value)), Some((r1, val("a1"))));
    assert_eq!(next_event(&mut from_r3).await.revision(), r4);

    // Live: writes after the watches started, mixed with other prefixes.
    let mut written = Vec::new();
    for i in 0..20 {
        store.create(&format!("/suite/other/{i}"), val("no")).await.unwrap();
        written.push(store.create(&format!("{p}live{i:02}"), val("x")).await.unwrap());
    }
    for stream in [&mut from_start, &mut from_r3, &mut live_only] {
        for (i, rev) in written.iter().enumerate() {
            let e = next_event(stream).await;
            assert_eq!((e.revision(), e.entry.key.clone()), (*rev, format!("{p}live{i:02}")));
            assert_eq!(
                (e.kind, e.entry.create_revision, e.entry.version),
                (EventKind::Put, *rev, 1)
            );
        }
    }
}

/// Delete events carry the last value, the delete's revision and the previous entry.
pub async fn watch_delete_events_carry_prev(store: &dyn Store) {
    let p = "/suite/watchdel/";
    let key = format!("{p}a");
    let r1 = store.create(&key, val("v1")).await.unwrap();
    let r2 = store.update(&key, val("v2"), r1).await.unwrap();
    let mut live = store.watch(p, r2).await.unwrap();
    let deleted = store.delete(&key, None).await.unwrap();

    let mut replay = store.watch(p, r1).await.unwrap();
    assert_eq!(next_event(&mut replay).await.revision(), r2);
    for stream in [&mut live, &mut replay] {
        let e = next_event(stream).await;
        assert_eq!(e.kind, EventKind::Delete);
        assert_eq!((e.entry.key.as_str(), &e.entry.value[..]), (key.as_str(), &b"v2"[..]));
        assert_eq!(e.revision(), deleted.revision);
        let prev = e.prev.expect("delete event without prev");
        assert_eq!((prev.mod_revision, prev.create_revision, prev.version), (r2, r1, 2));
        assert_eq!(&prev.value[..], b"v2");
    }
}

/// A watcher that follows a prefix while keys are created and deleted and history is
/// compacted under it ends with exactly the live set: each event applies in order, and a
/// `Compacted` (or lag) error is followed by a relist, never by a silent gap (kine#220).
pub async fn watch_under_compaction_never_misses_an_event(store: &dyn Store) {
    let p = "/suite/churn/";
    const KEYS: usize = 300;
    // The watcher starts from before the first compaction, so it must go through a relist.
    let start = store.current_revision().await.unwrap();
    let compacted_once = tokio::sync::Notify::new();
    let writer = async {
        let mut live = Vec::new();
        for i in 0..KEYS {
            let key = format!("{p}{i:04}");
            live.push(store.create(&key, val("v")).await.unwrap());
            if i % 3 == 0 {
                store.delete(&format!("{p}{:04}", i / 2), None).await.ok();
            }
            if i % 25 == 0 {
                let at = store.current_revision().await.unwrap();
                store.compact(at).await.unwrap();
                compacted_once.notify_one();
            }
        }
        store.create(&format!("{p}zz-done"), val("done")).await.unwrap()
    };
    let watcher = async {
        let mut seen: BTreeMap<String, Revision> = BTreeMap::new();
        compacted_once.notified().await;
        let (mut relists, mut rev) = (0, start);
        loop {
            let mut stream = match store.watch(p, rev).await {
                Ok(s) => s,
                Err(Error::Compacted { .. }) => {
                    relists += 1;
                    rev = relist(store, p, &mut seen).await;
                    continue;
                }
                Err(e) => panic!("watch failed: {e}"),
            };
            loop {
                let item = tokio::time::timeout(WATCH_DEADLINE, stream.next()).await;
                match item.expect("watch stalled").expect("watch ended") {
                    Ok(e) => {
                        assert!(e.revision() > rev, "event {} not after {rev}", e.revision());
                        rev = e.revision();
                        match e.kind {
                            EventKind::Put => seen.insert(e.entry.key.clone(), e.revision()),
                            EventKind::Delete => seen.remove(&e.entry.key),
                        };
                        if e.entry.key.ends_with("zz-done") {
                            return (seen, relists);
                        }
                    }
                    Err(Error::Compacted { .. } | Error::WatchLagged) => {
                        relists += 1;
                        rev = relist(store, p, &mut seen).await;
                        break;
                    }
                    Err(e) => panic!("watch failed: {e}"),
                }
            }
            if seen.keys().any(|k| k.ends_with("zz-done")) {
                return (seen, relists);
            }
        }
    };
    let (done, (seen, relists)) = tokio::join!(writer, watcher);
    assert!(relists >= 1, "the watcher never had to relist");
    let list = store.list(p, ListOptions { revision: Some(done), ..Default::default() });
    let want: BTreeMap<String, Revision> =
        list.await.unwrap().entries.into_iter().map(|e| (e.key, e.mod_revision)).collect();
    assert_eq!(seen, want, "the watcher's view differs from the store");
}

/// Replaces `seen` with a fresh list; returns the list's revision.
async fn relist(store: &dyn Store, prefix: &str, seen: &mut BTreeMap<String, Revision>) -> Revision {
    let page = store.list(prefix, ListOptions::default()).await.unwrap();
    *seen = page.entries.into_iter().map(|e| (e.key, e.mod_revision)).collect();
    page.revision
}
