//! Server-side apply and `metadata.managedFields`, as kube-apiserver does them
//! (k8s.io/apimachinery `pkg/util/managedfields` over sigs.k8s.io/structured-merge-diff).
//!
//! - [`update`] runs on every create, update and non-apply patch: the request's manager gets
//!   an `Update` entry owning the fields the write changed, other managers lose them.
//! - [`apply`] runs on `PATCH` with `application/apply-patch+yaml`: the applied configuration
//!   is merged into the live object by the schema (list-map items by their keys, sets by
//!   value, atomic values whole, granular maps and structs field by field); the applier owns
//!   exactly the fields of its configuration; fields it owned before and omits now are removed
//!   unless another manager owns them; another manager owning a field the configuration
//!   changes is a conflict unless `force`.
//!
//! Both work on JSON objects of one kind, typed by OpenAPI v3 component schemas of
//! [`crate::schema::definitions`]'s shape (a type missing from them is handled untyped:
//! objects granular, lists atomic). Field paths use upstream's `fieldsV1` encoding
//! (`f:`, `k:`, `v:`, `.`), byte for byte.
//!
//! Known differences from upstream: objects are not converted between API versions, so an
//! entry recorded at another apiVersion is compared as if it were at the request's; and the
//! Go zero values that decide where `".": {}` appears come from a table (see `zero`).
//!
//! Submodules: `path` (path elements), `set` (field sets and `fieldsV1`), `schema` (what a
//! schema node is to apply), `typed` (the schema-driven walks), `zero` (Go zero fields),
//! `managed` (managedFields entries).

mod managed;
mod path;
mod schema;
mod set;
mod typed;
mod zero;

use serde_json::{Map, Value};

pub use managed::{ManagerId, Operation};
pub use path::PathElement;
pub use set::Set;

use managed::{Entry, Managed};
use schema::Schemas;
use typed::Typed;

/// Update entries kept before the oldest are merged into `ancient-changes` (upstream's
/// `DefaultMaxUpdateManagers`).
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager `kubectl apply --server-side` uses; its conflicts with fields of the
/// last-applied annotation are resolved in its favour, as upstream's `lastAppliedManager`.
const KUBECTL_MANAGER: &str = "kubectl";

/// What is written: the object's type and version, who writes, and when.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Component schemas ([`crate::schema::definitions`] or a map of the same shape).
    pub defs: &'a Map<String, Value>,
    /// The definition of the object's kind: `io.k8s.api.apps.v1.Deployment`.
    pub type_name: &'a str,
    /// The request's apiVersion: `apps/v1`, `v1`.
    pub api_version: &'a str,
    /// The object's kind: `Deployment`.
    pub kind: &'a str,
    /// The field manager (the `fieldManager` parameter, else [`manager_from_user_agent`]).
    pub manager: &'a str,
    /// The subresource written (`status`, `scale`), `None` for the main resource.
    pub subresource: Option<&'a str>,
    /// The time to record, RFC 3339 in whole seconds: `2024-05-01T10:00:00Z`.
    pub now: &'a str,
    /// Fields this write can never own (upstream's per-strategy reset fields): `[["status"]]`
    /// for the main resource of a kind with a status subresource, `[["spec"], ["metadata"]]`
    /// for its status subresource.
    pub reset_fields: &'a [&'a [&'a str]],
}

/// One conflict: a field the applied configuration changes and another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owner, as upstream prints it: `"manager-a"`, `"kubectl-client-side-apply" using apps/v1`.
    pub manager: String,
    /// The field, as upstream prints paths: `.spec.replicas`, `.spec.containers[name="app"].image`.
    pub field: String,
}

