//! Strategic merge patch (being written).
//!
//! Contract:
//! - `strategic_merge(original: &Value, patch: &Value, defs: &Map<String, Value>, type_name: &str)
//!   -> Result<Value, PatchError>`, where `defs` is [`crate::schema::definitions`] (or a test
//!   fixture in the same shape) and `type_name` the definition of `original`.
