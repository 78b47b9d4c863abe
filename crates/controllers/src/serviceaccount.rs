//! The `serviceaccount` controller (upstream `pkg/controller/serviceaccount`
//! `ServiceAccountsController`): every active namespace has the `default` ServiceAccount,
//! recreated if deleted.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{run_workers, RESYNC_PERIOD};
use crate::error::{status_code, Error, Result};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;

/// The ServiceAccounts every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNTS: &[&str] = &["default"];

/// A namespace that exists and is not being deleted.
pub fn is_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none() && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

pub struct ServiceAccountController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    namespaces: Arc<Informer<Namespace>>,
    service_accounts: Arc<Informer<ServiceAccount>>,
    queue: WorkQueue<ObjectKey>,
}

impl ServiceAccountController {
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            namespaces: informers.get::<Namespace>(),
            service_accounts: informers.get::<ServiceAccount>(),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.namespaces.add_handler(move |change| {
            if let Change::Applied { new, .. } = change {
                queue.add(ObjectKey::new(None, new.metadata.name.as_deref().unwrap_or_default()));
            }
        });
        let queue = ctx.queue.clone();
        ctx.service_accounts.add_handler(move |change| {
            if let Change::Deleted(sa) = change {
                if DEFAULT_SERVICE_ACCOUNTS.contains(&sa.metadata.name.as_deref().unwrap_or_default()) {
                    queue.add(ObjectKey::new(None, sa.metadata.namespace.as_deref().unwrap_or_default()));
                }
            }
        });
        ServiceAccountController { ctx }
    }

    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("serviceaccount", queue, workers, shutdown, move |key| {
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
        for name in DEFAULT_SERVICE_ACCOUNTS {
            if self.service_accounts.get(Some(namespace), name).is_some() {
                continue;
            }
            let sa = ServiceAccount {
                metadata: ObjectMeta { name: Some((*name).into()), namespace: Some(namespace.into()), ..Default::default() },
                ..Default::default()
            };
            let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
            match api.create(&PostParams::default(), &sa).await {
                Ok(_) => tracing::debug!(namespace, name, "created service account"),
                // exists (cache lag), or the namespace is terminating meanwhile
                Err(e) if matches!(status_code(&e), Some(409 | 403)) => {}
                Err(e) => return Err(Error::api("create", format!("serviceaccount {namespace}/{name}"), e)),
            }
        }
        Ok(Some(RESYNC_PERIOD))
    }
}
