//! Server-side apply: `kubectl apply --server-side` by several field managers, conflicts and
//! `--force-conflicts`, pruning of omitted fields, kube-rs `Patch::Apply`, and migration of
//! a client-side-applied object.

use kube::api::{Api, Patch, PatchParams};

use crate::harness::{json, Cluster};

const CM_A: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: shared
  namespace: default
data:
  color: blue
  size: big
"#;

fn managed(c: &Cluster, kind: &str, name: &str) -> serde_json::Value {
    let out = c.k(&[
        "get",
        kind,
        name,
        "-n",
        "default",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    json(&out)
}

fn entry<'v>(obj: &'v serde_json::Value, manager: &str) -> Option<&'v serde_json::Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

#[test]
fn two_managers_conflict_on_a_field_until_one_forces_and_omitted_fields_are_pruned() {
    let c = Cluster::start();
    let apply = |manager: &str, yaml: &str, force: bool| {
        let mut args = vec![
            "apply",
            "--server-side",
            "--field-manager",
            manager,
            "-f",
            "-",
        ];
        if force {
            args.push("--force-conflicts");
        }
        c.kubectl_with(&args, Some(yaml), &[])
    };
    let first = apply("alice", CM_A, false);
    assert!(first.ok, "{}{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("configmap/shared serverside-applied"),
        "{}",
        first.stdout
    );
    let obj = managed(&c, "configmap", "shared");
    let alice = entry(&obj, "alice").expect("alice owns fields");
    assert_eq!(alice["operation"], "Apply");
    assert_eq!(
        alice["fieldsV1"],
        json(r#"{"f:data":{"f:color":{},"f:size":{}}}"#)
    );

    // bob wants another color: kubectl reports the conflict, naming field and owner.
    let bob_yaml = CM_A.replace("color: blue\n  size: big", "color: red");
    let conflict = apply("bob", &bob_yaml, false);
    assert!(!conflict.ok, "a conflicting apply must fail");
    assert!(
        conflict.stderr.contains("conflict with \"alice\""),
        "{}",
        conflict.stderr
    );
    assert!(
        conflict.stderr.contains(".data.color"),
        "{}",
        conflict.stderr
    );
    assert_eq!(managed(&c, "configmap", "shared")["data"]["color"], "blue");

    // --force-conflicts: bob takes the field.
    let forced = apply("bob", &bob_yaml, true);
    assert!(forced.ok, "{}{}", forced.stdout, forced.stderr);
    let obj = managed(&c, "configmap", "shared");
    assert_eq!(obj["data"]["color"], "red");
    assert_eq!(
        entry(&obj, "bob").expect("bob")["fieldsV1"],
        json(r#"{"f:data":{"f:color":{}}}"#)
    );
    assert_eq!(
        entry(&obj, "alice").expect("alice")["fieldsV1"],
        json(r#"{"f:data":{"f:size":{}}}"#)
    );

    // alice drops `size` from her manifest: it is removed from the object.
    let alice_yaml = CM_A.replace("  color: blue\n  size: big", "  color: red");
    let again = apply("alice", &alice_yaml, false);
    assert!(again.ok, "{}{}", again.stdout, again.stderr);
    let obj = managed(&c, "configmap", "shared");
    assert_eq!(obj["data"], json(r#"{"color":"red"}"#));
    // alice and bob now share color.
    assert_eq!(
        entry(&obj, "alice").expect("alice")["fieldsV1"],
        json(r#"{"f:data":{"f:color":{}}}"#)
    );

    // An unchanged apply does not write.
    let rv = obj["metadata"]["resourceVersion"].clone();
    assert!(apply("alice", &alice_yaml, false).ok);
    assert_eq!(
        managed(&c, "configmap", "shared")["metadata"]["resourceVersion"],
        rv
    );
}

#[test]
fn apply_without_field_manager_is_invalid_and_apply_creates_missing_objects() {
    let c = Cluster::start();
    let path = "/api/v1/namespaces/default/configmaps/made";
    let body =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"made"},"data":{"a":"1"}}"#;
    let (code, out) = c.curl(
        "PATCH",
        path,
        Some(body),
        "application/apply-patch+yaml",
        true,
    );
    assert_eq!(code, 422, "{out}");
    assert_eq!(
        json(&out)["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let (code, out) = c.curl(
        "PATCH",
        &format!("{path}?fieldManager=tool"),
        Some(body),
        "application/apply-patch+yaml",
        true,
    );
    assert_eq!(code, 201, "{out}");
    let obj = json(&out);
    assert_eq!(obj["data"]["a"], "1");
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "tool");
    assert_eq!(obj["metadata"]["managedFields"][0]["operation"], "Apply");
    // A conflict answers upstream's Status.
    let other =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"made"},"data":{"a":"2"}}"#;
    let (code, out) = c.curl(
        "PATCH",
        &format!("{path}?fieldManager=other"),
        Some(other),
        "application/apply-patch+yaml",
        true,
    );
    assert_eq!(code, 409, "{out}");
    let status = json(&out);
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        "Apply failed with 1 conflict: conflict with \"tool\": .data.a"
    );
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldManagerConflict"
    );
}

#[test]
fn kube_rs_patch_apply_creates_updates_and_reports_conflicts() {
    let c = Cluster::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = c.client().await;
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client, "default");
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kr"}, "data": {"k": "v1"}});
        let pp = PatchParams::apply("operator");
        let created = api
            .patch("kr", &pp, &Patch::Apply(&cm))
            .await
            .expect("apply creates");
        assert_eq!(
            created
                .data
                .as_ref()
                .and_then(|d| d.get("k"))
                .map(String::as_str),
            Some("v1")
        );
        let mut changed = cm.clone();
        changed["data"]["k"] = "v2".into();
        let updated = api
            .patch("kr", &pp, &Patch::Apply(&changed))
            .await
            .expect("apply updates");
        assert_eq!(
            updated
                .data
                .as_ref()
                .and_then(|d| d.get("k"))
                .map(String::as_str),
            Some("v2")
        );
        let err = api
            .patch("kr", &PatchParams::apply("intruder"), &Patch::Apply(&cm))
            .await
            .expect_err("conflict");
        match err {
            kube::Error::Api(status) => assert_eq!(status.code, 409, "{status:?}"),
            other => panic!("unexpected error {other:?}"),
        }
        let forced = api
            .patch(
                "kr",
                &PatchParams::apply("intruder").force(),
                &Patch::Apply(&cm),
            )
            .await
            .expect("forced apply");
        let fields = forced.metadata.managed_fields.unwrap_or_default();
        let intruder = fields
            .iter()
            .find(|f| f.manager.as_deref() == Some("intruder"))
            .expect("intruder entry");
        assert_eq!(intruder.operation.as_deref(), Some("Apply"));
    });
}

