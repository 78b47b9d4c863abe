//! A core/v1 Event recorder, as client-go's `EventRecorder` for a controller: events go
//! through a bounded channel to a writer task and are dropped when it is full.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Resource;
use tokio::sync::mpsc;

const BUFFER: usize = 1000;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// Records events on behalf of one component (`replicaset-controller`, ...).
#[derive(Clone)]
pub struct Recorder {
    component: &'static str,
    tx: mpsc::Sender<Event>,
}

impl Recorder {
    /// Starts the writer task (it ends when every recorder is dropped).
    pub fn new(client: kube::Client, component: &'static str) -> Self {
        let (tx, mut rx) = mpsc::channel::<Event>(BUFFER);
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let ns = e.metadata.namespace.clone().unwrap_or_else(|| "default".into());
                let api: Api<Event> = Api::namespaced(client.clone(), &ns);
                if let Err(err) = api.create(&PostParams::default(), &e).await {
                    tracing::debug!(error = %err, "event not recorded");
                }
            }
        });
        Recorder { component, tx }
    }

    /// Records an event about `object` (type [`NORMAL`] or [`WARNING`]).
    pub fn event<K: Resource<DynamicType = ()>>(&self, object: &K, type_: &str, reason: &str, message: String) {
        let meta = object.meta();
        let now = Time(jiff::Timestamp::now());
        let name = meta.name.clone().unwrap_or_default();
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.0.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                name: Some(name),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(type_.into()),
            source: Some(EventSource { component: Some(self.component.into()), host: None }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some(self.component.into()),
            reporting_instance: Some(self.component.into()),
            ..Default::default()
        };
        let _ = self.tx.try_send(event);
    }
}
