//! The `/openapi/v2` and `/openapi/v3` documents.
//!
//! Contract:
//! - `v2() -> &'static serde_json::Value` (swagger 2.0, every path and definition).
//! - `v3_index() -> serde_json::Value` (`{"paths": {"api/v1": {"serverRelativeURL": ...}}}`).
//! - `v3(group_version_path: &str) -> Option<&'static serde_json::Value>` for `api/v1`,
//!   `apis/apps/v1`, ...
//!
//! Each served group-version gets a v3 document with the paths of its resources and only
//! the component schemas those paths reach, as kube-apiserver splits its v3 document. The
//! index also lists `api`, `apis`, `apis/<group>` and `version`, each with its discovery path.
//! kubectl reads these documents to check that `fieldValidation` is a query parameter of
//! PATCH (its `QueryParamVerifierV3`), for `kubectl explain` (the kind's schema is found
//! through `x-kubernetes-group-version-kind`) and for client-side strategic merge patches
//! (`x-kubernetes-patch-*` on the properties).
//!
//! Checked by hand with kubectl 1.32 against these documents served from files (the ignored
//! `dump_documents` test writes them): `kubectl explain deployment.spec.strategy` and
//! `pods.spec.containers.ports` print the schemas, and client-side `kubectl apply` sends
//! `fieldValidation=Strict` and a strategic merge patch with `$setElementOrder/containers`
//! (containers merged by name, tolerations replaced). Not served here: the protobuf form of
//! `/openapi/v2` (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), which
//! `kubectl explain --output=plaintext-openapiv2` asks for and cannot do without.
//!
//! Upstream also lists response media types for protobuf; these documents list only the JSON
//! and YAML ones rkube serves.
//!
//! All documents, their serialised bytes and their hashes are built together, once, on the
//! first request, never at start-up. [`Document::hash`] is what the index's `?hash=` and the
//! ETag carry; it changes exactly when the bytes change.

mod paths;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde_json::{json, Map, Value};

use crate::resources;
use crate::schema::{self, REF_PREFIX};
use paths::PathItem;

/// The version `info.version` reports; the Kubernetes API level the schemas come from.
pub const API_VERSION: &str = "v1.33.0";

/// One served OpenAPI document.
#[derive(Debug)]
pub struct Document {
    pub value: Value,
    /// `value` serialised compactly: serve these bytes.
    pub json: String,
    /// Upper-case hex digest of `json` (128-bit FNV-1a); stable across runs and builds.
    pub hash: String,
}

impl Document {
    fn new(value: Value) -> Document {
        let json = serde_json::to_string(&value).expect("a Value always serialises");
        let hash = content_hash(json.as_bytes());
        Document { value, json, hash }
    }
}

static V3: LazyLock<BTreeMap<String, Document>> = LazyLock::new(build_v3);
static V2: LazyLock<Document> = LazyLock::new(build_v2);

