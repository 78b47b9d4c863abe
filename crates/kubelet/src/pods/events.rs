//! Events about pods (core/v1, source `kubelet` on this node), as upstream's recorder
//! writes them: a bounded queue that drops when full, written by one task.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::HashMap;

use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;

/// Events queued at most.
const BUFFER: usize = 1024;
/// Event writes in flight.
const CONCURRENCY: usize = 4;

/// Queues events for the writer task; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    node: String,
}

impl Recorder {
    /// A recorder and the task that writes its events until every recorder is dropped.
    pub fn new(client: kube::Client, node: &str) -> (Recorder, impl std::future::Future<Output = ()>) {
        let (tx, rx) = mpsc::channel(BUFFER);
        (Recorder { tx, node: node.to_owned() }, write_events(client, rx))
    }

    /// Records an event about this kubelet's Node (upstream's nodeRef: kind Node, uid = the
    /// node name; cluster-scoped objects' events go to namespace `default`).
    pub fn node_event(&self, node: &str, type_: &str, reason: &str, message: &str) {
        let involved = ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.into()),
            uid: Some(node.into()),
            ..Default::default()
        };
        self.record(node, "default", involved, type_, reason, message);
    }

    /// Records an event about `pod`; `container` sets the fieldPath (`spec.containers{c}`).
    pub fn pod_event(&self, pod: &Pod, container: Option<(&str, bool)>, type_: &str, reason: &str, message: &str) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let field_path = container.map(|(c, init)| match init {
            true => format!("spec.initContainers{{{c}}}"),
            false => format!("spec.containers{{{c}}}"),
        });
        let involved = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path,
        };
        self.record(&name, &ns, involved, type_, reason, message);
    }

    /// Queues an event named `<object>.<hex time>` in `namespace`, sourced from this kubelet.
    fn record(&self, object: &str, namespace: &str, involved: ObjectReference, type_: &str, reason: &str, message: &str) {
        let now = crate::clock::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(type_.into()),
            source: Some(EventSource { component: Some("kubelet".into()), host: Some(self.node.clone()) }),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None,
            count: Some(1),
            action: None,
            related: None,
            series: None,
        };
        // A full queue drops the event, as client-go's broadcaster does.
        let _ = self.tx.try_send(event);
    }
}

/// Events remembered for aggregation; the memory is dropped when it grows past this.
const REMEMBERED: usize = 4096;

/// What makes two events "the same" for aggregation (client-go's EventCorrelator key).
fn aggregation_key(e: &Event) -> String {
    let o = &e.involved_object;
    [o.namespace.as_deref(), o.name.as_deref(), o.uid.as_deref(), o.field_path.as_deref(), e.type_.as_deref(), e.reason.as_deref(), e.message.as_deref()]
        .map(|s| s.unwrap_or(""))
        .join("\u{1f}")
}

/// What to write for an event: a new object, or one more occurrence of an earlier one.
enum Write {
    Create(Box<Event>),
    Repeat { namespace: String, name: String, count: i32, last: Time },
}

async fn write_events(client: kube::Client, rx: mpsc::Receiver<Event>) {
    let mut seen: HashMap<String, (String, i32)> = HashMap::new();
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    stream
        .map(move |e| {
            // Repeats of an event become a count on the first one, as upstream's recorder does
            // (`kubectl describe` shows "x5 over 2m").
            if seen.len() > REMEMBERED {
                seen.clear();
            }
            let key = aggregation_key(&e);
            let namespace = e.metadata.namespace.clone().unwrap_or_default();
            match seen.get_mut(&key) {
                Some((name, count)) => {
                    *count += 1;
                    let last = e.last_timestamp.clone().unwrap_or_else(|| Time(crate::clock::now()));
                    Write::Repeat { namespace, name: name.clone(), count: *count, last }
                }
                None => {
                    seen.insert(key, (e.metadata.name.clone().unwrap_or_default(), 1));
                    Write::Create(Box::new(e))
                }
            }
        })
        .map(|w| {
            let client = client.clone();
            async move {
                let result = match w {
                    Write::Create(e) => {
                        let api: Api<Event> = Api::namespaced(client, e.metadata.namespace.as_deref().unwrap_or_default());
                        api.create(&PostParams::default(), &e).await.map(|_| ())
                    }
                    Write::Repeat { namespace, name, count, last } => {
                        let api: Api<Event> = Api::namespaced(client, &namespace);
                        let body = serde_json::json!({"count": count, "lastTimestamp": last});
                        api.patch(&name, &PatchParams::default(), &Patch::Merge(&body)).await.map(|_| ())
                    }
                };
                if let Err(err) = result {
                    tracing::debug!(error = %err, "event not written");
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .for_each(|_| async {})
        .await;
}
