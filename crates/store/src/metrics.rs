//! Store metrics: a [`Store`] wrapper that times every call and counts open watches, and the
//! Prometheus text for them, with kube-apiserver's metric names where they exist
//! (`etcd_request_duration_seconds{operation,type}`, `apiserver_storage_size_bytes`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Deleted, Entry, ListOptions, Page, Result, Revision, Store, WatchStream};

/// Upper bounds of the latency buckets, in seconds (kube-apiserver's etcd buckets).
const BUCKETS: [f64; 15] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0];
const OPERATIONS: [&str; 8] =
    ["get", "list", "create", "update", "delete", "watch", "compact", "current_revision"];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_micros: AtomicU64,
}

/// Counters shared by a [`MeteredStore`] and whoever renders them.
#[derive(Default)]
pub struct Metrics {
    latency: [Histogram; OPERATIONS.len()],
    errors: [AtomicU64; OPERATIONS.len()],
    watchers: AtomicI64,
}

impl Metrics {
    fn observe(&self, op: usize, seconds: f64, ok: bool) {
        let h = &self.latency[op];
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        if !ok {
            self.errors[op].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Open watches right now.
    pub fn watchers(&self) -> i64 {
        self.watchers.load(Ordering::Relaxed)
    }

    /// Appends the Prometheus text exposition of these metrics; `resource_type` labels them
    /// (upstream labels by resource; this wrapper sits below the registry, so by backend).
    pub fn render(&self, out: &mut String, resource_type: &str) {
        let name = "etcd_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Etcd request latency in seconds for each operation and object type.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (op, h) in OPERATIONS.iter().zip(&self.latency) {
            let labels = format!("operation=\"{op}\",type=\"{resource_type}\"");
            for (bound, count) in BUCKETS.iter().zip(&h.buckets) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {}", count.load(Ordering::Relaxed));
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        }
        let name = "etcd_request_errors_total";
        let _ = writeln!(out, "# HELP {name} Etcd failed request counts for each operation and object type.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (op, errors) in OPERATIONS.iter().zip(&self.errors) {
            let _ = writeln!(out, "{name}{{operation=\"{op}\",type=\"{resource_type}\"}} {}", errors.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP rkube_store_watchers Open datastore watches.");
        let _ = writeln!(out, "# TYPE rkube_store_watchers gauge");
        let _ = writeln!(out, "rkube_store_watchers {}", self.watchers());
    }
}

/// Wraps a store and records every call in [`Metrics`].
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>) -> MeteredStore {
        MeteredStore { inner, metrics: Arc::default() }
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    async fn timed<T>(&self, op: usize, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        // Latency is wall time by nature; tokio's clock keeps it simulable.
        let started = tokio::time::Instant::now();
        let result = call.await;
        self.metrics.observe(op, started.elapsed().as_secs_f64(), result.is_ok());
        result
    }
}

/// Decrements the watcher gauge when the watch stream is dropped.
struct WatchGuard(Arc<Metrics>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl Store for MeteredStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>> {
        self.timed(0, self.inner.get(key)).await
    }
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.timed(1, self.inner.list(prefix, options)).await
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        self.timed(2, self.inner.create(key, value)).await
    }
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        self.timed(3, self.inner.update(key, value, expected)).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted> {
        self.timed(4, self.inner.delete(key, expected)).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let stream = self.timed(5, self.inner.watch(prefix, after)).await?;
        self.metrics.watchers.fetch_add(1, Ordering::Relaxed);
        let guard = WatchGuard(Arc::clone(&self.metrics));
        Ok(stream
            .map(move |item| {
                let _alive = &guard;
                item
            })
            .boxed())
    }
    async fn compact(&self, up_to: Revision) -> Result<()> {
        self.timed(6, self.inner.compact(up_to)).await
    }
    async fn current_revision(&self) -> Result<Revision> {
        self.timed(7, self.inner.current_revision()).await
    }
    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbeddedStore;

    #[tokio::test]
    async fn counts_calls_errors_and_watchers() {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::EmbeddedOptions { preallocate: 64 << 10, ..Default::default() };
        let inner: Arc<dyn Store> = Arc::new(EmbeddedStore::open_with(dir.path(), options).await.unwrap());
        let store = MeteredStore::new(inner);
        let metrics = store.metrics();
        store.create("/a", Bytes::from_static(b"1")).await.unwrap();
        assert!(store.create("/a", Bytes::from_static(b"1")).await.is_err());
        let watch = store.watch("/", Revision(0)).await.unwrap();
        assert_eq!(metrics.watchers(), 1);
        drop(watch);
        assert_eq!(metrics.watchers(), 0);
        let mut text = String::new();
        metrics.render(&mut text, "embedded");
        assert!(text.contains("etcd_request_duration_seconds_count{operation=\"create\",type=\"embedded\"} 2"), "{text}");
        assert!(text.contains("etcd_request_errors_total{operation=\"create\",type=\"embedded\"} 1"));
        assert!(text.contains("rkube_store_watchers 0"));
    }
}
