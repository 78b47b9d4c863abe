//! Validation as kube-apiserver does it: every served kind is checked after defaulting, on
//! create and on update (with the old object), and every problem found is reported as a
//! [`FieldError`] whose rendering matches upstream's `field.Error` (apimachinery
//! `pkg/util/validation/field`): the `field` path, the cause `reason`
//! (`FieldValueRequired`, ...) and the `message` (`Required value`, `Invalid value: "x": ...`).
//!
//! The checks are ported from kube-apiserver v1.33 (`pkg/apis/core/validation`,
//! `pkg/apis/apps/validation`, `pkg/apis/batch/validation`, ...) and apimachinery's object
//! metadata validation, over the defaulted JSON object. Errors come out in upstream's order.
//!
//! Modules: [`names`] (DNS labels, qualified names, label values, port names), [`meta`]
//! (ObjectMeta, labels, annotations, selectors), `core`/`pod` (core group), `apps`, `batch`,
//! `networking`, `rbac`.

pub mod meta;
pub mod names;

mod apps;
mod batch;
mod container;
mod core;
mod networking;
mod pod;
mod pod_update;
mod rbac;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::ResourceInfo;

/// upstream's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Required,
    Duplicate,
    /// Also used for immutable fields (`field is immutable`), as upstream does.
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl ErrorKind {
    /// The cause `reason` upstream's `metav1.Status` carries (`CauseType`).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "FieldValueNotFound",
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::Internal => "InternalError",
            ErrorKind::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// `ErrorType.String()`.
    pub fn text(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "Not found",
            ErrorKind::Required => "Required value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::Invalid | ErrorKind::TypeInvalid => "Invalid value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooMany => "Too many",
            ErrorKind::Internal => "Internal error",
        }
    }
}

/// One validation problem: upstream's `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: ErrorKind,
    /// The field path as upstream prints it: `spec.containers[0].ports[0].containerPort`.
    pub field: String,
    /// The offending value; `None` when upstream omits it from the message.
    pub bad_value: Option<Value>,
    pub detail: String,
    /// How Go's `%#v` prints the bad value when it is not a plain JSON scalar, string map or
    /// string list (`v1.LabelSelector{...}`, `map[string]string(nil)`); overrides
    /// `bad_value` in the message.
    pub go_value: Option<String>,
}

impl FieldError {
    fn new(
        kind: ErrorKind,
        field: &Path,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            kind,
            field: field.to_string(),
            bad_value,
            detail: detail.into(),
            go_value: None,
        }
    }

    pub fn required(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Required, field, None, detail)
    }

    pub fn invalid(field: &Path, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, field, Some(value.into()), detail)
    }

    /// An `Invalid` error whose value is printed as Go would print it (`go_value`).
    pub fn invalid_go(
        field: &Path,
        go_value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        let mut e = Self::new(ErrorKind::Invalid, field, Some(Value::Null), detail);
        e.go_value = Some(go_value.into());
        e
    }

    /// `Invalid value` with the value left out (upstream's `field.OmitValueType`).
    pub fn invalid_omitted(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, field, None, detail)
    }

    pub fn not_supported(field: &Path, value: impl Into<Value>, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| names::go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorKind::NotSupported, field, Some(value.into()), detail)
    }

    pub fn duplicate(field: &Path, value: impl Into<Value>) -> Self {
        Self::new(ErrorKind::Duplicate, field, Some(value.into()), "")
    }

    pub fn not_found(field: &Path, value: impl Into<Value>) -> Self {
        Self::new(ErrorKind::NotFound, field, Some(value.into()), "")
    }

    pub fn forbidden(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, field, None, detail)
    }

    /// `Too long: may not be more than <max> bytes`.
    pub fn too_long(field: &Path, max: usize) -> Self {
        Self::new(
            ErrorKind::TooLong,
            field,
            None,
            format!("may not be more than {max} bytes"),
        )
    }

    /// `Too many: <actual>: must have at most <max> items`.
    pub fn too_many(field: &Path, actual: usize, max: usize) -> Self {
        Self::new(
            ErrorKind::TooMany,
            field,
            Some(actual.into()),
            format!("must have at most {max} items"),
        )
    }

    /// `field is immutable`, on the new value.
    pub fn immutable(field: &Path, new_value: &Value) -> Self {
        Self::invalid(field, new_value.clone(), IMMUTABLE)
    }

    /// The cause `reason`: `FieldValueInvalid`, ...
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The cause `message`, as `field.Error.ErrorBody` renders it.
    pub fn message(&self) -> String {
        let mut s = match self.kind {
            ErrorKind::Required
            | ErrorKind::Forbidden
            | ErrorKind::TooLong
            | ErrorKind::Internal => self.kind.text().to_owned(),
            _ => match (&self.go_value, &self.bad_value) {
                (Some(go), _) => format!("{}: {go}", self.kind.text()),
                (None, Some(v)) => format!("{}: {}", self.kind.text(), go_render(v)),
                (None, None) => self.kind.text().to_owned(),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// upstream's `apimachineryvalidation.FieldImmutableErrorMsg`.
pub const IMMUTABLE: &str = "field is immutable";

/// Renders a JSON value the way Go's `fmt` prints the corresponding Go value in
/// `ErrorBody`: `%v` for numbers and booleans, `%q` for strings, `%#v` for string maps and
/// string slices.
pub fn go_render(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => names::go_quote(s),
        Value::Object(m) if m.values().all(Value::is_string) => {
            let mut entries: Vec<(&String, &str)> = m
                .iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
                .collect();
            entries.sort();
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", names::go_quote(k), names::go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let body: Vec<String> = a
                .iter()
                .map(|v| names::go_quote(v.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", body.join(", "))
        }
        other => other.to_string(),
    }
}

/// A field path being built, as upstream's `field.Path`: `spec.ports[0]`, `data[key]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Path(root.to_owned())
    }

    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_owned())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{k}]", self.0))
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // upstream prints the root path `field.NewPath("")` as `[]`: see ConfigMap's size check
        if self.0.is_empty() {
            f.write_str("[]")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// The errors found so far.
pub type Errors = Vec<FieldError>;

/// Validates `new` (defaulted) for `info`; `old` is the stored object on update. Returns
/// every problem in upstream's order; empty when the object is valid.
pub fn validate(info: &ResourceInfo, new: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = match info.group {
        "" => core::validate(info, new, old),
        "apps" => apps::validate(info, new, old),
        "batch" => batch::validate(info, new, old),
        "networking.k8s.io" => networking::validate(info, new, old),
        "rbac.authorization.k8s.io" => rbac::validate(info, new, old),
        _ => generic(info, new, old),
    };
    dedup(&mut errs);
    errs
}

/// Metadata-only validation for kinds without specific rules here.
fn generic(info: &ResourceInfo, new: &Value, old: Option<&Value>) -> Errors {
    meta::object_meta_for(info, new, old, names::dns_subdomain_name)
}

/// `ErrorList.ToAggregate` drops repeated messages; keep the first of each.
fn dedup(errs: &mut Errors) {
    let mut seen = std::collections::HashSet::new();
    errs.retain(|e| seen.insert(e.to_string()));
}

/// Helpers over the JSON object.
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub(crate) fn arr_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(crate) fn int_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// Validates that an integer field is not negative: `must be greater than or equal to 0`.
pub(crate) fn nonnegative(errs: &mut Errors, v: &Value, key: &str, path: &Path) {
    if let Some(n) = int_of(v, key) {
        if n < 0 {
            errs.push(FieldError::invalid(&path.child(key), n, names::IS_NEGATIVE));
        }
    }
}
