//! The schema-driven walks of structured-merge-diff's `typed` package over JSON values:
//! [`Typed::to_field_set`], [`Typed::compare`], [`Typed::merge`], [`Typed::remove_items`] and
//! [`Typed::ensure_named_fields_are_members`]. Each follows the upstream walker of the same
//! name; comments point out where a choice copies upstream.

use serde_json::{Map, Value};

use super::path::PathElement;
use super::schema::{ListKind, Schemas, Shape, TypeRef};
use super::set::Set;

/// The result of [`Typed::compare`]: fields only in the new object, fields only in the old
/// one, and fields in both with different values.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: Set,
    pub(crate) modified: Set,
    pub(crate) removed: Set,
}

/// Walks values of one root type.
#[derive(Debug, Clone)]
pub(crate) struct Typed<'a> {
    pub(crate) schemas: Schemas<'a>,
    pub(crate) root: TypeRef<'a>,
}

impl<'a> Typed<'a> {
    /// The key of a list item: `k:{...}` for map lists, `v:...` for sets.
    fn item_pe(
        &self,
        kind: &ListKind<'a>,
        items: TypeRef<'a>,
        item_name: Option<&str>,
        item: &Value,
    ) -> Result<PathElement, String> {
        match kind {
            ListKind::Map(keys) if !keys.is_empty() => {
                let object = match item {
                    Value::Object(o) => o,
                    Value::Null => {
                        return Err("associative list with keys may not have a null element".into())
                    }
                    _ => {
                        return Err(
                            "associative list with keys may not have non-map elements".into()
                        )
                    }
                };
                let mut fields = Vec::with_capacity(keys.len());
                for key in keys {
                    if let Some(value) = object.get(*key) {
                        fields.push(((*key).to_owned(), value.clone()));
                    } else if let Some(default) = self.schemas.key_default(items, item_name, key) {
                        fields.push(((*key).to_owned(), default));
                    }
                }
                if fields.is_empty() {
                    let quoted: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
                    return Err(format!(
                        "associative list with keys has an element that omits all key fields [{}] \
                         (and doesn't have default values for any key fields)",
                        quoted.join(" ")
                    ));
                }
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(PathElement::Key(fields))
            }
            _ => match item {
                Value::Object(_) => {
                    Err("associative list without keys has an element that's a map type".into())
                }
                Value::Array(_) => {
                    Err("not supported: associative list with lists as elements".into())
                }
                Value::Null => Err(
                    "associative list without keys has an element that's an explicit null".into(),
                ),
                scalar => Ok(PathElement::Value(scalar.clone())),
            },
        }
    }

    // ----- ToFieldSet -----

    /// Every field `value` sets, as upstream's `TypedValue.ToFieldSet`. With `strict`, list
    /// items without a usable key and duplicate keys are errors (an applied configuration);
    /// otherwise such items are skipped or owned as a whole (a stored object).
    pub(crate) fn to_field_set(&self, value: &Value, strict: bool) -> Result<Set, String> {
        let mut set = Set::new();
        let mut path = Vec::new();
        self.fs(value, self.root, &mut path, &mut set, strict)?;
        Ok(set)
    }

