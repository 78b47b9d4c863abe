//! The merge itself: upstream's `mergeMap`, `mergeSlice` and the directive handling around
//! them, with the options kube-apiserver applies a patch with (`MergeParallelList` and
//! `IgnoreUnmatchedNulls` both set).
//!
//! Like upstream, the functions take the original and the patch by value and build the
//! result out of them. Patch keys are processed in the order the patch lists them (upstream
//! walks a Go map, whose order is random; the outcomes only differ for contradictory patches).

use serde_json::{Map, Value};

use super::error::{
    bad_arg_type, go_format, go_format_lists, no_merge_key, GoType, MAP_TYPE, SLICE_TYPE,
};
use super::order::{
    find_by_key, normalize_element_order, partition_maps, partition_primitives, ElementKind,
};
use super::schema::Schema;
use super::PatchError;

pub(super) const DIRECTIVE: &str = "$patch";
pub(super) const RETAIN_KEYS: &str = "$retainKeys";
pub(super) const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
pub(super) const SET_ELEMENT_ORDER: &str = "$setElementOrder";

type Object = Map<String, Value>;

/// Merges `patch` into `original` (upstream's `mergeMap`).
pub(super) fn merge_map(
    mut original: Object,
    mut patch: Object,
    schema: Schema<'_>,
) -> Result<Object, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE).cloned() {
        return map_directive(directive, patch);
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, schema)?;
    for (key, value) in patch {
        merge_field(&mut original, key, value, schema)?;
    }
    Ok(original)
}

/// `$patch` in an object: `replace` keeps the patch alone, `delete` leaves an empty object.
fn map_directive(directive: Value, mut patch: Object) -> Result<Object, PatchError> {
    match directive.as_str() {
        Some("replace") => {
            patch.shift_remove(DIRECTIVE);
            Ok(patch)
        }
        Some("delete") => Ok(Object::new()),
        _ => Err(PatchError::BadPatchType {
            directive: go_format(&directive),
            map: go_format(&Value::Object(patch)),
        }),
    }
}

/// `$retainKeys`: every field the patch sets must be listed; fields of the original that are
/// not listed are cleared.
fn apply_retain_keys(original: &mut Object, patch: &mut Object) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadPatchFormatForRetainKeys);
    };
    let retained = |key: &str| retain.iter().any(|v| v.as_str() == Some(key));
    for (key, value) in patch.iter() {
        let directive =
            key.starts_with(DELETE_FROM_PRIMITIVE_LIST) || key.starts_with(SET_ELEMENT_ORDER);
        if !value.is_null() && !directive && !retained(key) {
            return Err(PatchError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// `$setElementOrder/<field>`: merges the field's list (if the patch has one) and orders the
/// result by the directive (upstream's `mergePatchIntoOriginal`). Removes both the directive
/// and the list it covered from `patch`.
fn merge_ordered_lists(
    original: &mut Object,
    patch: &mut Object,
    schema: Schema<'_>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.shift_remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type(SLICE_TYPE, Some(&order)));
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER)?;
        let original_list = list_at(original, &field)?;
        let patch_list = list_at(patch, &field)?;
        let (element_schema, meta) = schema.lookup_slice(&field)?;
        let strategy = meta.strategy()?;
        let merge_key = meta.merge_key.as_str();
        validate_against_order(patch_list.as_deref().unwrap_or_default(), &order, merge_key)?;

        let merged = match (&original_list, &patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => remove_directives_from_list(p.clone()),
            (Some(o), Some(p)) => merge_slice_handler(
                o.clone(),
                p.clone(),
                element_schema,
                strategy,
                merge_key,
                false,
            )?,
            (None, None) => continue,
        };
        let original_list = original_list.unwrap_or_default();
        let patch_list = patch_list.unwrap_or_default();
        let (in_patch, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &order)
        } else {
            partition_maps(merged, &order, merge_key)?
        };
        let kind = element_kind(&[&original_list, &patch_list])?;
        let server_order =
            if strategy == "merge" && kind == ElementKind::Map && !merge_key.is_empty() {
                server_order_after_merge(original_list, &patch_list, merge_key)
            } else {
                original_list
            };
        let ordered = normalize_element_order(
            in_patch,
            server_only,
            &order,
            &server_order,
            merge_key,
            kind,
        )?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// The server order `$setElementOrder` sorts the server-only elements by, after a merge by key.
///
/// Upstream passes the original list to that sort, but `mergeSlice` has by then worked in the
/// same Go backing array: each `$patch: delete` shifted the later elements left in place, and
/// the elements it appended filled the freed slots. So upstream sorts by that array's first
/// `len(original)` slots, which this function reproduces (the outcome of upstream's own test
/// "add map and delete map from merging list" depends on it). Elements merged in place keep
/// their merge key, so only deletions and appends matter.
fn server_order_after_merge(original: Vec<Value>, patch: &[Value], merge_key: &str) -> Vec<Value> {
    let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).cloned();
    let mut backing = original;
    let visible = backing.len();
    let mut len = visible;
    let mut appended = Vec::new();
    let mut replace = false;
    for item in patch {
        match item
            .as_object()
            .and_then(|m| m.get(DIRECTIVE))
            .and_then(Value::as_str)
        {
            Some("delete") => {
                let wanted = key_of(item);
                while let Some(i) = backing[..len].iter().position(|e| key_of(e) == wanted) {
                    for k in i..len - 1 {
                        backing[k] = backing[k + 1].clone();
                    }
                    len -= 1;
                }
            }
            Some("replace") => replace = true,
            Some(_) => {}
            None => appended.push(item),
        }
    }
    if replace {
        return backing;
    }
    let mut keys: Vec<Option<Value>> = backing[..len].iter().map(key_of).collect();
    for item in appended {
        let key = key_of(item);
        if keys.contains(&key) {
            continue;
        }
        if keys.len() < visible {
            backing[keys.len()] = item.clone();
        }
        keys.push(key);
    }
    backing
}

/// The list at `key`, if present; anything else there is an error.
fn list_at(object: &Object, key: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list.clone())),
        Some(other) => Err(bad_arg_type(SLICE_TYPE, Some(other))),
    }
}

