use crate::harness::{json, Cluster};

#[test]
fn version_api_resources_and_api_versions_answer_like_upstream() {
    let c = Cluster::start();
    let v = c.k(&["version", "-o", "json"]);
    let v = json(&v);
    assert_eq!(v["serverVersion"]["major"], "1");
    assert_eq!(v["serverVersion"]["minor"], "33");

    let resources = c.k(&["api-resources"]);
    let header = resources.lines().next().unwrap_or_default();
    for col in ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"] {
        assert!(header.contains(col), "missing column {col}: {header}");
    }
    for line in [
        "deployments ", "pods ", "services ", "customresourcedefinitions ", "horizontalpodautoscalers ",
        "leases ", "endpointslices ", "clusterrolebindings ", "priorityclasses ", "certificatesigningrequests ",
    ] {
        assert!(resources.lines().any(|l| l.starts_with(line)), "api-resources lacks {line}:\n{resources}");
    }
    let deploy = resources.lines().find(|l| l.starts_with("deployments ")).unwrap_or_default();
    assert!(deploy.contains("deploy") && deploy.contains("apps/v1") && deploy.contains("true") && deploy.contains("Deployment"));

    let versions = c.k(&["api-versions"]);
    for gv in ["v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "rbac.authorization.k8s.io/v1",
               "apiextensions.k8s.io/v1", "coordination.k8s.io/v1", "events.k8s.io/v1", "storage.k8s.io/v1"] {
        assert!(versions.lines().any(|l| l == gv), "api-versions lacks {gv}:\n{versions}");
    }
}

#[test]
fn explain_reads_the_openapi_schemas() {
    let c = Cluster::start();
    let out = c.k(&["explain", "deployment.spec.strategy"]);
    assert!(out.contains("KIND:       Deployment") || out.contains("KIND:     Deployment"), "{out}");
    assert!(out.contains("rollingUpdate"), "{out}");
    assert!(out.contains("type"), "{out}");
    let out = c.k(&["explain", "pods.spec.containers.ports"]);
    assert!(out.contains("containerPort"), "{out}");
}

#[test]
fn openapi_v3_lists_every_served_group_version() {
    let c = Cluster::start();
    let index = json(&c.k(&["get", "--raw", "/openapi/v3"]));
    let api_versions = c.k(&["api-versions"]);
    for gv in api_versions.lines() {
        let key = if gv.contains('/') { format!("apis/{gv}") } else { format!("api/{gv}") };
        let url = index["paths"][&key]["serverRelativeURL"].as_str().unwrap_or_else(|| panic!("{key} missing from /openapi/v3"));
        let doc = json(&c.k(&["get", "--raw", url]));
        assert!(doc["components"]["schemas"].as_object().is_some_and(|s| !s.is_empty()), "{key} has no schemas");
    }
}

#[test]
fn aggregated_discovery_is_served_to_kubectl() {
    let c = Cluster::start();
    let (code, body) = c.curl("GET", "/apis", None, "application/json", true);
    assert_eq!(code, 200);
    assert_eq!(json(&body)["kind"], "APIGroupList");
    // kubectl -v=6 shows which discovery it used: aggregated documents are one request each
    let r = c.kubectl(&["api-resources", "-v=6"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(!r.stderr.contains("/apis/apps/v1 "), "kubectl fell back to per-group discovery:\n{}", r.stderr);
}
