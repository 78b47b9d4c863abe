//! Field selectors: upstream's `k8s.io/apimachinery/pkg/fields` syntax, and which fields
//! each resource accepts and how their values read.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::validation::go_quote;
use crate::resources::ResourceInfo;

/// A field requirement's operator. `==` parses as [`FieldOperator::Equals`], as upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    /// The unescaped value.
    pub value: String,
}

/// A parsed field selector: terms ANDed together. The default value selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Selects every object.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses `f=v`, `f==v` and `f!=v` terms joined by commas; `\,`, `\=` and `\\` escape
    /// those characters in values. Terms are kept sorted as upstream sorts them; empty
    /// terms are skipped. Field names are not checked here: see
    /// [`FieldSelector::validate_for`].
    pub fn parse(selector: &str) -> Result<Self, String> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, raw)) = split_term(term) else {
                return Err(format!(
                    "invalid selector: '{selector}'; can't understand '{term}'"
                ));
            };
            let value = unescape_value(raw)?;
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Checks every field against what upstream accepts for `info` and maps legacy
    /// spellings to the field [`field_value`] reads (`spec.host` → `spec.nodeName` for
    /// pods). The error is upstream's (`field label not supported: spec.foo`), which the
    /// API server returns as 400 BadRequest.
    pub fn validate_for(&self, info: &ResourceInfo) -> Result<FieldSelector, String> {
        let requirements = self
            .requirements
            .iter()
            .map(|r| {
                Ok(FieldRequirement {
                    field: convert_field_label(info, &r.field)?.to_owned(),
                    ..r.clone()
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(FieldSelector { requirements })
    }

    /// The field names the terms test, in order (what the API server checks against
    /// [`supported_fields`]; [`FieldSelector::validate_for`] does that with upstream's
    /// exact error texts).
    pub fn fields(&self) -> Vec<&str> {
        self.requirements.iter().map(|r| r.field.as_str()).collect()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether every term holds; `get` returns a field's value, and `None` counts as the
    /// empty string, as upstream's `fields.Set.Get`.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = get(&r.field).unwrap_or_default();
            match r.operator {
                FieldOperator::Equals => actual == r.value,
                FieldOperator::NotEquals => actual != r.value,
            }
        })
    }

    /// [`FieldSelector::matches`] against an object of `info`'s resource, through
    /// [`field_value`].
    pub fn matches_object(&self, info: &ResourceInfo, obj: &Value) -> bool {
        self.matches(&|field| field_value(info, obj, field))
    }

    /// The value `field` must equal, if a term pins it (`metadata.name=x`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// Upstream's string: `f=v` / `f!=v` with values escaped, joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        FieldSelector::parse(s)
    }
}

/// Splits on commas not preceded by a backslash escape.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at its first operator (`!=`, `==`, then `=` at each position).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ))
                }
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            // Upstream prints the rune with %v, i.e. as its number.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            c => out.push(c),
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".to_owned());
    }
    Ok(out)
}

// --- per-resource fields ---------------------------------------------------------------

/// How a resource rejects a field it does not support; upstream's wording varies.
#[derive(Clone, Copy)]
enum Rejection {
    /// `DefaultMetaV1FieldSelectorConversion`, for kinds that register no conversion.
    Default,
    /// Most registered conversions: `field label not supported: <f>`.
    NotSupported,
    /// batch/v1 Job: `field label "<f>" not supported for Job`.
    Job,
}

const METADATA: &[&str] = &["metadata.name", "metadata.namespace"];
const PODS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
    // Legacy v1 clients; converted to spec.nodeName.
    "spec.host",
];
const NODES: &[&str] = &["metadata.name", "spec.unschedulable"];
const NAMESPACES: &[&str] = &["metadata.name", "status.phase"];
const SECRETS: &[&str] = &["metadata.name", "metadata.namespace", "type"];
const SERVICES: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.clusterIP",
    "spec.type",
];
const REPLICATION_CONTROLLERS: &[&str] =
    &["metadata.name", "metadata.namespace", "status.replicas"];
const CORE_EVENTS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
const EVENTS_V1: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "source",
    "type",
];
const JOBS: &[&str] = &["metadata.name", "metadata.namespace", "status.successful"];
const CSRS: &[&str] = &["metadata.name", "spec.signerName"];

