//! The `namespace` controller (upstream `pkg/controller/namespace`): finalizes namespaces
//! being deleted. The API server marks a deleted namespace (deletionTimestamp, phase
//! `Terminating`) and keeps it while its `kubernetes` finalizer (spec.finalizers) is there;
//! this controller deletes every namespaced object in it (every namespaced resource that
//! discovery lists, so custom resources too), reports progress in the namespace's status
//! conditions as upstream's `namespacedResourcesDeleter` does, waits for objects held by
//! finalizers or graceful termination, and finally removes the `kubernetes` finalizer through
//! `namespaces/{name}/finalize`, upon which the API server removes the namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use kube::discovery::{verbs, ApiResource, Discovery, Scope};
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::run_workers;
use crate::error::{is_not_found, message, Error, Result};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;

/// The finalizer the API server puts in every namespace's spec (upstream
/// `FinalizerKubernetes`).
pub const FINALIZER: &str = "kubernetes";

/// How soon a namespace whose content is still going is looked at again.
const CONTENT_RECHECK: Duration = Duration::from_secs(2);

/// The condition types this controller maintains, in upstream's order.
pub const CONDITION_TYPES: &[&str] = &[
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
];

/// The reason and message of each condition type when nothing is wrong (status False).
fn ok_condition(type_: &str) -> (&'static str, &'static str) {
    match type_ {
        "NamespaceDeletionDiscoveryFailure" => ("ResourcesDiscovered", "All resources successfully discovered"),
        "NamespaceDeletionGroupVersionParsingFailure" => ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
        "NamespaceDeletionContentFailure" => ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
        "NamespaceContentRemaining" => ("ContentRemoved", "All content successfully removed"),
        _ => ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
    }
}

/// What one deletion pass found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pass {
    /// Discovery failed (its message); content of the groups found was still deleted.
    pub discovery_error: Option<String>,
    /// Failed deletes or lists, as `<resource>.<group>: <message>`.
    pub content_errors: Vec<String>,
    /// `<resource>.<group>` → objects still there.
    pub remaining: BTreeMap<String, usize>,
    /// finalizer → objects still carrying it.
    pub finalizers: BTreeMap<String, usize>,
    /// Longest graceful termination still running among the pods (upstream
    /// `estimateGracefulTermination`).
    pub estimate: Duration,
}

impl Pass {
    /// Whether the namespace is empty and can be finalized.
    pub fn done(&self) -> bool {
        self.discovery_error.is_none() && self.content_errors.is_empty() && self.remaining.values().all(|n| *n == 0)
    }
}

/// The failing conditions of a pass (upstream `namespaceConditionUpdater`).
fn failing(pass: &Pass) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    if let Some(e) = &pass.discovery_error {
        out.push(("NamespaceDeletionDiscoveryFailure", "DiscoveryFailed", e.clone()));
    }
    if !pass.content_errors.is_empty() {
        let mut msgs = pass.content_errors.clone();
        msgs.sort();
        let text = format!("Failed to delete all resource types, {} remaining: {}", msgs.len(), msgs.join(", "));
        out.push(("NamespaceDeletionContentFailure", "ContentDeletionFailed", text));
    }
    let mut remaining: Vec<String> =
        pass.remaining.iter().filter(|(_, n)| **n > 0).map(|(gr, n)| format!("{gr} has {n} resource instances")).collect();
    if !remaining.is_empty() {
        remaining.sort();
        out.push(("NamespaceContentRemaining", "SomeResourcesRemain", format!("Some resources are remaining: {}", remaining.join(", "))));
    }
    let mut finalizers: Vec<String> =
        pass.finalizers.iter().filter(|(_, n)| **n > 0).map(|(f, n)| format!("{f} in {n} resource instances")).collect();
    if !finalizers.is_empty() {
        finalizers.sort();
        let text = format!("Some content in the namespace has finalizers remaining: {}", finalizers.join(", "));
        out.push(("NamespaceFinalizersRemaining", "SomeFinalizersRemain", text));
    }
    out
}

/// The namespace's conditions after a pass (upstream `updateConditions`): every maintained
/// type is present, True with the failure or False with the "ok" reason; a condition keeps
/// its lastTransitionTime unless its status changes. Other conditions are kept.
pub fn conditions_after(old: &[NamespaceCondition], pass: &Pass, now: jiff::Timestamp) -> Vec<NamespaceCondition> {
    let failures = failing(pass);
    let mut out: Vec<NamespaceCondition> = old.to_vec();
    for type_ in CONDITION_TYPES {
        let (status, reason, message) = match failures.iter().find(|(t, _, _)| t == type_) {
            Some((_, reason, message)) => ("True", *reason, message.clone()),
            None => {
                let (reason, message) = ok_condition(type_);
                ("False", reason, message.to_owned())
            }
        };
        match out.iter_mut().find(|c| c.type_ == *type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(Time(now));
                }
                c.status = status.into();
                c.reason = Some(reason.into());
                c.message = Some(message);
            }
            None => out.push(NamespaceCondition {
                type_: (*type_).into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message),
                last_transition_time: Some(Time(now)),
            }),
        }
    }
    out
}