    fn fs(
        &self,
        value: &Value,
        tr: TypeRef<'a>,
        path: &mut Vec<PathElement>,
        set: &mut Set,
        strict: bool,
    ) -> Result<(), String> {
        let shape = self.schemas.shape_of(tr, Some(value));
        match (&shape, value) {
            (
                Shape::List {
                    kind: ListKind::Atomic,
                    ..
                },
                _,
            )
            | (Shape::Struct { atomic: true, .. } | Shape::Map { atomic: true, .. }, _) => {
                set.insert(path);
            }
            (
                Shape::List {
                    items,
                    item_name,
                    kind,
                },
                Value::Array(list),
            ) => {
                let mut pes = Vec::with_capacity(list.len());
                for (i, item) in list.iter().enumerate() {
                    match self.item_pe(kind, *items, *item_name, item) {
                        Ok(pe) => pes.push(Some(pe)),
                        Err(e) if strict => return Err(at(path, format!("element {i}: {e}"))),
                        Err(_) => pes.push(None),
                    }
                }
                let mut seen = std::collections::BTreeSet::new();
                let mut duplicates = std::collections::BTreeSet::new();
                for pe in pes.iter().flatten() {
                    if !seen.insert(pe) && duplicates.insert(pe) {
                        if strict {
                            return Err(at(path, format!("duplicate entries for key {pe}")));
                        }
                        path.push(pe.clone());
                        set.insert(path);
                        path.pop();
                    }
                }
                for (pe, item) in pes.iter().zip(list) {
                    let Some(pe) = pe else { continue };
                    if duplicates.contains(pe) {
                        continue;
                    }
                    path.push(pe.clone());
                    self.fs(item, *items, path, set, strict)?;
                    set.insert(path);
                    path.pop();
                }
            }
            (Shape::Struct { .. } | Shape::Map { .. }, Value::Object(map)) => {
                for (key, child) in map {
                    let field = self.schemas.field(&shape, key);
                    path.push(PathElement::Field(key.clone()));
                    self.fs(child, field, path, set, strict)?;
                    let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                    let declared = matches!(&shape, Shape::Struct { properties, .. } if properties.contains_key(key));
                    if empty || !declared {
                        set.insert(path);
                    }
                    path.pop();
                }
            }
            (Shape::List { .. } | Shape::Struct { .. } | Shape::Map { .. }, Value::Null) => {}
            _ => set.insert(path),
        }
        Ok(())
    }

    // ----- Compare -----

    /// What changed from `old` to `new`, as upstream's `TypedValue.Compare`.
    pub(crate) fn compare(&self, old: &Value, new: &Value) -> Comparison {
        let mut cmp = Comparison::default();
        let mut path = Vec::new();
        self.cmp(Some(old), Some(new), self.root, &mut path, &mut cmp);
        cmp
    }

    fn cmp(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        tr: TypeRef<'a>,
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        let shape = self.schemas.shape_of(tr, rhs.or(lhs));
        let descended = match &shape {
            Shape::List {
                items,
                item_name,
                kind,
            } => {
                let (l, r) = (lhs.and_then(Value::as_array), rhs.and_then(Value::as_array));
                let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
                if *kind == ListKind::Atomic || empty || !same_kind(lhs, rhs) {
                    false
                } else {
                    self.cmp_list(l, r, (kind, *items, *item_name), path, cmp);
                    true
                }
            }
            Shape::Struct { atomic, .. } | Shape::Map { atomic, .. } => {
                let (l, r) = (
                    lhs.and_then(Value::as_object),
                    rhs.and_then(Value::as_object),
                );
                let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
                if *atomic || empty || !same_kind(lhs, rhs) {
                    false
                } else {
                    self.cmp_map(&shape, l, r, path, cmp);
                    true
                }
            }
            _ => false,
        };
        if !descended {
            // A leaf: a scalar, an atomic value or an empty container.
            match (lhs, rhs) {
                (None, _) => cmp.added.insert(path),
                (_, None) => cmp.removed.insert(path),
                (Some(l), Some(r)) if l != r => cmp.modified.insert(path),
                _ => {}
            }
        } else if lhs.is_none() {
            cmp.added.insert(path);
        } else if rhs.is_none() {
            cmp.removed.insert(path);
        }
    }

