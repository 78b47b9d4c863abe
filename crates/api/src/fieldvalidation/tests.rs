use serde_json::json;

use super::*;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const CONFIGMAP: &str = "io.k8s.api.core.v1.ConfigMap";

fn strings(issues: &[Issue]) -> Vec<String> {
    issues.iter().map(Issue::to_string).collect()
}

/// The body of upstream's `create-deployment-unknown-fields-strict` capture.
const UPSTREAM_DEPLOYMENT: &str = r#"{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "fieldvalidation-demo"},
  "spec": {
    "replica": 2,
    "selector": {"matchLabels": {"app": "fieldvalidation-demo"}},
    "template": {
      "metadata": {"labels": {"app": "fieldvalidation-demo"}},
      "spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "IfNotPresent", "bogus": true}]}
    }
  }
}"#;

#[test]
fn unknown_fields_match_upstreams_capture() {
    let issues = check_json(UPSTREAM_DEPLOYMENT.as_bytes(), DEPLOYMENT).unwrap();
    assert_eq!(
        strict_error(&issues),
        "strict decoding error: unknown field \"spec.replica\", unknown field \"spec.template.spec.containers[0].bogus\""
    );
}

#[test]
fn duplicate_fields_match_upstreams_capture() {
    let body = br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dupfield"}, "data": {"k": "v"}, "data": {"k": "w"}}"#;
    let issues = check_json(body, CONFIGMAP).unwrap();
    assert_eq!(strings(&issues), ["duplicate field \"data\""]);
}

#[test]
fn duplicates_in_metadata_and_maps_have_full_paths() {
    let body = br#"{"metadata": {"name": "a", "name": "b", "labels": {"x": "1", "x": "2"}}}"#;
    let issues = check_json(body, CONFIGMAP).unwrap();
    assert_eq!(strings(&issues), ["duplicate field \"metadata.name\"", "duplicate field \"metadata.labels.x\""]);
}

#[test]
fn a_valid_object_has_no_issues() {
    let body = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"any": "thing"}, "annotations": {"a/b": "c"},
                     "managedFields": [{"manager": "m", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx",
                                                       "resources": {"limits": {"cpu": "1", "memory": 5}},
                                                       "ports": [{"containerPort": 80}]}]}}},
        "status": {"replicas": 0}
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    assert_eq!(check_json(&bytes, DEPLOYMENT).unwrap(), []);
    assert_eq!(check_value(&body, DEPLOYMENT), []);
}

#[test]
fn misspelt_fields_deep_inside_are_found_and_field_names_are_case_sensitive() {
    let body = br#"{"spec": {"Replicas": 1, "template": {"spec": {"containers": [{"name": "a"}, {"name": "b", "imagee": "x", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"nam": "s"}}}]}]}}}}"#;
    let issues = check_json(body, DEPLOYMENT).unwrap();
    assert_eq!(
        strings(&issues),
        [
            "unknown field \"spec.Replicas\"",
            "unknown field \"spec.template.spec.containers[1].imagee\"",
            "unknown field \"spec.template.spec.containers[1].env[0].valueFrom.secretKeyRef.nam\"",
        ]
    );
}

#[test]
fn check_value_reports_unknown_fields_of_a_patched_object() {
    let obj = json!({"metadata": {"name": "x", "bogus": 1}, "data": {"k": "v"}, "extra": [1]});
    assert_eq!(strings(&check_value(&obj, CONFIGMAP)), ["unknown field \"metadata.bogus\"", "unknown field \"extra\""]);
}

#[test]
fn untyped_values_take_any_field() {
    // A CRD's openAPIV3Schema: `properties` is a map of JSONSchemaProps, `default` and
    // `example` are free-form JSON.
    let body = json!({
        "spec": {"group": "x.io", "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object",
            "default": {"anything": {"goes": 1}},
            "properties": {"foo": {"type": "string", "bogus": true}}
        }}}]}
    });
    let bytes = serde_json::to_vec(&body).unwrap();
    let issues = check_json(&bytes, "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition").unwrap();
    assert_eq!(
        strings(&issues),
        ["unknown field \"spec.versions[0].schema.openAPIV3Schema.properties.foo.bogus\""]
    );
}

#[test]
fn yaml_bodies_are_checked_too_duplicates_included() {
    let body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  nam: b\ndata:\n  k: v\n  k: w\n";
    let issues = check_yaml(body, CONFIGMAP).unwrap();
    assert_eq!(strings(&issues), ["unknown field \"metadata.nam\"", "duplicate field \"data.k\""]);
}

#[test]
fn directive_parses_upstreams_values() {
    assert_eq!(Directive::parse(None), Ok(Directive::Warn));
    assert_eq!(Directive::parse(Some("Strict")), Ok(Directive::Strict));
    assert_eq!(Directive::parse(Some("Ignore")), Ok(Directive::Ignore));
    assert!(Directive::parse(Some("strict")).is_err());
}

#[test]
fn hostile_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(check_json(deep.as_bytes(), CONFIGMAP).is_err());
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert!(check_json(deep_obj.as_bytes(), CONFIGMAP).is_err());
    let deep_yaml = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(check_yaml(deep_yaml.as_bytes(), CONFIGMAP).is_err());
    // a Value built by hand deeper than any parser allows
    let mut v = json!(1);
    for _ in 0..(MAX_DEPTH * 4) {
        v = json!({"data": v});
    }
    let issues = check_value(&v, CONFIGMAP);
    assert!(issues.is_empty());
    // drop a deep Value without recursion trouble: serde_json's Drop is recursive, so keep
    // this depth modest (MAX_DEPTH * 4 levels)
}

#[test]
fn trailing_garbage_is_an_error() {
    assert!(check_json(b"{} x", CONFIGMAP).is_err());
    assert!(check_json(b"{", CONFIGMAP).is_err());
}
