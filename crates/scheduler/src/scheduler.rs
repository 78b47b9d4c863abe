//! The async shell around the pure scheduling core: watches (nodes, pods, storage,
//! priority classes) feed one task that owns the cache and the queue and runs one
//! scheduling cycle at a time; binding, preemption, status and event writes go to bounded
//! pools of workers whose results come back as messages.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Event, Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod, EventSource};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::algorithm::{self, AlgorithmState, Rng};
use crate::cache::Cache;
use crate::config::Config;
use crate::leader::run_while_leading;
use crate::node_info::PodInfo;
use crate::plugins::volume_binding::Volumes;
use crate::preemption;
use crate::queue::{QueueConfig, SchedulingQueue};

/// Fatal scheduler errors (a single failed request is not one).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("leader election lost")]
    LeaderElectionLost,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Messages to the scheduling task.
enum Msg {
    Node(Box<watcher::Event<Node>>),
    Pod(Box<watcher::Event<Pod>>),
    Claim(Box<watcher::Event<PersistentVolumeClaim>>),
    Volume(Box<watcher::Event<PersistentVolume>>),
    Class(Box<watcher::Event<StorageClass>>),
    Priority(Box<watcher::Event<PriorityClass>>),
    /// A binding failed: forget the assumption and retry.
    BindFailed { info: Arc<PodInfo>, attempts: u32 },
}

pub struct Scheduler {
    config: Config,
    client: kube::Client,
}

impl Scheduler {
    /// No IO happens here.
    pub fn new(config: Config, client: kube::Client) -> Self {
        Scheduler { config, client }
    }

    /// Schedules pods until `shutdown` is cancelled (with leader election: once leading).
    /// Returns early only when leadership is lost.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let (client, c) = (self.client.clone(), &self.config);
        match run_while_leading(client, &c.leader_election, &c.identity, &shutdown, |work| self.run_scheduling(work)).await {
            true => Ok(()),
            false => Err(Error::LeaderElectionLost),
        }
    }

    async fn run_scheduling(&self, shutdown: CancellationToken) {
        let (tx, rx) = mpsc::channel::<Msg>(4096);
        let mut watchers = JoinSet::new();
        let c = &self.client;
        watchers.spawn(forward(watcher(Api::<Node>::all(c.clone()), watcher::Config::default()), tx.clone(), |e| Msg::Node(Box::new(e))));
        watchers.spawn(forward(watcher(Api::<Pod>::all(c.clone()), watcher::Config::default()), tx.clone(), |e| Msg::Pod(Box::new(e))));
        watchers.spawn(forward(watcher(Api::<PersistentVolumeClaim>::all(c.clone()), watcher::Config::default()), tx.clone(), |e| Msg::Claim(Box::new(e))));
        watchers.spawn(forward(watcher(Api::<PersistentVolume>::all(c.clone()), watcher::Config::default()), tx.clone(), |e| Msg::Volume(Box::new(e))));
        watchers.spawn(forward(watcher(Api::<StorageClass>::all(c.clone()), watcher::Config::default()), tx.clone(), |e| Msg::Class(Box::new(e))));
        watchers.spawn(forward(watcher(Api::<PriorityClass>::all(c.clone()), watcher::Config::default()), tx.clone(), |e| Msg::Priority(Box::new(e))));
        let mut state = LoopState::new(self.config.clone(), self.client.clone(), tx);
        state.run(rx, shutdown).await;
        state.report_stats();
        watchers.abort_all();
        state.workers.shutdown().await;
    }
}

/// Forwards a watch stream (retrying with back-off) into the scheduling task.
async fn forward<K, S>(stream: S, tx: mpsc::Sender<Msg>, wrap: fn(watcher::Event<K>) -> Msg)
where
    S: Stream<Item = std::result::Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream.default_backoff());
    while let Some(event) = stream.next().await {
        match event {
            Ok(e) => {
                if tx.send(wrap(e)).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "watch failed; retrying"),
        }
    }
}

