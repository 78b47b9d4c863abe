//! Key and value validation with the wording of `k8s.io/apimachinery/pkg/util/validation`
//! (v0.33), and the Go renderings (`%q`, `%#v`, error aggregates) upstream's messages use.
//!
//! The name and value rules are the validation module's (upstream's apimachinery
//! validation); what is here is selector-specific rendering.

pub(super) use crate::validation::names::go_quote;
use crate::validation::names;

pub(super) fn key_error(key: &str) -> Option<String> {
    let errs = names::is_qualified_name(key);
    (!errs.is_empty()).then(|| errs.join("; "))
}

pub(super) fn label_value_errors(value: &str) -> Vec<String> {
    names::is_valid_label_value(value)
}

/// A `field.Invalid` error rendered as upstream: `<path>: Invalid value: <value>: <detail>`.
pub(super) fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {value}: {detail}")
}

/// Upstream's `utilerrors.NewAggregate(...).Error()`: one error as is, several de-duplicated
/// inside `[...]`.
pub(super) fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut unique: Vec<String> = Vec::new();
    for e in errs {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

/// Go's `%#v` for a `[]string`.
pub(super) fn go_slice(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", items.join(", "))
}
