//! The `/openapi/v2` and `/openapi/v3` documents (being written).
//!
//! Contract:
//! - `v2() -> &'static serde_json::Value` (swagger 2.0, every path and definition).
//! - `v3_index() -> serde_json::Value` (`{"paths": {"api/v1": {"serverRelativeURL": ...}}}`).
//! - `v3(group_version_path: &str) -> Option<&'static serde_json::Value>` for `api/v1`, `apis/apps/v1`, ...
