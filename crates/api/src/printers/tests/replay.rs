//! Replays the Table responses kube-apiserver v1.26.1 recorded in the shared upstream
//! reference (`04-tables`): our columns must match the recorded ones, and our cells, for
//! every row whose full object the recording holds, must match the recorded cells.
//!
//! The full objects come from `created/` (the POST responses) and from the
//! `includeObject=Object` pod table; each row's own metadata (the live one) replaces the
//! created object's. Ages are computed at the response's `Date` header, which is truncated
//! to the second, so an age may also match one second later. Status fields that controllers
//! wrote after creation are overlaid from [`status_overlay`], each with the reason.
//!
//! The differences between v1.26 and v1.33 that rkube follows are listed in
//! [`V133_NEW_COLUMNS`] and [`v133_cell`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::super::{cells, columns};
use crate::resources::{find, ResourceInfo};

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/printers/testdata/04-tables");

/// Columns v1.33 has and v1.26 had not: (plural, column).
const V133_NEW_COLUMNS: &[(&str, &str)] = &[
    ("jobs", "Status"),
    ("cronjobs", "Timezone"),
    ("persistentvolumes", "VolumeAttributesClass"),
    ("persistentvolumeclaims", "VolumeAttributesClass"),
    ("priorityclasses", "PreemptionPolicy"),
];

/// Resources whose v1.33 column order differs from v1.26 (compared by name only).
const V133_REORDERED: &[&str] = &["resourcequotas"];

/// Columns whose value depends on the time of the request.
const AGE_COLUMNS: &[&str] = &["Age", "Duration", "Last Schedule"];

/// A recorded v1.26 cell as v1.33 prints it: HPA resource targets gained the resource name.
fn v133_cell(plural: &str, column: &str, recorded: &Value) -> Value {
    match (plural, column, recorded.as_str()) {
        ("horizontalpodautoscalers", "Targets", Some("<unknown>/80%")) => {
            json!("cpu: <unknown>/80%")
        }
        _ => recorded.clone(),
    }
}

/// Status that controllers wrote between the POST and the Table request, read off the
/// recorded cells themselves (the recording keeps no later copy of these objects).
fn status_overlay(kind: &str, name: &str, created: &str) -> Option<Value> {
    Some(match (kind, name) {
        // the deployment controller created the ReplicaSet with all replicas up to date
        ("Deployment", "api") => json!({"updatedReplicas": 2, "replicas": 2}),
        ("Deployment", "web") => json!({"updatedReplicas": 1, "replicas": 1}),
        // the replica set controller created its pod
        ("ReplicaSet", "rs") => json!({"replicas": 1}),
        // the job controller started the jobs right away
        ("Job", _) => json!({"startTime": created, "active": 1}),
        // the PV controller marks an unbound volume Available
        ("PersistentVolume", _) => json!({"phase": "Available"}),
        // the quota controller counted the ten pods
        ("ResourceQuota", "compute") => json!({"hard": {"pods": "10"}, "used": {"pods": "10"}}),
        _ => return None,
    })
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "the upstream reference must be readable: {}: {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("recorded JSON parses")
}

/// The `Date` header of a recorded response, as the server's "now".
fn recorded_date(body: &Path) -> Timestamp {
    let headers = PathBuf::from(body.to_string_lossy().replace(".json", ".headers.txt"));
    let text = std::fs::read_to_string(&headers).expect("headers recorded");
    let date = text
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .expect("Date header");
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(date)
        .expect("RFC 2822 date")
}

/// Every object in `created/` and every pod of the `includeObject=Object` table, by
/// (kind, name); all recorded objects live in one namespace or none.
fn full_objects() -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let dir = Path::new(REFERENCE).join("created");
    for entry in std::fs::read_dir(&dir).expect("created/ recorded") {
        let path = entry.expect("dir entry").path();
        if path.to_string_lossy().ends_with(".response.json") {
            let obj = read_json(&path);
            let key = (obj["kind"].as_str().unwrap_or("").to_owned(), name(&obj));
            out.insert(key, obj);
        }
    }
    let pods = read_json(
        &Path::new(REFERENCE).join("list-pods-as-table-includeObject-Object.response.json"),
    );
    for row in pods["rows"].as_array().expect("rows") {
        out.insert(
            ("Pod".to_owned(), name(&row["object"])),
            row["object"].clone(),
        );
    }
    out
}

