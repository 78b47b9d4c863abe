//! The `horizontal-pod-autoscaler-controller` (upstream `pkg/controller/podautoscaler`):
//! every sync period (15 s, upstream `--horizontal-pod-autoscaler-sync-period`) reads each
//! HorizontalPodAutoscaler's target through its `/scale` subresource, computes the replica
//! count its Resource metrics (CPU, memory: utilisation of requests or average value) ask for
//! from `metrics.k8s.io` pod metrics, and writes the new size back through `/scale`.
//!
//! The replica calculation follows upstream's `replica_calculator.go`: pods being deleted,
//! failed or pending are ignored, unready pods (CPU only) and pods without metrics are
//! assumed to use nothing when scaling up and (missing ones) their target when scaling down,
//! and a ratio within the 0.1 tolerance of the target changes nothing. The result is
//! stabilised (the highest recommendation of the last 5 minutes wins when scaling down) and
//! clamped to `minReplicas`/`maxReplicas` (and upstream's scale-up limit of
//! max(2 x current, 4) without `behavior`). When metrics cannot be read (no metrics API yet)
//! the HPA reports `ScalingActive=False` with reason `FailedGetResourceMetric` and does not
//! scale. Custom (Pods, Object, External) metrics are not served: such metrics are reported
//! as failing. Of `behavior`, the stabilisation windows are honoured; the rate policies are not.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, MetricSpec, MetricStatus,
    MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use rkube_api::quantity::Quantity;
use rkube_api::selector::LabelSelector;
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{key_of, run_workers};
use crate::error::{is_not_found, message, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;

/// Upstream `--horizontal-pod-autoscaler-sync-period`.
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// Upstream `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// Upstream `--horizontal-pod-autoscaler-downscale-stabilization`.
pub const DOWNSCALE_STABILIZATION: Duration = Duration::from_secs(300);
/// A Warning event repeated unchanged is recorded again only after this long (client-go
/// aggregates repeats into a count instead).
const EVENT_REPEAT: Duration = Duration::from_secs(300);

/// One pod's usage of a resource (milli-units), keyed by pod name.
pub type PodMetrics = HashMap<String, i64>;

/// What a Resource metric aims at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// `averageUtilization`: percent of the pods' requests.
    Utilization(i32),
    /// `averageValue`, in milli-units.
    AverageValue(i64),
}

/// The outcome of one Resource metric: the replicas it asks for, the current utilisation
/// (percent, for [`Target::Utilization`]) and the average usage per pod (milli-units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    pub replicas: i32,
    pub utilization: Option<i32>,
    pub average_milli: i64,
}

fn pod_ready(pod: &Pod) -> bool {
    let conds = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conds.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Upstream `groupPods`: the number of ready pods with metrics, the unready ones (pending,
/// and for CPU not Ready: their samples are not trusted), the ones without metrics, and the
/// ignored ones (being deleted or failed).
pub fn group_pods(pods: &[&Pod], metrics: &PodMetrics, resource: &str) -> (usize, Vec<String>, Vec<String>, Vec<String>) {
    let (mut ready, mut unready, mut missing, mut ignored) = (0, Vec::new(), Vec::new(), Vec::new());
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if pod.metadata.deletion_timestamp.is_some() || phase == "Failed" {
            ignored.push(name);
            continue;
        }
        if phase == "Pending" {
            unready.push(name);
            continue;
        }
        if !metrics.contains_key(&name) {
            missing.push(name);
            continue;
        }
        if resource == "cpu" && !pod_ready(pod) {
            unready.push(name);
            continue;
        }
        ready += 1;
    }
    (ready, unready, missing, ignored)
}

/// Upstream `calculatePodRequests`: each pod's summed container requests of `resource`
/// (milli-units); a container without one is an error.
pub fn pod_requests(pods: &[&Pod], resource: &str) -> Result<HashMap<String, i64>, String> {
    let mut out = HashMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut sum = 0i64;
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let req = c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get(resource));
            let Some(q) = req.and_then(|q| Quantity::parse(&q.0).ok()) else {
                return Err(format!("missing request for {resource} in container {} of Pod {name}", c.name));
            };
            sum = sum.saturating_add(q.milli_value().clamp(0, i64::MAX as i128) as i64);
        }
        out.insert(name, sum);
    }
    Ok(out)
}

