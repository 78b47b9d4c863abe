//! Patch metadata lookup over OpenAPI v3 component schemas.
//!
//! This plays the role of upstream's `LookupPatchMeta`. kube-apiserver looks metadata up from
//! the Go struct tags of the typed object (`PatchMetaFromStruct`); we read the same facts from
//! the `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` extensions the OpenAPI
//! document carries for those tags, and keep the struct lookup's behaviour where the two differ:
//! a map type (`additionalProperties`) yields its value schema, and a field missing from a type
//! with properties is an error.
//!
//! A schema that says nothing about its fields (an unknown definition, a free-form `object`
//! such as `RawExtension`, a custom resource) yields no metadata at any depth, which turns the
//! merge into JSON merge patch semantics: maps merge, lists are replaced.

use serde_json::{Map, Value};

use super::PatchError;

const STRATEGY: &str = "x-kubernetes-patch-strategy";
const MERGE_KEY: &str = "x-kubernetes-patch-merge-key";
const REF_PREFIXES: [&str; 2] = ["#/components/schemas/", "#/definitions/"];

/// A position in the schema tree: the definitions to resolve references in and the schema of
/// the current value, or `None` when nothing is known about it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schema<'a> {
    defs: &'a Map<String, Value>,
    node: Option<&'a Value>,
}

/// The patch metadata of one field: its strategies (split on `,`) and merge key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PatchMeta {
    pub(super) strategies: Vec<String>,
    pub(super) merge_key: String,
}

impl PatchMeta {
    /// The strategy other than `retainKeys` (`merge`, `replace` or empty), as upstream's
    /// `extractRetainKeysPatchStrategy`. `retainKeys` only matters when a patch is computed;
    /// applying one follows the `$retainKeys` directive the patch carries.
    pub(super) fn strategy(&self) -> Result<&str, PatchError> {
        let retain = "retainKeys";
        match self.strategies.as_slice() {
            [] => Ok(""),
            [one] if one == retain => Ok(""),
            [one] => Ok(one),
            [first, other] | [other, first] if first == retain => Ok(other),
            _ => Err(PatchError::UnexpectedPatchStrategy {
                strategies: format!("[{}]", self.strategies.join(" ")),
            }),
        }
    }
}

impl<'a> Schema<'a> {
    /// The schema of definition `type_name`, or an unknown schema when there is none.
    pub(super) fn root(defs: &'a Map<String, Value>, type_name: &str) -> Schema<'a> {
        Schema {
            defs,
            node: defs.get(type_name),
        }
    }

    /// Metadata and schema of field `key`, whose value is an object.
    pub(super) fn lookup_struct(&self, key: &str) -> Result<(Schema<'a>, PatchMeta), PatchError> {
        let Some((field, meta)) = self.field(key)? else {
            return Ok((self.unknown(), PatchMeta::default()));
        };
        Ok((self.resolve(field)?, meta))
    }

    /// Metadata of field `key`, whose value is a list, and the schema of its elements.
    pub(super) fn lookup_slice(&self, key: &str) -> Result<(Schema<'a>, PatchMeta), PatchError> {
        let Some((field, meta)) = self.field(key)? else {
            return Ok((self.unknown(), PatchMeta::default()));
        };
        // As upstream's OpenAPI lookup: the element schema is `items` when the field has one,
        // else the field's own schema (a field whose Go type is a pointer to a struct).
        let element = field.get("items").unwrap_or(field);
        Ok((self.resolve(element)?, meta))
    }

    /// The type name upstream prints in "cannot merge lists without merge key for …"
    /// (the Go kind of the element type).
    pub(super) fn kind_name(&self) -> &'static str {
        match self.node {
            Some(node) if node.get("properties").is_none() && is_map_schema(node) => "map",
            _ => "struct",
        }
    }

    fn unknown(&self) -> Schema<'a> {
        Schema {
            defs: self.defs,
            node: None,
        }
    }

    /// The unresolved schema of field `key` with its patch metadata; `None` when the current
    /// schema knows nothing of its fields.
    fn field(&self, key: &str) -> Result<Option<(&'a Value, PatchMeta)>, PatchError> {
        let Some(node) = self.node else {
            return Ok(None);
        };
        let properties = node.get("properties").and_then(Value::as_object);
        if let Some(field) = properties.and_then(|p| p.get(key)) {
            return Ok(Some((field, meta_of(field))));
        }
        if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            return Ok(Some((values, PatchMeta::default())));
        }
        match properties {
            Some(p) if !p.is_empty() => Err(PatchError::FieldNotFound {
                type_name: self.type_name(),
                field: key.to_owned(),
            }),
            _ => Ok(None),
        }
    }

    /// Follows `allOf: [{$ref}]` and `$ref` to the schema they name.
    fn resolve(&self, schema: &'a Value) -> Result<Schema<'a>, PatchError> {
        let mut node = schema;
        if let Some(first) = node
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            node = first;
        }
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            return Ok(Schema {
                defs: self.defs,
                node: Some(node),
            });
        };
        let name = REF_PREFIXES
            .iter()
            .find_map(|prefix| reference.strip_prefix(prefix))
            .unwrap_or(reference);
        match self.defs.get(name) {
            Some(def) => Ok(Schema {
                defs: self.defs,
                node: Some(def),
            }),
            None => Err(PatchError::UnresolvedRef {
                reference: reference.to_owned(),
            }),
        }
    }

    /// The Go struct name upstream prints for a missing field: the last segment of the
    /// definition name, found by identity in the definitions.
    fn type_name(&self) -> String {
        let Some(node) = self.node else {
            return String::new();
        };
        self.defs
            .iter()
            .find(|(_, def)| std::ptr::eq(*def, node))
            .map(|(name, _)| name.rsplit('.').next().unwrap_or(name).to_owned())
            .unwrap_or_default()
    }
}

fn is_map_schema(node: &Value) -> bool {
    node.get("additionalProperties")
        .is_some_and(Value::is_object)
}

fn meta_of(field: &Value) -> PatchMeta {
    let strategies = field
        .get(STRATEGY)
        .and_then(Value::as_str)
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let merge_key = field
        .get(MERGE_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    PatchMeta {
        strategies,
        merge_key,
    }
}
