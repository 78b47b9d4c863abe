//! Behaviour tests over realistic Kubernetes fixtures, plus cases mirroring upstream's
//! `patch_test.go` (k8s.io/apimachinery strategicpatch) on a `MergeItem`-like type.

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

/// Wraps a pod spec fragment into a Deployment.
fn pod(spec: Value) -> Value {
    json!({"spec": {"template": {"spec": spec}}})
}

fn pod_spec(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn maps_merge_recursively_and_null_deletes_a_key() {
    let original = json!({"metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}}});
    let patch = json!({"metadata": {"labels": {"tier": null, "track": "stable"}}});
    let merged = deployment(original, patch).unwrap();
    let expected =
        json!({"metadata": {"name": "web", "labels": {"app": "web", "track": "stable"}}});
    assert_eq!(merged, expected);
}

#[test]
fn upstream_reference_patch_changes_one_container_and_keeps_the_sidecar() {
    // 05-patches/02-strategic-merge-patch from the recorded kube-apiserver v1.26.1.
    let original = pod(json!({"containers": [
        {"name": "app", "image": "nginx:1.24", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
        {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]},
    ]}));
    let patch = pod(json!({"containers": [{"name": "app", "image": "nginx:1.25"}]}));
    let merged = deployment(original, patch).unwrap();
    let expected = pod(json!({"containers": [
        {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
        {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]},
    ]}));
    assert_eq!(merged, expected);
}

#[test]
fn a_new_container_goes_before_the_containers_the_patch_does_not_name() {
    // mergeSortedSlice puts a patch element the server did not have before server-only ones.
    let original = pod(json!({"containers": [{"name": "app"}, {"name": "sidecar"}]}));
    let patch = pod(json!({"containers": [{"name": "debug", "image": "busybox"}]}));
    let merged = deployment(original, patch).unwrap();
    assert_eq!(
        names(&pod_spec(&merged)["containers"]),
        ["debug", "app", "sidecar"]
    );
}

#[test]
fn a_named_container_keeps_its_server_position_relative_to_the_patch_order() {
    let original = pod(json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}));
    let patch =
        pod(json!({"containers": [{"name": "c", "image": "x"}, {"name": "a", "image": "y"}]}));
    let merged = deployment(original, patch).unwrap();
    // Patch elements follow the patch order (c, a); server-only b comes before c because it
    // precedes c on the server.
    assert_eq!(names(&pod_spec(&merged)["containers"]), ["b", "c", "a"]);
}

#[test]
fn patch_delete_element_removes_the_container_with_that_name() {
    let original = pod(json!({"containers": [{"name": "app"}, {"name": "sidecar"}]}));
    let patch = pod(json!({"containers": [{"name": "sidecar", "$patch": "delete"}]}));
    let merged = deployment(original, patch).unwrap();
    assert_eq!(pod_spec(&merged)["containers"], json!([{"name": "app"}]));
}

#[test]
fn patch_replace_element_makes_the_patch_the_whole_list() {
    let original = pod(json!({"containers": [{"name": "app", "image": "a"}, {"name": "sidecar"}]}));
    let patch = pod(json!({"containers": [{"name": "app", "image": "b"}, {"$patch": "replace"}]}));
    let merged = deployment(original, patch).unwrap();
    assert_eq!(
        pod_spec(&merged)["containers"],
        json!([{"name": "app", "image": "b"}])
    );
}

#[test]
fn env_and_ports_merge_by_their_keys_inside_a_merged_container() {
    let original = pod(json!({"containers": [{
        "name": "app",
        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
    }]}));
    let patch = pod(json!({"containers": [{
        "name": "app",
        "env": [{"name": "B", "value": "3"}],
        "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
    }]}));
    let merged = deployment(original, patch).unwrap();
    let container = &pod_spec(&merged)["containers"][0];
    // A (server-only) precedes B on the server, so it stays first.
    assert_eq!(
        container["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
    );
    assert_eq!(
        container["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}])
    );
}

#[test]
fn tolerations_have_no_strategy_and_are_replaced_whole() {
    let original = pod(json!({"tolerations": [{"key": "a", "operator": "Exists"}]}));
    let patch = pod(json!({"tolerations": [{"key": "b", "operator": "Exists"}]}));
    let merged = deployment(original, patch).unwrap();
    assert_eq!(
        pod_spec(&merged)["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
}

#[test]
fn finalizers_are_a_union_without_duplicates() {
    let original = json!({"metadata": {"finalizers": ["a", "b"]}});
    let patch = json!({"metadata": {"finalizers": ["b", "c"]}});
    let merged = deployment(original, patch).unwrap();
    // b is named by the patch, so it is placed in patch order; c is new; a keeps its
    // place before b (it precedes b on the server).
    assert_eq!(merged["metadata"]["finalizers"], json!(["a", "b", "c"]));
}

#[test]
fn delete_from_primitive_list_removes_values() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}});
    let merged = deployment(original, patch).unwrap();
    assert_eq!(merged, json!({"metadata": {"finalizers": ["a", "c"]}}));
}

#[test]
fn owner_references_merge_by_uid() {
    let original = json!({"metadata": {"ownerReferences": [
        {"uid": "1", "name": "rs-1", "kind": "ReplicaSet"},
        {"uid": "2", "name": "rs-2", "kind": "ReplicaSet"},
    ]}});
    let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "controller": true}]}});
    let merged = deployment(original, patch).unwrap();
    assert_eq!(
        merged["metadata"]["ownerReferences"],
        json!([
            {"uid": "1", "name": "rs-1", "kind": "ReplicaSet"},
            {"uid": "2", "name": "rs-2", "kind": "ReplicaSet", "controller": true},
        ])
    );
}