struct LoopState {
    config: Config,
    client: kube::Client,
    tx: mpsc::Sender<Msg>,
    cache: Cache,
    queue: SchedulingQueue,
    volumes: Volumes,
    priority_classes: HashMap<String, (i32, bool)>,
    algo: AlgorithmState,
    workers: JoinSet<()>,
    binds: Arc<Semaphore>,
    events: mpsc::Sender<Event>,
    /// Objects seen during a re-list, to drop the ones that vanished.
    relist_nodes: Option<HashSet<String>>,
    relist_pods: Option<HashSet<String>>,
    /// Algorithm durations (µs) of successful cycles since the last stats report.
    cycle_micros: Vec<u64>,
    last_report: Instant,
}

/// How often scheduling statistics are logged (target `rkube_scheduler::stats`, debug).
const STATS_INTERVAL: Duration = Duration::from_secs(10);

const EVENT_BUFFER: usize = 4096;

impl LoopState {
    fn new(config: Config, client: kube::Client, tx: mpsc::Sender<Msg>) -> Self {
        let queue = SchedulingQueue::new(QueueConfig {
            initial_backoff: config.pod_initial_backoff,
            max_backoff: config.pod_max_backoff,
            max_in_unschedulable: config.pod_max_in_unschedulable,
        });
        let (events, events_rx) = mpsc::channel(EVENT_BUFFER);
        let mut workers = JoinSet::new();
        workers.spawn(write_events(client.clone(), events_rx));
        LoopState {
            binds: Arc::new(Semaphore::new(config.bind_concurrency.max(1))),
            config,
            client,
            tx,
            cache: Cache::default(),
            queue,
            volumes: Volumes::default(),
            priority_classes: HashMap::new(),
            algo: AlgorithmState { next_start_node_index: 0, rng: Rng::new(0x5eed) },
            workers,
            events,
            relist_nodes: None,
            relist_pods: None,
            cycle_micros: Vec::new(),
            last_report: Instant::now(),
        }
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<Msg>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Take in everything already waiting, so each cycle sees the latest state.
            let mut drained = 0;
            while drained < 1024 {
                match rx.try_recv() {
                    Ok(m) => self.handle(m),
                    Err(_) => break,
                }
                drained += 1;
            }
            while self.workers.try_join_next().is_some() {}
            if self.last_report.elapsed() >= STATS_INTERVAL {
                self.report_stats();
            }
            if self.queue.has_active() {
                if shutdown.is_cancelled() {
                    return;
                }
                self.schedule_one();
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => self.handle(m),
                    None => return,
                },
                _ = tick.tick() => self.queue.flush(Instant::now()),
            }
            if self.queue.next_backoff_expiry().is_some_and(|t| t <= Instant::now()) {
                self.queue.flush(Instant::now());
            }
        }
    }

    fn report_stats(&mut self) {
        self.last_report = Instant::now();
        if self.cycle_micros.is_empty() {
            return;
        }
        let v = &mut self.cycle_micros;
        v.sort_unstable();
        let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        tracing::debug!(target: "rkube_scheduler::stats", scheduled = v.len(), p50_us = at(0.5), p99_us = at(0.99), max_us = at(1.0), queued = self.queue.len(), nodes = self.cache.node_count(), "scheduling stats");
        v.clear();
    }

    fn priority_of(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        // The Priority admission plugin normally resolves this; do it here when it did not.
        match spec.and_then(|s| s.priority_class_name.as_deref()) {
            Some("system-node-critical") => 2_000_001_000,
            Some("system-cluster-critical") => 2_000_000_000,
            Some(name) => self.priority_classes.get(name).map(|(v, _)| *v).unwrap_or(0),
            None => self.priority_classes.values().find(|(_, global)| *global).map(|(v, _)| *v).unwrap_or(0),
        }
    }

    fn handle(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Node(e) => self.handle_node(*e, now),
            Msg::Pod(e) => self.handle_pod(*e, now),
            Msg::Claim(e) => {
                apply_event(*e, &mut self.volumes.claims, |c: &PersistentVolumeClaim| {
                    format!("{}/{}", c.metadata.namespace.as_deref().unwrap_or(""), c.metadata.name.as_deref().unwrap_or(""))
                });
                self.queue.move_all_to_active_or_backoff(now);
            }
            Msg::Volume(e) => {
                apply_event(*e, &mut self.volumes.volumes, |v: &PersistentVolume| v.metadata.name.clone().unwrap_or_default());
                self.queue.move_all_to_active_or_backoff(now);
            }
            Msg::Class(e) => apply_event(*e, &mut self.volumes.classes, |c: &StorageClass| c.metadata.name.clone().unwrap_or_default()),
            Msg::Priority(e) => {
                let upsert = |pc: &PriorityClass| (pc.metadata.name.clone().unwrap_or_default(), (pc.value, pc.global_default.unwrap_or(false)));
                match *e {
                    watcher::Event::Apply(pc) | watcher::Event::InitApply(pc) => {
                        let (k, v) = upsert(&pc);
                        self.priority_classes.insert(k, v);
                    }
                    watcher::Event::Delete(pc) => {
                        self.priority_classes.remove(pc.metadata.name.as_deref().unwrap_or(""));
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
            }
            Msg::BindFailed { info, attempts } => {
                self.cache.forget(&info.uid);
                self.queue.requeue_backoff(info, attempts, now);
            }
        }
    }

    fn handle_node(&mut self, e: watcher::Event<Node>, now: Instant) {
        match e {
            watcher::Event::Init => self.relist_nodes = Some(HashSet::new()),
            watcher::Event::InitApply(n) | watcher::Event::Apply(n) => {
                if let Some(seen) = self.relist_nodes.as_mut() {
                    seen.insert(n.metadata.name.clone().unwrap_or_default());
                }
                self.cache.add_or_update_node(Arc::new(n));
                self.queue.move_all_to_active_or_backoff(now);
            }
            watcher::Event::Delete(n) => self.cache.remove_node(n.metadata.name.as_deref().unwrap_or("")),
            watcher::Event::InitDone => {
                if let Some(seen) = self.relist_nodes.take() {
                    let gone: Vec<String> = self.cache.snapshot().nodes.iter().map(|n| n.name.clone()).filter(|n| !seen.contains(n)).collect();
                    for n in gone {
                        self.cache.remove_node(&n);
                    }
                }
            }
        }
    }

    fn handle_pod(&mut self, e: watcher::Event<Pod>, now: Instant) {
        match e {
            watcher::Event::Init => self.relist_pods = Some(HashSet::new()),
            watcher::Event::InitDone => {
                // A re-list after a broken watch: drop pods that vanished meanwhile.
                let Some(seen) = self.relist_pods.take() else { return };
                let mut freed = false;
                for uid in self.cache.confirmed_pod_uids() {
                    if !seen.contains(&uid) {
                        self.cache.remove_pod(&uid);
                        freed = true;
                    }
                }
                for uid in self.queue.queued_uids() {
                    if !seen.contains(&uid) {
                        self.queue.delete(&uid);
                    }
                }
                if freed {
                    self.queue.move_all_to_active_or_backoff(now);
                }
            }
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                if let Some(seen) = self.relist_pods.as_mut() {
                    seen.insert(p.metadata.uid.clone().unwrap_or_default());
                }
                self.apply_pod(p, now);
            }
            watcher::Event::Delete(p) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                self.queue.delete(&uid);
                if self.cache.has_pod(&uid) {
                    self.cache.remove_pod(&uid);
                    self.queue.move_all_to_active_or_backoff(now);
                }
            }
        }
    }

    fn apply_pod(&mut self, pod: Pod, now: Instant) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let node = spec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminal = matches!(phase, Some("Succeeded") | Some("Failed"));
        match node {
            Some(node) => {
                self.queue.delete(&uid);
                if terminal {
                    if self.cache.has_pod(&uid) {
                        self.cache.remove_pod(&uid);
                        self.queue.move_all_to_active_or_backoff(now);
                    }
                    return;
                }
                let known = self.cache.has_pod(&uid);
                let info = Arc::new(PodInfo::new(Arc::new(pod.clone()), self.priority_of(&pod)));
                self.cache.add_or_update_pod(info, &node);
                // Another scheduler (or a user) placed a pod: affinity and spreading may change.
                if !known {
                    self.queue.move_all_to_active_or_backoff(now);
                }
            }
            None => {
                let scheduler_name = spec.and_then(|s| s.scheduler_name.as_deref()).unwrap_or("");
                let Some(profile) = self.config.profile(scheduler_name) else { return };
                let gated = profile.scheduling_gates && spec.and_then(|s| s.scheduling_gates.as_ref()).is_some_and(|g| !g.is_empty());
                if terminal || pod.metadata.deletion_timestamp.is_some() || gated {
                    self.queue.delete(&uid);
                    return;
                }
                if self.cache.has_pod(&uid) {
                    return; // assumed: binding in flight
                }
                let priority = self.priority_of(&pod);
                self.queue.add_or_update(Arc::new(PodInfo::new(Arc::new(pod), priority)), now);
            }
        }
    }

    /// One scheduling cycle for the next pod.
    fn schedule_one(&mut self) {
        let Some(queued) = self.queue.pop() else { return };
        let info = queued.info.clone();
        let scheduler_name = info.pod.spec.as_ref().and_then(|s| s.scheduler_name.clone()).unwrap_or_default();
        let Some(profile) = self.config.profile(&scheduler_name).cloned() else {
            self.queue.delete(&info.uid);
            return;
        };
        let span = tracing::debug_span!("schedule", pod = %info.key());
        let _enter = span.enter();
        let started = Instant::now();
        let result = {
            let mut snapshot = self.cache.snapshot();
            snapshot.volumes = Some(&self.volumes);
            match algorithm::schedule_pod(&profile, self.config.percentage_of_nodes_to_score, &info, &snapshot, &mut self.algo) {
                Ok(placement) => Ok(placement),
                Err(mut fit_error) => {
                    let mut nominate = None;
                    if profile.preemption && !snapshot.nodes.is_empty() {
                        match preemption::preempt(&profile, &info, &snapshot, &fit_error) {
                            Ok(candidate) => nominate = Some(candidate),
                            Err(msg) => fit_error.post_filter_msg = Some(format!("preemption: {msg}")),
                        }
                    }
                    Err((fit_error, nominate))
                }
            }
        };
        match result {
            Ok(placement) => {
                let elapsed_us = started.elapsed().as_micros() as u64;
                if self.cycle_micros.len() < 1_000_000 {
                    self.cycle_micros.push(elapsed_us);
                }
                tracing::debug!(node = %placement.node, evaluated = placement.evaluated_nodes, feasible = placement.feasible_nodes, elapsed_us, "assumed");
                self.cache.assume(info.clone(), &placement.node);
                self.queue.done(&info.uid);
                self.spawn_bind(info, placement.node, queued.attempts, profile.scheduler_name.clone());
            }
            Err((fit_error, nominate)) => {
                let message = fit_error.message();
                tracing::debug!(%message, "unschedulable");
                self.queue.requeue_unschedulable(&info.uid, Instant::now());
                let nominated = nominate.as_ref().map(|c| c.node.clone());
                if let Some(candidate) = nominate {
                    self.spawn_preemption(&info, candidate, &profile.scheduler_name);
                }
                self.spawn_unschedulable(&info, message, nominated, &profile.scheduler_name);
            }
        }
    }

    fn spawn_bind(&mut self, info: Arc<PodInfo>, node: String, attempts: u32, component: String) {
        let (client, tx, permits, events) = (self.client.clone(), self.tx.clone(), self.binds.clone(), self.events.clone());
        let instance = self.config.identity.clone();
        self.workers.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            let api: Api<Pod> = Api::namespaced(client, &info.namespace);
            let binding = serde_json::json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let params = PostParams::default();
            let call = api.create_subresource::<_, serde_json::Value>("binding", &info.name, &params, &binding);
            match tokio::time::timeout(Duration::from_secs(30), call).await {
                Ok(Ok(_)) => {
                    let msg = format!("Successfully assigned {}/{} to {node}", info.namespace, info.name);
                    let _ = events.try_send(event(&info, "Normal", "Scheduled", &msg, &component, &instance));
                }
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => {} // deleted meanwhile
                Ok(Err(kube::Error::Api(s))) if s.code == 409 => {
                    // Already bound (by another scheduler): the watch shows where.
                    tracing::debug!(pod = %info.key(), message = %s.message, "binding conflict");
                }
                other => {
                    if let Ok(Err(e)) = &other {
                        tracing::warn!(pod = %info.key(), error = %e, "binding failed");
                    }
                    let _ = tx.send(Msg::BindFailed { info, attempts }).await;
                }
            }
        });
    }

    fn spawn_unschedulable(&mut self, info: &Arc<PodInfo>, message: String, nominated: Option<String>, component: &str) {
        let _ = self.events.try_send(event(info, "Warning", "FailedScheduling", &message, component, &self.config.identity));
        let current = info.pod.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        let same = current.is_some_and(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable") && c.message.as_deref() == Some(message.as_str()));
        let nominated_same = info.pod.status.as_ref().and_then(|s| s.nominated_node_name.clone()) == nominated;
        if same && (nominated.is_none() || nominated_same) {
            return;
        }
        let client = self.client.clone();
        let info = info.clone();
        self.workers.spawn(async move {
            let api: Api<Pod> = Api::namespaced(client, &info.namespace);
            let mut status = serde_json::json!({
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": null,
                    "lastTransitionTime": Time(jiff::Timestamp::now()),
                }]
            });
            if let Some(n) = nominated {
                status["nominatedNodeName"] = serde_json::json!(n);
            }
            let patch = serde_json::json!({"status": status});
            let (params, patch) = (PatchParams::default(), Patch::Strategic(&patch));
            let call = api.patch_status(&info.name, &params, &patch);
            if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(30), call).await {
                tracing::debug!(pod = %info.key(), error = %e, "status update failed");
            }
        });
    }

    fn spawn_preemption(&mut self, preemptor: &Arc<PodInfo>, candidate: preemption::Candidate, component: &str) {
        let client = self.client.clone();
        let events = self.events.clone();
        let (preemptor, component, instance) = (preemptor.clone(), component.to_owned(), self.config.identity.clone());
        self.workers.spawn(async move {
            for victim in candidate.victims {
                let api: Api<Pod> = Api::namespaced(client.clone(), &victim.namespace);
                let dp = DeleteParams { preconditions: Some(kube::api::Preconditions { uid: Some(victim.uid.clone()), resource_version: None }), ..Default::default() };
                match api.delete(&victim.name, &dp).await {
                    Ok(_) => {
                        let msg = format!("Preempted by pod {} on node {}", preemptor.uid, candidate.node);
                        let _ = events.try_send(event(&victim, "Normal", "Preempted", &msg, &component, &instance));
                    }
                    Err(e) => tracing::warn!(pod = %victim.key(), error = %e, "evicting preemption victim failed"),
                }
            }
        });
    }
}