#[test]
fn server_side_apply_takes_over_a_client_side_applied_object() {
    let c = Cluster::start();
    let deploy = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"#;
    c.apply(deploy);
    let obj = managed(&c, "deployment", "web");
    assert!(
        entry(&obj, "kubectl-client-side-apply").is_some(),
        "{:#}",
        obj["metadata"]["managedFields"]
    );
    // The server-side apply of the same manifest with a change neither conflicts nor keeps
    // the client-side manager's claim on what it changed.
    let updated = deploy.replace("replicas: 2", "replicas: 3");
    let r = c.kubectl_with(&["apply", "--server-side", "-f", "-"], Some(&updated), &[]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let obj = managed(&c, "deployment", "web");
    assert_eq!(obj["spec"]["replicas"], 3);
    let kubectl = entry(&obj, "kubectl").expect("kubectl Apply entry");
    assert_eq!(kubectl["operation"], "Apply");
    assert!(
        kubectl["fieldsV1"]["f:spec"].get("f:replicas").is_some(),
        "{kubectl:#}"
    );
    if let Some(csa) = entry(&obj, "kubectl-client-side-apply") {
        assert!(
            csa["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
            "{csa:#}"
        );
    }
    // Dropping a field from the manifest now removes it: ownership moved to the applier.
    let without_replicas = updated.replace("  replicas: 3\n", "");
    let r = c.kubectl_with(
        &["apply", "--server-side", "-f", "-"],
        Some(&without_replicas),
        &[],
    );
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let obj = managed(&c, "deployment", "web");
    assert_eq!(
        obj["spec"]["replicas"], 1,
        "replicas removed, then defaulted: {:#}",
        obj["spec"]
    );
}
