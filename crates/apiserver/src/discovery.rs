//! Discovery documents: legacy (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`) and the
//! aggregated `apidiscovery.k8s.io` lists kubectl 1.27+ asks for first.

use rkube_api::resources::{self, ResourceInfo, Scope};
use serde_json::{json, Value};

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

fn sub_verbs(sub: &str) -> &'static [&'static str] {
    // the connect subresources, as upstream's discovery lists them
    match sub {
        "log" => return &["get"],
        "exec" | "attach" | "portforward" => return &["create", "get"],
        "proxy" => return &["create", "delete", "get", "patch", "update"],
        _ => {}
    }
    if sub == "finalize" {
        &["update"]
    } else if sub == "binding" || sub == "eviction" {
        &["create"]
    } else {
        SUB_VERBS
    }
}

/// Groups in discovery order, each with its versions, preferred first.
fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (g, v) in resources::group_versions() {
        if g.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(name, _)| *name == g) {
            Some((_, versions)) => versions.push(v),
            None => out.push((g, vec![v])),
        }
    }
    out
}

fn group_version(g: &str, v: &str) -> String {
    if g.is_empty() {
        v.to_owned()
    } else {
        format!("{g}/{v}")
    }
}

/// `/api`: APIVersions.
pub fn legacy_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(name, v), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0].clone()})
}

/// `/apis`: APIGroupList.
pub fn group_list() -> Value {
    let groups: Vec<Value> = groups().iter().map(|(g, vs)| api_group(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`: APIGroup, or `None` if not served.
pub fn group(name: &str) -> Option<Value> {
    groups().iter().find(|(g, _)| *g == name).map(|(g, vs)| {
        let mut doc = api_group(g, vs);
        doc["kind"] = "APIGroup".into();
        doc["apiVersion"] = "v1".into();
        doc
    })
}

fn sub_kind(info: &ResourceInfo, sub: &str) -> (&'static str, &'static str, &'static str) {
    match sub {
        "scale" => ("autoscaling", "v1", "Scale"),
        "binding" => ("", "", "Binding"),
        "eviction" => ("policy", "v1", "Eviction"),
        "exec" => ("", "", "PodExecOptions"),
        "attach" => ("", "", "PodAttachOptions"),
        "portforward" => ("", "", "PodPortForwardOptions"),
        "proxy" if info.kind == "Node" => ("", "", "NodeProxyOptions"),
        _ => ("", "", info.kind),
    }
}

fn scope_namespaced(info: &ResourceInfo) -> bool {
    info.scope == Scope::Namespaced
}

/// `/api/v1` or `/apis/<group>/<version>`: APIResourceList, or `None` if not served.
pub fn resource_list(g: &str, v: &str) -> Option<Value> {
    let mut list = Vec::new();
    for info in resources::resources_of(g, v) {
        let mut r = json!({
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": scope_namespaced(info),
            "kind": info.kind,
            "verbs": VERBS,
        });
        if !info.short_names.is_empty() {
            r["shortNames"] = json!(info.short_names);
        }
        if !info.categories.is_empty() {
            r["categories"] = json!(info.categories);
        }
        list.push(r);
        for sub in info.subresources {
            let (sg, sv, kind) = sub_kind(info, sub);
            let mut s = json!({
                "name": format!("{}/{sub}", info.plural),
                "singularName": "",
                "namespaced": scope_namespaced(info),
                "kind": kind,
                "verbs": sub_verbs(sub),
            });
            if !sg.is_empty() {
                s["group"] = sg.into();
                s["version"] = sv.into();
            }
            list.push(s);
        }
    }
    if list.is_empty() {
        return None;
    }
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(g, v), "resources": list}))
}

fn aggregated_version(g: &str, v: &str) -> Value {
    let resources: Vec<Value> = resources::resources_of(g, v)
        .map(|info| {
            let mut r = json!({
                "resource": info.plural,
                "responseKind": {"group": "", "version": "", "kind": info.kind},
                "scope": if scope_namespaced(info) { "Namespaced" } else { "Cluster" },
                "singularResource": info.singular,
                "verbs": VERBS,
            });
            if !info.short_names.is_empty() {
                r["shortNames"] = json!(info.short_names);
            }
            if !info.categories.is_empty() {
                r["categories"] = json!(info.categories);
            }
            if !info.subresources.is_empty() {
                r["subresources"] = info
                    .subresources
                    .iter()
                    .map(|sub| {
                        let (sg, sv, kind) = sub_kind(info, sub);
                        json!({"subresource": sub, "responseKind": {"group": sg, "version": sv, "kind": kind}, "verbs": sub_verbs(sub)})
                    })
                    .collect();
            }
            r
        })
        .collect();
    json!({"version": v, "resources": resources, "freshness": "Current"})
}

/// The aggregated discovery document: for `/api` the core group only, for `/apis` every
/// other group. `version` is the apidiscovery version the client asked for (`v2` or `v2beta1`).
pub fn aggregated(legacy: bool, version: &str) -> Value {
    let items: Vec<Value> = if legacy {
        vec![json!({"metadata": {"creationTimestamp": null}, "versions": [aggregated_version("", "v1")]})]
    } else {
        groups()
            .iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs.iter().map(|v| aggregated_version(g, v)).collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
            })
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// Which aggregated discovery version, if any, the `Accept` header asks for, in the
/// client's order of preference.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        if params.contains(&"as=APIGroupDiscoveryList") && params.contains(&"g=apidiscovery.k8s.io") {
            if params.contains(&"v=v2") {
                return Some("v2");
            }
            if params.contains(&"v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if params.first().is_some_and(|m| *m == "application/json" || *m == "*/*") && params.len() == 1 {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_deployments_with_scale() {
        let doc = resource_list("apps", "v1").expect("apps/v1 served");
        let names: Vec<&str> = doc["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"deployments") && names.contains(&"deployments/scale"));
        let scale = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["kind"], "Scale");
    }

    #[test]
    fn aggregated_lists_every_group_with_preferred_version_first() {
        let doc = aggregated(false, "v2");
        let items = doc["items"].as_array().unwrap();
        let autoscaling = items.iter().find(|i| i["metadata"]["name"] == "autoscaling").unwrap();
        assert_eq!(autoscaling["versions"][0]["version"], "v2");
        assert!(!items.iter().any(|i| i["metadata"]["name"] == ""));
        let core = aggregated(true, "v2");
        assert_eq!(core["items"][0]["versions"][0]["version"], "v1");
    }

    #[test]
    fn accept_negotiation_follows_client_preference() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(wants_aggregated(kubectl), Some("v2"));
        assert_eq!(wants_aggregated("application/json"), None);
        assert_eq!(wants_aggregated("application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"), None);
    }
}