/// Upstream `GetResourceUtilizationRatio`: (usage / target, utilisation percent, average
/// usage) over the pods that have both a metric and a request.
pub fn utilization_ratio(metrics: &PodMetrics, requests: &HashMap<String, i64>, target: i32) -> Result<(f64, i32, i64), String> {
    let (mut usage, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (pod, m) in metrics {
        let Some(r) = requests.get(pod) else { continue };
        usage += m;
        requested += r;
        n += 1;
    }
    if requested == 0 || n == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = ((usage * 100) / requested) as i32;
    Ok((utilization as f64 / target.max(1) as f64, utilization, usage / n))
}

fn plain_ratio(metrics: &PodMetrics, target_milli: i64) -> (f64, i64) {
    let n = metrics.len().max(1) as i64;
    let average = metrics.values().sum::<i64>() / n;
    (average as f64 / target_milli.max(1) as f64, average)
}

/// Upstream `GetResourceReplicas` / `GetRawResourceReplicas` on metrics already fetched:
/// the replica count one Resource metric proposes.
pub fn resource_replicas(
    current: i32,
    target: Target,
    resource: &str,
    pods: &[&Pod],
    metrics: &PodMetrics,
    tolerance: f64,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let (ready, unready, missing, ignored) = group_pods(pods, metrics, resource);
    let mut metrics: PodMetrics =
        metrics.iter().filter(|(p, _)| !ignored.contains(p) && !unready.contains(p)).map(|(p, v)| (p.clone(), *v)).collect();
    // Only metrics of the targeted pods count.
    let names: Vec<String> = pods.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect();
    metrics.retain(|p, _| names.contains(p));
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let requests = match target {
        Target::Utilization(_) => pod_requests(pods, resource)?,
        Target::AverageValue(_) => HashMap::new(),
    };
    let ratio = |m: &PodMetrics| -> Result<(f64, Option<i32>, i64), String> {
        match target {
            Target::Utilization(t) => utilization_ratio(m, &requests, t).map(|(r, u, a)| (r, Some(u), a)),
            Target::AverageValue(t) => {
                let (r, a) = plain_ratio(m, t);
                Ok((r, None, a))
            }
        }
    };
    let (usage_ratio, utilization, average_milli) = ratio(&metrics)?;
    let keep = Proposal { replicas: current, utilization, average_milli };
    let scale_up_with_unready = !unready.is_empty() && usage_ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if (1.0 - usage_ratio).abs() <= tolerance {
            return Ok(keep);
        }
        return Ok(Proposal { replicas: (usage_ratio * ready as f64).ceil() as i32, ..keep });
    }
    if !missing.is_empty() {
        for pod in &missing {
            let assumed = if usage_ratio < 1.0 {
                match target {
                    Target::Utilization(t) => requests.get(pod).copied().unwrap_or(0) * i64::from(t.max(100)) / 100,
                    Target::AverageValue(t) => t,
                }
            } else {
                0
            };
            if usage_ratio != 1.0 {
                metrics.insert(pod.clone(), assumed);
            }
        }
    }
    if scale_up_with_unready {
        for pod in &unready {
            metrics.insert(pod.clone(), 0);
        }
    }
    let (new_ratio, _, _) = ratio(&metrics)?;
    if (1.0 - new_ratio).abs() <= tolerance || (usage_ratio < 1.0 && new_ratio > 1.0) || (usage_ratio > 1.0 && new_ratio < 1.0) {
        return Ok(keep);
    }
    let replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(keep);
    }
    Ok(Proposal { replicas, ..keep })
}

/// Upstream `convertDesiredReplicasWithRules` (no `behavior`): clamps to min/max and the
/// scale-up limit, with the ScalingLimited condition's reason and message.
pub fn clamp_replicas(current: i32, desired: i32, min: i32, max: i32, scale_up_limit: bool) -> (i32, &'static str, &'static str) {
    let limit = (2 * current).max(4);
    let (maximum, reason, msg) = if scale_up_limit && max > limit {
        (limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
    } else {
        (max, "TooManyReplicas", "the desired replica count is more than the maximum replica count")
    };
    if desired < min {
        (min, "TooFewReplicas", "the desired replica count is less than the minimum replica count")
    } else if desired > maximum {
        (maximum, reason, msg)
    } else {
        (desired, "DesiredWithinRange", "the desired count is within the acceptable range")
    }
}

/// One HPA's recent recommendations (time, replicas).
pub type Recommendations = Vec<(jiff::Timestamp, i32)>;

fn cutoff(now: jiff::Timestamp, window: Duration) -> jiff::Timestamp {
    now.checked_sub(jiff::SignedDuration::try_from(window).unwrap_or_default()).unwrap_or(now)
}

fn record(recs: &mut Recommendations, now: jiff::Timestamp, desired: i32, oldest_kept: jiff::Timestamp) {
    match recs.iter_mut().find(|(t, _)| *t <= oldest_kept) {
        Some(slot) => *slot = (now, desired),
        None => recs.push((now, desired)),
    }
}

/// Upstream `stabilizeRecommendation` (no `behavior`): the highest recommendation of the
/// last `window`, this one included; records this one.
pub fn stabilize(recs: &mut Recommendations, now: jiff::Timestamp, window: Duration, desired: i32) -> i32 {
    let since = cutoff(now, window);
    let max = recs.iter().filter(|(t, _)| *t > since).map(|(_, r)| *r).fold(desired, i32::max);
    record(recs, now, desired, since);
    max
}

/// Upstream `stabilizeRecommendationWithBehaviors`: scale up no further than the lowest
/// recommendation of the up window, down no further than the highest of the down window.
pub fn stabilize_with_windows(recs: &mut Recommendations, now: jiff::Timestamp, current: i32, desired: i32, up: Duration, down: Duration) -> i32 {
    let (up_cut, down_cut) = (cutoff(now, up), cutoff(now, down));
    let (mut up_rec, mut down_rec) = (desired, desired);
    for (t, r) in recs.iter() {
        if *t > up_cut {
            up_rec = up_rec.min(*r);
        }
        if *t > down_cut {
            down_rec = down_rec.max(*r);
        }
    }
    let recommendation = current.max(up_rec).min(down_rec);
    record(recs, now, desired, up_cut.min(down_cut));
    recommendation
}

/// Upstream `setCondition`: sets or replaces the condition, keeping its transition time when
/// the status did not change.
pub fn set_condition(conds: &mut Vec<HorizontalPodAutoscalerCondition>, type_: &str, status: bool, reason: &str, message: String, now: jiff::Timestamp) {
    let status = if status { "True" } else { "False" };
    let new = HorizontalPodAutoscalerCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(now)),
    };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let ltt = if c.status == status { c.last_transition_time.clone() } else { new.last_transition_time.clone() };
            *c = HorizontalPodAutoscalerCondition { last_transition_time: ltt, ..new };
        }
        None => conds.push(new),
    }
}