/// Upstream's `validatePatchWithSetOrderList`: the patch's elements (deletions and other
/// directive elements aside) must appear in the `$setElementOrder` list, in the same order.
fn validate_against_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(patch_list.len());
    for item in patch_list {
        if merge_key.is_empty() {
            kept.push(item);
            continue;
        }
        let map = item
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(item)))?;
        if map.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
            kept.push(item);
        }
    }
    let (mut p, mut o) = (0, 0);
    while p < kept.len() && o < order.len() {
        if kept[p]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE))
        {
            p += 1;
            continue;
        }
        if merge_key_value_equal(kept[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < kept.len() && o >= order.len() {
        return Err(PatchError::SetElementOrderMismatch {
            patch: go_format(&Value::Array(patch_list.to_vec())),
            order: go_format(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let key_of = |v: &Value| -> Result<Value, PatchError> {
        let map = v
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(v)))?;
        map.get(merge_key)
            .cloned()
            .ok_or_else(|| no_merge_key(v, merge_key))
    };
    Ok(key_of(left)? == key_of(right)?)
}

/// Merges one patch entry into `original`.
fn merge_field(
    original: &mut Object,
    key: String,
    value: Value,
    schema: Schema<'_>,
) -> Result<(), PatchError> {
    let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
        let field = extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?;
        // Upstream keeps the directive key itself when nothing follows the slash.
        (if field.is_empty() { key } else { field }, true)
    } else {
        (key, false)
    };
    if value.is_null() {
        original.shift_remove(&key);
        return Ok(());
    }
    let Some(slot) = original.get_mut(&key) else {
        if !is_delete_list {
            set_from_patch(original, key, value);
        }
        return Ok(());
    };
    if GoType::of(slot) != GoType::of(&value) {
        if !is_delete_list {
            set_from_patch(original, key, value);
        }
        return Ok(());
    }
    match (std::mem::take(slot), value) {
        (Value::Object(current), Value::Object(patch)) => {
            let (field_schema, meta) = schema.lookup_struct(&key)?;
            let merged = if meta.strategy()? == "replace" {
                patch
            } else {
                merge_map(current, patch, field_schema)?
            };
            *slot = Value::Object(merged);
        }
        (Value::Array(current), Value::Array(patch)) => {
            let (element_schema, meta) = schema.lookup_slice(&key)?;
            let strategy = meta.strategy()?;
            let merged = merge_slice_handler(
                current,
                patch,
                element_schema,
                strategy,
                &meta.merge_key,
                is_delete_list,
            )?;
            *slot = Value::Array(merged);
        }
        (_, value) => *slot = value,
    }
    Ok(())
}

/// Takes a patch value for a field the original lacks (or holds with another type):
/// nulls in objects are dropped and objects carrying `$patch` removed.
fn set_from_patch(original: &mut Object, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(value) => {
            original.insert(key, value);
        }
        None => {
            original.shift_remove(&key);
        }
    }
}

fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Upstream's `removeDirectives`: an object carrying `$patch` disappears (`None`), at any depth.
fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) if map.contains_key(DIRECTIVE) => None,
        Value::Object(map) => Some(Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| Some((k, remove_directives(v)?)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(remove_directives_from_list(items))),
        other => Some(other),
    }
}

fn remove_directives_from_list(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().filter_map(remove_directives).collect()
}

/// Lists are merged for the `merge` strategy and for `$deleteFromPrimitiveList`, and replaced
/// by the patch otherwise.
fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema<'_>,
    strategy: &str,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if strategy == "merge" || is_delete_list {
        merge_slice(original, patch, schema, merge_key, is_delete_list)
    } else {
        Ok(patch)
    }
}

