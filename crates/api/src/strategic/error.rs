//! [`PatchError`] and the Go-style value formatting its messages use.
//!
//! Upstream builds its error messages with Go's `%v` and `reflect.TypeOf`, and kubectl users
//! see them verbatim (`Error from server: map: map[image:nginx] does not contain declared merge
//! key: name`), so the helpers here render `serde_json` values the way Go prints the decoded
//! `map[string]interface{}` / `[]interface{}` / `int64` / `float64` values.

use serde_json::Value;

/// Why a strategic merge patch could not be applied.
///
/// The wording of every message is upstream's (k8s.io/apimachinery `mergepatch` and
/// `strategicpatch`). How kube-apiserver answers each one (its `interpretStrategicMergePatchError`)
/// is given by [`PatchError::status_code`], [`PatchError::reason`] and
/// [`PatchError::status_message`]:
///
/// - **400 `BadRequest`**, message = the error text: [`PatchError::BadJsonDoc`] and the three
///   malformed-directive errors (`$deleteFromPrimitiveList`, `$retainKeys`, `$setElementOrder`).
/// - **422 `Invalid`** with the generic message `the server rejected our request due to an error
///   in our request` and empty details: [`PatchError::NoListOfLists`].
/// - **500** with an empty `reason` (metav1 `StatusReasonUnknown`) and the error text as message,
///   for everything else (missing merge key, wrong-typed values, unknown `$patch` values, …):
///   upstream returns these as plain Go errors, which the handler renders that way. kubectl prints
///   them as `Error from server: <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The original object or the patch is not a JSON object.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// A `$deleteFromPrimitiveList` key is malformed.
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    /// `$retainKeys` is not a list, or the patch sets a field the list does not name.
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    /// A `$setElementOrder` key is malformed.
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    /// A merged list holds lists.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// An element of a list merged by key lacks the key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    /// A value has a different JSON type than the operation needs.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    /// A `$patch` directive holds an unknown value.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    /// A list element carries `$patch: merge`, which upstream does not support.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A list of objects has the merge strategy but no merge key in the schema.
    #[error("cannot merge lists without merge key for {type_name}")]
    MergeKeyNotDeclared { type_name: String },
    /// The elements of the lists being merged do not all have one JSON type.
    #[error("list element types are not identical: {lists}")]
    ElementTypesDiffer { lists: String },
    /// A `$setElementOrder` list names no element and its list is empty too.
    #[error("no elements in any of the given slices")]
    NoElements,
    /// A list merged by key holds something other than objects.
    #[error("value for key {index} is not a map")]
    NotAMap { index: usize },
    /// The patch list orders its elements differently from its `$setElementOrder` list.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch { patch: String, order: String },
    /// The schema carries an `x-kubernetes-patch-strategy` upstream does not know.
    #[error("unexpected patch strategy: {strategies}")]
    UnexpectedPatchStrategy { strategies: String },
    /// The patch merges into a field the type's schema does not have.
    #[error("unable to find api field in struct {type_name} for the json field {field:?}")]
    FieldNotFound { type_name: String, field: String },
    /// A schema `$ref` names a definition that is not in the definitions map.
    #[error("unable to resolve {reference} in OpenAPI V3")]
    UnresolvedRef { reference: String },
}

impl PatchError {
    /// The HTTP status kube-apiserver answers with: 400, 422 or 500 (see the type docs).
    pub fn status_code(&self) -> u16 {
        if self.is_bad_request() {
            400
        } else if matches!(self, PatchError::NoListOfLists) {
            422
        } else {
            500
        }
    }

    /// The metav1.Status `reason`: `BadRequest`, `Invalid`, or empty for a 500.
    pub fn reason(&self) -> &'static str {
        match self.status_code() {
            400 => "BadRequest",
            422 => "Invalid",
            _ => "",
        }
    }

    /// The metav1.Status `message` kube-apiserver sends: the error text, except for a 422,
    /// which upstream builds with `NewGenericServerResponse` and so carries a generic message.
    pub fn status_message(&self) -> String {
        match self.status_code() {
            422 => "the server rejected our request due to an error in our request".to_owned(),
            _ => self.to_string(),
        }
    }

    /// Whether the patch itself is malformed (answered 400 `BadRequest`).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            PatchError::BadJsonDoc
                | PatchError::BadPatchFormatForPrimitiveList
                | PatchError::BadPatchFormatForRetainKeys
                | PatchError::BadPatchFormatForSetElementOrderList
        )
    }
}

