//! Label and field selectors with upstream's string syntax.
//!
//! Contract (the API server relies on these names):
//! - `LabelSelector::parse(&str) -> Result<LabelSelector, String>`; `matches(&BTreeMap<String,String>) -> bool`
//! - `LabelSelector::from_k8s(&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> Result<LabelSelector, String>`
//! - `FieldSelector::parse(&str) -> Result<FieldSelector, String>`; `matches(&dyn Fn(&str) -> Option<String>) -> bool`
//! - `field_value(info: &ResourceInfo, obj: &serde_json::Value, field: &str) -> Option<String>` and
//!   `supported_fields(info) -> &'static [&'static str]` for the per-resource fields upstream allows.
//!
//! Label selectors follow `k8s.io/apimachinery/pkg/labels` (v0.33): the same lexer and
//! recursive-descent parser, the same validation of keys and values, the same error texts
//! (`unable to parse requirement: found '=', expected: identifier`), requirements sorted by
//! key and the same canonical `Display` string.
//!
//! Field selectors follow `k8s.io/apimachinery/pkg/fields`: `f=v`, `f==v`, `f!=v` joined by
//! commas, with `\,` `\=` `\\` escapes in values. Which fields a resource accepts is
//! upstream's field-label conversion (`AddFieldLabelConversionFunc` in
//! `pkg/apis/<group>/<version>/conversion.go`, or `DefaultMetaV1FieldSelectorConversion`
//! for kinds that register none); the values are upstream's `ToSelectableFields`
//! (`pkg/registry/.../strategy.go`), read from the object's JSON.
//! [`FieldSelector::validate_for`] rejects an unsupported field with upstream's message,
//! which the API server returns as a 400 `BadRequest`.

mod field;
mod label;
mod validation;

pub use field::{
    convert_field_label, field_value, supported_fields, FieldOperator, FieldRequirement,
    FieldSelector,
};
pub use label::{LabelSelector, Operator, Requirement};

#[cfg(test)]
mod tests;
