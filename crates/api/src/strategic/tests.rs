use serde_json::{json, Value};

use super::fixtures::{k8s_definitions, merge_item_definitions};
use super::*;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn deployment(original: Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge(&original, &patch, &k8s_definitions(), DEPLOYMENT)
}

fn merge_item(original: Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge(&original, &patch, &merge_item_definitions(), "mergeItem")
}

#[test]
fn maps_merge_recursively_and_null_deletes_a_key() {
    let original = json!({"metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}}});
    let patch = json!({"metadata": {"labels": {"tier": null, "track": "stable"}}});
    let merged = deployment(original, patch).unwrap();
    assert_eq!(
        merged,
        json!({"metadata": {"name": "web", "labels": {"app": "web", "track": "stable"}}})
    );
}

#[test]
fn merge_item_smoke() {
    let merged = merge_item(
        json!({"mergingList": [{"name": "a"}]}),
        json!({"mergingList": [{"name": "b"}]}),
    )
    .unwrap();
    assert_eq!(
        merged,
        json!({"mergingList": [{"name": "b"}, {"name": "a"}]})
    );
}