    fn cmp_map(
        &self,
        shape: &Shape<'a>,
        lhs: Option<&Map<String, Value>>,
        rhs: Option<&Map<String, Value>>,
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        let empty = Map::new();
        let (lhs, rhs) = (lhs.unwrap_or(&empty), rhs.unwrap_or(&empty));
        for (key, l) in lhs {
            path.push(PathElement::Field(key.clone()));
            self.cmp(
                Some(l),
                rhs.get(key),
                self.schemas.field(shape, key),
                path,
                cmp,
            );
            path.pop();
        }
        for (key, r) in rhs {
            if lhs.contains_key(key) {
                continue;
            }
            path.push(PathElement::Field(key.clone()));
            self.cmp(None, Some(r), self.schemas.field(shape, key), path, cmp);
            path.pop();
        }
    }

    fn cmp_list(
        &self,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        (kind, items, item_name): (&ListKind<'a>, TypeRef<'a>, Option<&'a str>),
        path: &mut Vec<PathElement>,
        cmp: &mut Comparison,
    ) {
        type Group<'v> = (Vec<&'v Value>, Vec<&'v Value>);
        let mut groups: std::collections::BTreeMap<PathElement, Group<'_>> = Default::default();
        for item in lhs.into_iter().flatten() {
            if let Ok(pe) = self.item_pe(kind, items, item_name, item) {
                groups.entry(pe).or_default().0.push(item);
            }
        }
        for item in rhs.into_iter().flatten() {
            if let Ok(pe) = self.item_pe(kind, items, item_name, item) {
                groups.entry(pe).or_default().1.push(item);
            }
        }
        for (pe, (l, r)) in groups {
            path.push(pe);
            match (l.as_slice(), r.as_slice()) {
                ([] | [_], [] | [_]) => {
                    self.cmp(l.first().copied(), r.first().copied(), items, path, cmp);
                }
                // Duplicates on both sides: compared as one atomic value.
                ([_, _, ..], [_, _, ..]) => {
                    if l != r {
                        cmp.modified.insert(path);
                    }
                }
                ([_, _, ..], _) => {
                    if let Some(first) = r.first() {
                        self.cmp(None, Some(first), items, path, cmp);
                    }
                    cmp.removed.insert(path);
                }
                (_, _) => {
                    if let Some(first) = l.first() {
                        self.cmp(Some(first), None, items, path, cmp);
                    }
                    cmp.added.insert(path);
                }
            }
            path.pop();
        }
    }

    // ----- Merge -----

    /// `config` merged into `live`, as upstream's `TypedValue.Merge` with "keep the right-hand
    /// side" for leaves. Errors name the offending path (invalid list items in `config`).
    pub(crate) fn merge(&self, live: &Value, config: &Value) -> Result<Value, String> {
        let mut path = Vec::new();
        Ok(self
            .mg(Some(live), Some(config), self.root, &mut path)?
            .unwrap_or(Value::Object(Map::new())))
    }

    fn mg(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        tr: TypeRef<'a>,
        path: &mut Vec<PathElement>,
    ) -> Result<Option<Value>, String> {
        let shape = self.schemas.shape_of(tr, rhs.or(lhs));
        let keep_rhs = || Ok(rhs.or(lhs).cloned());
        match &shape {
            Shape::List {
                items,
                item_name,
                kind,
            } => {
                let (l, r) = (lhs.and_then(Value::as_array), rhs.and_then(Value::as_array));
                let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
                if *kind == ListKind::Atomic || empty || !same_kind(lhs, rhs) {
                    return keep_rhs();
                }
                self.mg_list(l, r, (kind, *items, *item_name), path)
            }
            Shape::Struct { atomic, .. } | Shape::Map { atomic, .. } => {
                let (l, r) = (
                    lhs.and_then(Value::as_object),
                    rhs.and_then(Value::as_object),
                );
                let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
                if *atomic || empty || !same_kind(lhs, rhs) {
                    return keep_rhs();
                }
                let empty_map = Map::new();
                let (l, r) = (l.unwrap_or(&empty_map), r.unwrap_or(&empty_map));
                let mut out = Map::with_capacity(l.len().max(r.len()));
                // Key order: the live object's, then new keys in the configuration's order.
                for (key, lv) in l {
                    path.push(PathElement::Field(key.clone()));
                    let merged =
                        self.mg(Some(lv), r.get(key), self.schemas.field(&shape, key), path)?;
                    path.pop();
                    if let Some(v) = merged {
                        out.insert(key.clone(), v);
                    }
                }
                for (key, rv) in r {
                    if l.contains_key(key) {
                        continue;
                    }
                    path.push(PathElement::Field(key.clone()));
                    let merged = self.mg(None, Some(rv), self.schemas.field(&shape, key), path)?;
                    path.pop();
                    if let Some(v) = merged {
                        out.insert(key.clone(), v);
                    }
                }
                Ok((!out.is_empty()).then_some(Value::Object(out)))
            }
            _ => keep_rhs(),
        }
    }

    /// Upstream's `visitListItems` of the merging walker: the configuration's items in its
    /// order, live items it does not name kept where they were relative to the shared ones.
    fn mg_list(
        &self,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        (kind, items, item_name): (&ListKind<'a>, TypeRef<'a>, Option<&'a str>),
        path: &mut Vec<PathElement>,
    ) -> Result<Option<Value>, String> {
        use std::collections::{BTreeMap, BTreeSet};
        let (lhs, rhs) = (
            lhs.map(Vec::as_slice).unwrap_or(&[]),
            rhs.map(Vec::as_slice).unwrap_or(&[]),
        );
        let mut rhs_pes = Vec::with_capacity(rhs.len());
        let mut observed_rhs: BTreeMap<PathElement, &Value> = BTreeMap::new();
        for (i, item) in rhs.iter().enumerate() {
            let pe = self
                .item_pe(kind, items, item_name, item)
                .map_err(|e| at(path, format!("element {i}: {e}")))?;
            if observed_rhs.insert(pe.clone(), item).is_some() {
                return Err(at(path, format!("duplicate entries for key {pe}")));
            }
            rhs_pes.push(pe);
        }
        let mut lhs_pes = Vec::with_capacity(lhs.len());
        // Live duplicates are kept, but not merged with the configuration.
        let mut observed_lhs: BTreeMap<PathElement, Option<&Value>> = BTreeMap::new();
        for item in lhs {
            let Ok(pe) = self.item_pe(kind, items, item_name, item) else {
                continue;
            };
            observed_lhs
                .entry(pe.clone())
                .and_modify(|v| *v = None)
                .or_insert(Some(item));
            lhs_pes.push((pe, item));
        }
        let mut shared = rhs_pes.iter().filter(|pe| observed_lhs.contains_key(*pe));
        let mut next_shared = shared.next();
        let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
        let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
        let (mut li, mut ri) = (0, 0);
        let mut merge_item = |this: &Self,
                              pe: &PathElement,
                              l: Option<&Value>,
                              r: Option<&Value>,
                              path: &mut Vec<PathElement>|
         -> Result<(), String> {
            path.push(pe.clone());
            let merged = this.mg(l, r, items, path)?;
            path.pop();
            out.extend(merged);
            Ok(())
        };
        while li < lhs_pes.len() || ri < rhs_pes.len() {
            if li < lhs_pes.len() && ri < rhs_pes.len() {
                let pe = &lhs_pes[li].0;
                if *pe == rhs_pes[ri] {
                    merged_rhs.insert(&rhs_pes[ri]);
                    let l = observed_lhs.get(pe).copied().flatten();
                    merge_item(self, pe, l, observed_rhs.get(pe).copied(), path)?;
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < lhs_pes.len() {
                let (pe, item) = &lhs_pes[li];
                if !observed_rhs.contains_key(pe) {
                    merge_item(self, pe, Some(item), None, path)?;
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                }
            }
            if ri < rhs_pes.len() {
                let pe = &rhs_pes[ri];
                merged_rhs.insert(pe);
                let l = observed_lhs.get(pe).copied().flatten();
                merge_item(self, pe, l, observed_rhs.get(pe).copied(), path)?;
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.next();
                }
            }
        }
        Ok((!out.is_empty()).then_some(Value::Array(out)))
    }

    // ----- RemoveItems -----

    /// `value` without the fields and items `to_remove` names, as upstream's
    /// `TypedValue.RemoveItems`. A container left empty is dropped (`None`), as the Go object
    /// upstream converts back to would omit it.
    pub(crate) fn remove_items(&self, value: &Value, to_remove: &Set) -> Value {
        self.rm(value, to_remove, self.root)
            .unwrap_or(Value::Object(Map::new()))
    }

    fn rm(&self, value: &Value, to_remove: &Set, tr: TypeRef<'a>) -> Option<Value> {
        let shape = self.schemas.shape_of(tr, Some(value));
        match (&shape, value) {
            (
                Shape::List {
                    kind,
                    items,
                    item_name,
                },
                Value::Array(list),
            ) if *kind != ListKind::Atomic && !list.is_empty() => {
                let mut out = Vec::with_capacity(list.len());
                for item in list {
                    let Ok(pe) = self.item_pe(kind, *items, *item_name, item) else {
                        out.push(item.clone());
                        continue;
                    };
                    if to_remove.members.contains(&pe) {
                        continue;
                    }
                    match to_remove.with_prefix(&pe) {
                        Some(sub) => out.extend(self.rm(item, sub, *items)),
                        None => out.push(item.clone()),
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
            (
                Shape::Struct { atomic: false, .. } | Shape::Map { atomic: false, .. },
                Value::Object(map),
            ) if !map.is_empty() => {
                let mut out = Map::with_capacity(map.len());
                for (key, child) in map {
                    let pe = PathElement::Field(key.clone());
                    if to_remove.members.contains(&pe) {
                        continue;
                    }
                    match to_remove.with_prefix(&pe) {
                        Some(sub) => {
                            if let Some(v) = self.rm(child, sub, self.schemas.field(&shape, key)) {
                                out.insert(key.clone(), v);
                            }
                        }
                        None => {
                            out.insert(key.clone(), child.clone());
                        }
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            _ => Some(value.clone()),
        }
    }

    // ----- EnsureNamedFieldsAreMembers -----

    /// `set` with every struct field that has owned descendants also owned itself, as
    /// upstream's `Set.EnsureNamedFieldsAreMembers` (used to decide what pruning removes).
    pub(crate) fn ensure_named_fields_are_members(&self, set: &Set) -> Set {
        self.ensure(set, self.root)
    }

    fn ensure(&self, set: &Set, tr: TypeRef<'a>) -> Set {
        let shape = self.schemas.shape(tr);
        let mut out = Set {
            members: set.members.clone(),
            children: Default::default(),
        };
        for (pe, child) in &set.children {
            let child_type = match (pe, &shape) {
                (PathElement::Field(name), Shape::Struct { properties, .. }) => {
                    if properties.contains_key(name) {
                        out.members.insert(pe.clone());
                    }
                    self.schemas.field(&shape, name)
                }
                (PathElement::Field(name), Shape::Map { .. }) => self.schemas.field(&shape, name),
                (PathElement::Key(_), Shape::List { items, .. }) => *items,
                _ => TypeRef::UNTYPED,
            };
            out.children
                .insert(pe.clone(), self.ensure(child, child_type));
        }
        out
    }
}

/// Whether two present values are both lists, both objects, or either is missing or null
/// (upstream handles mismatched kinds as leaves).
fn same_kind(lhs: Option<&Value>, rhs: Option<&Value>) -> bool {
    match (lhs, rhs) {
        (Some(l), Some(r)) if !l.is_null() && !r.is_null() => {
            l.is_array() == r.is_array() && l.is_object() == r.is_object()
        }
        _ => true,
    }
}

fn at(path: &[PathElement], message: String) -> String {
    if path.is_empty() {
        message
    } else {
        format!("{}: {message}", super::path::path_string(path))
    }
}