fn name(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// Which resource a recorded file lists.
fn resource_of(file: &str) -> &'static ResourceInfo {
    let plural = file
        .trim_start_matches("list-")
        .trim_start_matches("get-")
        .split("-as-table")
        .next()
        .expect("file name")
        .trim_start_matches("pods-all-namespaces")
        .to_owned();
    let plural = match plural.as_str() {
        "" | "pod" => "pods",
        p => p,
    };
    let group = match plural {
        "deployments" | "statefulsets" | "daemonsets" | "replicasets" => "apps",
        "jobs" | "cronjobs" => "batch",
        "ingresses" | "networkpolicies" => "networking.k8s.io",
        "poddisruptionbudgets" => "policy",
        "horizontalpodautoscalers" => "autoscaling",
        "roles" | "rolebindings" => "rbac.authorization.k8s.io",
        "priorityclasses" => "scheduling.k8s.io",
        "storageclasses" => "storage.k8s.io",
        "leases" => "coordination.k8s.io",
        "endpointslices" => "discovery.k8s.io",
        _ => "",
    };
    let version = if group == "autoscaling" { "v2" } else { "v1" };
    find(group, version, plural).unwrap_or_else(|| panic!("{file}: {group}/{plural} is served"))
}

fn check_columns(file: &str, info: &ResourceInfo, recorded: &[Value]) {
    let ours: Vec<Value> = columns(info)
        .into_iter()
        .filter(|c| !V133_NEW_COLUMNS.contains(&(info.plural, c.name)))
        .map(|c| serde_json::to_value(c).expect("serializable"))
        .collect();
    if V133_REORDERED.contains(&info.plural) {
        let by_name = |cols: &[Value]| {
            let mut v: Vec<String> = cols.iter().map(Value::to_string).collect();
            v.sort();
            v
        };
        assert_eq!(by_name(&ours), by_name(recorded), "{file}: columns");
    } else {
        assert_eq!(ours, recorded, "{file}: columns");
    }
}

/// Compares one row; returns false when the recording lacks the row's full object.
fn check_row(
    file: &str,
    info: &ResourceInfo,
    objects: &BTreeMap<(String, String), Value>,
    recorded_cols: &[Value],
    row: &Value,
    now: Timestamp,
) -> bool {
    let meta = &row["object"]["metadata"];
    let row_name = meta["name"].as_str().unwrap_or("").to_owned();
    let Some(full) = objects.get(&(info.kind.to_owned(), row_name.clone())) else {
        return false;
    };
    let mut obj = full.clone();
    if meta.is_object() {
        obj["metadata"] = meta.clone();
    }
    let created = meta["creationTimestamp"].as_str().unwrap_or("").to_owned();
    if let Some(Value::Object(overlay)) = status_overlay(info.kind, &row_name, &created) {
        if !obj["status"].is_object() {
            obj["status"] = json!({});
        }
        for (k, v) in overlay {
            obj["status"][k] = v;
        }
    }
    let our_cols = columns(info);
    let at = |t: Timestamp| cells(info, &obj, t);
    let (ours, later) = (at(now), at(now + SignedDuration::from_secs(1)));
    for (i, col) in recorded_cols.iter().enumerate() {
        let col_name = col["name"].as_str().expect("column name");
        let j = our_cols
            .iter()
            .position(|c| c.name == col_name)
            .expect("column kept");
        let want = v133_cell(info.plural, col_name, &row["cells"][i]);
        let ok = ours[j] == want || (AGE_COLUMNS.contains(&col_name) && later[j] == want);
        assert!(
            ok,
            "{file}: row {row_name} column {col_name}: ours {} recorded {want}",
            ours[j]
        );
    }
    true
}

#[test]
fn recorded_v1_26_tables_replay() {
    let objects = full_objects();
    let mut files: Vec<PathBuf> = std::fs::read_dir(REFERENCE)
        .expect("the recorded upstream tables are in src/printers/testdata")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.to_string_lossy().ends_with("-as-table.response.json")
                || p.to_string_lossy().contains("-as-table-")
                    && p.to_string_lossy().ends_with(".response.json")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the 04-tables recordings, found {}",
        files.len()
    );
    let (mut compared, mut skipped) = (0, Vec::new());
    for path in &files {
        let file = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let info = resource_of(&file);
        let body = read_json(path);
        let recorded_cols = body["columnDefinitions"].as_array().expect("columns");
        check_columns(&file, info, recorded_cols);
        let now = recorded_date(path);
        for row in body["rows"].as_array().expect("rows") {
            if row["object"].is_null() {
                continue; // includeObject=None: nothing to identify the row's object by
            }
            if check_row(&file, info, &objects, recorded_cols, row, now) {
                compared += 1;
            } else {
                skipped.push(format!("{file}:{}", name(&row["object"])));
            }
        }
    }
    // every object rkube's tests created has its row compared; only controller-made and
    // system objects (whose full form the recording lacks) are skipped
    assert!(
        compared >= 60,
        "compared only {compared} rows; skipped {skipped:?}"
    );
}
