//! The `default/kubernetes` Service and its Endpoints and EndpointSlice, pointing at this API
//! server, as kube-apiserver's endpoint reconciler keeps them: in-cluster clients find the API
//! at the first service IP.

use std::net::{IpAddr, Ipv4Addr};

use rkube_api::resources;
use serde_json::{json, Value};

use crate::registry::{Registry, WriteOptions};
use crate::request::ResourcePath;

/// Creates the Service (once) and makes the Endpoints and EndpointSlice name `advertise:port`.
pub async fn ensure(registry: &Registry, service_ip: Ipv4Addr, advertise: IpAddr, port: u16) {
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": service_ip.to_string(), "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    });
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": advertise.to_string()}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    let family = if advertise.is_ipv4() { "IPv4" } else { "IPv6" };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": family,
        "endpoints": [{"addresses": [advertise.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    for (group, version, plural, obj, replace) in [
        ("", "v1", "services", service, false),
        ("", "v1", "endpoints", endpoints, true),
        ("discovery.k8s.io", "v1", "endpointslices", slice, true),
    ] {
        let Some(info) = resources::find(group, version, plural) else { continue };
        if let Err(e) = ensure_one(registry, info, obj, replace).await {
            tracing::warn!(resource = plural, error = %e.message, "could not reconcile default/kubernetes");
        }
    }
}

async fn ensure_one(registry: &Registry, info: &'static rkube_api::ResourceInfo, obj: Value, replace: bool) -> crate::status::Result<()> {
    let rp = ResourcePath { info, namespace: Some("default".into()), name: Some("kubernetes".into()), subresource: None };
    match registry.get(&rp).await {
        Err(e) if e.reason == "NotFound" => {
            registry.create(info, Some("default"), obj, &WriteOptions::default()).await?;
        }
        Err(e) => return Err(e),
        Ok(current) => {
            let differs = ["subsets", "endpoints", "ports"].iter().any(|f| obj.get(*f).is_some() && current.get(*f) != obj.get(*f));
            if replace && differs {
                let mut new = obj;
                new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
                registry.update(&rp, new, &WriteOptions::default()).await?;
            }
        }
    }
    Ok(())
}
