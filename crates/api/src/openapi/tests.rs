use super::*;
use crate::schema::definition_name;

fn refs(value: &Value, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_ref(value, prefix, &mut |name| out.push(name.to_owned()));
    out
}

/// Every `$ref` string in `value`, whatever its prefix.
fn raw_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => raw_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| raw_refs(v, out)),
        _ => {}
    }
}

fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method != "parameters" {
                out.push((path.as_str(), method.as_str(), op));
            }
        }
    }
    out
}

fn has_query_param(op: &Value, name: &str) -> bool {
    op.get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "query"))
}

#[test]
fn index_lists_every_group_version_with_its_hash() {
    let index = v3_index();
    let paths = index["paths"].as_object().expect("paths");
    let mut wanted: Vec<String> = resources::group_versions()
        .into_iter()
        .map(|(g, v)| group_version_doc_path(g, v))
        .collect();
    wanted.extend(
        [
            "api",
            "apis",
            "version",
            "apis/apps",
            "apis/rbac.authorization.k8s.io",
        ]
        .map(String::from),
    );
    for path in &wanted {
        let entry = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the index"));
        let doc = v3_document(path).expect("an indexed document is served");
        assert_eq!(
            entry["serverRelativeURL"],
            format!("/openapi/v3/{path}?hash={}", doc.hash),
            "{path}"
        );
    }
    for path in paths.keys() {
        assert!(v3(path).is_some(), "{path} is indexed but not served");
    }
    assert_eq!(
        v3("/apis/apps/v1"),
        v3("apis/apps/v1"),
        "slashes around the path are ignored"
    );
    assert!(v3("apis/widgets.example.com/v1").is_none());
}

#[test]
fn every_reference_in_every_document_resolves_within_it() {
    for path in v3_index()["paths"].as_object().expect("paths").keys() {
        let doc = v3(path).expect("served");
        assert_eq!(doc["openapi"], "3.0.0");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut all = Vec::new();
        raw_refs(doc, &mut all);
        assert!(!all.is_empty(), "{path} has no references");
        for reference in all {
            let name = reference
                .strip_prefix(REF_PREFIX)
                .unwrap_or_else(|| panic!("{path}: {reference} is not a component reference"));
            assert!(schemas.contains_key(name), "{path}: {reference} dangles");
        }
    }
}

#[test]
fn documents_hold_only_reachable_schemas() {
    let apps = v3("apis/apps/v1").expect("served");
    let schemas = apps["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas.contains_key("io.k8s.api.apps.v1.Deployment"));
    assert!(
        schemas.contains_key("io.k8s.api.core.v1.PodSpec"),
        "reached through the template"
    );
    assert!(
        !schemas.contains_key("io.k8s.api.core.v1.Node"),
        "no path of apps/v1 reaches Node"
    );
    assert!(!schemas.contains_key("io.k8s.api.batch.v1.Job"));
}

#[test]
fn every_write_operation_accepts_field_validation_and_names_its_kind() {
    for (group, version) in resources::group_versions() {
        let doc = v3(&group_version_doc_path(group, version)).expect("served");
        for (path, method, op) in operations(doc) {
            if ["post", "put", "patch"].contains(&method) {
                for param in ["fieldValidation", "dryRun", "fieldManager"] {
                    assert!(has_query_param(op, param), "{method} {path} lacks {param}");
                }
            }
            if method == "patch" {
                assert!(has_query_param(op, "force"), "{method} {path} lacks force");
            }
            if path.ends_with('/') {
                continue; // the discovery path has no kind, as upstream
            }
            assert!(op["x-kubernetes-action"].is_string(), "{method} {path}");
            assert!(
                op["x-kubernetes-group-version-kind"]["kind"].is_string(),
                "{method} {path}"
            );
        }
    }
}

/// What kubectl's QueryParamVerifierV3 does before `create`/`apply`: find a PATCH operation
/// whose group-version-kind is the object's, and `fieldValidation` among its own parameters.
#[test]
fn kubectl_finds_field_validation_on_a_patch_of_every_kind() {
    for info in resources::RESOURCES {
        let doc = v3(&group_version_doc_path(info.group, info.version)).expect("served");
        let gvk = json!({ "group": info.group, "version": info.version, "kind": info.kind });
        let found = operations(doc).into_iter().any(|(_, method, op)| {
            method == "patch"
                && op["x-kubernetes-group-version-kind"] == gvk
                && has_query_param(op, "fieldValidation")
        });
        assert!(
            found,
            "{} {}: no PATCH with fieldValidation",
            info.api_version(),
            info.kind
        );
    }
}

/// What `kubectl explain` does: find the schema carrying the kind's group-version-kind in
/// the group-version's document, then follow references.
#[test]
fn explain_finds_every_kind_and_follows_deployment_strategy() {
    for info in resources::RESOURCES {
        let doc = v3(&group_version_doc_path(info.group, info.version)).expect("served");
        let gvk = json!({ "group": info.group, "kind": info.kind, "version": info.version });
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let found: Vec<&String> = schemas
            .iter()
            .filter(|(_, s)| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|a| a.contains(&gvk))
            })
            .map(|(name, _)| name)
            .collect();
        assert_eq!(found, [&definition_name(info)], "{gvk}");
    }
    let apps = v3("apis/apps/v1").expect("served");
    let schemas = &apps["components"]["schemas"];
    let spec = &schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    let spec_name = schema::ref_target(spec).expect("spec refers to DeploymentSpec");
    let strategy = &schemas[spec_name]["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    let strategy_name = schema::ref_target(strategy).expect("strategy refers to its schema");
    assert!(schemas[strategy_name]["properties"]["rollingUpdate"].is_object());
}

