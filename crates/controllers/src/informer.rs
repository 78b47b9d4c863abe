//! Shared informers: one kube-runtime watcher and reflector store per resource, read by every
//! controller, with event handlers that controllers register to enqueue keys (client-go's
//! `SharedInformerFactory`). Handlers run on the informer's task after the store has applied
//! the change, so a reconcile triggered by a handler sees at least that state. They must be
//! quick and never block: they only compute keys and add them to work queues.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// What happened to one object, with the version the store held before.
pub enum Change<K> {
    /// Created or updated (`old` is `None` for an object the store did not hold).
    Applied { old: Option<Arc<K>>, new: Arc<K> },
    /// Deleted (the last version seen).
    Deleted(Arc<K>),
}

type Handler<K> = Arc<dyn Fn(&Change<K>) + Send + Sync>;

/// The bounds a watched kind needs.
pub trait Watched: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static {}
impl<K> Watched for K where K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static {}

/// One resource's shared watch, cache and handlers.
pub struct Informer<K: Watched> {
    api: Api<K>,
    store: Store<K>,
    writer: Mutex<Option<reflector::store::Writer<K>>>,
    handlers: Mutex<Vec<Handler<K>>>,
}

impl<K: Watched> Informer<K> {
    fn new(client: kube::Client) -> Self {
        let (store, writer) = reflector::store();
        Informer { api: Api::all(client), store, writer: Mutex::new(Some(writer)), handlers: Mutex::new(Vec::new()) }
    }

    /// The cache (read-only; objects are shared `Arc`s).
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// The cached object `namespace/name`.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let mut r = ObjectRef::new(name);
        if let Some(ns) = namespace {
            r = r.within(ns);
        }
        self.store.get(&r)
    }

    /// The cached objects of one namespace.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.store.state_filter(|o| o.meta().namespace.as_deref() == Some(namespace))
    }

    /// Registers a handler, called for every change from now on (and, at the first list, for
    /// every object).
    pub fn add_handler(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
        self.handlers.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::new(handler));
    }

    /// Waits until the first list has filled the cache.
    pub async fn wait_synced(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    fn dispatch(&self, change: Change<K>) {
        let handlers = self.handlers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for h in &handlers {
            h(&change);
        }
    }

    /// Watches until `shutdown`, re-listing with back-off after errors.
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(mut writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return; // already running
        };
        let stream = watcher(self.api.clone(), watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        let mut relisted: Vec<Arc<K>> = Vec::new();
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = stream.next() => e,
            };
            let event = match event {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    tracing::debug!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                    continue;
                }
                None => return,
            };
            match &event {
                watcher::Event::Init => {
                    relisted.clear();
                    writer.apply_watcher_event(&event);
                }
                watcher::Event::InitApply(o) => {
                    relisted.push(Arc::new(o.clone()));
                    writer.apply_watcher_event(&event);
                }
                watcher::Event::InitDone => {
                    let mut before: HashMap<ObjectRef<K>, Arc<K>> =
                        self.store.state().into_iter().map(|o| (ObjectRef::from_obj(&*o), o)).collect();
                    writer.apply_watcher_event(&event);
                    for new in std::mem::take(&mut relisted) {
                        let old = before.remove(&ObjectRef::from_obj(&*new));
                        if old.as_ref().is_some_and(|o| same_version(o.as_ref(), new.as_ref())) {
                            continue;
                        }
                        self.dispatch(Change::Applied { old, new });
                    }
                    for (_, gone) in before {
                        self.dispatch(Change::Deleted(gone));
                    }
                }
                watcher::Event::Apply(o) => {
                    let old = self.store.get(&ObjectRef::from_obj(o));
                    writer.apply_watcher_event(&event);
                    self.dispatch(Change::Applied { old, new: Arc::new(o.clone()) });
                }
                watcher::Event::Delete(o) => {
                    writer.apply_watcher_event(&event);
                    self.dispatch(Change::Deleted(Arc::new(o.clone())));
                }
            }
        }
    }
}

fn same_version<K: Resource>(a: &K, b: &K) -> bool {
    a.meta().resource_version.is_some() && a.meta().resource_version == b.meta().resource_version
}

type SyncWait = Arc<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;
type Starter = Box<dyn FnOnce(CancellationToken) -> tokio::task::JoinHandle<()> + Send>;

/// The registry of shared informers: `get::<Pod>()` returns the one pod informer, created on
/// first use; [`Informers::start`] starts every informer asked for so far.
pub struct Informers {
    client: kube::Client,
    by_type: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    starters: Mutex<Vec<Starter>>,
    synced: Mutex<Vec<SyncWait>>,
}

impl Informers {
    /// No IO happens here.
    pub fn new(client: kube::Client) -> Self {
        Informers {
            client,
            by_type: Mutex::new(HashMap::new()),
            starters: Mutex::new(Vec::new()),
            synced: Mutex::new(Vec::new()),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The shared informer of `K`.
    pub fn get<K: Watched>(&self) -> Arc<Informer<K>> {
        let mut map = self.by_type.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = map.get(&TypeId::of::<K>()) {
            return existing.clone().downcast::<Informer<K>>().expect("the map holds Informer<K> under K's TypeId");
        }
        let informer = Arc::new(Informer::<K>::new(self.client.clone()));
        map.insert(TypeId::of::<K>(), informer.clone());
        let run = informer.clone();
        self.starters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(move |shutdown| tokio::spawn(run.run(shutdown))));
        let wait = informer.clone();
        self.synced.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::new(move || {
            let wait = wait.clone();
            Box::pin(async move { wait.wait_synced().await })
        }));
        informer
    }

    /// Starts the watches of every informer created so far (once each).
    pub fn start(&self, shutdown: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let starters = std::mem::take(&mut *self.starters.lock().unwrap_or_else(|e| e.into_inner()));
        starters.into_iter().map(|s| s(shutdown.clone())).collect()
    }

    /// Waits until every informer created so far has listed once.
    pub async fn wait_synced(&self) {
        let waits = self.synced.lock().unwrap_or_else(|e| e.into_inner()).clone();
        futures::future::join_all(waits.iter().map(|w| w())).await;
    }
}
