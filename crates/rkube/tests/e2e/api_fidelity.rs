//! kube-rs clients: watchers see every change in order and survive a server restart.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

use crate::harness::Cluster;

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name, "labels": {"test": "watch"}}, "data": {"v": v}})).expect("configmap")
}

#[test]
fn kube_rs_watcher_sees_changes_in_order_and_resumes_after_restart() {
    let mut c = Cluster::start();
    c.k(&["create", "namespace", "w"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let client = rt.block_on(c.client());
    let api: Api<ConfigMap> = Api::namespaced(client, "w");
    let watch_api = api.clone();
    rt.spawn(async move {
        let mut stream = // Only this test's objects: the controller manager adds kube-root-ca.crt to every namespace.
        watcher(watch_api, watcher::Config::default().labels("test=watch")).boxed();
        while let Some(ev) = stream.next().await {
            let line = match ev {
                Ok(watcher::Event::Apply(o)) => format!("apply {} {}", o.metadata.name.unwrap_or_default(), o.data.unwrap_or_default().get("v").cloned().unwrap_or_default()),
                Ok(watcher::Event::Delete(o)) => format!("delete {}", o.metadata.name.unwrap_or_default()),
                Ok(watcher::Event::InitDone) => "init-done".into(),
                Ok(_) => continue,
                // No back-off configured: pause here, or a watch failing at once (server
                // down) spins this task without a yield point and the runtime can never
                // shut down.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>| -> String {
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.ok().flatten().unwrap_or_else(|| "timeout".into()) })
    };
    assert_eq!(next(&mut rx), "init-done");
    rt.block_on(async {
        api.create(&PostParams::default(), &cm("a", "1")).await.expect("create");
        api.patch("a", &PatchParams::default(), &Patch::Merge(serde_json::json!({"data": {"v": "2"}}))).await.expect("patch");
        api.delete("a", &DeleteParams::default()).await.expect("delete");
    });
    assert_eq!(next(&mut rx), "apply a 1");
    assert_eq!(next(&mut rx), "apply a 2");
    assert_eq!(next(&mut rx), "delete a");

    c.stop(false);
    c.spawn();
    rt.block_on(async {
        // the old client reconnects to the same address
        let mut done = false;
        for _ in 0..50 {
            // Bounded: a request on a connection to the old server must not hang the test.
            let (params, object) = (PostParams::default(), cm("b", "after-restart"));
            let attempt = tokio::time::timeout(Duration::from_secs(5), api.create(&params, &object)).await;
            if matches!(attempt, Ok(Ok(_))) {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(done, "create after restart failed");
    });
    let mut seen = Vec::new();
    for _ in 0..5 {
        let l = next(&mut rx);
        if l == "timeout" {
            break;
        }
        seen.push(l.clone());
        if l == "apply b after-restart" {
            break;
        }
    }
    assert!(seen.contains(&"apply b after-restart".to_owned()), "watcher did not resume after restart: {seen:?}");
    rt.shutdown_timeout(Duration::from_secs(5));
}

#[test]
fn status_scale_metadata_dry_run_and_deletecollection_over_raw_http() {
    // API-server semantics only: no controller manager acting on (or adding to) the objects
    let c = Cluster::start_with(&["--disable-controller-manager"]);
    c.k(&["create", "namespace", "dev"]);
    c.apply(crate::kubectl_write::APP);
    let path = "/apis/apps/v1/namespaces/dev/deployments/web";

    // status: a write through /status changes only status; a write to the object ignores status
    let mut d = crate::harness::json(&c.k(&["get", "--raw", path]));
    d["status"] = serde_json::json!({"replicas": 2, "readyReplicas": 1});
    d["spec"]["replicas"] = 9.into();
    let (code, body) = c.curl("PUT", &format!("{path}/status"), Some(&d.to_string()), "application/json", true);
    assert_eq!(code, 200, "{body}");
    let after = crate::harness::json(&c.k(&["get", "--raw", path]));
    assert_eq!(after["status"]["readyReplicas"], 1);
    assert_eq!(after["spec"]["replicas"], 2, "spec changed through /status");
    let (code, _) = c.curl("PATCH", path, Some(r#"{"status":{"readyReplicas":7}}"#), "application/merge-patch+json", true);
    assert_eq!(code, 200);
    assert_eq!(crate::harness::json(&c.k(&["get", "--raw", path]))["status"]["readyReplicas"], 1, "status changed through the main resource");

    // scale subresource
    let scale = crate::harness::json(&c.k(&["get", "--raw", &format!("{path}/scale")]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");

    // PartialObjectMetadata
    let (code, body) = c.curl_accept("GET", "/api/v1/namespaces/dev/configmaps", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1");
    assert_eq!(code, 200);
    let list = crate::harness::json(&body);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert!(list["items"][0]["metadata"]["name"].is_string() && list["items"][0].get("data").is_none(), "{body}");

    // dry run: the defaulted object comes back, nothing is stored
    let out = c.k(&["create", "deployment", "dry", "-n", "dev", "--image=nginx", "--dry-run=server", "-o", "yaml"]);
    assert!(out.contains("progressDeadlineSeconds: 600") && out.contains("imagePullPolicy: Always"), "{out}");
    assert!(!c.kubectl(&["get", "deploy", "dry", "-n", "dev"]).ok, "dry-run stored the object");

    // deletecollection with a selector deletes only the matching objects
    for (n, l) in [("a", "x"), ("b", "x"), ("c", "z")] {
        c.apply(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\n  namespace: dev\n  labels: {{k: {l}}}\n"));
    }
    let (code, body) = c.curl("DELETE", "/api/v1/namespaces/dev/configmaps?labelSelector=k%3Dx", None, "application/json", true);
    assert_eq!(code, 200, "{body}");
    let left = c.k(&["get", "cm", "-n", "dev", "-l", "k", "-o", "name"]);
    assert_eq!(left.trim(), "configmap/c");
}
