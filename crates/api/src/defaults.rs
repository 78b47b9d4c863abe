//! Defaulting as kube-apiserver does it.
//!
//! [`apply`] decodes a request body into the `k8s-openapi` type of its kind, fills in every
//! default upstream's defaulters set (`pkg/apis/<group>/<version>/defaults.go` plus the
//! declarative `+default` markers in `zz_generated.defaults.go`, v1.33 with default feature
//! gates), and encodes the object back. Decoding through the typed struct also drops unknown
//! fields, exactly as upstream's decoder does, and rejects bodies that do not decode as the
//! kind (a string where an integer belongs): that is the API server's 400 `BadRequest`.
//!
//! Besides the defaulters, a few fields that upstream's registry strategies set in
//! `PrepareForCreate` (or its REST layer on create) are filled here too, because clients see
//! them on every created object:
//!
//! - Pod `status.phase: Pending`, `status.qosClass`, and the `PodScheduled=False` condition of
//!   a pod with scheduling gates;
//! - Namespace `spec.finalizers: [kubernetes]`;
//! - Job selector and template labels generated from `metadata.uid`;
//! - DaemonSet annotation `deprecated.daemonset.template.generation: "1"`;
//! - Service `ipFamilies`/`ipFamilyPolicy` for a single-stack IPv4 cluster and `clusterIPs`
//!   from `clusterIP`;
//! - the empty `status` upstream prints for kinds whose status is a plain Go struct
//!   (`status: {}`, or the zero counters of DaemonSet, ReplicaSet, StatefulSet, HPA, PDB).
//!
//! Those create-time fields are filled only when the body carries **no `status`**: on create
//! the registry drops a user-supplied status before calling [`apply`] (upstream's
//! `PrepareForCreate` resets it), and on update it carries the stored status over, so an
//! update never re-runs them. The Job selector needs `metadata.uid`, which the registry sets
//! before calling [`apply`] on create; without a uid no selector is generated.
//!
//! Not done here (they belong to other parts of the API server): ClusterIP and NodePort
//! allocation, admission plugins (ServiceAccount token volume, DefaultTolerationSeconds,
//! Priority, StorageObjectInUseProtection finalizers), `metadata.generation`, `uid`,
//! `creationTimestamp`, and canonicalising resource quantities (`SetDefaults_ResourceList`
//! rounds them to milli precision; quantities are kept as written).

mod apiextensions;
mod apps;
mod autoscaling;
mod batch;
mod core;
mod discovery;
mod networking;
mod policy;
mod rbac;
mod scheduling;
mod storage;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::ResourceInfo;

/// Why a body could not be defaulted.
#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    /// The body does not decode as the kind: a wrong JSON type somewhere, or a wrong
    /// `apiVersion`/`kind`. The message reads like upstream's
    /// `Pod in version "v1" cannot be handled as a Pod: ...`, with the JSON path of the field.
    #[error("{kind} in version \"{version}\" cannot be handled as a {kind}: {}{source}", path_prefix(.path))]
    Decode {
        kind: &'static str,
        version: &'static str,
        /// The JSON path of the offending field (`spec.containers[0].ports[0].containerPort`),
        /// empty when the error is at the top level.
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The defaulted object could not be encoded back to JSON (a quantity or timestamp the
    /// typed model cannot print).
    #[error("{kind} in version \"{version}\" cannot be encoded after defaulting: {source}")]
    Encode {
        kind: &'static str,
        version: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Fills in every default upstream sets for an object of `info`'s kind, in place.
///
/// `obj` is the request body with `apiVersion`, `kind` and `metadata` already set by the API
/// server. On success `obj` is the re-encoded typed object: unknown fields are gone and
/// `apiVersion`/`kind` are kept. Kinds this module does not know (custom resources) are left
/// untouched. `Err` when the body does not decode as the kind (the API server answers 400).
pub fn apply(info: &ResourceInfo, obj: &mut Value) -> Result<(), DefaultsError> {
    let target = Target {
        obj,
        kind: info.kind,
        version: info.version,
    };
    match info.group {
        "" => core::apply(target),
        "apps" => apps::apply(target),
        "autoscaling" => autoscaling::apply(target),
        "batch" => batch::apply(target),
        "apiextensions.k8s.io" => apiextensions::apply(target),
        "certificates.k8s.io" => match info.kind {
            "CertificateSigningRequest" => {
                target
                    .decode_only::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>()
            }
            _ => Ok(()),
        },
        "coordination.k8s.io" => match info.kind {
            "Lease" => target.decode_only::<k8s_openapi::api::coordination::v1::Lease>(),
            _ => Ok(()),
        },
        "discovery.k8s.io" => discovery::apply(target),
        "events.k8s.io" => match info.kind {
            "Event" => target.decode_only::<k8s_openapi::api::events::v1::Event>(),
            _ => Ok(()),
        },
        "networking.k8s.io" => networking::apply(target),
        "policy" => policy::apply(target),
        "rbac.authorization.k8s.io" => rbac::apply(target),
        "scheduling.k8s.io" => scheduling::apply(target),
        "storage.k8s.io" => storage::apply(target),
        _ => Ok(()),
    }
}

/// The body being defaulted, with the kind and version it must decode as.
struct Target<'a> {
    obj: &'a mut Value,
    kind: &'static str,
    version: &'static str,
}

impl Target<'_> {
    /// Decodes the body as `T`, runs `default` on it and encodes it back.
    ///
    /// `creating` tells `default` whether the body carried no `status` (see the module docs:
    /// create-time fields are filled only then).
    fn with<T, F>(self, default: F) -> Result<(), DefaultsError>
    where
        T: DeserializeOwned + Serialize,
        F: FnOnce(&mut T, Creating),
    {
        let creating = Creating(self.obj.get("status").is_none_or(Value::is_null));
        let mut typed: T =
            serde_path_to_error::deserialize(&*self.obj).map_err(|err| DefaultsError::Decode {
                kind: self.kind,
                version: self.version,
                path: err.path().to_string(),
                source: err.into_inner(),
            })?;
        default(&mut typed, creating);
        *self.obj = serde_json::to_value(&typed).map_err(|source| DefaultsError::Encode {
            kind: self.kind,
            version: self.version,
            source,
        })?;
        Ok(())
    }

    /// Decodes and re-encodes a kind that has no defaults: drops unknown fields and rejects
    /// bodies of the wrong shape, as upstream's decoder does.
    fn decode_only<T>(self) -> Result<(), DefaultsError>
    where
        T: DeserializeOwned + Serialize,
    {
        self.with(|_: &mut T, _| {})
    }
}

/// Whether the body came without a `status`, which is how a create reaches [`apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Creating(bool);

/// Sets `slot` to `value` when it is empty.
fn or_set<T>(slot: &mut Option<T>, value: T) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// Sets a string field to `value` when it is unset or empty (Go's `== ""`).
fn or_set_str(slot: &mut Option<String>, value: &str) {
    if slot.as_deref().is_none_or(str::is_empty) {
        *slot = Some(value.to_owned());
    }
}

#[cfg(test)]
mod tests;
