//! A watcher on ConfigMaps while 5,000 are created and deleted with compaction every second
//! ends with exactly the live set: every delete seen, or a 410 followed by a relist.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};

use crate::harness::Cluster;

const CREATES: usize = 5000;
const WRITERS: usize = 16;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("configmap")
}

fn names_and_versions<'a>(items: impl Iterator<Item = &'a ConfigMap>) -> BTreeMap<String, String> {
    items
        .map(|c| (c.metadata.name.clone().unwrap_or_default(), c.metadata.resource_version.clone().unwrap_or_default()))
        .collect()
}

fn churn(c: &Cluster) {
    c.k(&["create", "namespace", "churn"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let api: Api<ConfigMap> = Api::namespaced(rt.block_on(c.client()), "churn");
    let (reader, writer) = reflector::store();
    let watch = watcher(api.clone(), watcher::Config::default()).default_backoff();
    let reflect = reflector(writer, watch).for_each(|_| async {});
    let task = rt.spawn(reflect);
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), reader.wait_until_ready()).await.expect("watch ready").expect("reader");
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let api = api.clone();
            writers.push(tokio::spawn(async move {
                for i in (w..CREATES).step_by(WRITERS) {
                    let name = format!("c{i:05}");
                    api.create(&PostParams::default(), &cm(&name)).await.expect("create");
                    // Keep every tenth; delete the rest.
                    if i % 10 != 0 {
                        api.delete(&name, &DeleteParams::default()).await.expect("delete");
                    }
                }
            }));
        }
        for w in writers {
            w.await.expect("writer");
        }
        api.create(&PostParams::default(), &cm("zz-done")).await.expect("marker");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !reader.state().iter().any(|c| c.metadata.name.as_deref() == Some("zz-done")) {
            assert!(tokio::time::Instant::now() < deadline, "the watcher never saw the final marker");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let live = api.list(&ListParams::default()).await.expect("list");
        let want = names_and_versions(live.items.iter());
        let state = reader.state();
        let got = names_and_versions(state.iter().map(|c| c.as_ref()));
        assert_eq!(want.len(), CREATES / 10 + 1);
        if got != want {
            let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(10).collect();
            let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(10).collect();
            panic!("watcher ended with {} objects, the server has {}; extra {extra:?}, missing {missing:?}", got.len(), want.len());
        }
    });
    task.abort();
}

#[test]
fn watcher_ends_with_the_live_set_under_compaction_embedded() {
    let c = Cluster::start_with(&["--etcd-compaction-interval", "1s", "--disable-controller-manager"]);
    churn(&c);
}

#[test]
fn watcher_ends_with_the_live_set_under_compaction_etcd() {
    let etcd = crate::etcd::start_etcd(1);
    let c = Cluster::start_with(&["--datastore-endpoint", &etcd.etcd.endpoints(), "--etcd-compaction-interval", "1s", "--disable-controller-manager"]);
    churn(&c);
}