#[test]
fn retain_keys_in_a_volume_clears_the_old_volume_source() {
    let original = pod(json!({"volumes": [{"name": "data", "emptyDir": {}}]}));
    let patch = pod(json!({"volumes": [
        {"name": "data", "configMap": {"name": "cfg"}, "$retainKeys": ["configMap", "name"]},
    ]}));
    let merged = deployment(original, patch).unwrap();
    assert_eq!(
        pod_spec(&merged)["volumes"],
        json!([{"name": "data", "configMap": {"name": "cfg"}}])
    );
}

#[test]
fn retain_keys_on_the_deployment_strategy_drops_rolling_update() {
    // The kubectl documentation's retainKeys example.
    let original = json!({"spec": {"strategy": {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let merged = deployment(original, patch).unwrap();
    assert_eq!(merged, json!({"spec": {"strategy": {"type": "Recreate"}}}));
}

#[test]
fn retain_keys_rejects_a_patch_field_it_does_not_list() {
    let original = json!({"spec": {"strategy": {"type": "RollingUpdate"}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}});
    let err = deployment(original, patch).unwrap_err();
    assert_eq!(err, PatchError::BadPatchFormatForRetainKeys);
    assert_eq!(err.status_code(), 400);
    assert_eq!(err.to_string(), "invalid patch format of retainKeys");
}

#[test]
fn patch_replace_in_a_map_replaces_the_map() {
    let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
    let patch = json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}});
    let merged = deployment(original, patch).unwrap();
    assert_eq!(merged, json!({"metadata": {"labels": {"c": "3"}}}));
}

#[test]
fn patch_delete_in_a_map_empties_an_existing_map_and_adds_nothing_for_a_missing_one() {
    let original = json!({"metadata": {"labels": {"a": "1"}}});
    let patch = json!({"metadata": {
        "labels": {"$patch": "delete"},
        "annotations": {"$patch": "delete"},
    }});
    let merged = deployment(original, patch).unwrap();
    assert_eq!(merged, json!({"metadata": {"labels": {}}}));
}

#[test]
fn set_element_order_orders_named_containers_and_keeps_server_only_ones_in_place() {
    let original = pod(json!({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}));
    let patch = pod(json!({
        "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
        "containers": [{"name": "a", "image": "new"}],
    }));
    let merged = deployment(original, patch).unwrap();
    let containers = &pod_spec(&merged)["containers"];
    // c and a follow the directive; server-only b keeps its server place before c.
    assert_eq!(names(containers), ["b", "c", "a"]);
    assert_eq!(containers[2]["image"], "new");
}

#[test]
fn set_element_order_reorders_a_primitive_list() {
    let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let patch = json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}});
    let merged = deployment(original, patch).unwrap();
    assert_eq!(merged["metadata"]["finalizers"], json!(["c", "a", "b"]));
}

