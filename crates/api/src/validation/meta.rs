//! ObjectMeta validation (apimachinery `pkg/api/validation/objectmeta.go` plus core's
//! finalizer-name rule), labels, annotations and label selectors
//! (`pkg/apis/meta/v1/validation`).

use serde_json::Value;

use super::names::{self, go_quote, NameFn};
use super::{arr_of, str_of, Errors, FieldError, Path};
use crate::ResourceInfo;

/// upstream's `TotalAnnotationSizeLimitB`: 256 KiB over keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// Create-time metadata validation with `name_fn` for the name (and generateName prefix),
/// followed by the update checks when `old` is given.
pub fn object_meta_for(
    info: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
    name_fn: NameFn,
) -> Errors {
    let path = Path::new("metadata");
    let meta = &obj["metadata"];
    match old {
        None => object_meta(
            meta,
            info.namespaced(),
            name_fn,
            &path,
            info.group != "apiextensions.k8s.io",
        ),
        Some(old) => {
            let mut errs = object_meta_update(meta, &old["metadata"], &path);
            errs.extend(object_meta(
                meta,
                info.namespaced(),
                name_fn,
                &path,
                info.group != "apiextensions.k8s.io",
            ));
            errs
        }
    }
}

/// `ValidateObjectMeta`: name (and generateName), namespace, generation, labels,
/// annotations, owner references, finalizers. `kube_finalizers` adds core's rule that an
/// unqualified finalizer must be a standard one.
pub fn object_meta(
    meta: &Value,
    namespaced: bool,
    name_fn: NameFn,
    path: &Path,
    kube_finalizers: bool,
) -> Errors {
    let mut errs = Errors::new();
    let generate = str_of(meta, "generateName");
    if !generate.is_empty() {
        for msg in name_fn(generate, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                generate,
                msg,
            ));
        }
    }
    let name = str_of(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, msg));
        }
    }
    let ns = str_of(meta, "namespace");
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for msg in names::dns_label_name(ns, false) {
                errs.push(FieldError::invalid(&path.child("namespace"), ns, msg));
            }
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    super::nonnegative(&mut errs, meta, "generation", path);
    errs.extend(labels(&meta["labels"], &path.child("labels")));
    errs.extend(annotations(
        &meta["annotations"],
        &path.child("annotations"),
    ));
    errs.extend(owner_references(
        arr_of(meta, "ownerReferences"),
        &path.child("ownerReferences"),
    ));
    errs.extend(finalizers(
        arr_of(meta, "finalizers"),
        &path.child("finalizers"),
    ));
    if kube_finalizers {
        for (i, f) in arr_of(meta, "finalizers").iter().enumerate() {
            let f = f.as_str().unwrap_or_default();
            if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
                errs.push(FieldError::invalid(
                    &path.child("finalizers").index(i),
                    f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
    errs
}

/// `ValidateObjectMetaUpdate`: no new finalizers once deleting, no decrementing generation,
/// identity fields immutable. (The registry restores name, namespace, uid and timestamps
/// from the stored object before this runs, so those checks guard internal writers.)
pub fn object_meta_update(new: &Value, old: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    if !old["deletionTimestamp"].is_null() {
        let old_f: Vec<&str> = arr_of(old, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut extra: Vec<&str> = arr_of(new, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| go_quote(f)).collect();
            errs.push(FieldError::forbidden(
                &path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    let (ng, og) = (
        new["generation"].as_i64().unwrap_or(0),
        old["generation"].as_i64().unwrap_or(0),
    );
    if ng < og {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            ng,
            "must not be decremented",
        ));
    }
    for f in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        if new[f] != old[f] {
            errs.push(FieldError::immutable(&path.child(f), &new[f]));
        }
    }
    errs
}

/// `ValidateLabels`: every key a qualified name, every value a label value.
pub fn labels(labels: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let Some(m) = labels.as_object() else {
        return errs;
    };
    for (k, v) in m {
        errs.extend(label_name(k, path));
        let v = v.as_str().unwrap_or_default();
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// `ValidateLabelName`.
pub fn label_name(name: &str, path: &Path) -> Errors {
    names::is_qualified_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect()
}

/// `ValidateAnnotations`: keys are qualified names (compared lower-cased) and the keys and
/// values together stay within 256 KiB.
pub fn annotations(annotations: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let Some(m) = annotations.as_object() else {
        return errs;
    };
    let mut total = 0;
    for (k, v) in m {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn owner_references(refs: &[Value], path: &Path) -> Errors {
    let mut errs = Errors::new();
    let mut first_controller = String::new();
    for r in refs {
        let (api_version, kind, name, uid) = (
            str_of(r, "apiVersion"),
            str_of(r, "kind"),
            str_of(r, "name"),
            str_of(r, "uid"),
        );
        let version = api_version.rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                kind,
                "kind must not be empty",
            ));
        }
        if name.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("name"),
                name,
                "name must not be empty",
            ));
        }
        if uid.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("uid"),
                uid,
                "uid must not be empty",
            ));
        }
        if api_version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r["controller"].as_bool() == Some(true) {
            let current = format!("{kind}/{name}");
            if first_controller.is_empty() {
                first_controller = current;
            } else {
                errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {current}"),
                ));
            }
        }
    }
    errs
}

