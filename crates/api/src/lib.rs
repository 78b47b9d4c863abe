//! rkube-api: shared helpers over the `k8s-openapi` types.
//!
//! - [`resources`]: the table of every resource the API server serves (group, version,
//!   kind, plural, scope, short names, subresources). Discovery, routing, OpenAPI and the
//!   storage layout all read it, so a resource is added in exactly one place.
//! - [`selector`]: label and field selector parsing and matching, with upstream's syntax.
//! - [`ObjectKey`]: a namespace/name pair.

pub mod resources;
pub mod selector;

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