/// `<resource>.<group>` as upstream prints it (`pods.` for the core group).
fn group_resource(ar: &ApiResource) -> String {
    format!("{}.{}", ar.plural, ar.group)
}

/// Seconds of graceful termination a deleted pod may still take (0 for a finished pod).
fn pod_grace(obj: &DynamicObject, now: jiff::Timestamp) -> Duration {
    let phase = obj.data.pointer("/status/phase").and_then(|p| p.as_str()).unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Duration::ZERO;
    }
    match &obj.metadata.deletion_timestamp {
        Some(Time(at)) => {
            let left = at.as_second() - now.as_second();
            Duration::from_secs(left.max(0) as u64)
        }
        None => {
            let grace = obj.data.pointer("/spec/terminationGracePeriodSeconds").and_then(|g| g.as_i64()).unwrap_or(30);
            Duration::from_secs(grace.max(0) as u64)
        }
    }
}

pub struct NamespaceController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    namespaces: Arc<Informer<Namespace>>,
    queue: WorkQueue<ObjectKey>,
}

impl NamespaceController {
    /// Registers the informer handler (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            namespaces: informers.get::<Namespace>(),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.namespaces.add_handler(move |change| {
            if let Change::Applied { new, .. } = change {
                if new.metadata.deletion_timestamp.is_some() {
                    queue.add(ObjectKey::new(None, new.metadata.name.as_deref().unwrap_or_default()));
                }
            }
        });
        NamespaceController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("namespace", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    /// Upstream `syncNamespaceFromKey` + `namespacedResourcesDeleter.Delete`.
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(ns) = self.namespaces.get(None, &key.name) else { return Ok(None) };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(None);
        }
        let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.clone()).unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(None);
        }
        let pass = self.delete_content(&key.name).await;
        self.update_conditions(&ns, &pass).await?;
        if !pass.done() {
            tracing::debug!(namespace = %key.name, remaining = ?pass.remaining, "namespace content remains");
            return Ok(Some(pass.estimate.clamp(CONTENT_RECHECK, Duration::from_secs(30))));
        }
        self.finalize(&ns).await?;
        Ok(None)
    }

    /// Deletes every namespaced object of `namespace` and counts what is left.
    async fn delete_content(&self, namespace: &str) -> Pass {
        let mut pass = Pass::default();
        let discovery = match Discovery::new(self.client.clone()).run().await {
            Ok(d) => d,
            Err(e) => {
                pass.discovery_error = Some(e.to_string());
                return pass;
            }
        };
        let now = crate::clock::now();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::LIST) || !caps.supports_operation(verbs::DELETE) {
                    continue;
                }
                if let Err(e) = self.delete_resource(namespace, &ar, &mut pass, now).await {
                    pass.content_errors.push(format!("{}: {e}", group_resource(&ar)));
                }
            }
        }
        pass
    }

    /// Deletes the objects of one resource in `namespace` (background propagation, as
    /// upstream) and records what is left.
    async fn delete_resource(&self, namespace: &str, ar: &ApiResource, pass: &mut Pass, now: jiff::Timestamp) -> Result<(), String> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, ar);
        let list = api.list(&ListParams::default()).await.map_err(|e| message(&e))?;
        let params = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
        let mut errors = Vec::new();
        for obj in list.items {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let left = match obj.metadata.deletion_timestamp {
                Some(_) => Some(obj),
                None => match api.delete(&name, &params).await {
                    Ok(either) => either.left(),
                    Err(e) if is_not_found(&e) => None,
                    Err(e) => {
                        errors.push(message(&e));
                        Some(obj)
                    }
                },
            };
            let Some(obj) = left else { continue };
            *pass.remaining.entry(group_resource(ar)).or_default() += 1;
            for f in obj.metadata.finalizers.iter().flatten() {
                *pass.finalizers.entry(f.clone()).or_default() += 1;
            }
            if ar.group.is_empty() && ar.plural == "pods" {
                pass.estimate = pass.estimate.max(pod_grace(&obj, now));
            }
        }
        match errors.first() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Writes the conditions when they changed (a namespace that is gone is fine).
    async fn update_conditions(&self, ns: &Namespace, pass: &Pass) -> Result<()> {
        let old = ns.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        let conditions = conditions_after(&old, pass, crate::clock::now());
        if conditions == old {
            return Ok(());
        }
        let name = ns.metadata.name.clone().unwrap_or_default();
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut updated = ns.clone();
        let status = updated.status.get_or_insert_with(NamespaceStatus::default);
        status.conditions = Some(conditions);
        match api.replace_status(&name, &PostParams::default(), &updated).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // On a conflict a newer version reaches the cache soon and the retry writes from it.
            Err(e) => Err(Error::api("update status of", format!("namespace {name}"), e)),
        }
    }

    /// Removes the `kubernetes` finalizer (upstream `finalizeNamespace`).
    async fn finalize(&self, ns: &Namespace) -> Result<()> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let api: Api<Namespace> = Api::all(self.client.clone());
        // Re-read: the finalize write replaces spec.finalizers with what we send.
        let mut fresh = match api.get(&name).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(Error::api("get", format!("namespace {name}"), e)),
        };
        let spec = fresh.spec.get_or_insert_with(Default::default);
        let finalizers: Vec<String> = spec.finalizers.take().unwrap_or_default().into_iter().filter(|f| f != FINALIZER).collect();
        spec.finalizers = Some(finalizers);
        match api.replace_subresource("finalize", &name, &PostParams::default(), &fresh).await {
            Ok(_) => {
                tracing::debug!(namespace = %name, "namespace finalized");
                Ok(())
            }
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("finalize", format!("namespace {name}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(cs: &'a [NamespaceCondition], t: &str) -> &'a NamespaceCondition {
        cs.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn conditions_report_remaining_content_and_finalizers_as_upstream_words_them() {
        let t0 = jiff::Timestamp::UNIX_EPOCH;
        let mut pass = Pass::default();
        pass.remaining.insert("pods.".into(), 2);
        pass.remaining.insert("configmaps.".into(), 1);
        pass.remaining.insert("deployments.apps".into(), 0);
        pass.finalizers.insert("example.com/hold".into(), 1);
        let cs = conditions_after(&[], &pass, t0);
        assert_eq!(cs.len(), 5);
        let c = find(&cs, "NamespaceContentRemaining");
        assert_eq!((c.status.as_str(), c.reason.as_deref()), ("True", Some("SomeResourcesRemain")));
        assert_eq!(c.message.as_deref(), Some("Some resources are remaining: configmaps. has 1 resource instances, pods. has 2 resource instances"));
        let f = find(&cs, "NamespaceFinalizersRemaining");
        assert_eq!(f.message.as_deref(), Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"));
        let d = find(&cs, "NamespaceDeletionDiscoveryFailure");
        assert_eq!((d.status.as_str(), d.reason.as_deref()), ("False", Some("ResourcesDiscovered")));
        assert!(!pass.done());

        // The content goes: the conditions flip to False with new transition times only there.
        let t1 = t0 + jiff::SignedDuration::from_secs(10);
        let cs2 = conditions_after(&cs, &Pass::default(), t1);
        let c = find(&cs2, "NamespaceContentRemaining");
        assert_eq!((c.status.as_str(), c.reason.as_deref(), c.message.as_deref()), ("False", Some("ContentRemoved"), Some("All content successfully removed")));
        assert_eq!(c.last_transition_time, Some(Time(t1)));
        assert_eq!(find(&cs2, "NamespaceDeletionDiscoveryFailure").last_transition_time, Some(Time(t0)));
        assert!(Pass::default().done());
    }

    #[test]
    fn failures_name_their_count_and_hold_the_namespace() {
        let pass = Pass {
            discovery_error: Some("boom".into()),
            content_errors: vec!["secrets.: forbidden".into(), "configmaps.: timeout".into()],
            ..Default::default()
        };
        let cs = conditions_after(&[], &pass, jiff::Timestamp::UNIX_EPOCH);
        let c = find(&cs, "NamespaceDeletionContentFailure");
        assert_eq!(c.reason.as_deref(), Some("ContentDeletionFailed"));
        assert_eq!(c.message.as_deref(), Some("Failed to delete all resource types, 2 remaining: configmaps.: timeout, secrets.: forbidden"));
        assert_eq!(find(&cs, "NamespaceDeletionDiscoveryFailure").reason.as_deref(), Some("DiscoveryFailed"));
        assert!(!pass.done());
    }

    #[test]
    fn graceful_pods_are_waited_for_and_finished_ones_are_not() {
        let now = jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_secs(100);
        let mut pod = DynamicObject::new("p", &ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()));
        pod.metadata.deletion_timestamp = Some(Time(now + jiff::SignedDuration::from_secs(25)));
        assert_eq!(pod_grace(&pod, now), Duration::from_secs(25));
        pod.data = serde_json::json!({"status": {"phase": "Succeeded"}});
        assert_eq!(pod_grace(&pod, now), Duration::ZERO);
    }
}