/// Why an apply failed. [`Error::status_code`] gives the HTTP status upstream answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Other managers own fields the configuration changes; 409 `Conflict`, each conflict a
    /// `FieldManagerConflict` cause (`message`: `conflict with <manager>`, `field`).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The request is malformed (wrong kind or version, managedFields set); 400 `BadRequest`.
    #[error("{0}")]
    BadRequest(String),
    /// The configuration does not fit the schema (a list-map item without keys, duplicate
    /// keys) or the live object's managedFields cannot be read; 500, as upstream answers.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Conflicts(_) => 409,
            Error::BadRequest(_) => 400,
            Error::Internal(_) => 500,
        }
    }
}

/// Upstream's message: `Apply failed with 1 conflict: conflict with "m": .spec.x`, or for
/// several `Apply failed with N conflicts: conflicts with "m":\n- .a\n- .b` grouped by manager.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager, only.field
        );
    }
    let mut by_manager: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for c in conflicts {
        by_manager.entry(&c.manager).or_default().push(&c.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        lines.extend(fields.into_iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The default field manager of a request without `fieldManager`: the User-Agent up to its
/// first `/`, printable characters only, at most 128 bytes (upstream's `prefixFromUserAgent`).
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() >= 128 {
            break;
        }
        out.push(c);
    }
    out
}

/// Records the fields a create, update or non-apply patch changes in `new`'s
/// `metadata.managedFields`. `live` is the stored object (`None` on create).
///
/// As upstream: managedFields the request carries replace the live ones (an empty list or a
/// single empty entry resets them; unreadable ones are ignored); an existing object without
/// managedFields is not tracked; the manager's Update entry (per apiVersion and subresource)
/// gains the changed fields and other managers lose them; entries left empty disappear; at
/// most [`MAX_UPDATE_MANAGERS`] Update entries are kept. Never fails: upstream only logs.
pub fn update(cx: &Context<'_>, live: Option<&Value>, new: &mut Value) {
    let empty = Value::Object(Map::new());
    let live_object = live.unwrap_or(&empty);
    let mut managed = decode_live_or_new(live_object, new, cx.subresource.is_some());
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    let has_uid = live_object
        .pointer("/metadata/uid")
        .is_some_and(|u| u != "");
    if managed.is_empty() && has_uid {
        return;
    }
    let id = ManagerId::new(
        cx.manager,
        Operation::Update,
        cx.api_version,
        cx.subresource.unwrap_or(""),
    );
    let typed = Writer::new(cx);
    typed.record_update(live_object, new, &mut managed, id);
    managed::cap_update_managers(&mut managed, MAX_UPDATE_MANAGERS);
    set_managed_fields(new, &managed);
}

/// Merges the applied configuration `applied` into `live` (`None`: the object does not exist
/// and apply creates it) for `cx.manager`, and returns the resulting object with its
/// managedFields. When nothing but managedFields changed, the result equals `live` apart from
/// them; when nothing changed at all it equals `live`, and the caller should not write.
///
/// The caller defaults the result and runs its strategy, as upstream does after apply.
pub fn apply(
    cx: &Context<'_>,
    live: Option<&Value>,
    applied: &Value,
    force: bool,
) -> Result<Value, Error> {
    check_applied(cx, applied)?;
    let empty = Value::Object(Map::new());
    let live_object = live.unwrap_or(&empty);
    let managed = managed::decode(live_object.pointer("/metadata/managedFields"))
        .map_err(|e| Error::Internal(format!("failed to decode managed fields: {e}")))?;
    let writer = Writer::new(cx);
    let result = match writer.apply_with_before_first(live_object, applied, managed.clone(), force)
    {
        Err(Error::Conflicts(conflicts)) if cx.manager == KUBECTL_MANAGER && !force => {
            // Conflicts on fields the client-side last-applied configuration set to their live
            // values are the same intent: take them over (upstream's lastAppliedManager).
            match writer.allowed_from_last_applied(live_object) {
                Some(allowed) => {
                    let remaining: Vec<Conflict> = conflicts
                        .into_iter()
                        .filter(|c| !allowed.contains(&c.field))
                        .collect();
                    if !remaining.is_empty() {
                        return Err(Error::Conflicts(remaining));
                    }
                    writer.apply_with_before_first(live_object, applied, managed, true)
                }
                None => Err(Error::Conflicts(conflicts)),
            }
        }
        other => other,
    };
    let (mut object, managed) = result?;
    if cx.manager == KUBECTL_MANAGER {
        update_last_applied(&mut object, applied);
    }
    set_managed_fields(&mut object, &managed);
    Ok(object)
}

/// Upstream's version check and managedFields check of an applied configuration.
fn check_applied(cx: &Context<'_>, applied: &Value) -> Result<(), Error> {
    if !applied.is_object() {
        return Err(Error::BadRequest("apply patch must be an object".into()));
    }
    let text = |key: &str| applied.get(key).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if api_version != cx.api_version || kind != cx.kind {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        return Err(Error::BadRequest(format!(
            "invalid object type: {group}/{version}, Kind={kind}"
        )));
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(Error::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    Ok(())
}

/// Upstream's `decodeLiveOrNew`.
fn decode_live_or_new(live: &Value, new: &Value, ignore_request: bool) -> Managed {
    let from_live = || managed::decode(live.pointer("/metadata/managedFields")).unwrap_or_default();
    if ignore_request {
        return from_live();
    }
    let requested = new.pointer("/metadata/managedFields");
    if managed::is_reset(requested) {
        return Managed::new();
    }
    match managed::decode(requested) {
        Ok(managed) if !managed.is_empty() => managed,
        _ => from_live(),
    }
}

fn set_managed_fields(object: &mut Value, managed: &Managed) {
    let Some(root) = object.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    match managed::encode(managed) {
        Some(list) => {
            meta.insert("managedFields".into(), list);
        }
        None => {
            meta.shift_remove("managedFields");
        }
    }
}

/// Sets the last-applied annotation, when the object has one, to the applied configuration
/// (upstream's `lastAppliedUpdater`: Go JSON with sorted keys and a final newline).
fn update_last_applied(object: &mut Value, applied: &Value) {
    let has = object
        .pointer(&format!(
            "/metadata/annotations/{}",
            LAST_APPLIED_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has {
        return;
    }
    let mut config = applied.clone();
    if let Some(annotations) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.shift_remove(LAST_APPLIED_ANNOTATION);
    }
    let mut text = String::new();
    path::go_json(&mut text, &config);
    text.push('\n');
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED_ANNOTATION.into(), text.into());
    }
}

/// The fields upstream's `stripMetaManager` never records.
fn strip_set() -> Set {
    let mut set = Set::new();
    let field = |s: &str| PathElement::Field(s.to_owned());
    for top in ["apiVersion", "kind", "metadata"] {
        set.insert(&[field(top)]);
    }
    for meta in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&[field("metadata"), field(meta)]);
    }
    set
}

