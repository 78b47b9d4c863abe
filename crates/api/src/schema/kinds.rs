//! Which `k8s-openapi` type carries the schema of each served kind.

use k8s_openapi::api::{
    apps, autoscaling, batch, certificates, coordination, core, discovery, events, networking,
    policy, rbac, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::{JsonSchema, SchemaGenerator};

/// Adds `T`'s schema (and everything it refers to) to `generator`; returns its definition name.
fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

macro_rules! kind_table {
    ($($group:literal $version:literal $kind:literal => $ty:ty;)*) => {
        /// The definition name of a served kind, `None` for a kind missing from the table.
        pub(super) fn definition_of(group: &str, version: &str, kind: &str) -> Option<String> {
            match (group, version, kind) {
                $(($group, $version, $kind) => Some(<$ty as JsonSchema>::schema_name().into_owned()),)*
                _ => None,
            }
        }

        /// Adds the schema of a served kind to `generator`; returns its definition name.
        pub(super) fn add_kind(
            generator: &mut SchemaGenerator,
            group: &str,
            version: &str,
            kind: &str,
        ) -> Option<String> {
            match (group, version, kind) {
                $(($group, $version, $kind) => Some(add::<$ty>(generator)),)*
                _ => None,
            }
        }
    };
}

kind_table! {
    "" "v1" "ConfigMap" => core::v1::ConfigMap;
    "" "v1" "Endpoints" => core::v1::Endpoints;
    "" "v1" "Event" => core::v1::Event;
    "" "v1" "LimitRange" => core::v1::LimitRange;
    "" "v1" "Namespace" => core::v1::Namespace;
    "" "v1" "Node" => core::v1::Node;
    "" "v1" "PersistentVolumeClaim" => core::v1::PersistentVolumeClaim;
    "" "v1" "PersistentVolume" => core::v1::PersistentVolume;
    "" "v1" "Pod" => core::v1::Pod;
    "" "v1" "PodTemplate" => core::v1::PodTemplate;
    "" "v1" "ReplicationController" => core::v1::ReplicationController;
    "" "v1" "ResourceQuota" => core::v1::ResourceQuota;
    "" "v1" "Secret" => core::v1::Secret;
    "" "v1" "ServiceAccount" => core::v1::ServiceAccount;
    "" "v1" "Service" => core::v1::Service;
    "apiextensions.k8s.io" "v1" "CustomResourceDefinition" =>
        apiextensions::v1::CustomResourceDefinition;
    "apps" "v1" "ControllerRevision" => apps::v1::ControllerRevision;
    "apps" "v1" "DaemonSet" => apps::v1::DaemonSet;
    "apps" "v1" "Deployment" => apps::v1::Deployment;
    "apps" "v1" "ReplicaSet" => apps::v1::ReplicaSet;
    "apps" "v1" "StatefulSet" => apps::v1::StatefulSet;
    "autoscaling" "v2" "HorizontalPodAutoscaler" => autoscaling::v2::HorizontalPodAutoscaler;
    "autoscaling" "v1" "HorizontalPodAutoscaler" => autoscaling::v1::HorizontalPodAutoscaler;
    "autoscaling" "v1" "Scale" => autoscaling::v1::Scale;
    "batch" "v1" "CronJob" => batch::v1::CronJob;
    "batch" "v1" "Job" => batch::v1::Job;
    "certificates.k8s.io" "v1" "CertificateSigningRequest" =>
        certificates::v1::CertificateSigningRequest;
    "coordination.k8s.io" "v1" "Lease" => coordination::v1::Lease;
    "discovery.k8s.io" "v1" "EndpointSlice" => discovery::v1::EndpointSlice;
    "events.k8s.io" "v1" "Event" => events::v1::Event;
    "networking.k8s.io" "v1" "IngressClass" => networking::v1::IngressClass;
    "networking.k8s.io" "v1" "Ingress" => networking::v1::Ingress;
    "networking.k8s.io" "v1" "NetworkPolicy" => networking::v1::NetworkPolicy;
    "policy" "v1" "PodDisruptionBudget" => policy::v1::PodDisruptionBudget;
    "policy" "v1" "Eviction" => policy::v1::Eviction;
    "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => rbac::v1::ClusterRoleBinding;
    "rbac.authorization.k8s.io" "v1" "ClusterRole" => rbac::v1::ClusterRole;
    "rbac.authorization.k8s.io" "v1" "RoleBinding" => rbac::v1::RoleBinding;
    "rbac.authorization.k8s.io" "v1" "Role" => rbac::v1::Role;
    "scheduling.k8s.io" "v1" "PriorityClass" => scheduling::v1::PriorityClass;
    "storage.k8s.io" "v1" "CSIDriver" => storage::v1::CSIDriver;
    "storage.k8s.io" "v1" "CSINode" => storage::v1::CSINode;
    "storage.k8s.io" "v1" "StorageClass" => storage::v1::StorageClass;
    "storage.k8s.io" "v1" "VolumeAttachment" => storage::v1::VolumeAttachment;
}

/// Definitions every document may refer to besides the kinds: request and response bodies
/// of the generic verbs, list metadata and the discovery documents.
pub(super) fn add_meta(generator: &mut SchemaGenerator) {
    add::<meta::DeleteOptions>(generator);
    add::<meta::Status>(generator);
    add::<meta::WatchEvent<()>>(generator);
    add::<meta::Patch>(generator);
    add::<meta::ListMeta>(generator);
    add::<meta::APIResourceList>(generator);
    add::<meta::APIGroup>(generator);
    add::<meta::APIGroupList>(generator);
    add::<meta::APIVersions>(generator);
    add::<k8s_openapi::apimachinery::pkg::version::Info>(generator);
}