fn rules(info: &ResourceInfo) -> (&'static [&'static str], Rejection) {
    use Rejection::*;
    match (info.group, info.plural) {
        ("", "pods") => (PODS, NotSupported),
        ("", "nodes") => (NODES, NotSupported),
        ("", "namespaces") => (NAMESPACES, NotSupported),
        ("", "secrets") => (SECRETS, NotSupported),
        ("", "services") => (SERVICES, NotSupported),
        ("", "replicationcontrollers") => (REPLICATION_CONTROLLERS, NotSupported),
        ("", "events") => (CORE_EVENTS, NotSupported),
        ("events.k8s.io", "events") => (EVENTS_V1, NotSupported),
        ("batch", "jobs") => (JOBS, Job),
        ("certificates.k8s.io", "certificatesigningrequests") => (CSRS, NotSupported),
        // Everything else, replicasets included: apps/v1 registers no conversion, so
        // upstream rejects status.replicas there even though its registry could match it.
        _ => (METADATA, Default),
    }
}

/// The field labels upstream accepts in a field selector for `info`'s resource. Kinds
/// with no registered conversion (most, and every custom resource) accept
/// `metadata.name` and `metadata.namespace`, even when cluster-scoped (the namespace then
/// reads as "").
pub fn supported_fields(info: &ResourceInfo) -> &'static [&'static str] {
    rules(info).0
}

/// Upstream's field-label conversion: the field [`field_value`] reads for `label`, or
/// upstream's error for an unsupported one.
pub fn convert_field_label(info: &ResourceInfo, label: &str) -> Result<&'static str, String> {
    let (fields, rejection) = rules(info);
    match fields.iter().find(|f| **f == label) {
        Some(&"spec.host") => Ok("spec.nodeName"),
        Some(field) => Ok(field),
        None => Err(match rejection {
            Rejection::Default => format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(label)
            ),
            Rejection::NotSupported => format!("field label not supported: {label}"),
            Rejection::Job => format!("field label {} not supported for Job", go_quote(label)),
        }),
    }
}

/// The value of a selectable field of `obj` (the object's JSON) as upstream's
/// `ToSelectableFields` renders it: strings as is, a missing string as "", booleans as
/// "true"/"false" (missing: "false"), counts in decimal (missing: "0"). `None` when the
/// resource does not support the field.
pub fn field_value(info: &ResourceInfo, obj: &Value, field: &str) -> Option<String> {
    let field = convert_field_label(info, field).ok()?;
    let text = |path: &str| text_at(obj, path);
    Some(match (info.group, info.plural, field) {
        (_, _, "metadata.name") => text("metadata.name"),
        (_, _, "metadata.namespace") if info.namespaced() => text("metadata.namespace"),
        (_, _, "metadata.namespace") => String::new(),
        ("", "pods", "spec.hostNetwork") | ("", "nodes", "spec.unschedulable") => {
            bool_at(obj, field).to_string()
        }
        ("", "pods", "status.podIP") => match obj.pointer("/status/podIPs/0/ip") {
            Some(Value::String(ip)) => ip.clone(),
            _ => text("status.podIP"),
        },
        // Accepted by the conversion but never filled in by PodToSelectableFields.
        ("", "pods", "status.podIPs") => String::new(),
        ("", "replicationcontrollers", "status.replicas") => count_at(obj, "status.replicas"),
        ("batch", "jobs", "status.successful") => count_at(obj, "status.succeeded"),
        ("", "events", "source") => {
            first_non_empty(text("source.component"), text("reportingComponent"))
        }
        ("events.k8s.io", "events", "source") => first_non_empty(
            text("deprecatedSource.component"),
            text("reportingController"),
        ),
        (_, _, path) => text(path),
    })
}

fn at<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, key| v.get(key))
}

fn text_at(obj: &Value, dotted: &str) -> String {
    match at(obj, dotted) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn bool_at(obj: &Value, dotted: &str) -> bool {
    at(obj, dotted).and_then(Value::as_bool).unwrap_or(false)
}

fn count_at(obj: &Value, dotted: &str) -> String {
    at(obj, dotted)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

fn first_non_empty(a: String, b: String) -> String {
    if a.is_empty() {
        b
    } else {
        a
    }
}
