//! The `endpointslice` controller (upstream `pkg/controller/endpointslice`): for every
//! Service with a selector, EndpointSlices (label `kubernetes.io/service-name`, managed by
//! `endpointslice-controller.k8s.io`, owned by the Service) holding one endpoint per pod with
//! the `ready`, `serving` and `terminating` conditions, grouped by resolved port set, at most
//! [`MAX_ENDPOINTS_PER_SLICE`] per slice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{key_of, new_controller_ref, run_workers, RESYNC_PERIOD};
use crate::endpoint::{endpoint_labels, service_endpoints, services_for_pod, PodEndpoint, Port};
use crate::error::{is_not_found, status_code, Error, Result};
use crate::informer::{Change, Informer, Informers};
use crate::pods;
use crate::queue::WorkQueue;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Upstream `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The wanted contents of one slice.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSlice {
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

fn slice_port(p: &Port) -> EndpointPort {
    EndpointPort { name: p.name.clone(), port: Some(p.port), protocol: Some(p.protocol.clone()), app_protocol: p.app_protocol.clone() }
}

fn slice_endpoint(e: &PodEndpoint, serving: bool) -> Endpoint {
    Endpoint {
        addresses: vec![e.ip.clone()],
        conditions: Some(EndpointConditions { ready: Some(e.ready), serving: Some(serving), terminating: Some(e.terminating) }),
        hostname: e.hostname.clone(),
        node_name: e.node_name.clone(),
        target_ref: Some(e.target_ref.clone()),
        ..Default::default()
    }
}

/// The slices a Service's endpoints make (pure): grouped by port set, chunked; one empty
/// placeholder slice when there is no endpoint. `serving` gives each endpoint's serving
/// condition (ready, ignoring termination).
pub fn desired_slices(endpoints: &[(PodEndpoint, bool)], service_ports: &[Port]) -> Vec<DesiredSlice> {
    let mut groups: BTreeMap<Vec<Port>, Vec<Endpoint>> = BTreeMap::new();
    for (e, serving) in endpoints {
        groups.entry(e.ports.clone()).or_default().push(slice_endpoint(e, *serving));
    }
    let mut out = Vec::new();
    for (ports, eps) in groups {
        for chunk in eps.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.push(DesiredSlice { ports: ports.iter().map(slice_port).collect(), endpoints: chunk.to_vec() });
        }
    }
    if out.is_empty() {
        let _ = service_ports;
        out.push(DesiredSlice { ports: Vec::new(), endpoints: Vec::new() });
    }
    out
}

pub struct EndpointSliceController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    slices: Arc<Informer<EndpointSlice>>,
    queue: WorkQueue<ObjectKey>,
}

fn managed_service(slice: &EndpointSlice) -> Option<ObjectKey> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    let service = labels.get(SERVICE_NAME_LABEL)?;
    Some(ObjectKey::new(slice.metadata.namespace.as_deref(), service))
}

impl EndpointSliceController {
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            services: informers.get::<Service>(),
            pods: informers.get::<Pod>(),
            slices: informers.get::<EndpointSlice>(),
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
        ctx.slices.add_handler(move |change| {
            let slice = match change {
                Change::Applied { new, .. } => new,
                Change::Deleted(old) => old,
            };
            if let Some(key) = managed_service(slice) {
                queue.add(key);
            }
        });
        EndpointSliceController { ctx }
    }

    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("endpointslice", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let ns = key.namespace.as_deref().unwrap_or_default();
        let Some(svc) = self.services.get(key.namespace.as_deref(), &key.name) else {
            return Ok(None); // its slices are owned by it: the garbage collector removes them
        };
        if svc.spec.as_ref().and_then(|s| s.selector.as_ref()).is_none() || svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            return Ok(None);
        }
        let candidates = self.pods.in_namespace(ns);
        let endpoints: Vec<(PodEndpoint, bool)> = service_endpoints(&svc, &candidates, true)
            .into_iter()
            .map(|e| {
                let publish = svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses) == Some(true);
                let pod = candidates.iter().find(|p| p.metadata.uid == e.target_ref.uid);
                let serving = publish || pod.is_some_and(|p| pods::is_ready(p));
                (e, serving)
            })
            .collect();
        let desired = desired_slices(&endpoints, &[]);
        let mut existing: Vec<Arc<EndpointSlice>> =
            self.slices.in_namespace(ns).into_iter().filter(|s| managed_service(s).as_ref() == Some(key)).collect();
        existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut labels = endpoint_labels(&svc);
        labels.insert(SERVICE_NAME_LABEL.into(), key.name.clone());
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let mut unused: Vec<Option<Arc<EndpointSlice>>> = existing.into_iter().map(Some).collect();
        for want in desired {
            let ports = (!want.ports.is_empty()).then(|| want.ports.clone());
            let reuse = unused.iter_mut().find(|s| s.as_ref().is_some_and(|s| s.ports == ports)).and_then(Option::take);
            let result = match reuse {
                Some(current) => {
                    let same = current.endpoints == want.endpoints && current.metadata.labels.as_ref() == Some(&labels);
                    if same {
                        continue;
                    }
                    let mut s = (*current).clone();
                    s.endpoints = want.endpoints;
                    s.metadata.labels = Some(labels.clone());
                    api.replace(s.metadata.name.as_deref().unwrap_or_default(), &PostParams::default(), &s).await.map(|_| ())
                }
                None => {
                    let s = EndpointSlice {
                        metadata: ObjectMeta {
                            generate_name: Some(format!("{}-", key.name)),
                            namespace: Some(ns.into()),
                            labels: Some(labels.clone()),
                            owner_references: Some(vec![new_controller_ref(svc.as_ref())]),
                            ..Default::default()
                        },
                        address_type: "IPv4".into(),
                        endpoints: want.endpoints,
                        ports,
                    };
                    api.create(&PostParams::default(), &s).await.map(|_| ())
                }
            };
            match result {
                Ok(()) => {}
                Err(e) if status_code(&e) == Some(403) => return Ok(None), // namespace terminating
                Err(e) => return Err(Error::api("write", format!("endpointslice for {key}"), e)),
            }
        }
        for stale in unused.into_iter().flatten() {
            let name = stale.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api("delete", format!("endpointslice {ns}/{name}"), e)),
            }
        }
        Ok(Some(RESYNC_PERIOD))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::tests::{pod, service};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn slices_group_endpoints_by_port_set_with_conditions() {
        let svc = service(IntOrString::String("http".into()), false);
        let pods = [pod("a", "10.0.0.1", true, 8080), pod("b", "10.0.0.2", false, 8080), pod("c", "10.0.0.3", true, 9090)];
        let eps: Vec<(PodEndpoint, bool)> = service_endpoints(&svc, &pods, true).into_iter().map(|e| {
            let serving = e.ready;
            (e, serving)
        }).collect();
        let slices = desired_slices(&eps, &[]);
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[0].ports[0].port, Some(8080));
        assert_eq!(slices[0].endpoints.len(), 2);
        let cond = |s: &DesiredSlice, i: usize| s.endpoints[i].conditions.clone().unwrap();
        assert_eq!((cond(&slices[0], 0).ready, cond(&slices[0], 1).ready), (Some(true), Some(false)));
        assert_eq!(cond(&slices[0], 0).terminating, Some(false));
        assert_eq!(slices[1].endpoints[0].addresses, ["10.0.0.3"]);
    }

    #[test]
    fn no_endpoints_make_one_placeholder_and_many_are_chunked() {
        assert_eq!(desired_slices(&[], &[]), vec![DesiredSlice { ports: vec![], endpoints: vec![] }]);
        let svc = service(IntOrString::Int(80), false);
        let pods: Vec<_> = (0..250).map(|i| pod(&format!("p{i}"), &format!("10.0.{}.{}", i / 200, i % 200), true, 80)).collect();
        let eps: Vec<(PodEndpoint, bool)> = service_endpoints(&svc, &pods, true).into_iter().map(|e| (e, true)).collect();
        let slices = desired_slices(&eps, &[]);
        assert_eq!(slices.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(), [100, 100, 50]);
    }
}