/// Milli-units as a quantity string (`resource.NewMilliQuantity(v, DecimalSI)`).
pub fn milli_quantity(v: i64) -> String {
    if v % 1000 == 0 {
        format!("{}", v / 1000)
    } else {
        format!("{v}m")
    }
}

/// The pods' usage of `resource` from a `PodMetricsList`: the sum over containers, pods
/// with a container lacking it left out (upstream's metrics client).
pub fn usage_from_metrics(items: &[serde_json::Value], resource: &str) -> PodMetrics {
    let mut out = PodMetrics::new();
    for item in items {
        let Some(name) = item["metadata"]["name"].as_str() else { continue };
        let containers = item["containers"].as_array().cloned().unwrap_or_default();
        let mut sum = 0i64;
        let mut complete = !containers.is_empty();
        for c in &containers {
            match c["usage"][resource].as_str().and_then(|q| Quantity::parse(q).ok()) {
                Some(q) => sum = sum.saturating_add(q.milli_value().clamp(0, i64::MAX as i128) as i64),
                None => complete = false,
            }
        }
        if complete {
            out.insert(name.to_owned(), sum);
        }
    }
    out
}

pub struct HpaController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    hpas: Arc<Informer<HorizontalPodAutoscaler>>,
    pods: Arc<Informer<Pod>>,
    recorder: Recorder,
    queue: WorkQueue<ObjectKey>,
    recommendations: Mutex<HashMap<ObjectKey, Recommendations>>,
    /// The last Warning event per HPA (reason, message, when), to record repeats rarely.
    last_warning: Mutex<HashMap<ObjectKey, (String, String, jiff::Timestamp)>>,
}