/// The structured-merge-diff `Updater` for one request.
struct Writer<'a> {
    typed: Typed<'a>,
    cx: &'a Context<'a>,
    reset: Set,
}

impl<'a> Writer<'a> {
    fn new(cx: &'a Context<'a>) -> Self {
        let schemas = Schemas { defs: cx.defs };
        let typed = Typed {
            schemas,
            root: schemas.root(cx.type_name),
        };
        let mut reset = Set::new();
        for path in cx.reset_fields {
            let path: Vec<PathElement> = path
                .iter()
                .map(|s| PathElement::Field((*s).to_owned()))
                .collect();
            reset.insert(&path);
        }
        Writer { typed, cx, reset }
    }

    fn compare(&self, old: &Value, new: &Value) -> typed::Comparison {
        let old = zero::fill_root(self.typed.schemas, self.typed.root, old);
        let new = zero::fill_root(self.typed.schemas, self.typed.root, new);
        let mut cmp = self.typed.compare(&old, &new);
        if !self.reset.is_empty() {
            cmp.added = cmp.added.recursive_difference(&self.reset);
            cmp.modified = cmp.modified.recursive_difference(&self.reset);
            cmp.removed = cmp.removed.recursive_difference(&self.reset);
        }
        cmp
    }

    /// Upstream `Updater.update`: other managers lose what changed; with `force` unset, any
    /// they would lose is a conflict instead.
    fn take_ownership(
        &self,
        cmp: &typed::Comparison,
        managed: &mut Managed,
        workflow: Option<&ManagerId>,
        force: bool,
    ) -> Result<(), Error> {
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts = Vec::new();
        for (id, entry) in managed.iter() {
            if Some(id) == workflow {
                continue;
            }
            let lost = entry.set.intersection(&changed);
            if !lost.is_empty() {
                conflicts.push((id.clone(), lost));
            }
        }
        if !force && !conflicts.is_empty() {
            let mut out = Vec::new();
            for (id, lost) in &conflicts {
                lost.for_each_path(&mut |p| {
                    out.push(Conflict {
                        manager: id.describe(),
                        field: path::path_string(p),
                    })
                });
            }
            return Err(Error::Conflicts(out));
        }
        for (id, lost) in conflicts {
            if let Some(entry) = managed.get_mut(&id) {
                entry.set = entry.set.difference(&lost);
            }
        }
        if !cmp.removed.is_empty() {
            for (id, entry) in managed.iter_mut() {
                if Some(id) != workflow {
                    entry.set = entry.set.difference(&cmp.removed);
                }
            }
        }
        managed.retain(|_, e| !e.set.is_empty());
        Ok(())
    }

