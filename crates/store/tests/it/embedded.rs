//! Embedded-specific behaviour beyond the shared suite.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use rkube_store::embedded::EmbeddedOptions;
use rkube_store::suite::next_event;
use rkube_store::{EmbeddedStore, Error, Revision, Store};

use crate::{fresh, open, test_options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_distinct_consecutive_revisions() {
    let t = fresh().await;
    let store: Arc<dyn Store> = Arc::new(t.store);
    let mut tasks = Vec::new();
    for w in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..50 {
                let key = format!("/c/{w}/{i}");
                revs.push(store.create(&key, Bytes::from_static(b"v")).await.unwrap());
            }
            // Racing creates of one shared key: exactly one wins per round.
            let shared = store.create("/c/shared", Bytes::from_static(b"v")).await;
            (revs, shared.is_ok())
        }));
    }
    let mut all = BTreeSet::new();
    let mut winners = 0;
    for task in tasks {
        let (revs, won) = task.await.unwrap();
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "one writer's revisions increase");
        all.extend(revs);
        winners += usize::from(won);
    }
    assert_eq!(winners, 1);
    assert_eq!(all.len(), 800);
    let current = store.current_revision().await.unwrap();
    assert_eq!(current, Revision(801));
    let page = store.list("/c/", Default::default()).await.unwrap();
    assert_eq!(page.entries.len(), 801);
}

#[tokio::test]
async fn first_write_is_revision_one() {
    let t = fresh().await;
    assert_eq!(t.current_revision().await.unwrap(), Revision(0));
    assert_eq!(t.compacted_revision().await.unwrap(), Revision(0));
    assert_eq!(t.create("/a", Bytes::new()).await.unwrap(), Revision(1));
}

#[tokio::test]
async fn watch_just_below_the_compacted_revision_is_compacted() {
    let t = fresh().await;
    for i in 0..5 {
        t.create(&format!("/k/{i}"), Bytes::from_static(b"v")).await.unwrap();
    }
    t.compact(Revision(3)).await.unwrap();
    match t.watch("/k/", Revision(2)).await {
        Err(Error::Compacted { requested, oldest }) => {
            assert_eq!((requested, oldest), (Revision(2), Revision(3)));
        }
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(_) => panic!("expected Compacted, got a watch"),
    }
    let mut watch = t.watch("/k/", Revision(3)).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), Revision(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_watcher_ends_with_watch_lagged() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { watch_buffer: 4, ..test_options() };
    let store = EmbeddedStore::open_with(dir.path(), options).await.unwrap();
    let mut slow = store.watch("/", Revision(0)).await.unwrap();
    // Sequential writes: one commit batch each, far more than the buffer holds.
    for i in 0..20 {
        store.create(&format!("/k/{i}"), Bytes::from_static(b"v")).await.unwrap();
    }
    let items: Vec<_> = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut items = Vec::new();
        while let Some(item) = slow.next().await {
            items.push(item);
        }
        items
    })
    .await
    .expect("a lagging watch must end");
    assert!(matches!(items.last(), Some(Err(Error::WatchLagged))), "{items:?}");
    assert!(items.len() < 21);
    // Everything before the error is still in order.
    let revs: Vec<_> = items.iter().filter_map(|i| i.as_ref().ok()).map(|e| e.revision()).collect();
    assert!(revs.windows(2).all(|w| w[0] < w[1]));
    // A watcher keeping up is unaffected.
    let mut fresh_watch = store.watch("/", Revision(0)).await.unwrap();
    for i in 1..=20 {
        assert_eq!(next_event(&mut fresh_watch).await.revision(), Revision(i));
    }
}

#[tokio::test]
async fn watches_end_when_the_store_closes() {
    let t = fresh().await;
    let mut watch = t.store.watch("/", Revision(0)).await.unwrap();
    t.store.close().await;
    let end = tokio::time::timeout(std::time::Duration::from_secs(20), watch.next()).await;
    assert!(end.expect("watch must end").is_none());
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let t = fresh().await;
    match EmbeddedStore::open_with(t.dir.path(), test_options()).await {
        Err(Error::Unavailable(reason)) => assert!(reason.to_string().contains("in use")),
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("two stores opened one directory"),
    }
    t.store.close().await;
    open(t.dir.path()).await.close().await;
}

#[tokio::test]
async fn an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).await.close().await;
    let marker = dir.path().join("FORMAT");
    let text = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(text, format!("rkube-store-embedded {}\n", rkube_store::embedded::FORMAT_VERSION));
    std::fs::write(&marker, "rkube-store-embedded 99\n").unwrap();
    match EmbeddedStore::open_with(dir.path(), test_options()).await {
        Err(Error::UnsupportedFormat { found, supported, .. }) => {
            assert_eq!((found, supported), (99, rkube_store::embedded::FORMAT_VERSION));
        }
        Err(other) => panic!("expected UnsupportedFormat, got {other}"),
        Ok(_) => panic!("opened an unknown format"),
    }
}

/// Watches started while writes stream in see every revision exactly once, in order: the
/// switch from replay to live events neither drops nor repeats one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_started_mid_stream_see_every_revision_once() {
    let dir = tempfile::tempdir().unwrap();
    // Room for every batch even if each write commits alone: unpolled watches must not lag.
    let options = EmbeddedOptions { watch_buffer: 4096, ..test_options() };
    let store = EmbeddedStore::open_with(dir.path(), options).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    const TOTAL: i64 = 2000;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..TOTAL / 4 {
                    store.create(&format!("/m/{w}/{i}"), Bytes::from_static(b"v")).await.unwrap();
                }
            })
        })
        .collect();
    let mut watches = Vec::new();
    while watches.len() < 5 {
        // Start watches at different points of the stream, all replaying from the start.
        let seen = store.current_revision().await.unwrap();
        if seen.0 >= watches.len() as i64 * TOTAL / 6 {
            watches.push(store.watch("/m/", Revision(0)).await.unwrap());
        }
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    for mut watch in watches {
        for rev in 1..=TOTAL {
            assert_eq!(next_event(&mut watch).await.revision(), Revision(rev));
        }
    }
}
