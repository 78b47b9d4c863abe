//! The `endpoint` controller (upstream `pkg/controller/endpoint`): for every Service with a
//! selector, an Endpoints object of the same name listing the matching pods' addresses,
//! ready ones under `addresses` and the rest under `notReadyAddresses`, with each Service
//! port's target port resolved per pod (named ports through the pod's container ports).
//! [`pod_endpoint`] and [`services_for_pod`] are shared with the `endpointslice` controller.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use rkube_api::selector::LabelSelector;
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{key_of, run_workers, RESYNC_PERIOD};
use crate::error::{is_not_found, status_code, Error, Result};
use crate::informer::{Change, Informer, Informers};
use crate::pods;
use crate::queue::WorkQueue;

pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// One resolved port of a pod endpoint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub name: Option<String>,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// What a pod contributes to a Service's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEndpoint {
    pub ip: String,
    pub node_name: Option<String>,
    pub hostname: Option<String>,
    pub target_ref: ObjectReference,
    /// Ready (or the Service publishes not-ready addresses).
    pub ready: bool,
    pub terminating: bool,
    /// The Service's ports this pod resolves, sorted.
    pub ports: Vec<Port>,
}

fn selector_of(svc: &Service) -> Option<LabelSelector> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().map(LabelSelector::from_map)
}

/// Upstream `podutil.FindPort`: a number as is, a name through the containers' ports of the
/// same protocol.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match sp.target_port.as_ref() {
        None => Some(sp.port),
        Some(IntOrString::Int(0)) => Some(sp.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => pod.spec.as_ref()?.containers.iter().flat_map(|c| c.ports.iter().flatten()).find_map(|p| {
            (p.name.as_deref() == Some(name.as_str()) && p.protocol.as_deref().unwrap_or("TCP") == protocol).then_some(p.container_port)
        }),
    }
}

/// The endpoint `pod` gives `svc`, or `None` when it gives none (upstream
/// `ShouldPodBeInEndpoints`: no IP, finished, or terminating unless `include_terminating`,
/// or none of the Service's ports resolves).
pub fn pod_endpoint(svc: &Service, pod: &Pod, include_terminating: bool) -> Option<PodEndpoint> {
    let status = pod.status.as_ref()?;
    let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
    let terminating = pods::is_terminating(pod);
    if terminating && !include_terminating {
        return None;
    }
    let phase = status.phase.as_deref().unwrap_or("");
    let restart = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always");
    let finished = match restart {
        "Never" => matches!(phase, "Failed" | "Succeeded"),
        "OnFailure" => phase == "Succeeded",
        _ => false,
    };
    if finished {
        return None;
    }
    let spec = svc.spec.as_ref()?;
    let service_ports = spec.ports.clone().unwrap_or_default();
    let mut ports: Vec<Port> = service_ports
        .iter()
        .filter_map(|sp| {
            Some(Port {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port: find_port(pod, sp)?,
                protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    if !service_ports.is_empty() && ports.is_empty() {
        return None;
    }
    ports.sort();
    let pod_spec = pod.spec.as_ref();
    let service_name = svc.metadata.name.as_deref().unwrap_or_default();
    let hostname = pod_spec
        .filter(|s| s.subdomain.as_deref() == Some(service_name))
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty());
    Some(PodEndpoint {
        ip,
        node_name: pod_spec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
        hostname,
        target_ref: ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        },
        ready: spec.publish_not_ready_addresses == Some(true) || (pods::is_ready(pod) && !terminating),
        terminating,
        ports,
    })
}

/// The endpoints of `svc` over `candidates` (pods of its namespace), sorted by IP.
pub fn service_endpoints(svc: &Service, candidates: &[Arc<Pod>], include_terminating: bool) -> Vec<PodEndpoint> {
    let Some(selector) = selector_of(svc) else { return Vec::new() };
    let empty = BTreeMap::new();
    let mut out: Vec<PodEndpoint> = candidates
        .iter()
        .filter(|p| selector.matches(p.metadata.labels.as_ref().unwrap_or(&empty)))
        .filter_map(|p| pod_endpoint(svc, p, include_terminating))
        .collect();
    out.sort_by(|a, b| a.ip.cmp(&b.ip).then_with(|| a.target_ref.uid.cmp(&b.target_ref.uid)));
    out
}

/// The subsets of a Service's Endpoints (upstream `RepackSubsets`): addresses grouped by
/// identical port lists, ready and not ready apart, sorted.
pub fn subsets(endpoints: &[PodEndpoint]) -> Vec<EndpointSubset> {
    let mut groups: BTreeMap<Vec<Port>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for e in endpoints {
        let address = EndpointAddress {
            ip: e.ip.clone(),
            hostname: e.hostname.clone(),
            node_name: e.node_name.clone(),
            target_ref: Some(e.target_ref.clone()),
        };
        let group = groups.entry(e.ports.clone()).or_default();
        if e.ready { group.0.push(address) } else { group.1.push(address) }
    }
    groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|p| EndpointPort { name: p.name, port: p.port, protocol: Some(p.protocol), app_protocol: p.app_protocol })
                    .collect()
            }),
        })
        .collect()
}

