//! OpenAPI schemas of every served kind (being written).
//!
//! Contract:
//! - `definitions() -> &'static serde_json::Map<String, serde_json::Value>`: OpenAPI v3
//!   component schemas keyed by upstream definition name (`io.k8s.api.apps.v1.Deployment`),
//!   references written `{"$ref": "#/components/schemas/<name>"}` (possibly wrapped in
//!   `allOf: [{"$ref": ...}]`), properties carrying upstream's `x-kubernetes-patch-strategy`,
//!   `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//!   and each top-level kind carrying `x-kubernetes-group-version-kind`.
//! - `definition_name(info: &ResourceInfo) -> String`.