#[test]
fn set_element_order_must_contain_the_patch_elements_in_order() {
    let original = pod(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
    let patch = pod(json!({
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "b"}, {"name": "a"}],
    }));
    let err = deployment(original, patch).unwrap_err();
    assert!(
        matches!(err, PatchError::SetElementOrderMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(err.status_code(), 500);
}

#[test]
fn directive_keys_never_reach_the_result() {
    let original = pod(json!({"containers": [{"name": "app"}]}));
    let patch = pod(json!({
        "containers": [{"name": "new", "$retainKeys": ["name"], "env": [{"name": "A", "$patch": "x"}]}],
        "volumes": [{"name": "v", "$setElementOrder/items": [], "emptyDir": {}}],
        "nodeSelector": {"$patch": "replace", "disk": "ssd"},
    }));
    let merged = deployment(original, patch).unwrap();
    let text = merged.to_string();
    for directive in ["$patch", "$retainKeys", "$setElementOrder"] {
        assert!(!text.contains(directive), "{directive} leaked into {text}");
    }
    // A new map carrying `$patch` is dropped entirely, as upstream's removeDirectives does.
    assert_eq!(pod_spec(&merged).get("nodeSelector"), None);
    assert_eq!(
        pod_spec(&merged)["volumes"],
        json!([{"name": "v", "emptyDir": {}}])
    );
}

#[test]
fn a_merge_list_element_without_its_key_is_an_upstream_worded_error() {
    let original = pod(json!({"containers": [{"name": "app"}]}));
    let patch = pod(json!({"containers": [{"image": "nginx"}]}));
    let err = deployment(original, patch).unwrap_err();
    assert_eq!(
        err.to_string(),
        "map: map[image:nginx] does not contain declared merge key: name"
    );
    assert_eq!((err.status_code(), err.reason()), (500, ""));
}

#[test]
fn malformed_directives_are_bad_requests() {
    let cases = [
        (
            json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
            PatchError::BadPatchFormatForPrimitiveList,
        ),
        (
            json!({"metadata": {"$setElementOrderfinalizers": ["a"]}}),
            PatchError::BadPatchFormatForSetElementOrderList,
        ),
        (
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            PatchError::BadPatchFormatForRetainKeys,
        ),
    ];
    let original = json!({"metadata": {"finalizers": ["a"]}, "spec": {"strategy": {}}});
    for (patch, expected) in cases {
        let err = deployment(original.clone(), patch.clone()).unwrap_err();
        assert_eq!(err, expected, "patch {patch}");
        assert!(err.is_bad_request());
        assert_eq!(err.reason(), "BadRequest");
    }
}

#[test]
fn unknown_patch_directive_values_are_rejected() {
    let original = json!({"metadata": {"labels": {"a": "1"}}});
    let err = deployment(
        original,
        json!({"metadata": {"labels": {"$patch": "merge"}}}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown patch type: merge in map: map[$patch:merge]"
    );
    let original = pod(json!({"containers": [{"name": "a"}]}));
    let patch = pod(json!({"containers": [{"name": "a", "$patch": "merge"}]}));
    let err = deployment(original, patch).unwrap_err();
    assert_eq!(err, PatchError::MergeDirectiveInList);
}

#[test]
fn a_list_of_lists_in_a_merged_list_is_unprocessable() {
    let original = json!({"metadata": {"finalizers": []}});
    let err = deployment(original, json!({"metadata": {"finalizers": [["b"]]}})).unwrap_err();
    assert_eq!(err, PatchError::NoListOfLists);
    assert_eq!(err.status_code(), 422);
}

#[test]
fn mixed_element_types_in_a_merged_list_are_an_error() {
    let original = json!({"metadata": {"finalizers": ["a"]}});
    let err = deployment(original, json!({"metadata": {"finalizers": [1]}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "list element types are not identical: [[a] [1]]"
    );
}

#[test]
fn a_value_of_another_type_replaces_the_original() {
    let original =
        json!({"spec": {"replicas": 3, "template": {"metadata": {"labels": {"a": "b"}}}}});
    let patch =
        json!({"spec": {"replicas": "3", "template": {"metadata": {"labels": ["x", null]}}}});
    let merged = deployment(original, patch).unwrap();
    assert_eq!(merged["spec"]["replicas"], "3");
    assert_eq!(
        merged["spec"]["template"]["metadata"]["labels"],
        json!(["x", null])
    );
}

#[test]
fn merging_into_a_field_the_schema_lacks_is_an_error() {
    let original = json!({"spec": {"bogus": {"a": 1}}});
    let err = deployment(original, json!({"spec": {"bogus": {"b": 2}}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unable to find api field in struct DeploymentSpec for the json field \"bogus\""
    );
}

#[test]
fn an_unknown_type_merges_maps_and_replaces_lists_like_json_merge_patch() {
    let original =
        json!({"spec": {"items": [{"name": "a"}, {"name": "b"}], "size": 1, "keep": true}});
    let patch =
        json!({"spec": {"items": [{"name": "c"}], "size": null, "new": {"x": null, "y": 1}}});
    let merged = strategic_merge(
        &original,
        &patch,
        &k8s_definitions(),
        "example.com.v1.Widget",
    )
    .unwrap();
    let expected = json!({"spec": {"items": [{"name": "c"}], "keep": true, "new": {"y": 1}}});
    assert_eq!(merged, expected);
}

#[test]
fn new_fields_drop_nulls_and_removed_elements() {
    let original = json!({"metadata": {"name": "x"}});
    let patch = pod(json!({
        "nodeSelector": {"a": "1", "b": null},
        "containers": [{"name": "a"}, {"name": "b", "$patch": "delete"}],
    }));
    let merged = deployment(original, patch).unwrap();
    assert_eq!(
        pod_spec(&merged),
        &json!({"nodeSelector": {"a": "1"}, "containers": [{"name": "a"}]})
    );
}

#[test]
fn documents_that_are_not_objects_are_rejected_and_null_means_empty() {
    let defs = k8s_definitions();
    let err = strategic_merge(&json!({}), &json!([1]), &defs, DEPLOYMENT).unwrap_err();
    assert_eq!(
        (err.clone(), err.status_code()),
        (PatchError::BadJsonDoc, 400)
    );
    assert_eq!(
        strategic_merge(&json!("x"), &json!({}), &defs, DEPLOYMENT),
        Err(PatchError::BadJsonDoc)
    );
    let merged = strategic_merge(&Value::Null, &json!({"a": 1}), &defs, "none").unwrap();
    assert_eq!(merged, json!({"a": 1}));
}

#[test]
fn result_keeps_the_original_key_order_and_appends_new_keys() {
    let original =
        json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "x"}});
    let patch = json!({"spec": {"replicas": 2}, "metadata": {"name": "y"}});
    let merged = deployment(original, patch).unwrap();
    let keys: Vec<&String> = merged.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["kind", "apiVersion", "metadata", "spec"]);
}

// Cases mirroring upstream's patch_test.go (MergeItem type).

#[test]
fn upstream_add_map_and_delete_map_from_merging_list_with_set_element_order() {
    // "add map and delete map from merging list" (three-way result): the server-only element 4
    // stays before the new element 3 because of how upstream's merge reuses the list's storage.
    let original =
        json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]});
    let patch = json!({
        "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
        "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}],
    });
    let merged = merge_item(original, patch).unwrap();
    let expected =
        json!({"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]});
    assert_eq!(merged, expected);
}

#[test]
fn upstream_set_elements_order_in_an_int_list_with_server_only_items() {
    // "set elements order in a int list with server-only items 3" (three-way result).
    let original = json!({"mergingIntList": [1, 2, 7, 9, 8, 3, 4]});
    let patch = json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3]});
    let merged = merge_item(original, patch).unwrap();
    assert_eq!(merged, json!({"mergingIntList": [2, 1, 7, 9, 8, 4, 3]}));
}

