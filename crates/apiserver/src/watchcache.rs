//! One watch cache per resource: a single store watch keeps an in-memory copy of every
//! object and a window of recent events, from which lists and watches are served, however
//! many clients watch (kube-apiserver's cacher, in small).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rkube_store::{Entry, EventKind, ListOptions, Revision, Store};
use serde_json::Value;
use tokio::sync::{broadcast, watch, RwLock};

/// How many recent events a cache keeps for watches that resume from a resourceVersion.
const EVENT_WINDOW: usize = 10_000;
/// How many live events a slow watcher may fall behind before its stream is closed.
const BROADCAST_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    Added,
    Modified,
    Deleted,
}

impl WatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchKind::Added => "ADDED",
            WatchKind::Modified => "MODIFIED",
            WatchKind::Deleted => "DELETED",
        }
    }
}

/// One change as the cache saw it. Objects carry their `metadata.resourceVersion`.
#[derive(Debug)]
pub struct CacheEvent {
    pub rev: i64,
    pub kind: WatchKind,
    pub key: String,
    pub object: Arc<Value>,
    pub prev: Option<Arc<Value>>,
    /// The `{"type":…,"object":…}` line of this event, serialized once for all watchers.
    frame: OnceLock<Bytes>,
}

impl CacheEvent {
    pub fn new(rev: i64, kind: WatchKind, key: String, object: Arc<Value>, prev: Option<Arc<Value>>) -> Self {
        CacheEvent { rev, kind, key, object, prev, frame: OnceLock::new() }
    }

    /// The watch line (`{"type":"ADDED","object":{…}}` and a newline) announcing `object` as
    /// this event's own kind: built by the first watcher that sends it, shared by the rest
    /// (a thousand watchers cost one serialization, not a thousand).
    pub fn frame(&self) -> Bytes {
        self.frame.get_or_init(|| watch_line(self.kind.as_str(), &self.object)).clone()
    }
}

/// One line of a JSON watch stream.
pub fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&serde_json::json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

struct State {
    objects: BTreeMap<String, Arc<Value>>,
    /// The revision the cache reflects.
    rev: i64,
    events: VecDeque<Arc<CacheEvent>>,
    /// Watches from a revision below this one cannot be served (410 Expired).
    oldest: i64,
}

pub struct WatchCache {
    prefix: String,
    state: RwLock<State>,
    live: broadcast::Sender<Arc<CacheEvent>>,
    rev_tx: watch::Sender<i64>,
}

/// Decodes a stored value and stamps its resourceVersion.
pub fn decode(entry: &Entry) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(&entry.value).ok()?;
    set_resource_version(&mut v, entry.mod_revision.0);
    Some(v)
}

pub fn set_resource_version(v: &mut Value, rev: i64) {
    if let Some(obj) = v.as_object_mut() {
        let meta = obj.entry("metadata").or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), rev.to_string().into());
        }
    }
}

/// A snapshot of the cache for a watch: the events to replay, then live ones.
pub struct Subscription {
    pub replay: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
    /// The cache revision at subscription time.
    pub rev: i64,
}

