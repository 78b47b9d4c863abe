//! The `DefaultStorageClass` admission plugin (upstream
//! `plugin/pkg/admission/storage/storageclass/setdefault`): a PersistentVolumeClaim created
//! without `spec.storageClassName` gets the default StorageClass, the one annotated
//! `storageclass.kubernetes.io/is-default-class: "true"` (the newest, if several). An
//! explicit `""` means "no class" and is left alone.

use rkube_api::resources;
use serde_json::Value;

use crate::handlers::State;
use crate::registry::ListQuery;

pub const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_IS_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";

/// The name of the default class among `classes` (StorageClass JSON objects).
pub fn default_class<'a>(classes: impl IntoIterator<Item = &'a Value>) -> Option<String> {
    let annotated = |c: &&Value| {
        let a = &c["metadata"]["annotations"];
        a[IS_DEFAULT_CLASS] == "true" || a[BETA_IS_DEFAULT_CLASS] == "true"
    };
    classes
        .into_iter()
        .filter(annotated)
        .max_by(|a, b| {
            let key = |c: &Value| (c["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_owned(), c["metadata"]["name"].as_str().unwrap_or("").to_owned());
            // Newest first as upstream; on equal times the name decides (upstream: the lower).
            let (ta, na) = key(a);
            let (tb, nb) = key(b);
            ta.cmp(&tb).then_with(|| nb.cmp(&na))
        })
        .and_then(|c| c["metadata"]["name"].as_str().map(str::to_owned))
}

/// Sets the default class on a claim that names none.
pub async fn admit_claim(state: &State, mut claim: Value) -> Value {
    if !claim["spec"]["storageClassName"].is_null() || !claim["spec"].is_object() {
        return claim;
    }
    let Some(info) = resources::find("storage.k8s.io", "v1", "storageclasses") else { return claim };
    let query = ListQuery { resource_version: Some("0".into()), ..Default::default() };
    let Ok(page) = state.registry.list(info, None, &query).await else { return claim };
    if let Some(name) = default_class(page.items.iter().map(|c| c.as_ref())) {
        claim["spec"]["storageClassName"] = Value::String(name);
    }
    claim
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_newest_annotated_class_is_the_default() {
        let class = |name: &str, default: Option<&str>, created: &str| {
            let mut c = json!({"metadata": {"name": name, "creationTimestamp": created}});
            if let Some(d) = default {
                c["metadata"]["annotations"] = json!({IS_DEFAULT_CLASS: d});
            }
            c
        };
        assert_eq!(default_class(&[class("a", None, "2024-01-01T00:00:00Z")]), None);
        let classes = [
            class("old", Some("true"), "2024-01-01T00:00:00Z"),
            class("new", Some("true"), "2024-02-01T00:00:00Z"),
            class("off", Some("false"), "2024-03-01T00:00:00Z"),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("new"));
    }
}