impl HpaController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            hpas: informers.get::<HorizontalPodAutoscaler>(),
            pods: informers.get::<Pod>(),
            recorder: Recorder::new(informers.client().clone(), "horizontal-pod-autoscaler"),
            queue: WorkQueue::default(),
            recommendations: Mutex::new(HashMap::new()),
            last_warning: Mutex::new(HashMap::new()),
        });
        let queue = ctx.queue.clone();
        let weak = Arc::downgrade(&ctx);
        ctx.hpas.add_handler(move |change| match change {
            // Status writes come back as changes too: only spec changes are worth a sync
            // before the period is up.
            Change::Applied { old, new } => {
                if old.as_ref().is_none_or(|o| o.spec != new.spec) {
                    queue.add(key_of(new.as_ref()));
                }
            }
            Change::Deleted(h) => {
                if let Some(ctx) = weak.upgrade() {
                    let key = key_of(h.as_ref());
                    ctx.recommendations.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                    ctx.last_warning.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                }
            }
        });
        HpaController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("horizontalpodautoscaling", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

/// How one metric went.
enum MetricOutcome {
    Ok { replicas: i32, name: String, status: Box<MetricStatus> },
    Failed { reason: &'static str, message: String },
}

impl Context {
    fn warn(&self, hpa: &HorizontalPodAutoscaler, reason: &str, msg: String) {
        let key = key_of(hpa);
        let now = crate::clock::now();
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        let repeat = match last.get(&key) {
            Some((r, m, at)) => r == reason && *m == msg && *at > cutoff(now, EVENT_REPEAT),
            None => false,
        };
        if !repeat {
            last.insert(key, (reason.to_owned(), msg.clone(), now));
            self.recorder.event(hpa, WARNING, reason, msg);
        }
    }

    async fn pod_metrics(&self, ns: &str, selector: &str) -> Result<Vec<serde_json::Value>, String> {
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"), "pods");
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        match api.list(&ListParams::default().labels(selector)).await {
            Ok(list) => Ok(list.items.into_iter().map(|o| serde_json::to_value(o).unwrap_or_default()).collect()),
            Err(e) if is_not_found(&e) => {
                Err("unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)".into())
            }
            Err(e) => Err(format!("unable to fetch metrics from resource metrics API: {}", message(&e))),
        }
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(cached) = self.hpas.get(key.namespace.as_deref(), &key.name) else { return Ok(None) };
        if cached.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let mut hpa = (*cached).clone();
        let original = hpa.status.clone();
        let result = self.reconcile(&mut hpa).await;
        if hpa.status != original {
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), key.namespace.as_deref().unwrap_or_default());
            let patch = serde_json::json!({ "status": hpa.status });
            match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(Error::api("update status of", format!("horizontalpodautoscaler {key}"), e)),
            }
        }
        if let Err(e) = result {
            tracing::debug!(object = %key, error = %e, "hpa sync failed");
        }
        Ok(Some(SYNC_PERIOD))
    }

    /// Upstream `reconcileAutoscaler`: updates `hpa.status` in place; an error is reported
    /// through conditions and events already.
    async fn reconcile(&self, hpa: &mut HorizontalPodAutoscaler) -> Result<(), String> {
        let now = crate::clock::now();
        let key = key_of(hpa);
        let ns = hpa.metadata.namespace.clone().unwrap_or_default();
        let spec = hpa.spec.clone().unwrap_or_default();
        let target = &spec.scale_target_ref;
        let reference = format!("{}/{}/{}", target.kind, ns, target.name);
        let mut status = hpa.status.clone().unwrap_or_default();
        let mut conds = status.conditions.take().unwrap_or_default();

        let api_version = target.api_version.clone().unwrap_or_else(|| "v1".into());
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &target.kind));
        let scales: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &ar);
        let mut scale: Scale = match scales.get_scale(&target.name).await {
            Ok(s) => s,
            Err(e) => {
                let msg = message(&e);
                self.warn(hpa, "FailedGetScale", msg.clone());
                set_condition(&mut conds, "AbleToScale", false, "FailedGetScale", format!("the HPA controller was unable to get the target's current scale: {msg}"), now);
                status.conditions = Some(conds);
                hpa.status = Some(status);
                return Err(format!("failed to query scale subresource for {reference}: {msg}"));
            }
        };
        set_condition(&mut conds, "AbleToScale", true, "SucceededGetScale", "the HPA controller was able to get the target's current scale".into(), now);
        let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;
        self.recommendations.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_insert_with(|| vec![(now, current)]);

        let mut metric_statuses: Option<Vec<MetricStatus>> = status.current_metrics.clone();
        let mut rescale_reason = String::new();
        let desired;
        let mut failure = None;
        if current == 0 && min != 0 {
            desired = 0;
            set_condition(&mut conds, "ScalingActive", false, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero".into(), now);
        } else if current > max {
            rescale_reason = "Current number of replicas above Spec.MaxReplicas".into();
            desired = max;
        } else if current < min {
            rescale_reason = "Current number of replicas below Spec.MinReplicas".into();
            desired = min;
        } else {
            match self.compute_for_metrics(hpa, &scale, current, &spec.metrics.clone().unwrap_or_default(), &mut conds, now).await {
                Err(e) => {
                    // Upstream setCurrentReplicasAndMetricsInStatus: desired stays as it was.
                    status.current_replicas = Some(current);
                    status.current_metrics = None;
                    status.conditions = Some(conds);
                    hpa.status = Some(status);
                    self.warn(hpa, "FailedComputeMetricsReplicas", e.clone());
                    return Err(format!("failed to compute desired number of replicas based on listed metrics for {reference}: {e}"));
                }
                Ok((proposed, metric_name, statuses, partial)) => {
                    failure = partial;
                    metric_statuses = Some(statuses);
                    if proposed > current {
                        rescale_reason = format!("{metric_name} above target");
                    } else if proposed < current {
                        rescale_reason = "All metrics below target".into();
                    }
                    desired = self.normalize(hpa, &key, current, proposed, min, &mut conds, now);
                }
            }
        }
        let rescale = desired != current;
        if rescale {
            if let Some(s) = scale.spec.as_mut() {
                s.replicas = Some(desired);
            }
            match scales.replace_scale(&target.name, &PostParams::default(), &scale).await {
                Ok(_) => {
                    set_condition(&mut conds, "AbleToScale", true, "SucceededRescale", format!("the HPA controller was able to update the target scale to {desired}"), now);
                    self.recorder.event(hpa, NORMAL, "SuccessfulRescale", format!("New size: {desired}; reason: {rescale_reason}"));
                    status.last_scale_time = Some(Time(now));
                    status.desired_replicas = desired;
                }
                Err(e) => {
                    let msg = message(&e);
                    self.warn(hpa, "FailedRescale", format!("New size: {desired}; reason: {rescale_reason}; error: {msg}"));
                    set_condition(&mut conds, "AbleToScale", false, "FailedUpdateScale", format!("the HPA controller was unable to update the target scale: {msg}"), now);
                    status.current_replicas = Some(current);
                    status.current_metrics = metric_statuses;
                    status.conditions = Some(conds);
                    hpa.status = Some(status);
                    return Err(format!("failed to rescale {reference}: {msg}"));
                }
            }
        } else {
            status.desired_replicas = current;
        }
        status.current_replicas = Some(current);
        status.current_metrics = metric_statuses.filter(|m| !m.is_empty());
        status.conditions = Some(conds);
        hpa.status = Some(status);
        failure.map_or(Ok(()), Err)
    }

    /// Upstream `normalizeDesiredReplicas` / `...WithBehaviors` (windows only).
    #[allow(clippy::too_many_arguments)]
    fn normalize(&self, hpa: &HorizontalPodAutoscaler, key: &ObjectKey, current: i32, proposed: i32, min: i32, conds: &mut Vec<HorizontalPodAutoscalerCondition>, now: jiff::Timestamp) -> i32 {
        let spec = hpa.spec.clone().unwrap_or_default();
        let mut recs = self.recommendations.lock().unwrap_or_else(|e| e.into_inner());
        let recs = recs.entry(key.clone()).or_default();
        let stabilized = match &spec.behavior {
            None => stabilize(recs, now, DOWNSCALE_STABILIZATION, proposed),
            Some(b) => {
                let secs = |w: Option<i32>, default: u64| w.map_or(Duration::from_secs(default), |s| Duration::from_secs(s.max(0) as u64));
                let up = secs(b.scale_up.as_ref().and_then(|r| r.stabilization_window_seconds), 0);
                let down = secs(b.scale_down.as_ref().and_then(|r| r.stabilization_window_seconds), DOWNSCALE_STABILIZATION.as_secs());
                stabilize_with_windows(recs, now, current, proposed, up, down)
            }
        };
        if stabilized != proposed {
            set_condition(conds, "AbleToScale", true, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation".into(), now);
        } else {
            set_condition(conds, "AbleToScale", true, "ReadyForNewScale", "recommended size matches current size".into(), now);
        }
        let (desired, reason, msg) = clamp_replicas(current, stabilized, min, spec.max_replicas, spec.behavior.is_none());
        set_condition(conds, "ScalingLimited", desired != stabilized, reason, msg.into(), now);
        desired
    }

    /// Upstream `computeReplicasForMetrics`: the largest proposal of the valid metrics, the
    /// name of the metric that made it, the statuses, and the first error if some metrics
    /// failed; an error when all failed (or the selector is unusable).
    async fn compute_for_metrics(
        &self,
        hpa: &HorizontalPodAutoscaler,
        scale: &Scale,
        current: i32,
        metrics: &[MetricSpec],
        conds: &mut Vec<HorizontalPodAutoscalerCondition>,
        now: jiff::Timestamp,
    ) -> Result<(i32, String, Vec<MetricStatus>, Option<String>), String> {
        let ns = hpa.metadata.namespace.clone().unwrap_or_default();
        let selector_text = scale.status.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        if selector_text.is_empty() {
            self.warn(hpa, "SelectorRequired", "selector is required".into());
            set_condition(conds, "ScalingActive", false, "InvalidSelector", "the HPA target's scale is missing a selector".into(), now);
            return Err("selector is required".into());
        }
        let selector = match LabelSelector::parse(&selector_text) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("couldn't convert selector into a corresponding internal selector object: {e}");
                self.warn(hpa, "InvalidSelector", msg.clone());
                set_condition(conds, "ScalingActive", false, "InvalidSelector", msg.clone(), now);
                return Err(msg);
            }
        };
        let empty = BTreeMap::new();
        let pods: Vec<Arc<Pod>> =
            self.pods.in_namespace(&ns).into_iter().filter(|p| selector.matches(p.metadata.labels.as_ref().unwrap_or(&empty))).collect();
        let pods: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let mut fetched: Option<Result<Vec<serde_json::Value>, String>> = None;

        let (mut best, mut best_name, mut statuses) = (-1i32, String::new(), Vec::new());
        let (mut invalid, mut first_error, mut first_failure) = (0usize, None::<String>, None::<(&'static str, String)>);
        for m in metrics {
            let outcome = match (m.type_.as_str(), m.resource.as_ref()) {
                ("Resource", Some(r)) => {
                    if fetched.is_none() {
                        fetched = Some(self.pod_metrics(&ns, &selector_text).await);
                    }
                    let fetched = fetched.as_ref().expect("fetched above");
                    resource_outcome(current, &r.name, &r.target, &pods, fetched)
                }
                ("Pods" | "Object" | "External", _) => {
                    let (reason, name) = match m.type_.as_str() {
                        "Pods" => ("FailedGetPodsMetric", m.pods.as_ref().map(|p| p.metric.name.clone())),
                        "Object" => ("FailedGetObjectMetric", m.object.as_ref().map(|p| p.metric.name.clone())),
                        _ => ("FailedGetExternalMetric", m.external.as_ref().map(|p| p.metric.name.clone())),
                    };
                    let name = name.unwrap_or_default();
                    MetricOutcome::Failed { reason, message: format!("unable to get metric {name}: no custom metrics API (custom.metrics.k8s.io) registered") }
                }
                (other, _) => MetricOutcome::Failed { reason: "InvalidMetricSourceType", message: format!("unknown metric source type \"{other}\"") },
            };
            match outcome {
                MetricOutcome::Ok { replicas, name, status } => {
                    statuses.push(*status);
                    if replicas > best {
                        best = replicas;
                        best_name = name;
                    }
                }
                MetricOutcome::Failed { reason, message } => {
                    if reason != "InvalidMetricSourceType" {
                        self.warn(hpa, reason, message.clone());
                    }
                    invalid += 1;
                    first_error.get_or_insert(message.clone());
                    first_failure.get_or_insert((reason, message));
                }
            }
        }
        if invalid >= metrics.len() || best == -1 {
            if let Some((reason, msg)) = &first_failure {
                set_condition(conds, "ScalingActive", false, reason, format!("the HPA was unable to compute the replica count: {msg}"), now);
            }
            return Err(format!(
                "invalid metrics ({invalid} invalid out of {}), first error is: {}",
                metrics.len(),
                first_error.unwrap_or_else(|| "no metrics".into())
            ));
        }
        set_condition(conds, "ScalingActive", true, "ValidMetricFound", format!("the HPA was able to successfully calculate a replica count from {best_name}"), now);
        Ok((best, best_name, statuses, first_error))
    }
}

