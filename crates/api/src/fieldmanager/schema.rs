//! How server-side apply sees a schema node: a scalar, a struct, a map, a list (atomic, set
//! or map with keys) or an untyped value whose shape is deduced from the value itself.
//!
//! This is what kube-openapi's `schemaconv` makes of upstream's OpenAPI document for
//! structured-merge-diff, read from OpenAPI v3 component schemas of [`crate::schema`]'s shape:
//! - `x-kubernetes-list-type` decides a list's kind; without it a list whose
//!   `x-kubernetes-patch-strategy` includes `merge` is a map keyed by its
//!   `x-kubernetes-patch-merge-key` (or a set without one), and any other list is atomic;
//! - `x-kubernetes-map-type: atomic` on a property or on the definition makes a struct or map
//!   atomic; otherwise they are granular;
//! - a node with neither properties, additionalProperties, items nor a scalar type is untyped:
//!   objects are granular maps of untyped values, lists are atomic.

use serde_json::{Map, Value};

const REF_PREFIXES: [&str; 2] = ["#/components/schemas/", "#/definitions/"];

/// A schema node, or nothing known (`node: None`, untyped).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeRef<'a> {
    pub(crate) node: Option<&'a Value>,
}

impl TypeRef<'_> {
    pub(crate) const UNTYPED: TypeRef<'static> = TypeRef { node: None };
}

/// A list's relationship between items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListKind<'a> {
    Atomic,
    Set,
    Map(Vec<&'a str>),
}

/// The resolved shape of a schema node.
#[derive(Debug, Clone)]
pub(crate) enum Shape<'a> {
    Scalar,
    Struct {
        /// The definition name, when the struct is a named definition.
        name: Option<&'a str>,
        properties: &'a Map<String, Value>,
        atomic: bool,
    },
    Map {
        values: TypeRef<'a>,
        atomic: bool,
    },
    List {
        items: TypeRef<'a>,
        /// The definition name of the items, when they are a named definition.
        item_name: Option<&'a str>,
        kind: ListKind<'a>,
    },
    /// Nothing known: the value decides (see [`Schemas::shape_of`]).
    Untyped,
}

/// The definitions a type is looked up in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schemas<'a> {
    pub(crate) defs: &'a Map<String, Value>,
}

impl<'a> Schemas<'a> {
    /// The root type `type_name` (untyped when the definitions do not have it).
    pub(crate) fn root(&self, type_name: &str) -> TypeRef<'a> {
        TypeRef {
            node: self.defs.get(type_name),
        }
    }

    /// The shape of `tr`, with an untyped node's shape deduced from `value`.
    pub(crate) fn shape_of(&self, tr: TypeRef<'a>, value: Option<&Value>) -> Shape<'a> {
        match self.shape(tr) {
            Shape::Untyped => match value {
                Some(Value::Object(_)) => Shape::Map {
                    values: TypeRef::UNTYPED,
                    atomic: false,
                },
                Some(Value::Array(_)) => Shape::List {
                    items: TypeRef::UNTYPED,
                    item_name: None,
                    kind: ListKind::Atomic,
                },
                _ => Shape::Scalar,
            },
            shape => shape,
        }
    }

    /// The shape the schema declares for `tr`.
    pub(crate) fn shape(&self, tr: TypeRef<'a>) -> Shape<'a> {
        let Some(outer) = tr.node else {
            return Shape::Untyped;
        };
        let (name, node) = self.resolve(outer);
        let atomic_map =
            |n: &Value| n.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            let atomic = match outer.get("x-kubernetes-map-type") {
                Some(_) => atomic_map(outer),
                None => atomic_map(node),
            };
            return Shape::Struct {
                name,
                properties,
                atomic,
            };
        }
        if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            let atomic = atomic_map(outer) || atomic_map(node);
            return Shape::Map {
                values: TypeRef { node: Some(values) },
                atomic,
            };
        }
        let type_name = node.get("type").and_then(Value::as_str);
        if type_name == Some("array") {
            let items = node.get("items");
            let item_name = items.and_then(|i| self.resolve(i).0);
            return Shape::List {
                items: TypeRef { node: items },
                item_name,
                kind: list_kind(outer)
                    .or_else(|| list_kind(node))
                    .unwrap_or(ListKind::Atomic),
            };
        }
        let scalar = matches!(type_name, Some("string" | "integer" | "number" | "boolean"))
            || node.get("oneOf").is_some()
            || node.get("anyOf").is_some()
            || node.get("x-kubernetes-int-or-string").is_some();
        if scalar {
            Shape::Scalar
        } else {
            Shape::Untyped
        }
    }

    /// Follows `$ref` and single-entry `allOf` to the schema they name; returns the definition
    /// name reached, if any.
    pub(crate) fn resolve(&self, schema: &'a Value) -> (Option<&'a str>, &'a Value) {
        let mut node = schema;
        let mut name = None;
        for _ in 0..8 {
            if let Some([only]) = node
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                node = only;
                continue;
            }
            let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let target = REF_PREFIXES
                .iter()
                .find_map(|p| reference.strip_prefix(p))
                .unwrap_or(reference);
            match self.defs.get_key_value(target) {
                Some((key, def)) => {
                    name = Some(key.as_str());
                    node = def;
                }
                None => break,
            }
        }
        (name, node)
    }

    /// The type of field `key` of a struct or map shape; untyped for anything else.
    pub(crate) fn field(&self, shape: &Shape<'a>, key: &str) -> TypeRef<'a> {
        match shape {
            Shape::Struct { properties, .. } => TypeRef {
                node: properties.get(key),
            },
            Shape::Map { values, .. } => *values,
            _ => TypeRef::UNTYPED,
        }
    }

    /// The `default` of property `field` of list items `item`, for list-map keys an item omits
    /// (upstream reads them from the OpenAPI `default`; the schemas here do not carry defaults,
    /// so the ones upstream declares on list-map keys are listed).
    pub(crate) fn key_default(
        &self,
        items: TypeRef<'a>,
        item_name: Option<&str>,
        field: &str,
    ) -> Option<Value> {
        if let Some(node) = items.node {
            let (_, item) = self.resolve(node);
            let declared = item
                .get("properties")
                .and_then(|p| p.get(field))
                .and_then(|f| f.get("default"));
            if let Some(default) = declared {
                return Some(default.clone());
            }
        }
        match (item_name?, field) {
            ("io.k8s.api.core.v1.ContainerPort" | "io.k8s.api.core.v1.ServicePort", "protocol") => {
                Some(Value::String("TCP".into()))
            }
            _ => None,
        }
    }
}

fn list_kind(node: &Value) -> Option<ListKind<'_>> {
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("atomic") => return Some(ListKind::Atomic),
        Some("set") => return Some(ListKind::Set),
        Some("map") => {
            let keys = node
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            return Some(ListKind::Map(keys));
        }
        _ => {}
    }
    let strategy = node
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)?;
    if !strategy.split(',').any(|s| s == "merge") {
        return None;
    }
    Some(
        match node
            .get("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
        {
            Some(key) => ListKind::Map(vec![key]),
            None => ListKind::Set,
        },
    )
}