/// The `/openapi/v3` index: every document path with its hashed URL.
pub fn v3_index() -> Value {
    let paths: Map<String, Value> = V3
        .iter()
        .map(|(path, doc)| {
            let url = format!("/openapi/v3/{path}?hash={}", doc.hash);
            (path.clone(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// The v3 document at `path` (`api/v1`, `apis/apps/v1`, `apis/apps`, `api`, `apis`,
/// `version`), `None` for any other path.
pub fn v3(path: &str) -> Option<&'static Value> {
    v3_document(path).map(|doc| &doc.value)
}

/// The v3 document at `path` with its serialised bytes and hash.
pub fn v3_document(path: &str) -> Option<&'static Document> {
    V3.get(path.trim_matches('/'))
}

/// The swagger 2.0 document: every path and definition.
pub fn v2() -> &'static Value {
    &V2.value
}

/// The swagger 2.0 document with its serialised bytes and hash.
pub fn v2_document() -> &'static Document {
    &V2
}

/// 128-bit FNV-1a of `bytes`, as 32 upper-case hex digits.
pub fn content_hash(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let hash = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("{hash:032X}")
}

/// Every path of a group-version's resources, plus its resource-list path.
fn group_version_paths(group: &str, version: &str) -> Vec<PathItem> {
    let mut out = vec![paths::api_resources_path(group, version)];
    for info in resources::resources_of(group, version) {
        out.extend(paths::resource_paths(info));
    }
    out
}

/// The discovery paths of the `api`, `apis`, `apis/<group>` and `version` documents.
fn discovery_documents() -> Vec<(String, Vec<PathItem>)> {
    let mut docs = vec![
        (
            "api".to_owned(),
            vec![paths::discovery_path(
                "/api/".into(),
                "getCoreAPIVersions".into(),
                "core".into(),
                "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
            )],
        ),
        (
            "apis".to_owned(),
            vec![paths::discovery_path(
                "/apis/".into(),
                "getAPIVersions".into(),
                "apis".into(),
                "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
            )],
        ),
        (
            "version".to_owned(),
            vec![paths::discovery_path(
                "/version/".into(),
                "getCodeVersion".into(),
                "version".into(),
                "io.k8s.apimachinery.pkg.version.Info",
            )],
        ),
    ];
    let groups: BTreeSet<&str> = resources::group_versions()
        .into_iter()
        .map(|(g, _)| g)
        .filter(|g| !g.is_empty())
        .collect();
    for group in groups {
        docs.push((format!("apis/{group}"), vec![paths::api_group_path(group)]));
    }
    docs
}

/// The document path of a group-version: `api/v1`, `apis/apps/v1`.
fn group_version_doc_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn build_v3() -> BTreeMap<String, Document> {
    let mut docs = BTreeMap::new();
    for (group, version) in resources::group_versions() {
        let items = group_version_paths(group, version);
        docs.insert(
            group_version_doc_path(group, version),
            Document::new(v3_document_of(&items)),
        );
    }
    for (path, items) in discovery_documents() {
        docs.insert(path, Document::new(v3_document_of(&items)));
    }
    docs
}

fn v3_document_of(items: &[PathItem]) -> Value {
    let paths: BTreeMap<&str, Value> = items
        .iter()
        .map(|item| (item.path.as_str(), render::v3_path(item)))
        .collect();
    let paths = serde_json::to_value(paths).expect("paths serialise");
    let schemas = reachable(&paths, schema::definitions());
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": API_VERSION },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                },
            },
        },
    })
}

fn build_v2() -> Document {
    let mut items = Vec::new();
    for (group, version) in resources::group_versions() {
        items.extend(group_version_paths(group, version));
    }
    for (_, discovery) in discovery_documents() {
        items.extend(discovery);
    }
    let paths: BTreeMap<&str, Value> = items
        .iter()
        .map(|item| (item.path.as_str(), render::v2_path(item)))
        .collect();
    let definitions: Map<String, Value> = schema::definitions()
        .iter()
        .map(|(name, schema)| (name.clone(), render::v2_schema(name, schema)))
        .collect();
    Document::new(json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": API_VERSION },
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
            },
        },
        "security": [{ "BearerToken": [] }],
    }))
}

/// Calls `f` with the definition name of every `$ref` under `value`.
pub(crate) fn for_each_ref(value: &Value, prefix: &str, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(prefix) {
                            f(name);
                        }
                    }
                    _ => for_each_ref(child, prefix, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| for_each_ref(v, prefix, f)),
        _ => {}
    }
}

/// The definitions `root` refers to, directly or through other definitions, sorted by name.
fn reachable(root: &Value, definitions: &Map<String, Value>) -> Map<String, Value> {
    let mut seen = BTreeSet::new();
    let mut queue = Vec::new();
    for_each_ref(root, REF_PREFIX, &mut |name| queue.push(name.to_owned()));
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = definitions.get(&name) {
            for_each_ref(schema, REF_PREFIX, &mut |next| {
                if !seen.contains(next) {
                    queue.push(next.to_owned());
                }
            });
        }
    }
    seen.into_iter()
        .filter_map(|name| definitions.get(&name).map(|s| (name.clone(), s.clone())))
        .collect()
}

#[cfg(test)]
mod tests;