/// Upstream's `mergeSlice`.
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema<'_>,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch])?;
    let (merged, server_order, patch) = match kind {
        ElementKind::Primitive if is_delete_list => {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        ElementKind::Primitive => {
            let both = original.iter().chain(&patch).cloned().collect();
            (deduplicate_scalars(both), original, patch)
        }
        ElementKind::Map => {
            if merge_key.is_empty() {
                return Err(PatchError::MergeKeyNotDeclared {
                    type_name: schema.kind_name().to_owned(),
                });
            }
            let (original, patch) = apply_list_directives(original, patch, merge_key)?;
            let merged = merge_by_key(original.clone(), &patch, merge_key, schema)?;
            (merged, original, patch)
        }
    };
    let (in_patch, server_only) = if merge_key.is_empty() {
        partition_primitives(merged, &patch)
    } else {
        partition_maps(merged, &patch, merge_key)?
    };
    normalize_element_order(
        in_patch,
        server_only,
        &patch,
        &server_order,
        merge_key,
        kind,
    )
}

/// The element kind of the lists being merged (upstream's `sliceElementType`): every element
/// must have the same Go type, which must not be a list.
fn element_kind(lists: &[&[Value]]) -> Result<ElementKind, PatchError> {
    let mut first: Option<GoType> = None;
    for value in lists.iter().flat_map(|l| l.iter()) {
        let go_type = GoType::of(value);
        match first {
            None if go_type == GoType::Slice => return Err(PatchError::NoListOfLists),
            // Upstream dereferences a nil type here and panics; report the mismatch instead.
            None if go_type == GoType::Nil => {
                return Err(PatchError::ElementTypesDiffer {
                    lists: go_format_lists(lists),
                })
            }
            None => first = Some(go_type),
            Some(t) if t != go_type => {
                return Err(PatchError::ElementTypesDiffer {
                    lists: go_format_lists(lists),
                })
            }
            Some(_) => {}
        }
    }
    match first {
        Some(GoType::Map) => Ok(ElementKind::Map),
        Some(_) => Ok(ElementKind::Primitive),
        None => Err(PatchError::NoElements),
    }
}

/// Upstream's `deduplicateScalars`: removes later duplicates by moving the last element into
/// their place (the order is fixed afterwards by `normalize_element_order`).
fn deduplicate_scalars(mut list: Vec<Value>) -> Vec<Value> {
    let mut i = 0;
    while i + 1 < list.len() {
        let mut j = i + 1;
        while j < list.len() {
            if list[i] == list[j] {
                list.swap_remove(j);
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    list
}

/// Upstream's `mergeSliceWithSpecialElements`: applies `$patch: delete` elements to the
/// original and, for `$patch: replace`, makes the rest of the patch the whole list. Returns the
/// original to merge into and the patch elements left to merge.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let map = item
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(&item)))?;
        let Some(directive) = map.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = map
                    .get(merge_key)
                    .ok_or_else(|| no_merge_key(&item, merge_key))?;
                while let Some(i) = find_by_key(&original, merge_key, value)? {
                    original.remove(i);
                }
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError::MergeDirectiveInList),
            _ => {
                return Err(PatchError::BadPatchType {
                    directive: go_format(directive),
                    map: go_format(&item),
                })
            }
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Upstream's `mergeSliceWithoutSpecialElements`: each patch element is merged into the
/// original element with the same merge key value, or appended.
fn merge_by_key(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: Schema<'_>,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let map = item
            .as_object()
            .ok_or_else(|| bad_arg_type(MAP_TYPE, Some(item)))?;
        let value = map
            .get(merge_key)
            .ok_or_else(|| no_merge_key(item, merge_key))?;
        match find_by_key(&original, merge_key, value)? {
            Some(i) => {
                let Value::Object(current) = std::mem::take(&mut original[i]) else {
                    unreachable!("find_by_key only matches objects")
                };
                original[i] = Value::Object(merge_map(current, map.clone(), schema)?);
            }
            None => original.push(item.clone()),
        }
    }
    Ok(original)
}

/// Upstream's `extractKey`: the field name after `<prefix>/`.
fn extract_key(key: &str, prefix: &str) -> Result<String, PatchError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field.to_owned()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => {
            Err(PatchError::BadPatchFormatForPrimitiveList)
        }
        _ => Err(PatchError::BadPatchFormatForSetElementOrderList),
    }
}

/// Removes directive keys left in the result: upstream leaves them in its intermediate map
/// (for instance inside a list it appended or an object it replaced) and drops them only when
/// it decodes the map into the typed object, which has no such fields.
pub(super) fn strip_directive_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !is_directive_key(key));
            map.values_mut().for_each(strip_directive_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directive_keys),
        _ => {}
    }
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || key.starts_with(SET_ELEMENT_ORDER)
}
