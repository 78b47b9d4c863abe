//! OpenAPI schemas of every served kind.
//!
//! Contract:
//! - `definitions() -> &'static serde_json::Map<String, serde_json::Value>`: OpenAPI v3
//!   component schemas keyed by upstream definition name (`io.k8s.api.apps.v1.Deployment`),
//!   references written `{"$ref": "#/components/schemas/<name>"}` (possibly wrapped in
//!   `allOf: [{"$ref": ...}]`), properties carrying upstream's `x-kubernetes-patch-strategy`,
//!   `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//!   and each top-level kind carrying `x-kubernetes-group-version-kind`.
//! - `definition_name(info: &ResourceInfo) -> String`.
//!
//! The schemas come from `k8s-openapi`'s `schemars` impls (generated from upstream's own
//! OpenAPI document), rendered with schemars' OpenAPI 3.0 settings, then brought to the
//! shape kube-apiserver serves:
//! - a `$ref` with a sibling `description` becomes `{"description", "allOf": [{"$ref"}]}`
//!   (schemars' `RemoveRefSiblings`, which is also what upstream's v3 document does);
//! - `IntOrString` and `Quantity` get upstream's v3 `oneOf` forms;
//! - `<Kind>List` definitions are added (k8s-openapi's `List<T>` has no schema);
//! - `x-kubernetes-group-version-kind` goes on every kind, list and generic meta type;
//! - the merge metadata, which k8s-openapi drops, is put back from [`patch_meta`]'s table.
//!
//! Everything is built once, on first use, and kept for the life of the process.

mod kinds;
pub mod patch_meta;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

pub use patch_meta::{DefinitionMeta, FieldMeta, ListType, MapType, PatchStrategy};

use crate::resources::{self, ResourceInfo};

/// How a `$ref` to a component schema starts.
pub const REF_PREFIX: &str = "#/components/schemas/";

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
/// Definitions upstream serves untyped (any JSON value) while k8s-openapi gives them a type or a
/// `oneOf`: upstream's Go types declare no OpenAPI type for them.
const UNTYPED: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
/// Meta types upstream tags with every served group-version (they are registered in each).
const PER_GROUP_VERSION: &[(&str, &str)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "DeleteOptions",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
        "WatchEvent",
    ),
];
/// Meta types upstream tags with the core `v1` group-version only.
const CORE_ONLY: &[(&str, &str)] = &[
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "Status"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup", "APIGroup"),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
        "APIGroupList",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        "APIResourceList",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
        "APIVersions",
    ),
];

static DEFINITIONS: LazyLock<Map<String, Value>> = LazyLock::new(build);

/// Every component schema, keyed by upstream definition name, sorted by name.
pub fn definitions() -> &'static Map<String, Value> {
    &DEFINITIONS
}

/// The upstream definition name of a resource's kind: `io.k8s.api.apps.v1.Deployment`.
pub fn definition_name(info: &ResourceInfo) -> String {
    kinds::definition_of(info.group, info.version, info.kind)
        .unwrap_or_else(|| format!("{}.{}", api_package(info.group, info.version), info.kind))
}

/// The upstream definition name of a resource's list kind: `io.k8s.api.apps.v1.DeploymentList`.
pub fn list_definition_name(info: &ResourceInfo) -> String {
    format!("{}List", definition_name(info))
}

/// The definition name of the `autoscaling/v1` `Scale` served by `scale` subresources.
pub fn scale_definition_name() -> String {
    kinds::definition_of("autoscaling", "v1", "Scale").expect("Scale is in the kind table")
}

/// Upstream's merge metadata of `property` of `definition` (`io.k8s.api.core.v1.PodSpec`,
/// `containers`); `None` when upstream declares none (a plain field, replaced on patch).
pub fn field_meta(definition: &str, property: &str) -> Option<&'static FieldMeta> {
    patch_meta::META.properties.get(definition)?.get(property)
}

/// The `x-kubernetes-map-type` upstream puts on a whole struct (`atomic` on `LabelSelector`,
/// `ObjectReference`, ...): such a struct is replaced whole by server-side apply.
pub fn definition_map_type(definition: &str) -> Option<MapType> {
    definition_meta(definition)?.map_type
}

/// What upstream declares about a whole definition (required properties, map type); `None`
/// for a definition upstream does not have.
pub fn definition_meta(definition: &str) -> Option<&'static DefinitionMeta> {
    patch_meta::META.definitions.get(definition)
}

/// The definition a property's value refers to, looking through `allOf`, array `items` and
/// map `additionalProperties`: `("io.k8s.api.core.v1.PodSpec", "containers")` gives
/// `io.k8s.api.core.v1.Container`. `None` for scalars and unknown names.
pub fn property_ref(definition: &str, property: &str) -> Option<&'static str> {
    let schema = definitions()
        .get(definition)?
        .get("properties")?
        .get(property)?;
    ref_target(schema)
        .or_else(|| schema.get("items").and_then(ref_target))
        .or_else(|| schema.get("additionalProperties").and_then(ref_target))
}

/// The definition name a schema refers to: its own `$ref`, or a single `allOf` entry's.
pub fn ref_target(schema: &Value) -> Option<&str> {
    let reference = match schema.get("$ref") {
        Some(r) => r,
        None => match schema.get("allOf")?.as_array()?.as_slice() {
            [only] => only.get("$ref")?,
            _ => return None,
        },
    };
    reference.as_str()?.strip_prefix(REF_PREFIX)
}

