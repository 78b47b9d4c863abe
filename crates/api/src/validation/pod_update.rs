//! `ValidatePodUpdate`: what may change in a running pod's spec.

use serde_json::{Map, Value};

use super::names::inclusive_range_error;
use super::pod::tolerations;
use super::{arr_of, int_of, str_of, Errors, FieldError, Path};

const MAX_INT32: i64 = i32::MAX as i64;

/// The fields `ValidatePodUpdate` lets change, as upstream lists them.
const UPDATABLE_POD_SPEC_FIELDS: [&str; 5] = [
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// `ValidatePodUpdate` past the metadata and full-spec checks the caller makes: only
/// images, activeDeadlineSeconds (down), tolerations (additions), scheduling gates
/// (removals) and a negative grace period (to 1) may change.
pub fn pod_update(new: &Value, old: &Value) -> Errors {
    let spec_path = Path::new("spec");
    let (ns, os) = (&new["spec"], &old["spec"]);
    let mut errs = Errors::new();
    for list in ["containers", "initContainers"] {
        let (nc, oc) = (arr_of(ns, list), arr_of(os, list));
        let p = spec_path.child(list);
        if nc.len() != oc.len() {
            errs.push(FieldError::forbidden(
                &p,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in nc.iter().enumerate() {
            let image = str_of(c, "image");
            if image.is_empty() {
                errs.push(FieldError::required(&p.index(i).child("image"), ""));
            }
            if image.trim().len() != image.len() {
                errs.push(FieldError::invalid(
                    &p.index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let ads_path = spec_path.child("activeDeadlineSeconds");
    match (
        int_of(ns, "activeDeadlineSeconds"),
        int_of(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(FieldError::invalid(
                &ads_path,
                n,
                inclusive_range_error(0, MAX_INT32),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                &ads_path,
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &ads_path,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    errs.extend(only_added_tolerations(
        arr_of(ns, "tolerations"),
        arr_of(os, "tolerations"),
        &spec_path.child("tolerations"),
    ));
    if ns == os {
        return errs;
    }
    let munged = munge_pod_spec(ns, os);
    if &munged != os {
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE_POD_SPEC_FIELDS.join(","),
                spec_diff(os, &munged)
            ),
        ));
    }
    errs
}

/// The new spec with every field that may change reset to the old value.
fn munge_pod_spec(new: &Value, old: &Value) -> Value {
    let mut m = new.clone();
    for list in ["containers", "initContainers"] {
        if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in cs.iter_mut().enumerate() {
                c["image"] = old[list][i]["image"].clone();
            }
        }
    }
    let Some(obj) = m.as_object_mut() else {
        return m;
    };
    for f in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        restore(obj, old, f);
    }
    let old_grace = int_of(old, "terminationGracePeriodSeconds");
    if old_grace.is_some_and(|g| g < 0)
        && obj
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(1)
    {
        restore(obj, old, "terminationGracePeriodSeconds");
    }
    m
}

fn restore(obj: &mut Map<String, Value>, old: &Value, f: &str) {
    match old.get(f) {
        Some(v) => {
            obj.insert(f.to_owned(), v.clone());
        }
        None => {
            obj.remove(f);
        }
    }
}

fn only_added_tolerations(new: &[Value], old: &[Value], path: &Path) -> Errors {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    for o in old {
        if !new.iter().any(|n| strip(n) == strip(o)) {
            return vec![FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    tolerations(new, path)
}

/// A short diff of two specs, in the spirit of go-cmp's report: one `-`/`+` line pair per
/// changed leaf, named by its JSON path.
fn spec_diff(old: &Value, new: &Value) -> String {
    let mut lines = Vec::new();
    diff_into(old, new, "", &mut lines);
    let mut out = String::from("  v1.PodSpec{\n");
    for (path, o, n) in lines {
        out.push_str(&format!("- \t{path}: {o},\n+ \t{path}: {n},\n"));
    }
    out.push_str("  }\n");
    out
}

fn diff_into(old: &Value, new: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    if old == new {
        return;
    }
    let render = |v: &Value| {
        if v.is_null() {
            "nil".to_owned()
        } else {
            super::go_render(v)
        }
    };
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_into(
                    o.get(k).unwrap_or(&Value::Null),
                    n.get(k).unwrap_or(&Value::Null),
                    &p,
                    out,
                );
            }
        }
        (Value::Array(o), Value::Array(n))
            if o.len() == n.len() && o.iter().any(Value::is_object) =>
        {
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                diff_into(a, b, &format!("{path}[{i}]"), out);
            }
        }
        _ => out.push((path.to_owned(), render(old), render(new))),
    }
}
