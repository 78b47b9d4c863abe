//! Label and field selectors with upstream's string syntax (being written).
//!
//! Contract (the API server relies on these names):
//! - `LabelSelector::parse(&str) -> Result<LabelSelector, String>`; `matches(&BTreeMap<String,String>) -> bool`
//! - `LabelSelector::from_k8s(&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> Result<LabelSelector, String>`
//! - `FieldSelector::parse(&str) -> Result<FieldSelector, String>`; `matches(&dyn Fn(&str) -> Option<String>) -> bool`
//! - `field_value(info: &ResourceInfo, obj: &serde_json::Value, field: &str) -> Option<String>` and
//!   `supported_fields(info) -> &'static [&'static str]` for the per-resource fields upstream allows.

// Interim implementation (equality only) until the full parser lands.
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<(String, String)>);

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("unable to parse requirement: {part}"))?;
            out.push((k.trim().to_owned(), v.trim_start_matches('=').trim().to_owned()));
        }
        Ok(LabelSelector(out))
    }
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        LabelSelector::parse(s).map(|l| FieldSelector(l.0))
    }
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|(k, v)| get(k).as_deref() == Some(v.as_str()))
    }
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

pub fn supported_fields(_info: &crate::ResourceInfo) -> &'static [&'static str] {
    &["metadata.name", "metadata.namespace"]
}

pub fn field_value(_info: &crate::ResourceInfo, obj: &serde_json::Value, field: &str) -> Option<String> {
    let mut cur = obj;
    for p in field.split('.') {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_owned)
}