fn resource_outcome(
    current: i32,
    resource: &str,
    target: &k8s_openapi::api::autoscaling::v2::MetricTarget,
    pods: &[&Pod],
    fetched: &Result<Vec<serde_json::Value>, String>,
) -> MetricOutcome {
    let failed = |message: String| MetricOutcome::Failed { reason: "FailedGetResourceMetric", message };
    let t = match (target.average_utilization, target.average_value.as_ref()) {
        (Some(u), _) => Target::Utilization(u),
        (None, Some(v)) => match Quantity::parse(&v.0) {
            Ok(q) => Target::AverageValue(q.milli_value().clamp(0, i64::MAX as i128) as i64),
            Err(e) => return failed(format!("invalid average value for resource {resource}: {e}")),
        },
        (None, None) => return failed(format!("invalid resource metric source: neither a utilization target nor a value target was set for resource {resource}")),
    };
    let what = match t {
        Target::Utilization(_) => "utilization",
        Target::AverageValue(_) => "usage",
    };
    let items = match fetched {
        Ok(items) => items,
        Err(e) => return failed(format!("failed to get {resource} {what}: unable to get metrics for resource {resource}: {e}")),
    };
    let metrics = usage_from_metrics(items, resource);
    if metrics.is_empty() {
        return failed(format!("failed to get {resource} {what}: unable to get metrics for resource {resource}: no metrics returned from resource metrics API"));
    }
    match resource_replicas(current, t, resource, pods, &metrics, TOLERANCE) {
        Err(e) => failed(format!("failed to get {resource} {what}: {e}")),
        Ok(p) => {
            let name = match t {
                Target::Utilization(_) => format!("{resource} resource utilization (percentage of request)"),
                Target::AverageValue(_) => format!("{resource} resource"),
            };
            let status = MetricStatus {
                type_: "Resource".into(),
                resource: Some(ResourceMetricStatus {
                    name: resource.into(),
                    current: MetricValueStatus {
                        average_utilization: p.utilization,
                        average_value: Some(K8sQuantity(milli_quantity(p.average_milli))),
                        value: None,
                    },
                }),
                ..Default::default()
            };
            MetricOutcome::Ok { replicas: p.replicas, name, status: Box::new(status) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodCondition, PodSpec, PodStatus, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(name: &str, cpu_request: Option<&str>, phase: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: cpu_request.map(|r| [("cpu".to_owned(), K8sQuantity(r.into()))].into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn usage(pairs: &[(&str, i64)]) -> PodMetrics {
        pairs.iter().map(|(p, v)| (p.to_string(), *v)).collect()
    }

    fn calc(current: i32, pods: &[Pod], metrics: &PodMetrics, target: i32) -> Result<Proposal, String> {
        let refs: Vec<&Pod> = pods.iter().collect();
        resource_replicas(current, Target::Utilization(target), "cpu", &refs, metrics, TOLERANCE)
    }

    #[test]
    fn utilization_above_target_scales_up_by_the_usage_ratio() {
        let pods = vec![pod("a", Some("100m"), "Running", true), pod("b", Some("100m"), "Running", true)];
        // 90% of requests against a 50% target: ceil(2 * 1.8) = 4.
        let p = calc(2, &pods, &usage(&[("a", 90), ("b", 90)]), 50).unwrap();
        assert_eq!(p, Proposal { replicas: 4, utilization: Some(90), average_milli: 90 });
        // 20% against 50%: ceil(2 * 0.4) = 1.
        assert_eq!(calc(2, &pods, &usage(&[("a", 20), ("b", 20)]), 50).unwrap().replicas, 1);
    }

    #[test]
    fn a_ratio_within_the_tolerance_keeps_the_count() {
        let pods = vec![pod("a", Some("100m"), "Running", true), pod("b", Some("100m"), "Running", true)];
        assert_eq!(calc(2, &pods, &usage(&[("a", 54), ("b", 54)]), 50).unwrap().replicas, 2, "1.08 is within 0.1");
        assert_eq!(calc(2, &pods, &usage(&[("a", 46), ("b", 46)]), 50).unwrap().replicas, 2, "0.92 is within 0.1");
        assert_eq!(calc(2, &pods, &usage(&[("a", 60), ("b", 60)]), 50).unwrap().replicas, 3, "1.2 is not");
    }

    #[test]
    fn missing_metrics_damp_the_change() {
        let pods = vec![
            pod("a", Some("100m"), "Running", true),
            pod("b", Some("100m"), "Running", true),
            pod("c", Some("100m"), "Running", true),
        ];
        // Scaling up: the pod without metrics counts as using nothing: (100+100+0)/300 = 66%
        // against 50% -> ceil(1.32 * 3) = 4 (without it, ceil(2.0 * 2) = 4 of 2 pods).
        let p = calc(3, &pods, &usage(&[("a", 100), ("b", 100)]), 50).unwrap();
        assert_eq!(p.replicas, 4);
        assert_eq!(p.utilization, Some(100), "the reported utilisation is of the pods with metrics");
        // Scaling down: the missing pod counts as using its full request (100%): (10+10+100)/300
        // = 40% against 50% -> ceil(0.8 * 3) = 3: no change (without it, ceil(0.2 * 2) = 1).
        assert_eq!(calc(3, &pods, &usage(&[("a", 10), ("b", 10)]), 50).unwrap().replicas, 3);
        // Far below: (0+0+100)/300 = 33% against 90% -> ceil(0.37 * 3) = 2.
        let pods2 = [pod("a", Some("100m"), "Running", true), pod("b", Some("100m"), "Running", true), pod("c", Some("100m"), "Running", true)];
        assert_eq!(calc(3, &pods2, &usage(&[("a", 0), ("b", 0)]), 90).unwrap().replicas, 2);
    }

    #[test]
    fn unready_and_pending_pods_do_not_count() {
        let pods = vec![
            pod("a", Some("100m"), "Running", true),
            pod("b", Some("100m"), "Running", false),
            pod("p", Some("100m"), "Pending", false),
        ];
        // Only `a` is trusted: 100% against 50%; scaling up, the unready and pending pods
        // count as using nothing: (100+0+0)/300 = 33% is below target, so keep 3.
        assert_eq!(calc(3, &pods, &usage(&[("a", 100), ("b", 100), ("p", 100)]), 50).unwrap().replicas, 3);
        // Scaling down ignores unready pods: a at 10% -> ceil(0.2 * 1) = 1.
        let pods = vec![pod("a", Some("100m"), "Running", true), pod("x", Some("100m"), "Failed", false)];
        assert_eq!(calc(3, &pods, &usage(&[("a", 100), ("x", 0)]), 50).unwrap().replicas, 2, "failed pods' metrics are dropped");
        assert_eq!(calc(3, &pods, &usage(&[("a", 10), ("b", 100)]), 50).unwrap().replicas, 1);
    }

    #[test]
    fn errors_name_upstreams_causes() {
        let none: Vec<Pod> = vec![];
        assert_eq!(calc(1, &none, &usage(&[]), 50).unwrap_err(), "no pods returned by selector while calculating replica count");
        let pods = vec![pod("a", Some("100m"), "Pending", false)];
        assert_eq!(calc(1, &pods, &usage(&[("a", 1)]), 50).unwrap_err(), "did not receive metrics for targeted pods (pods might be unready)");
        let pods = vec![pod("a", None, "Running", true)];
        assert_eq!(calc(1, &pods, &usage(&[("a", 1)]), 50).unwrap_err(), "missing request for cpu in container c of Pod a");
    }

    #[test]
    fn average_value_targets_compare_usage_per_pod() {
        let pods = [pod("a", None, "Running", true), pod("b", None, "Running", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let p = resource_replicas(2, Target::AverageValue(100), "cpu", &refs, &usage(&[("a", 300), ("b", 300)]), TOLERANCE).unwrap();
        assert_eq!(p, Proposal { replicas: 6, utilization: None, average_milli: 300 });
    }

    #[test]
    fn min_max_and_the_scale_up_limit_clamp() {
        assert_eq!(clamp_replicas(2, 3, 1, 5, true), (3, "DesiredWithinRange", "the desired count is within the acceptable range"));
        assert_eq!(clamp_replicas(2, 0, 1, 5, true).0, 1);
        assert_eq!(clamp_replicas(2, 0, 1, 5, true).1, "TooFewReplicas");
        assert_eq!(clamp_replicas(3, 9, 1, 5, true), (5, "TooManyReplicas", "the desired replica count is more than the maximum replica count"));
        assert_eq!(clamp_replicas(2, 9, 1, 5, true).1, "ScaleUpLimit", "max(2 x 2, 4) = 4 is below maxReplicas");
        assert_eq!(clamp_replicas(2, 20, 1, 50, true), (4, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"));
        assert_eq!(clamp_replicas(10, 30, 1, 50, true).0, 20, "2 x current");
        assert_eq!(clamp_replicas(10, 30, 1, 50, false).0, 30, "with behavior the limit is its policies'");
    }

    #[test]
    fn scale_down_is_stabilized_over_the_window() {
        let t = |s: i64| jiff::Timestamp::from_second(1_000_000 + s).unwrap();
        let w = Duration::from_secs(300);
        let mut recs = vec![(t(0), 5)];
        assert_eq!(stabilize(&mut recs, t(15), w, 2), 5, "a higher recommendation 15 s ago wins");
        assert_eq!(stabilize(&mut recs, t(200), w, 3), 5);
        assert_eq!(stabilize(&mut recs, t(301), w, 2), 3, "the 5 expired; the 3 of t=200 is still in the window");
        assert_eq!(stabilize(&mut recs, t(600), w, 2), 2);
        assert_eq!(stabilize(&mut recs, t(615), w, 7), 7, "scaling up is immediate");
        assert!(recs.len() <= 3, "expired slots are reused: {recs:?}");
    }

    #[test]
    fn behavior_windows_bound_both_directions() {
        let t = |s: i64| jiff::Timestamp::from_second(1_000_000 + s).unwrap();
        let (up, down) = (Duration::from_secs(60), Duration::from_secs(0));
        let mut recs = vec![(t(0), 2)];
        // Scale up waits until the lowest recommendation of the last minute allows it.
        assert_eq!(stabilize_with_windows(&mut recs, t(10), 2, 6, up, down), 2);
        assert_eq!(stabilize_with_windows(&mut recs, t(70), 2, 6, up, down), 6);
        // No down window: scale down at once.
        assert_eq!(stabilize_with_windows(&mut recs, t(80), 6, 1, up, down), 1);
    }

    #[test]
    fn conditions_keep_their_transition_time_while_unchanged() {
        let t = |s: i64| jiff::Timestamp::from_second(1_000_000 + s).unwrap();
        let mut conds = Vec::new();
        set_condition(&mut conds, "ScalingActive", false, "FailedGetResourceMetric", "a".into(), t(0));
        set_condition(&mut conds, "ScalingActive", false, "FailedGetResourceMetric", "b".into(), t(15));
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].last_transition_time, Some(Time(t(0))));
        assert_eq!(conds[0].message.as_deref(), Some("b"));
        set_condition(&mut conds, "ScalingActive", true, "ValidMetricFound", "c".into(), t(30));
        assert_eq!(conds[0].last_transition_time, Some(Time(t(30))));
    }

    #[test]
    fn pod_metrics_sum_containers_and_skip_incomplete_pods() {
        let items = vec![
            serde_json::json!({"metadata": {"name": "a"}, "containers": [{"name": "x", "usage": {"cpu": "50m", "memory": "1Mi"}}, {"name": "y", "usage": {"cpu": "25m"}}]}),
            serde_json::json!({"metadata": {"name": "b"}, "containers": [{"name": "x", "usage": {"cpu": "1"}}]}),
        ];
        assert_eq!(usage_from_metrics(&items, "cpu"), usage(&[("a", 75), ("b", 1000)]));
        assert_eq!(usage_from_metrics(&items, "memory"), PodMetrics::new(), "a lacks memory in one container, b in all");
        assert_eq!(milli_quantity(75), "75m");
        assert_eq!(milli_quantity(2000), "2");
    }
}
