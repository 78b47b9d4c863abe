//! The periodic compactor, on the embedded store (the etcd backend shares the code path).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rkube_store::compactor::{Compactor, Config};
use rkube_store::{Deleted, Entry, Error, ListOptions, Page, Result, Revision, Store, WatchStream};
use tokio_util::sync::CancellationToken;

use crate::fresh;

/// Waits (bounded) until the store's compacted revision reaches `at_least`.
async fn wait_compacted(store: &dyn Store, at_least: Revision) -> Revision {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let compacted = store.compacted_revision().await.unwrap();
        if compacted >= at_least {
            return compacted;
        }
        assert!(tokio::time::Instant::now() < deadline, "compacted only to {compacted}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until(f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "condition not reached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_one_interval_of_history_and_compacts_again() {
    let t = fresh().await;
    let store: Arc<dyn Store> = Arc::new(t.store);
    let r1 = store.create("/c/a", Bytes::from_static(b"1")).await.unwrap();
    let config = Config { interval: Duration::from_millis(150), retry: Duration::from_millis(10) };
    let compactor = Compactor::new(config, Arc::clone(&store));
    let stats = compactor.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(compactor.run(shutdown.clone()));

    let first = wait_compacted(&*store, r1).await;
    assert!(first <= store.current_revision().await.unwrap());
    // Later writes are compacted by later ticks: one failure or success never ends the loop.
    let mut last = first;
    for i in 0..3 {
        let r = store.create(&format!("/c/{i}"), Bytes::from_static(b"x")).await.unwrap();
        last = wait_compacted(&*store, r).await;
    }
    assert!(last > first);
    wait_until(|| stats.compactions.load(Ordering::Relaxed) >= 4).await;
    assert_eq!(&store.get("/c/a").await.unwrap().unwrap().value[..], b"1", "latest state kept");
    shutdown.cancel();
    task.await.unwrap();
}

/// Delegates to a real store but fails the first `fail` compactions.
struct Flaky {
    inner: Arc<dyn Store>,
    fail: AtomicU32,
}

#[async_trait::async_trait]
impl Store for Flaky {
    async fn get(&self, key: &str) -> Result<Option<Entry>> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.inner.list(prefix, options).await
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        self.inner.create(key, value).await
    }
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        self.inner.update(key, value, expected).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, up_to: Revision) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Unavailable("injected compaction failure".into()));
        }
        self.inner.compact(up_to).await
    }
    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }
    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_compactions_are_retried_and_counted() {
    let t = fresh().await;
    let inner: Arc<dyn Store> = Arc::new(t.store);
    let store: Arc<dyn Store> = Arc::new(Flaky { inner, fail: AtomicU32::new(3) });
    let r1 = store.create("/f/a", Bytes::from_static(b"1")).await.unwrap();
    let config = Config { interval: Duration::from_millis(300), retry: Duration::from_millis(20) };
    let compactor = Compactor::new(config, Arc::clone(&store));
    let stats = compactor.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(compactor.run(shutdown.clone()));
    wait_compacted(&*store, r1).await;
    // The counter is bumped just after the store call returns.
    wait_until(|| stats.compactions.load(Ordering::Relaxed) >= 1).await;
    assert_eq!(stats.failures.load(Ordering::Relaxed), 3);
    shutdown.cancel();
    task.await.unwrap();
}

/// Bytes the files of `dir` take on disk (allocated blocks, so preallocated log space counts).
fn disk_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// The store stays bounded by compaction alone, with no restart and no offline vacuum (the
/// k3s/kine failure where the database grew to hundreds of GB): 200,000 updates over 100 keys,
/// then a compaction, and the files take at most twice what they took after the first pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_200k_updates_and_a_compaction_the_files_take_at_most_twice_the_first_pass() {
    const KEYS: usize = 100;
    const UPDATES: usize = 200_000;
    let t = fresh().await;
    let store: Arc<dyn Store> = Arc::new(t.store);
    let value = |i: usize| Bytes::from(format!("{i:0>1000}"));
    let mut revisions = Vec::with_capacity(KEYS);
    for k in 0..KEYS {
        revisions.push(store.create(&format!("/space/{k}"), value(0)).await.unwrap());
    }
    let first_pass = disk_usage(t.dir.path());

    let mut tasks = tokio::task::JoinSet::new();
    for (k, mut rev) in revisions.into_iter().enumerate() {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            for i in 1..=UPDATES / KEYS {
                rev = store.update(&format!("/space/{k}"), value(i), rev).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let grown = disk_usage(t.dir.path());
    assert!(grown > 10 * first_pass, "200,000 updates of 1 KB barely grew the files ({first_pass} -> {grown} bytes)");

    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();
    // The compaction's snapshot is written beside the writer and then deletes the old files.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut now = disk_usage(t.dir.path());
    while now > 2 * first_pass && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = disk_usage(t.dir.path());
    }
    assert!(now <= 2 * first_pass, "after compaction the files take {now} bytes; after the first pass {first_pass}");
    // Nothing of the latest state is lost.
    let page = store.list("/space/", ListOptions::default()).await.unwrap();
    assert_eq!(page.entries.len(), KEYS);
    assert!(page.entries.iter().all(|e| e.value == value(UPDATES / KEYS)));
}