    /// An Update by `id`: upstream's managedFieldsUpdater + stripMeta + `Updater.Update`.
    fn record_update(&self, live: &Value, new: &Value, managed: &mut Managed, id: ManagerId) {
        let cmp = self.compare(live, new);
        // The operation is recorded as a fresh manager, so the manager's own previous fields
        // that changed are handed over like anyone else's, then merged back.
        if self.take_ownership(&cmp, managed, None, true).is_err() {
            return;
        }
        let set = cmp
            .modified
            .union(&cmp.added)
            .recursive_difference(&self.reset);
        let set = set.difference(&strip_set());
        if set.is_empty() {
            return;
        }
        let previous = managed.remove(&id);
        let set = match &previous {
            Some(p) => set.union(&p.set),
            None => set,
        };
        managed.insert(
            id,
            Entry {
                set,
                api_version: self.cx.api_version.to_owned(),
                time: Some(self.cx.now.to_owned()),
            },
        );
    }

    /// Upstream's skipNonAppliedManager then the apply proper: a live object without
    /// managedFields first gets a `before-first-apply` Update entry owning all it has.
    fn apply_with_before_first(
        &self,
        live: &Value,
        applied: &Value,
        mut managed: Managed,
        force: bool,
    ) -> Result<(Value, Managed), Error> {
        if managed.is_empty() {
            let id = ManagerId::new(
                "before-first-apply",
                Operation::Update,
                self.cx.api_version,
                self.cx.subresource.unwrap_or(""),
            );
            self.record_update(&Value::Object(Map::new()), live, &mut managed, id);
            managed::cap_update_managers(&mut managed, MAX_UPDATE_MANAGERS);
        }
        self.apply_structured(live, applied, managed, force)
    }

