//! Label and field selectors with upstream's string syntax (being written).
//!
//! Contract (the API server relies on these names):
//! - `LabelSelector::parse(&str) -> Result<LabelSelector, String>`; `matches(&BTreeMap<String,String>) -> bool`
//! - `LabelSelector::from_k8s(&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> Result<LabelSelector, String>`
//! - `FieldSelector::parse(&str) -> Result<FieldSelector, String>`; `matches(&dyn Fn(&str) -> Option<String>) -> bool`
//! - `field_value(info: &ResourceInfo, obj: &serde_json::Value, field: &str) -> Option<String>` and
//!   `supported_fields(info) -> &'static [&'static str]` for the per-resource fields upstream allows.
