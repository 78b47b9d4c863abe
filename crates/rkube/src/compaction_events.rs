//! Failed datastore compactions raised as Warning Events (reason `CompactionFailed`, on the
//! `kube-system` Namespace), so `kubectl get events -A` shows what the log and the
//! `rkube_store_compaction_failures_total` metric already say. Repeats of one failure update
//! that Event's count and lastTimestamp, as client-go's event correlator does; an Event that
//! cannot be written yet (the full disk that broke the compaction also refuses it) is
//! retried until it is.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const COMPONENT: &str = "rkube-datastore";
const NAMESPACE: &str = "kube-system";
const RETRY: Duration = Duration::from_secs(5);

/// The compactor's failure hook and the receiving end for [`run`].
pub fn channel() -> (rkube_store::compactor::FailureHook, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel::<String>(64);
    let hook: rkube_store::compactor::FailureHook = Arc::new(move |e: &rkube_store::Error| {
        let message = match std::error::Error::source(e) {
            Some(source) => format!("datastore compaction failed: {e}: {source}"),
            None => format!("datastore compaction failed: {e}"),
        };
        // Full: the failures already queued say the same.
        let _ = tx.try_send(message);
    });
    (hook, rx)
}

/// Writes the Events until `shutdown` or until the compactor is gone.
pub async fn run(client: kube::Client, mut failures: mpsc::Receiver<String>, shutdown: CancellationToken) {
    let api: Api<Event> = Api::namespaced(client, NAMESPACE);
    let mut current: Option<Event> = None;
    let mut created = false;
    let mut dirty = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            message = failures.recv() => {
                let Some(message) = message else { return };
                let now = Time(jiff::Timestamp::now());
                match current.as_mut() {
                    Some(event) if event.message.as_deref() == Some(message.as_str()) => {
                        event.count = Some(event.count.unwrap_or(1) + 1);
                        event.last_timestamp = Some(now);
                    }
                    _ => {
                        current = Some(new_event(message, now));
                        created = false;
                    }
                }
                dirty = true;
            }
            _ = tokio::time::sleep(RETRY), if dirty => {}
        }
        let Some(event) = current.as_ref().filter(|_| dirty) else { continue };
        let name = event.metadata.name.clone().unwrap_or_default();
        let written = if created {
            let patch = serde_json::json!({"count": event.count, "lastTimestamp": event.last_timestamp});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
        } else {
            api.create(&PostParams::default(), event).await.map(|_| ())
        };
        match written {
            Ok(()) => (created, dirty) = (true, false),
            Err(e) => tracing::debug!(error = %e, "compaction failure event not written yet; retrying"),
        }
    }
}

fn new_event(message: String, now: Time) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{NAMESPACE}.{:x}", now.0.as_nanosecond())),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
            name: Some(NAMESPACE.into()),
            ..Default::default()
        },
        reason: Some("CompactionFailed".into()),
        message: Some(message),
        type_: Some("Warning".into()),
        source: Some(EventSource { component: Some(COMPONENT.into()), host: None }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(COMPONENT.into()),
        ..Default::default()
    }
}