#[test]
fn upstream_set_element_order_with_an_item_missing_from_the_list() {
    // "$setElementOrder contains item that is not present in the list to be merged".
    let original = json!({"mergingList": [{"name": 1}, {"name": 3}]});
    let patch = json!({
        "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
        "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
    });
    let merged = merge_item(original, patch).unwrap();
    assert_eq!(
        merged,
        json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]})
    );
}

#[test]
fn upstream_delete_all_items_from_merging_list_leaves_an_empty_list() {
    let original = json!({"mergingList": [{"name": 1}, {"name": 2}]});
    let patch = json!({"mergingList": [{"$patch": "replace"}]});
    assert_eq!(
        merge_item(original, patch).unwrap(),
        json!({"mergingList": []})
    );
}

#[test]
fn upstream_unique_scalars_when_merging_int_lists() {
    let original = json!({"mergingIntList": [1, 2]});
    let patch = json!({"mergingIntList": [2, 3]});
    assert_eq!(
        merge_item(original, patch).unwrap(),
        json!({"mergingIntList": [1, 2, 3]})
    );
}

#[test]
fn upstream_replace_strategy_field_is_replaced_not_merged() {
    let original = json!({"replacingItem": {"a": 1, "b": {"c": 2}}});
    let patch = json!({"replacingItem": {"b": {"d": 3}}});
    assert_eq!(
        merge_item(original, patch).unwrap(),
        json!({"replacingItem": {"b": {"d": 3}}})
    );
}