fn finalizers(list: &[Value], path: &Path) -> Errors {
    let mut errs = Errors::new();
    let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    for f in &names {
        for msg in names::is_qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            Value::Array(list.to_vec()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// `ValidateLabelSelector` (strict label values).
pub fn label_selector(sel: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    if sel.is_null() {
        return errs;
    }
    errs.extend(labels(&sel["matchLabels"], &path.child("matchLabels")));
    for (i, expr) in arr_of(sel, "matchExpressions").iter().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = arr_of(expr, "values");
        match str_of(expr, "operator") {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                &p.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                &p.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        errs.extend(label_name(str_of(expr, "key"), &p.child("key")));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or_default();
            for msg in names::is_valid_label_value(v) {
                errs.push(FieldError::invalid(&p.child("values").index(j), v, msg));
            }
        }
    }
    errs
}

/// Whether a selector selects nothing-in-particular (no labels, no expressions).
pub fn selector_is_empty(sel: &Value) -> bool {
    sel["matchLabels"].as_object().is_none_or(|m| m.is_empty())
        && arr_of(sel, "matchExpressions").is_empty()
}

/// Whether `sel` (a metav1.LabelSelector) matches `labels`.
pub fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let match_labels = sel["matchLabels"].as_object().into_iter().flatten();
    for (k, v) in match_labels {
        if get(k) != v.as_str() {
            return false;
        }
    }
    arr_of(sel, "matchExpressions").iter().all(|e| {
        let key = str_of(e, "key");
        let values: Vec<&str> = arr_of(e, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match str_of(e, "operator") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        }
    })
}

/// How Go's `%#v` prints a `map[string]string` field: `map[string]string(nil)` when absent.
pub fn go_string_map(v: &Value) -> String {
    if v.is_null() {
        "map[string]string(nil)".to_owned()
    } else {
        super::go_render(v)
    }
}

/// How Go's `%#v` prints a `metav1.LabelSelector` (the value behind the pointer).
pub fn go_label_selector(sel: &Value) -> String {
    let exprs = arr_of(sel, "matchExpressions");
    let exprs = if sel["matchExpressions"].is_null() {
        "[]v1.LabelSelectorRequirement(nil)".to_owned()
    } else {
        let items: Vec<String> = exprs
            .iter()
            .map(|e| {
                let values = if e["values"].is_null() {
                    "[]string(nil)".to_owned()
                } else {
                    super::go_render(&e["values"])
                };
                format!(
                    "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                    go_quote(str_of(e, "key")),
                    go_quote(str_of(e, "operator"))
                )
            })
            .collect();
        format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_string_map(&sel["matchLabels"])
    )
}
