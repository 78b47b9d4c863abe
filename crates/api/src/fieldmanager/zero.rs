//! The fields a Go object always has.
//!
//! kube-apiserver compares typed Go objects, and a Go struct always carries its non-pointer
//! struct fields (`spec`, `template`, `strategy`, ...) and its non-`omitempty` fields (as
//! `null` when nil). Whether a granular field was *added* (and so gets a `".": {}` entry in
//! managedFields) depends on that: creating a Deployment adds `spec.strategy.rollingUpdate`
//! but not `spec.strategy`, which the empty Deployment already had.
//!
//! [`fill`] adds those fields to a JSON object before it is compared: the definition's
//! `required` properties (upstream marks exactly the non-`omitempty` fields required) as
//! `null`, and the non-pointer struct fields of [`NON_POINTER_STRUCTS`] as empty structs,
//! recursively. The filled copy is only compared, never stored.

use serde_json::{Map, Value};

use super::schema::{Schemas, Shape, TypeRef};

/// Non-pointer struct fields (`omitempty` or not) of upstream's Go types, by definition.
/// Every top-level kind also has `metadata`, `spec` and `status` (see [`fill_root`]).
const NON_POINTER_STRUCTS: &[(&str, &[&str])] = &[
    ("io.k8s.api.core.v1.PodTemplateSpec", &["metadata", "spec"]),
    ("io.k8s.api.core.v1.PodTemplate", &["template"]),
    ("io.k8s.api.core.v1.Container", &["resources"]),
    ("io.k8s.api.core.v1.EphemeralContainer", &["resources"]),
    ("io.k8s.api.core.v1.ServiceStatus", &["loadBalancer"]),
    (
        "io.k8s.api.core.v1.NodeStatus",
        &["daemonEndpoints", "nodeInfo"],
    ),
    (
        "io.k8s.api.core.v1.NodeDaemonEndpoints",
        &["kubeletEndpoint"],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        &["template", "strategy"],
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetSpec",
        &["template", "updateStrategy"],
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetSpec",
        &["template", "updateStrategy"],
    ),
    ("io.k8s.api.apps.v1.ReplicaSetSpec", &["template"]),
    ("io.k8s.api.batch.v1.JobSpec", &["template"]),
    ("io.k8s.api.batch.v1.CronJobSpec", &["jobTemplate"]),
    ("io.k8s.api.batch.v1.JobTemplateSpec", &["metadata", "spec"]),
];

/// Fields a Go struct always serialises, as `null` when unset, though upstream does not mark
/// them required (a `metav1.Time` value is never omitted).
const NULL_FIELDS: &[(&str, &[&str])] = &[(
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    &["creationTimestamp"],
)];

/// Top-level fields every kind's Go struct has as values.
const ROOT_STRUCTS: &[&str] = &["metadata", "spec", "status"];

/// `value` (an object of the root type) with the fields its Go struct always has.
pub(crate) fn fill_root(schemas: Schemas<'_>, root: TypeRef<'_>, value: &Value) -> Value {
    let mut out = value.clone();
    let shape = schemas.shape(root);
    if let (Value::Object(map), Shape::Struct { properties, .. }) = (&mut out, &shape) {
        for field in ROOT_STRUCTS {
            if properties.contains_key(*field) && !map.contains_key(*field) {
                map.insert((*field).to_owned(), Value::Object(Map::new()));
            }
        }
    }
    fill(schemas, root, &mut out);
    out
}

fn fill(schemas: Schemas<'_>, tr: TypeRef<'_>, value: &mut Value) {
    let shape = schemas.shape_of(tr, Some(value));
    match (&shape, value) {
        (
            Shape::Struct {
                name,
                properties,
                atomic: false,
            },
            Value::Object(map),
        ) => {
            if let Some(name) = name {
                add_zero_fields(schemas, name, properties, map);
            }
            for (key, child) in map.iter_mut() {
                fill(schemas, schemas.field(&shape, key), child);
            }
        }
        (
            Shape::Map {
                values,
                atomic: false,
            },
            Value::Object(map),
        ) => {
            for child in map.values_mut() {
                fill(schemas, *values, child);
            }
        }
        (Shape::List { items, .. }, Value::Array(list)) => {
            for item in list {
                fill(schemas, *items, item);
            }
        }
        _ => {}
    }
}

fn add_zero_fields(
    schemas: Schemas<'_>,
    name: &str,
    properties: &Map<String, Value>,
    map: &mut Map<String, Value>,
) {
    if let Some((_, fields)) = NON_POINTER_STRUCTS.iter().find(|(def, _)| *def == name) {
        for field in *fields {
            if properties.contains_key(*field) && !map.contains_key(*field) {
                map.insert((*field).to_owned(), Value::Object(Map::new()));
            }
        }
    }
    if let Some((_, fields)) = NULL_FIELDS.iter().find(|(def, _)| *def == name) {
        for field in *fields {
            if !map.contains_key(*field) {
                map.insert((*field).to_owned(), Value::Null);
            }
        }
    }
    let required = schemas
        .defs
        .get(name)
        .and_then(|d| d.get("required"))
        .and_then(Value::as_array);
    for field in required.into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(field) {
            map.insert(field.to_owned(), Value::Null);
        }
    }
}
