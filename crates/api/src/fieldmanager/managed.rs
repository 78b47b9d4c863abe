//! `metadata.managedFields`: decoding into per-manager field sets and encoding back, as
//! upstream's `managedfields.go` (manager identity, entry order) and `capmanagers.go`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::set::Set;

/// `Apply` or `Update`; `Apply` sorts first, as in upstream's entry order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who owns an entry: upstream's manager identifier. Apply entries are identified without
/// their apiVersion (one per manager and subresource), Update entries with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// Empty for `Apply`.
    pub api_version: String,
    /// Empty for the main resource.
    pub subresource: String,
}

impl ManagerId {
    pub fn new(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> Self {
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        ManagerId {
            manager: manager.to_owned(),
            operation,
            api_version: match operation {
                Operation::Apply => String::new(),
                Operation::Update => api_version.to_owned(),
            },
            subresource: subresource.to_owned(),
        }
    }

    /// How upstream names this manager in a conflict: `"m"`, `"m" with subresource "s"`, and
    /// ` using <apiVersion>` for Update managers.
    pub fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// One manager's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) set: Set,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
}

/// Every manager's fields.
pub(crate) type Managed = BTreeMap<ManagerId, Entry>;

/// Decodes `managedFields` (a JSON list of ManagedFieldsEntry); errors say what is wrong, as
/// upstream's `DecodeManagedFields`.
pub(crate) fn decode(list: Option<&Value>) -> Result<Managed, String> {
    let mut managed = Managed::new();
    let items = match list {
        None | Some(Value::Null) => return Ok(managed),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("managedFields must be a list".into()),
    };
    for (i, item) in items.iter().enumerate() {
        let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default();
        let operation = match text("operation") {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return Err("operation must be `Apply` or `Update`".into()),
        };
        let api_version = text("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match text("fieldsType") {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => {
                return Err(format!(
                    "invalid fieldsType {other:?} in managed fields entry {i}"
                ))
            }
        }
        let set = match item.get("fieldsV1") {
            None | Some(Value::Null) => Set::new(),
            Some(fields) => {
                Set::from_fields_v1(fields).map_err(|e| format!("error decoding set: {e}"))?
            }
        };
        let id = ManagerId::new(text("manager"), operation, api_version, text("subresource"));
        let time = item.get("time").and_then(Value::as_str).map(str::to_owned);
        managed.insert(
            id,
            Entry {
                set,
                api_version: api_version.to_owned(),
                time,
            },
        );
    }
    Ok(managed)
}

/// Whether a request's `managedFields` asks for a reset: an empty list, or one empty entry.
pub(crate) fn is_reset(list: Option<&Value>) -> bool {
    match list {
        Some(Value::Array(items)) => match items.as_slice() {
            [] => true,
            [only] => only.as_object().is_some_and(Map::is_empty),
            _ => false,
        },
        _ => false,
    }
}

/// Encodes `managed` in upstream's order: Apply before Update, then by time (whole seconds),
/// manager, apiVersion, subresource. `None` when nothing is managed.
pub(crate) fn encode(managed: &Managed) -> Option<Value> {
    if managed.is_empty() {
        return None;
    }
    let mut entries: Vec<(&ManagerId, &Entry)> = managed.iter().collect();
    entries.sort_by(|(a, x), (b, y)| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| seconds(x.time.as_deref()).cmp(&seconds(y.time.as_deref())))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| x.api_version.cmp(&y.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let list = entries
        .into_iter()
        .map(|(id, entry)| {
            let mut out = Map::new();
            out.insert("manager".into(), id.manager.clone().into());
            out.insert("operation".into(), id.operation.as_str().into());
            out.insert("apiVersion".into(), entry.api_version.clone().into());
            if let Some(time) = &entry.time {
                out.insert("time".into(), time.clone().into());
            }
            out.insert("fieldsType".into(), "FieldsV1".into());
            out.insert("fieldsV1".into(), entry.set.to_fields_v1());
            if !id.subresource.is_empty() {
                out.insert("subresource".into(), id.subresource.clone().into());
            }
            Value::Object(out)
        })
        .collect();
    Some(Value::Array(list))
}

/// Unix seconds of an RFC 3339 time; 0 when absent or unreadable (as a nil time upstream).
fn seconds(time: Option<&str>) -> i64 {
    time.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
        .unwrap_or(0)
}

/// Upstream's cap on Update entries: beyond `max`, the oldest are merged, per apiVersion, into
/// one `ancient-changes` entry.
pub(crate) fn cap_update_managers(managed: &mut Managed, max: usize) {
    let mut updaters: Vec<ManagerId> = managed
        .keys()
        .filter(|id| id.operation == Operation::Update)
        .cloned()
        .collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by(|a, b| {
        let (x, y) = (&managed[a], &managed[b]);
        seconds(x.time.as_deref())
            .cmp(&seconds(y.time.as_deref()))
            .then_with(|| a.cmp(b))
    });
    let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
    let mut length = updaters.len();
    for id in updaters {
        if length <= max {
            break;
        }
        let Some(entry) = managed.get(&id).cloned() else {
            continue;
        };
        let bucket = ManagerId::new("ancient-changes", Operation::Update, &entry.api_version, "");
        if let Some(first) = first_of_version.get(&entry.api_version) {
            if !managed.contains_key(&bucket) {
                if let Some(first_entry) = managed.remove(first) {
                    managed.insert(bucket.clone(), first_entry);
                }
            }
            managed.remove(&id);
            if let Some(bucket_entry) = managed.get_mut(&bucket) {
                bucket_entry.set.union_with(&entry.set);
                bucket_entry.time = entry.time.clone();
            }
            length -= 1;
        } else {
            first_of_version.insert(entry.api_version.clone(), id);
        }
    }
}