#[test]
fn apps_v1_has_upstreams_paths_and_operations() {
    let apps = v3("apis/apps/v1").expect("served");
    // kube-apiserver serves 38 paths for apps/v1 (the captured upstream document).
    assert_eq!(apps["paths"].as_object().expect("paths").len(), 38);
    let item = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    assert_eq!(
        item["patch"]["operationId"],
        "patchAppsV1NamespacedDeployment"
    );
    assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
    assert_eq!(item["get"]["tags"], json!(["apps_v1"]));
    let patch_body = &item["patch"]["requestBody"]["content"];
    assert_eq!(
        patch_body["application/strategic-merge-patch+json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    let names: Vec<&Value> = item["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, ["name", "namespace", "pretty"]);
    let list = &apps["paths"]["/apis/apps/v1/deployments"]["get"];
    assert_eq!(list["operationId"], "listAppsV1DeploymentForAllNamespaces");
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentList"
    );
}

#[test]
fn v2_is_swagger_with_definitions_references_that_resolve() {
    let doc = v2();
    assert_eq!(doc["swagger"], "2.0");
    let definitions = doc["definitions"].as_object().expect("definitions");
    let mut all = Vec::new();
    raw_refs(doc, &mut all);
    assert!(all.len() > 1000);
    for reference in &all {
        let name = reference
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("{reference} is not a v2 reference"));
        assert!(definitions.contains_key(name), "{reference} dangles");
    }
    assert!(refs(doc, REF_PREFIX).is_empty());
    let int_or_string = &definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(int_or_string["type"], "string");
    assert_eq!(int_or_string["format"], "int-or-string");
    assert!(int_or_string.get("oneOf").is_none());
    // A described reference is `{"$ref", "description"}` in v2, as upstream.
    let strategy = &definitions["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(
        strategy["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy"
    );
    assert!(strategy.get("allOf").is_none());
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    let containers = &definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert!(patch["consumes"]
        .as_array()
        .expect("consumes")
        .contains(&json!("application/strategic-merge-patch+json")));
    assert!(patch["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .any(|p| p["name"] == "fieldValidation"));
}

#[test]
fn hashes_are_content_digests() {
    assert_eq!(content_hash(b""), "6C62272E07BB014262B821756295C58D");
    assert_ne!(content_hash(b"a"), content_hash(b"b"));
    let doc = v3_document("api/v1").expect("served");
    assert_eq!(doc.hash, content_hash(doc.json.as_bytes()));
    assert_eq!(
        serde_json::from_str::<Value>(&doc.json).expect("json"),
        doc.value
    );
    assert_ne!(doc.hash, v3_document("apis/apps/v1").expect("served").hash);
    assert_eq!(
        v2_document().hash,
        content_hash(v2_document().json.as_bytes())
    );
}

#[test]
fn reports_build_time() {
    // Not an assertion on time: printed so `cargo test -- --nocapture` shows the cost of the
    // first /openapi request.
    let start = std::time::Instant::now();
    let _ = schema::definitions();
    let schemas = start.elapsed();
    let _ = v3_index();
    let v3_time = start.elapsed();
    let _ = v2();
    eprintln!(
        "schemas {schemas:?}, +v3 {v3_time:?}, +v2 {:?}",
        start.elapsed()
    );
    assert!(v2_document().json.len() > 1_000_000);
}

#[test]
#[ignore = "writes the documents to $RKUBE_OPENAPI_DUMP for a manual kubectl check"]
fn dump_documents() {
    let Some(dir) = std::env::var_os("RKUBE_OPENAPI_DUMP") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::write(dir.join("index.json"), v3_index().to_string()).expect("write");
    for path in v3_index()["paths"].as_object().expect("paths").keys() {
        let file = dir.join(format!("{}.json", path.replace('/', "_")));
        std::fs::write(file, &v3_document(path).expect("served").json).expect("write");
    }
    std::fs::write(dir.join("v2.json"), &v2_document().json).expect("write");
}
