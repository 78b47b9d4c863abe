//! The `root-ca-certificate-publisher` controller (upstream
//! `pkg/controller/certificates/rootcacertpublisher`): the ConfigMap `kube-root-ca.crt` in
//! every active namespace holds the cluster CA under `ca.crt`, put back when edited or
//! deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{run_workers, RESYNC_PERIOD};
use crate::error::{is_not_found, status_code, Error, Result};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::serviceaccount::is_active;

pub const CONFIG_MAP: &str = "kube-root-ca.crt";
pub const KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub struct RootCaCertPublisher {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    ca_pem: String,
    namespaces: Arc<Informer<Namespace>>,
    config_maps: Arc<Informer<ConfigMap>>,
    queue: WorkQueue<ObjectKey>,
}

/// The ConfigMap's data and annotations as they must be, given the current ones (pure):
/// `None` when nothing needs to change.
pub fn desired(current: Option<&ConfigMap>, ca_pem: &str) -> Option<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let data: BTreeMap<String, String> = [(KEY.to_string(), ca_pem.to_string())].into();
    let mut annotations = current.and_then(|c| c.metadata.annotations.clone()).unwrap_or_default();
    let annotated = annotations.get(DESCRIPTION_ANNOTATION).map(String::as_str) == Some(DESCRIPTION);
    annotations.insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
    match current {
        Some(cm) if cm.data.as_ref() == Some(&data) && annotated => None,
        _ => Some((data, annotations)),
    }
}

impl RootCaCertPublisher {
    pub fn new(informers: &Informers, ca_pem: String) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            ca_pem,
            namespaces: informers.get::<Namespace>(),
            config_maps: informers.get::<ConfigMap>(),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.namespaces.add_handler(move |change| {
            if let Change::Applied { new, .. } = change {
                queue.add(ObjectKey::new(None, new.metadata.name.as_deref().unwrap_or_default()));
            }
        });
        let queue = ctx.queue.clone();
        ctx.config_maps.add_handler(move |change| {
            let cm = match change {
                Change::Applied { new, .. } => new,
                Change::Deleted(old) => old,
            };
            if cm.metadata.name.as_deref() == Some(CONFIG_MAP) {
                queue.add(ObjectKey::new(None, cm.metadata.namespace.as_deref().unwrap_or_default()));
            }
        });
        RootCaCertPublisher { ctx }
    }

    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("root-ca-cert-publisher", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key.name).await }
        })
        .await;
    }
}

impl Context {
    async fn sync(&self, namespace: &str) -> Result<Option<Duration>> {
        let Some(ns) = self.namespaces.get(None, namespace) else { return Ok(None) };
        if !is_active(&ns) {
            return Ok(None);
        }
        let current = self.config_maps.get(Some(namespace), CONFIG_MAP);
        let Some((data, annotations)) = desired(current.as_deref(), &self.ca_pem) else {
            return Ok(Some(RESYNC_PERIOD));
        };
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let result = match current {
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(CONFIG_MAP.into()),
                        namespace: Some(namespace.into()),
                        annotations: Some(annotations),
                        ..Default::default()
                    },
                    data: Some(data),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &cm).await.map(|_| ())
            }
            Some(cm) => {
                let mut cm = (*cm).clone();
                cm.data = Some(data);
                cm.binary_data = None;
                cm.metadata.annotations = Some(annotations);
                api.replace(CONFIG_MAP, &PostParams::default(), &cm).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(Some(RESYNC_PERIOD)),
            // terminating namespace, or gone meanwhile
            Err(e) if status_code(&e) == Some(403) || is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::api("publish", format!("configmap {namespace}/{CONFIG_MAP}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_map_is_rewritten_only_when_its_data_or_description_differ() {
        let (data, annotations) = desired(None, "PEM").unwrap();
        assert_eq!(data[KEY], "PEM");
        let cm = ConfigMap {
            metadata: ObjectMeta { annotations: Some(annotations), ..Default::default() },
            data: Some(data),
            ..Default::default()
        };
        assert!(desired(Some(&cm), "PEM").is_none());
        assert!(desired(Some(&cm), "OTHER").is_some());
        let mut edited = cm.clone();
        edited.data.as_mut().unwrap().insert("extra".into(), "x".into());
        assert_eq!(desired(Some(&edited), "PEM").unwrap().0.len(), 1, "extra keys are dropped");
    }
}