/// Keys of the Services in the pod's namespace whose selector matches its labels (either
/// version's, so a pod leaving a Service updates it too).
pub fn services_for_pod(services: &Informer<Service>, old: Option<&Pod>, new: &Pod) -> BTreeSet<ObjectKey> {
    let empty = BTreeMap::new();
    let ns = new.metadata.namespace.as_deref().unwrap_or_default();
    let label_sets: Vec<&BTreeMap<String, String>> =
        [old, Some(new)].into_iter().flatten().map(|p| p.metadata.labels.as_ref().unwrap_or(&empty)).collect();
    services
        .in_namespace(ns)
        .into_iter()
        .filter(|svc| selector_of(svc).is_some_and(|sel| label_sets.iter().any(|l| sel.matches(l))))
        .map(|svc| key_of(svc.as_ref()))
        .collect()
}

/// The labels of a Service's Endpoints or EndpointSlices: the Service's, plus the headless
/// label for a headless Service.
pub fn endpoint_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

pub struct EndpointController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    endpoints: Arc<Informer<Endpoints>>,
    queue: WorkQueue<ObjectKey>,
}

impl EndpointController {
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            services: informers.get::<Service>(),
            pods: informers.get::<Pod>(),
            endpoints: informers.get::<Endpoints>(),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.services.add_handler(move |change| match change {
            Change::Applied { new, .. } => queue.add(key_of(new.as_ref())),
            Change::Deleted(old) => queue.add(key_of(old.as_ref())),
        });
        let weak = Arc::downgrade(&ctx);
        ctx.pods.add_handler(move |change| {
            let Some(ctx) = weak.upgrade() else { return };
            let (old, new) = match change {
                Change::Applied { old, new } => (old.as_deref(), new.as_ref()),
                Change::Deleted(old) => (None, old.as_ref()),
            };
            for key in services_for_pod(&ctx.services, old, new) {
                ctx.queue.add(key);
            }
        });
        let queue = ctx.queue.clone();
        ctx.endpoints.add_handler(move |change| {
            // an Endpoints object edited or deleted by someone else is put back
            if let Change::Deleted(old) = change {
                queue.add(key_of(old.as_ref()));
            }
        });
        EndpointController { ctx }
    }

    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("endpoint", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    /// Upstream `syncService`.
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get(key.namespace.as_deref(), &key.name) else {
            // The Service is gone: so are its Endpoints.
            return match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => Ok(None),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(Error::api("delete", format!("endpoints {key}"), e)),
            };
        };
        if selector_of(&svc).is_none() {
            return Ok(None); // Endpoints of a Service without selector are the user's
        }
        let publish = svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses) == Some(true);
        let endpoints = service_endpoints(&svc, &self.pods.in_namespace(ns), publish);
        let subsets = subsets(&endpoints);
        let labels = endpoint_labels(&svc);
        let current = self.endpoints.get(key.namespace.as_deref(), &key.name);
        let current_subsets = current.as_ref().and_then(|e| e.subsets.clone()).unwrap_or_default();
        let current_labels = current.as_ref().and_then(|e| e.metadata.labels.clone()).unwrap_or_default();
        if current.is_some() && current_subsets == subsets && current_labels == labels {
            return Ok(Some(RESYNC_PERIOD));
        }
        let result = match current {
            None => {
                let e = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(key.name.clone()),
                        namespace: Some(ns.into()),
                        labels: Some(labels),
                        ..Default::default()
                    },
                    subsets: (!subsets.is_empty()).then_some(subsets),
                };
                api.create(&PostParams::default(), &e).await.map(|_| ())
            }
            Some(current) => {
                let mut e = (*current).clone();
                e.metadata.labels = Some(labels);
                e.subsets = (!subsets.is_empty()).then_some(subsets);
                api.replace(&key.name, &PostParams::default(), &e).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(Some(RESYNC_PERIOD)),
            Err(e) if status_code(&e) == Some(403) => Ok(None), // namespace terminating
            Err(e) => Err(Error::api("write", format!("endpoints {key}"), e)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