/// The Go type a decoded JSON value has upstream. Integral numbers decode to `int64` and
/// others to `float64` (apimachinery's json helper), so `1` and `1.0` are different types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GoType {
    Nil,
    Bool,
    Int64,
    Float64,
    String,
    Map,
    Slice,
}

impl GoType {
    pub(super) fn of(value: &Value) -> GoType {
        match value {
            Value::Null => GoType::Nil,
            Value::Bool(_) => GoType::Bool,
            Value::Number(n) if n.is_i64() => GoType::Int64,
            Value::Number(_) => GoType::Float64,
            Value::String(_) => GoType::String,
            Value::Array(_) => GoType::Slice,
            Value::Object(_) => GoType::Map,
        }
    }

    /// `reflect.TypeOf(v).String()`.
    pub(super) fn name(self) -> &'static str {
        match self {
            GoType::Nil => "<nil>",
            GoType::Bool => "bool",
            GoType::Int64 => "int64",
            GoType::Float64 => "float64",
            GoType::String => "string",
            GoType::Map => MAP_TYPE,
            GoType::Slice => SLICE_TYPE,
        }
    }
}

/// Go's name for a decoded JSON object.
pub(super) const MAP_TYPE: &str = "map[string]interface {}";
/// Go's name for a decoded JSON array.
pub(super) const SLICE_TYPE: &str = "[]interface {}";

/// `mergepatch.ErrBadArgType`: expected a map or a slice, found `actual`.
pub(super) fn bad_arg_type(expected: &'static str, actual: Option<&Value>) -> PatchError {
    let actual = actual.map_or("<nil>", |v| GoType::of(v).name());
    PatchError::BadArgType { expected, actual }
}

/// `mergepatch.ErrNoMergeKey`.
pub(super) fn no_merge_key(map: &Value, key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: go_format(map),
        key: key.to_owned(),
    }
}

/// Renders a value as Go's `fmt.Sprintf("%v", v)` does for the decoded form.
pub(super) fn go_format(value: &Value) -> String {
    let mut out = String::new();
    write_go(value, &mut out);
    out
}

/// Renders several lists as Go's `fmt.Sprint` of a `[][]interface{}`.
pub(super) fn go_format_lists(lists: &[&[Value]]) -> String {
    let parts: Vec<String> = lists
        .iter()
        .map(|list| {
            let items: Vec<String> = list.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        })
        .collect();
    format!("[{}]", parts.join(" "))
}

fn write_go(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => out.push_str(&i.to_string()),
            None => out.push_str(&go_float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Go prints map keys sorted.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_go(&map[key.as_str()], out);
            }
            out.push(']');
        }
    }
}

/// Go's `%v` for a float64: the shortest digits, in exponent form when the decimal exponent
/// is below -4 or at least 6 (`1e+06`, `1.5e-07`), plain otherwise (`0.5`, `123456`).
fn go_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".to_owned()
        } else if f > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        };
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "1.5e-7", "1e6".
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return format!("{f}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_format_prints_maps_with_sorted_keys_and_lists_space_separated() {
        let value = json!({"name": "a", "image": "nginx", "ports": [80, 1.5], "x": null});
        assert_eq!(
            go_format(&value),
            "map[image:nginx name:a ports:[80 1.5] x:<nil>]"
        );
    }

    #[test]
    fn go_format_uses_exponent_form_like_go_for_large_and_small_floats() {
        assert_eq!(go_format(&json!(1.0e6)), "1e+06");
        assert_eq!(go_format(&json!(0.00000015)), "1.5e-07");
        assert_eq!(go_format(&json!(123456.5)), "123456.5");
        assert_eq!(go_format(&json!(0.25)), "0.25");
    }

    #[test]
    fn status_codes_follow_kube_apiserver() {
        assert_eq!(PatchError::BadPatchFormatForRetainKeys.status_code(), 400);
        assert_eq!(
            PatchError::BadPatchFormatForRetainKeys.reason(),
            "BadRequest"
        );
        assert_eq!(PatchError::NoListOfLists.status_code(), 422);
        assert_eq!(
            PatchError::NoListOfLists.status_message(),
            "the server rejected our request due to an error in our request"
        );
        let missing = no_merge_key(&json!({"image": "x"}), "name");
        assert_eq!(missing.status_code(), 500);
        assert_eq!(missing.reason(), "");
        assert_eq!(
            missing.status_message(),
            "map: map[image:x] does not contain declared merge key: name"
        );
    }
}