impl WatchCache {
    /// Lists `prefix` from the store and starts following it.
    pub async fn start(store: Arc<dyn Store>, prefix: String) -> rkube_store::Result<Arc<WatchCache>> {
        let (objects, rev) = load(&*store, &prefix).await?;
        let (live, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (rev_tx, _) = watch::channel(rev);
        let cache = Arc::new(WatchCache {
            prefix,
            state: RwLock::new(State { objects, rev, events: VecDeque::new(), oldest: rev }),
            live,
            rev_tx,
        });
        tokio::spawn(follow(Arc::downgrade(&cache), store, rev));
        Ok(cache)
    }

    pub async fn rev(&self) -> i64 {
        self.state.read().await.rev
    }

    /// Waits until the cache reflects `rev` (bounded); false on timeout.
    pub async fn wait_for(&self, rev: i64, timeout: Duration) -> bool {
        let mut rx = self.rev_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev)).await.is_ok_and(|r| r.is_ok())
    }

    /// Every object under `key_prefix` (which must start with the cache's prefix), in key order.
    pub async fn list(&self, key_prefix: &str) -> (Vec<Arc<Value>>, i64) {
        let st = self.state.read().await;
        let items = st
            .objects
            .range(key_prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.rev)
    }

    pub async fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.state.read().await.objects.get(key).cloned()
    }

    /// Events after `after`, then live ones; `None` if `after` is older than the window.
    pub async fn subscribe(&self, after: i64) -> Result<Subscription, i64> {
        let st = self.state.read().await;
        if after < st.oldest {
            return Err(st.oldest);
        }
        let replay = st.events.iter().filter(|e| e.rev > after).cloned().collect();
        Ok(Subscription { replay, live: self.live.subscribe(), rev: st.rev })
    }

    /// The current objects as synthetic ADDED events, then live ones.
    pub async fn subscribe_with_state(&self, key_prefix: &str) -> Subscription {
        let st = self.state.read().await;
        let replay = st
            .objects
            .range(key_prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(k, v)| {
                Arc::new(CacheEvent::new(0, WatchKind::Added, k.clone(), v.clone(), None))
            })
            .collect();
        Subscription { replay, live: self.live.subscribe(), rev: st.rev }
    }

    async fn apply(&self, batch: Vec<CacheEvent>, rev: i64) {
        let mut st = self.state.write().await;
        for ev in batch {
            match ev.kind {
                WatchKind::Deleted => {
                    st.objects.remove(&ev.key);
                }
                _ => {
                    st.objects.insert(ev.key.clone(), ev.object.clone());
                }
            }
            let ev = Arc::new(ev);
            st.events.push_back(ev.clone());
            if st.events.len() > EVENT_WINDOW {
                if let Some(old) = st.events.pop_front() {
                    st.oldest = old.rev;
                }
            }
            let _ = self.live.send(ev);
        }
        st.rev = st.rev.max(rev);
        let rev = st.rev;
        drop(st);
        self.rev_tx.send_replace(rev);
    }

    /// After the store watch broke (compaction, lag): reload and emit the difference.
    async fn resync(&self, store: &dyn Store) -> rkube_store::Result<i64> {
        let (objects, rev) = load(store, &self.prefix).await?;
        let old = self.state.read().await.objects.clone();
        let mut batch = Vec::new();
        for (k, v) in &old {
            if !objects.contains_key(k) {
                let mut gone = (**v).clone();
                set_resource_version(&mut gone, rev);
                batch.push(CacheEvent::new(rev, WatchKind::Deleted, k.clone(), Arc::new(gone), Some(v.clone())));
            }
        }
        for (k, v) in &objects {
            match old.get(k) {
                Some(o) if o == v => {}
                Some(o) => batch.push(CacheEvent::new(rev, WatchKind::Modified, k.clone(), v.clone(), Some(o.clone()))),
                None => batch.push(CacheEvent::new(rev, WatchKind::Added, k.clone(), v.clone(), None)),
            }
        }
        self.apply(batch, rev).await;
        Ok(rev)
    }
}

async fn load(store: &dyn Store, prefix: &str) -> rkube_store::Result<(BTreeMap<String, Arc<Value>>, i64)> {
    let page = store.list(prefix, ListOptions::default()).await?;
    let objects = page
        .entries
        .iter()
        .filter_map(|e| decode(e).map(|v| (e.key.clone(), Arc::new(v))))
        .collect();
    Ok((objects, page.revision.0))
}

fn to_cache_event(ev: rkube_store::Event) -> Option<CacheEvent> {
    let rev = ev.revision().0;
    let prev = ev.prev.as_ref().and_then(decode).map(Arc::new);
    let mut object = decode(&ev.entry)?;
    let kind = match ev.kind {
        EventKind::Delete => {
            set_resource_version(&mut object, rev);
            WatchKind::Deleted
        }
        EventKind::Put if prev.is_some() => WatchKind::Modified,
        EventKind::Put => WatchKind::Added,
    };
    Some(CacheEvent::new(rev, kind, ev.entry.key.clone(), Arc::new(object), prev))
}

async fn follow(cache: std::sync::Weak<WatchCache>, store: Arc<dyn Store>, mut rev: i64) {
    loop {
        let Some(prefix) = cache.upgrade().map(|c| c.prefix.clone()) else { return };
        match store.watch(&prefix, Revision(rev)).await {
            Ok(mut stream) => {
                while let Some(item) = stream.next().await {
                    let Some(c) = cache.upgrade() else { return };
                    match item {
                        Ok(ev) => {
                            let r = ev.revision().0;
                            rev = rev.max(r);
                            // Drain what is already queued so a burst costs one lock.
                            let mut batch: Vec<CacheEvent> = to_cache_event(ev).into_iter().collect();
                            while let Some(Some(Ok(more))) = stream.next().now_or_never() {
                                rev = rev.max(more.revision().0);
                                batch.extend(to_cache_event(more));
                            }
                            c.apply(batch, rev).await;
                        }
                        Err(e) => {
                            tracing::warn!(prefix, error = %e, "store watch broke; resyncing the cache");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(prefix, error = %e, "store watch failed; resyncing the cache"),
        }
        let Some(c) = cache.upgrade() else { return };
        match c.resync(&*store).await {
            Ok(r) => rev = r,
            Err(e) => {
                tracing::error!(prefix, error = %e, "cache resync failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

use futures::FutureExt;
