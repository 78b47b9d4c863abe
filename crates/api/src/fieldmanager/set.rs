//! [`Set`]: a set of field paths, as structured-merge-diff's `fieldpath.Set`, with its
//! `fieldsV1` encoding.
//!
//! A set is a tree: `members` are the elements owned themselves (leaves, or non-leaf elements
//! whose existence is owned, written `".": {}` inside their node), `children` the elements with
//! owned descendants. The set operations copy upstream's, including their asymmetries (see
//! [`Set::difference`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::PathElement;

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    pub(crate) members: BTreeSet<PathElement>,
    pub(crate) children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path` (the empty path is ignored).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.descend(first).insert(rest),
        }
    }

    /// The child node for `pe`, created if missing.
    pub(crate) fn descend(&mut self, pe: &PathElement) -> &mut Set {
        if !self.children.contains_key(pe) {
            self.children.insert(pe.clone(), Set::new());
        }
        self.children.get_mut(pe).expect("inserted just above")
    }

    /// Whether `path` is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The paths under `pe`, relative to it.
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    /// Every path of `self` or `other`.
    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Adds every path of `other` to `self`.
    pub fn union_with(&mut self, other: &Set) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_with(child),
                None => {
                    self.children.insert(pe.clone(), child.clone());
                }
            }
        }
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        Set { members, children }
    }

    /// Paths of `self` not in `other`. As upstream: a member of `other` does not remove the
    /// descendants `self` has below it (parent - child = parent, child - parent = child).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            match other.children.get(pe) {
                Some(theirs) => {
                    let diff = child.difference(theirs);
                    if !diff.is_empty() {
                        children.insert(pe.clone(), diff);
                    }
                }
                None => {
                    children.insert(pe.clone(), child.clone());
                }
            }
        }
        Set { members, children }
    }

    /// Paths of `self` that are neither in `other` nor below a member of `other`.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            match other.children.get(pe) {
                Some(theirs) => {
                    let diff = child.recursive_difference(theirs);
                    if !diff.is_empty() {
                        children.insert(pe.clone(), diff);
                    }
                }
                None => {
                    children.insert(pe.clone(), child.clone());
                }
            }
        }
        Set { members, children }
    }

    /// Calls `f` with every path of the set, in order (members of a node before its children's
    /// paths, as upstream's `Iterate`).
    pub fn for_each_path(&self, f: &mut impl FnMut(&[PathElement])) {
        let mut prefix = Vec::new();
        self.walk(&mut prefix, f);
    }

    fn walk(&self, prefix: &mut Vec<PathElement>, f: &mut impl FnMut(&[PathElement])) {
        for pe in &self.members {
            prefix.push(pe.clone());
            f(prefix);
            prefix.pop();
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.walk(prefix, f);
            prefix.pop();
        }
    }

    /// The `fieldsV1` document of this set, keys in upstream's order.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        // Members and children are merged in path-element order; an element in both is a
        // child node carrying ".".
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let take_member = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(m), Some((c, _))) => *m < *c,
            };
            if take_member {
                let pe = members.next().expect("peeked");
                out.insert(pe.to_fields_key(), Value::Object(Map::new()));
            } else {
                let (pe, child) = children.next().expect("peeked");
                let is_member = members.peek() == Some(&pe);
                if is_member {
                    members.next();
                }
                out.insert(pe.to_fields_key(), Value::Object(child.emit(is_member)));
            }
        }
        out
    }

    /// Reads a `fieldsV1` document. Unknown element types are skipped, as upstream does.
    pub fn from_fields_v1(fields: &Value) -> Result<Set, String> {
        let Value::Object(map) = fields else {
            return Err("fieldsV1 must be an object".into());
        };
        Ok(read_node(map)?.0)
    }
}

/// Reads one node: its set of children and whether it is itself a member.
fn read_node(map: &Map<String, Value>) -> Result<(Set, bool), String> {
    let mut set = Set::new();
    let mut is_member = false;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::from_fields_key(key)? else {
            continue;
        };
        let Value::Object(inner) = value else {
            return Err(format!("value of {key} must be an object"));
        };
        let (grandchildren, child_is_member) = read_node(inner)?;
        if child_is_member {
            set.members.insert(pe.clone());
        }
        if !grandchildren.is_empty() {
            set.children.insert(pe, grandchildren);
        }
    }
    // A node with nothing inside (`{}`) is a leaf member.
    if set.is_empty() {
        is_member = true;
    }
    Ok((set, is_member))
}