#[test]
fn upstream_retain_keys_merging_list_clears_unlisted_fields_of_an_element() {
    let original = json!({"retainKeysMergingList": [{"name": "a", "value": "1", "other": "x"}]});
    let patch = json!({"retainKeysMergingList": [
        {"name": "a", "$retainKeys": ["name", "value"], "value": "2"},
    ]});
    let merged = merge_item(original, patch).unwrap();
    assert_eq!(
        merged,
        json!({"retainKeysMergingList": [{"name": "a", "value": "2"}]})
    );
}

#[test]
fn upstream_merge_item_pointer_lists_use_the_pointed_type_as_element_schema() {
    // "add field to map in merging list by pointer": the element of `mergeItemPtr` is a
    // MergeItem, so the nested `mergeItemPtr` merges by name too.
    let original = json!({"mergeItemPtr": [
        {"name": 1, "mergeItemPtr": [{"name": 1}, {"name": 2, "value": 2}]},
        {"name": 2},
    ]});
    let patch = json!({
        "$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}],
        "mergeItemPtr": [{
            "$setElementOrder/mergeItemPtr": [{"name": 1}, {"name": 2}],
            "name": 1,
            "mergeItemPtr": [{"name": 1, "value": 1}],
        }],
    });
    let merged = merge_item(original, patch).unwrap();
    let expected = json!({"mergeItemPtr": [
        {"name": 1, "mergeItemPtr": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
        {"name": 2},
    ]});
    assert_eq!(merged, expected);
}

// JSON merge patch (RFC 7386 appendix A, plus the evanphx/json-patch null handling).

#[test]
fn json_merge_follows_rfc_7386_examples() {
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (original, patch, expected) in cases {
        assert_eq!(
            json_merge(&original, &patch),
            expected,
            "{original} + {patch}"
        );
    }
}

#[test]
fn json_merge_keeps_nulls_in_lists_but_prunes_them_from_objects_inside_new_lists() {
    let merged = json_merge(&json!({}), &json!({"a": [null, {"b": null, "c": 1}]}));
    assert_eq!(merged, json!({"a": [null, {"c": 1}]}));
}

#[test]
fn json_merge_replaces_lists_wholesale_like_the_recorded_upstream_patch() {
    // 05-patches/03-json-merge-patch: the containers list is replaced, sidecar and ports gone.
    let original = pod(json!({"containers": [
        {"name": "app", "image": "nginx:1.24", "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "busybox:1.36"},
    ], "restartPolicy": "Always"}));
    let patch = pod(json!({"containers": [{"name": "app", "image": "nginx:1.25"}]}));
    let merged = json_merge(&original, &patch);
    let expected = pod(
        json!({"containers": [{"name": "app", "image": "nginx:1.25"}], "restartPolicy": "Always"}),
    );
    assert_eq!(merged, expected);
}
