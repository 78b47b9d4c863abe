//! rkube-api: shared helpers over the `k8s-openapi` types.
//!
//! - [`resources`]: the table of every resource the API server serves (group, version,
//!   kind, plural, scope, short names, subresources). Discovery, routing, OpenAPI and the
//!   storage layout all read it, so a resource is added in exactly one place.
//! - [`selector`]: label and field selector parsing and matching, with upstream's syntax.
//! - [`schema`]: the OpenAPI schemas of every served kind, with the `x-kubernetes-*`
//!   extensions (patch strategy, merge key, list type, group-version-kind).
//! - [`openapi`]: the `/openapi/v2` and `/openapi/v3` documents built from [`schema`].
//! - [`strategic`]: strategic merge patch, driven by the schemas' patch metadata.
//! - [`fieldvalidation`]: unknown and duplicate field detection for `fieldValidation`.
//! - [`defaults`]: defaulting as kube-apiserver does it, per kind.
//! - [`fieldmanager`]: server-side apply and `metadata.managedFields`.
//! - [`printers`]: the `meta.k8s.io/v1` Table columns and rows kube-apiserver prints.
//! - [`quantity`]: resource quantities (`resource.Quantity`): parsing, comparison, canonical form.
//! - [`validation`]: validation as kube-apiserver does it, with upstream's field errors.
//! - [`leader`]: leader election on a `coordination.k8s.io/v1` Lease (scheduler, controller manager).
//! - [`ObjectKey`]: a namespace/name pair.

pub mod conversion;
pub mod defaults;
pub mod fieldmanager;
pub mod fieldvalidation;
pub mod leader;
pub mod openapi;
pub mod printers;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod strategic;
pub mod validation;

use std::fmt;

pub use resources::{ResourceInfo, Scope};

/// Identifies one object within a resource: `namespace/name`, or just `name` for
/// cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        ObjectKey { namespace: namespace.map(str::to_owned), name: name.to_owned() }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}
