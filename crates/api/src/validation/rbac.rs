//! The rbac.authorization.k8s.io group (`pkg/apis/rbac/validation`): Roles, ClusterRoles,
//! RoleBindings, ClusterRoleBindings.

use serde_json::Value;

use super::names::{self, go_quote};
use super::{arr_of, meta, str_of, Errors, FieldError, Path};
use crate::ResourceInfo;

pub(super) fn validate(info: &ResourceInfo, new: &Value, old: Option<&Value>) -> Errors {
    let mut errs = meta::object_meta_for(info, new, old, names::path_segment_name);
    match info.kind {
        "Role" | "ClusterRole" => {
            for (i, rule) in arr_of(new, "rules").iter().enumerate() {
                errs.extend(policy_rule(
                    rule,
                    info.kind == "Role",
                    &Path::new("rules").index(i),
                ));
            }
            if info.kind == "ClusterRole" {
                let sel = arr_of(&new["aggregationRule"], "clusterRoleSelectors");
                for (i, s) in sel.iter().enumerate() {
                    let p = Path::new("aggregationRule")
                        .child("clusterRoleSelectors")
                        .index(i);
                    errs.extend(meta::label_selector(s, &p));
                }
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            errs.extend(binding(new, info.kind == "RoleBinding"));
            if let Some(old) = old {
                if new["roleRef"] != old["roleRef"] {
                    let r = &new["roleRef"];
                    errs.push(FieldError::invalid_go(
                        &Path::new("roleRef"),
                        format!(
                            "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                            go_quote(str_of(r, "apiGroup")),
                            go_quote(str_of(r, "kind")),
                            go_quote(str_of(r, "name"))
                        ),
                        "cannot change roleRef",
                    ));
                }
            }
        }
        _ => {}
    }
    errs
}

/// `ValidatePolicyRule`.
fn policy_rule(rule: &Value, namespaced: bool, path: &Path) -> Errors {
    let mut errs = Errors::new();
    if arr_of(rule, "verbs").is_empty() {
        errs.push(FieldError::required(
            &path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = arr_of(rule, "nonResourceURLs");
    if !urls.is_empty() {
        if namespaced {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                Value::Array(urls.to_vec()),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !arr_of(rule, "apiGroups").is_empty()
            || !arr_of(rule, "resources").is_empty()
            || !arr_of(rule, "resourceNames").is_empty()
        {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                Value::Array(urls.to_vec()),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if arr_of(rule, "apiGroups").is_empty() {
        errs.push(FieldError::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if arr_of(rule, "resources").is_empty() {
        errs.push(FieldError::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn binding(b: &Value, namespaced: bool) -> Errors {
    let mut errs = Errors::new();
    let r = &b["roleRef"];
    let rp = Path::new("roleRef");
    if str_of(r, "apiGroup") != "rbac.authorization.k8s.io" {
        errs.push(FieldError::not_supported(
            &rp.child("apiGroup"),
            str_of(r, "apiGroup"),
            &["rbac.authorization.k8s.io"],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    let kind = str_of(r, "kind");
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(&rp.child("kind"), kind, kinds));
    }
    let name = str_of(r, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&rp.child("name"), ""));
    } else {
        for msg in names::path_segment_name(name, false) {
            errs.push(FieldError::invalid(&rp.child("name"), name, msg));
        }
    }
    for (i, s) in arr_of(b, "subjects").iter().enumerate() {
        let p = Path::new("subjects").index(i);
        let (kind, name) = (str_of(s, "kind"), str_of(s, "name"));
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        match kind {
            "ServiceAccount" => {
                if !name.is_empty() {
                    for msg in names::dns_subdomain_name(name, false) {
                        errs.push(FieldError::invalid(&p.child("name"), name, msg));
                    }
                }
                if let Some(g) = s["apiGroup"].as_str().filter(|g| !g.is_empty()) {
                    errs.push(FieldError::not_supported(&p.child("apiGroup"), g, &[""]));
                }
                if !namespaced && str_of(s, "namespace").is_empty() {
                    errs.push(FieldError::required(&p.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                let g = str_of(s, "apiGroup");
                if g != "rbac.authorization.k8s.io" {
                    errs.push(FieldError::not_supported(
                        &p.child("apiGroup"),
                        g,
                        &["rbac.authorization.k8s.io"],
                    ));
                }
            }
            _ => errs.push(FieldError::not_supported(
                &p.child("kind"),
                kind,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}