    /// Upstream `Updater.Apply` with managedFieldsUpdater and stripMeta around it.
    fn apply_structured(
        &self,
        live: &Value,
        applied: &Value,
        mut managed: Managed,
        force: bool,
    ) -> Result<(Value, Managed), Error> {
        let typed_error =
            |e: String| Error::Internal(format!("failed to create typed patch object: {e}"));
        let merged = self.typed.merge(live, applied).map_err(typed_error)?;
        let id = ManagerId::new(
            self.cx.manager,
            Operation::Apply,
            "",
            self.cx.subresource.unwrap_or(""),
        );
        let last = managed.get(&id).cloned();
        let set = self
            .typed
            .to_field_set(applied, true)
            .map_err(typed_error)?;
        let set = set.recursive_difference(&self.reset);
        managed.insert(
            id.clone(),
            Entry {
                set: set.clone(),
                api_version: self.cx.api_version.to_owned(),
                time: last.as_ref().and_then(|l| l.time.clone()),
            },
        );
        let mut merged = match &last {
            Some(last) => self.prune(merged, &managed, &last.set, &set),
            None => merged,
        };
        remove_applied_nulls(&mut merged, applied);
        let cmp = self.compare(live, &merged);
        self.take_ownership(&cmp, &mut managed, Some(&id), force)?;
        // stripMeta on the applier's entry.
        if let Some(entry) = managed.get_mut(&id) {
            entry.set = entry.set.difference(&strip_set());
            if entry.set.is_empty() {
                managed.remove(&id);
            }
        }
        if merged != *live {
            if let Some(entry) = managed.get_mut(&id) {
                entry.time = Some(self.cx.now.to_owned());
            }
            Ok((merged, managed))
        } else {
            Ok((live.clone(), managed))
        }
    }

    /// Upstream `Updater.prune`: removes what the applier owned last time and no longer
    /// applies, unless some manager (the applier's new configuration included) owns it.
    fn prune(&self, merged: Value, managed: &Managed, last: &Set, now: &Set) -> Value {
        let t = &self.typed;
        let last = t.ensure_named_fields_are_members(last);
        // Nothing was dropped from the configuration: pruning would add everything back.
        if last
            .difference(&t.ensure_named_fields_are_members(now))
            .is_empty()
        {
            return merged;
        }
        let field_set = |v: &Value| {
            t.ensure_named_fields_are_members(&t.to_field_set(v, false).unwrap_or_default())
        };
        let pruned = t.remove_items(&merged, &last);
        // addBackOwnedItems
        let mut owned = Set::new();
        for entry in managed.values() {
            owned.union_with(&entry.set);
        }
        let owned = t.ensure_named_fields_are_members(&owned);
        let merged_set = field_set(&merged);
        let pruned_set = field_set(&pruned);
        let pruned = t.remove_items(&merged, &merged_set.difference(&pruned_set.union(&owned)));
        // addBackDanglingItems
        let pruned_set = field_set(&pruned);
        t.remove_items(
            &merged,
            &merged_set.difference(&pruned_set).intersection(&last),
        )
    }

    /// The printed paths of the last-applied configuration whose values the live object still
    /// has (upstream's `allowedConflictsFromLastApplied`); `None` without a usable annotation.
    fn allowed_from_last_applied(&self, live: &Value) -> Option<Vec<String>> {
        let key = format!(
            "/metadata/annotations/{}",
            LAST_APPLIED_ANNOTATION.replace('/', "~1")
        );
        let text = live.pointer(&key)?.as_str()?;
        let last_applied: Value = serde_json::from_str(text).ok()?;
        if last_applied.get("apiVersion").and_then(Value::as_str) != Some(self.cx.api_version) {
            return None;
        }
        let set = self.typed.to_field_set(&last_applied, false).ok()?;
        let cmp = self.typed.compare(&last_applied, live);
        let allowed = set
            .difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed);
        let mut out = Vec::new();
        allowed.for_each_path(&mut |p| out.push(path::path_string(p)));
        Some(out)
    }
}

/// Drops the fields the configuration sets to `null` (found through nested objects), as the
/// round trip of the merged object through its Go struct does upstream.
fn remove_applied_nulls(merged: &mut Value, applied: &Value) {
    let (Value::Object(target), Value::Object(config)) = (merged, applied) else {
        return;
    };
    for (key, value) in config {
        if value.is_null() {
            target.shift_remove(key);
        } else if let Some(child) = target.get_mut(key) {
            remove_applied_nulls(child, value);
        }
    }
}

#[cfg(test)]
mod tests;