/// `io.k8s.api.<group>.<version>` as upstream names Go packages, for kinds missing from the
/// kind table.
fn api_package(group: &str, version: &str) -> String {
    let short = match group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("io.k8s.api.{short}.{version}")
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    // Upstream's key order: group, kind, version.
    json!({ "group": group, "kind": kind, "version": version })
}

fn build() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut kind_names = Vec::new();
    for info in resources::RESOURCES {
        if let Some(name) = kinds::add_kind(&mut generator, info.group, info.version, info.kind) {
            kind_names.push((info, name));
        }
    }
    kinds::add_kind(&mut generator, "autoscaling", "v1", "Scale");
    kinds::add_kind(&mut generator, "policy", "v1", "Eviction");
    kinds::add_meta(&mut generator);
    let mut defs = generator.take_definitions(true);

    normalise_special_types(&mut defs);
    for (info, name) in &kind_names {
        if let Some(schema) = defs.get_mut(name).and_then(Value::as_object_mut) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([gvk(info.group, info.version, info.kind)]),
            );
        }
        let list = list_schema(info, name, &defs);
        defs.insert(format!("{name}List"), list);
    }
    tag_extra_kinds(&mut defs);
    inject_patch_meta(&mut defs);

    let sorted: BTreeMap<String, Value> = defs.into_iter().collect();
    sorted.into_iter().collect()
}

/// Gives `IntOrString` and `Quantity` the forms upstream's v3 document has (k8s-openapi only
/// marks them `x-kubernetes-int-or-string`, with no type at all), and leaves the [`UNTYPED`]
/// ones with just their description.
fn normalise_special_types(defs: &mut Map<String, Value>) {
    for name in UNTYPED {
        if let Some(schema) = defs.get_mut(*name).and_then(Value::as_object_mut) {
            schema.retain(|key, _| key == "description");
        }
    }
    let description = |defs: &Map<String, Value>, name: &str| {
        defs.get(name)
            .and_then(|s| s.get("description"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    if defs.contains_key(INT_OR_STRING) {
        let text = description(defs, INT_OR_STRING);
        defs.insert(
            INT_OR_STRING.into(),
            json!({
                "description": text,
                "oneOf": [{ "type": "integer" }, { "type": "string" }],
                "format": "int-or-string",
            }),
        );
    }
    if defs.contains_key(QUANTITY) {
        let text = description(defs, QUANTITY);
        defs.insert(
            QUANTITY.into(),
            json!({
                "description": text,
                "oneOf": [{ "type": "string" }, { "type": "number" }],
            }),
        );
    }
}

/// The `<Kind>List` schema of a resource, in upstream's shape.
fn list_schema(info: &ResourceInfo, item: &str, defs: &Map<String, Value>) -> Value {
    let property = |name: &str| {
        defs.get(item)
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(name))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "string" }))
    };
    json!({
        "description": format!("{}List is a list of {} objects.", info.kind, info.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": property("apiVersion"),
            "items": {
                "description": format!("Items is the list of {} objects.", info.kind),
                "type": "array",
                "items": { "$ref": format!("{REF_PREFIX}{item}") },
            },
            "kind": property("kind"),
            "metadata": {
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "allOf": [{ "$ref": format!("{REF_PREFIX}{LIST_META}") }],
            },
        },
        "x-kubernetes-group-version-kind": [
            gvk(info.group, info.version, &format!("{}List", info.kind)),
        ],
    })
}

/// Puts `x-kubernetes-group-version-kind` on the non-resource kinds, as upstream does.
fn tag_extra_kinds(defs: &mut Map<String, Value>) {
    let set = |defs: &mut Map<String, Value>, name: &str, value: Value| {
        if let Some(schema) = defs.get_mut(name).and_then(Value::as_object_mut) {
            schema.insert("x-kubernetes-group-version-kind".into(), value);
        }
    };
    let mut group_versions = resources::group_versions();
    group_versions.sort();
    for (name, kind) in PER_GROUP_VERSION {
        let all = group_versions
            .iter()
            .map(|(g, v)| gvk(g, v, kind))
            .collect();
        set(defs, name, Value::Array(all));
    }
    for (name, kind) in CORE_ONLY {
        set(defs, name, json!([gvk("", "v1", kind)]));
    }
    for (group, version, kind) in [("autoscaling", "v1", "Scale"), ("policy", "v1", "Eviction")] {
        if let Some(name) = kinds::definition_of(group, version, kind) {
            set(defs, &name, json!([gvk(group, version, kind)]));
        }
    }
}

/// Adds upstream's merge metadata to every property (and struct) the table names, and puts
/// upstream's `required` lists in place of k8s-openapi's (which require every non-optional
/// Rust field, `metadata` of every kind included, where upstream requires none).
fn inject_patch_meta(defs: &mut Map<String, Value>) {
    for (name, schema) in defs.iter_mut() {
        let Some(schema) = schema.as_object_mut() else {
            continue;
        };
        if let Some(own) = definition_meta(name) {
            schema.remove("required");
            if !own.required.is_empty() {
                schema.insert("required".into(), own.required.clone().into());
            }
            if let Some(map_type) = own.map_type {
                schema.insert("x-kubernetes-map-type".into(), map_type.as_str().into());
            }
        }
        let Some(properties) = patch_meta::META.properties.get(name.as_str()) else {
            continue;
        };
        for (property, meta) in properties {
            let target = schema
                .get_mut("properties")
                .and_then(|p| p.get_mut(*property))
                .and_then(Value::as_object_mut);
            if let Some(target) = target {
                for (key, value) in meta.extensions() {
                    target.insert(key.into(), value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