/// Applies a watch event to a name-keyed map.
fn apply_event<K: Clone>(e: watcher::Event<K>, map: &mut HashMap<String, Arc<K>>, key: impl Fn(&K) -> String) {
    match e {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
            map.insert(key(&o), Arc::new(o));
        }
        watcher::Event::Delete(o) => {
            map.remove(&key(&o));
        }
        watcher::Event::Init | watcher::Event::InitDone => {}
    }
}

/// A core/v1 Event about a pod, as the scheduler's event recorder writes it.
fn event(info: &PodInfo, type_: &str, reason: &str, message: &str, component: &str, instance: &str) -> Event {
    let now = Time(jiff::Timestamp::now());
    let suffix = format!("{:x}", now.0.as_nanosecond());
    Event {
        metadata: ObjectMeta { name: Some(format!("{}.{suffix}", info.name)), namespace: Some(info.namespace.clone()), ..Default::default() },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(info.name.clone()),
            namespace: Some(info.namespace.clone()),
            uid: Some(info.uid.clone()),
            resource_version: info.pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(type_.into()),
        source: Some(EventSource { component: Some(component.into()), host: None }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some(component.into()),
        reporting_instance: Some(instance.into()),
        ..Default::default()
    }
}

/// Writes events with a few requests in flight; the channel is bounded and senders drop
/// events when it is full, as client-go's broadcaster does.
async fn write_events(client: kube::Client, rx: mpsc::Receiver<Event>) {
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    stream
        .map(|e| {
            let api: Api<Event> = Api::namespaced(client.clone(), e.metadata.namespace.as_deref().unwrap_or("default"));
            async move {
                if let Err(err) = api.create(&PostParams::default(), &e).await {
                    tracing::debug!(error = %err, "event not recorded");
                }
            }
        })
        .buffer_unordered(8)
        .for_each(|_| async {})
        .await;
}
