//! Strategic merge patch and JSON merge patch: all the merge logic of `PATCH` in one place.
//!
//! [`strategic_merge`] applies an `application/strategic-merge-patch+json` body the way
//! kube-apiserver does (k8s.io/apimachinery `strategicpatch.StrategicMergeMapPatch`, with the
//! server's options: parallel deletion lists merged, unmatched nulls ignored):
//!
//! - objects merge recursively; `null` deletes a field; a field with the `replace` strategy is
//!   replaced; `$patch: replace` / `$patch: delete` in an object replace or empty it;
//! - lists with the `merge` strategy and a merge key merge element by element (`$patch: delete`
//!   elements remove, a `$patch: replace` element makes the rest of the list the whole list,
//!   new elements are added); lists of primitives with the `merge` strategy are unions, and
//!   `$deleteFromPrimitiveList/<field>` removes values; other lists are replaced;
//! - `$retainKeys` clears the fields it does not list; `$setElementOrder/<field>` orders the
//!   merged list; merged lists otherwise follow upstream's `normalizeElementOrder`.
//!
//! Patch metadata comes from OpenAPI v3 component schemas ([`crate::schema::definitions`] or a
//! map of the same shape): `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` on
//! properties, references as `{"$ref": "#/components/schemas/<name>"}`, optionally wrapped in
//! `allOf`. A type without a definition (a custom resource) merges like JSON merge patch: maps
//! merge and lists are replaced. (kube-apiserver itself refuses strategic merge patches on
//! custom resources with 415; that choice belongs to the API server, not to this module.)
//!
//! Errors carry upstream's messages and the status kube-apiserver answers them with; see
//! [`PatchError`].
//!
//! [`json_merge`] applies an `application/merge-patch+json` body (RFC 7386) as the
//! `evanphx/json-patch` v4 library kube-apiserver uses does. JSON patch (RFC 6902) is the
//! `json-patch` crate's job.
//!
//! Submodules: `schema` (metadata lookup), `merge` (the merge), `order` (list ordering),
//! `error` ([`PatchError`] and Go-style formatting).

mod error;
mod merge;
mod order;
mod schema;

use serde_json::{Map, Value};

pub use error::PatchError;

/// Applies the strategic merge patch `patch` to `original`, an object of the type defined as
/// `type_name` in `defs` (for example `io.k8s.api.apps.v1.Deployment`), and returns the result.
///
/// Both documents must be JSON objects (`null` counts as `{}`), else [`PatchError::BadJsonDoc`].
/// Neither is modified. Directive keys (`$patch`, `$retainKeys`, `$setElementOrder/…`,
/// `$deleteFromPrimitiveList/…`) never appear in the result. Key order follows the original,
/// with new fields appended in patch order.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    defs: &Map<String, Value>,
    type_name: &str,
) -> Result<Value, PatchError> {
    let original = as_document(original)?;
    let patch = as_document(patch)?;
    let merged = merge::merge_map(original, patch, schema::Schema::root(defs, type_name))?;
    let mut merged = Value::Object(merged);
    merge::strip_directive_keys(&mut merged);
    Ok(merged)
}

fn as_document(value: &Value) -> Result<Map<String, Value>, PatchError> {
    match value {
        Value::Object(map) => Ok(map.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(PatchError::BadJsonDoc),
    }
}

/// Applies the JSON merge patch (RFC 7386) `patch` to `original` and returns the result.
///
/// Objects merge recursively and `null` deletes a field; any other patch value replaces the
/// target. As in `evanphx/json-patch` (which kube-apiserver uses), nulls are removed from
/// objects inside a value that is added or that replaces a non-object, but kept in lists and
/// in a non-object value that replaces an object. A patch that is not an object replaces the
/// whole document. The API server is expected to reject non-object bodies before calling this.
pub fn json_merge(original: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(_) => merge_node(original.clone(), patch.clone()),
        _ => {
            let mut patch = patch.clone();
            prune_nulls(&mut patch);
            patch
        }
    }
}

/// evanphx `merge`: an object target merges with an object patch; a non-object target is
/// replaced by the pruned patch; an object target is replaced by a non-object patch as is.
fn merge_node(current: Value, patch: Value) -> Value {
    match (current, patch) {
        (Value::Object(mut doc), Value::Object(patch)) => {
            merge_docs(&mut doc, patch);
            Value::Object(doc)
        }
        (Value::Object(_), patch) => patch,
        (_, mut patch) => {
            prune_nulls(&mut patch);
            patch
        }
    }
}

fn merge_docs(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            doc.shift_remove(&key);
            continue;
        }
        match doc.get_mut(&key) {
            Some(current) if !current.is_null() => {
                let merged = merge_node(std::mem::take(current), value);
                *current = merged;
            }
            _ => {
                let mut value = value;
                prune_nulls(&mut value);
                doc.insert(key, value);
            }
        }
    }
}

/// Drops null fields from objects at any depth; nulls in lists stay.
fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
