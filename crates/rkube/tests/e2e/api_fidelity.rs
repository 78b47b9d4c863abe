//! kube-rs clients: watchers see every change in order and survive a server restart.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

use crate::harness::Cluster;

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"v": v}})).expect("configmap")
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
        let mut stream = watcher(watch_api, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let line = match ev {
                Ok(watcher::Event::Apply(o)) => format!("apply {} {}", o.metadata.name.unwrap_or_default(), o.data.unwrap_or_default().get("v").cloned().unwrap_or_default()),
                Ok(watcher::Event::Delete(o)) => format!("delete {}", o.metadata.name.unwrap_or_default()),
                Ok(watcher::Event::InitDone) => "init-done".into(),
                Ok(_) => continue,
                Err(_) => continue,
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
            if api.create(&PostParams::default(), &cm("b", "after-restart")).await.is_ok() {
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
}
