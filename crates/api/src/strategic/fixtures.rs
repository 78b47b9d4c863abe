//! Hand-written OpenAPI v3 definitions for the tests, in the shape `crate::schema::definitions`
//! produces: a Deployment down to its containers with upstream's patch strategies, and a
//! small recursive `MergeItem` type like the one upstream's own tests use.

use serde_json::{json, Map, Value};

fn reference(name: &str) -> Value {
    json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}], "default": {}})
}

fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}})
}

fn list_of(name: &str, strategy: Option<&str>, merge_key: Option<&str>) -> Value {
    let mut list = json!({"type": "array", "items": reference(name)});
    if let Some(strategy) = strategy {
        list["x-kubernetes-patch-strategy"] = json!(strategy);
    }
    if let Some(key) = merge_key {
        list["x-kubernetes-patch-merge-key"] = json!(key);
    }
    list
}

fn object(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const CORE: &str = "io.k8s.api.core.v1.";
const APPS: &str = "io.k8s.api.apps.v1.";

/// Definitions for `io.k8s.api.apps.v1.Deployment` and everything it refers to.
pub(super) fn k8s_definitions() -> Map<String, Value> {
    let mut defs = Map::new();
    let mut def = |name: String, schema: Value| {
        defs.insert(name, schema);
    };
    def(
        format!("{APPS}Deployment"),
        object(json!({
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": reference(&format!("{META}ObjectMeta")),
            "spec": reference(&format!("{APPS}DeploymentSpec")),
        })),
    );
    def(
        format!("{META}ObjectMeta"),
        object(json!({
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "uid": {"type": "string"},
            "resourceVersion": {"type": "string"},
            "labels": string_map(),
            "annotations": string_map(),
            "finalizers": {
                "type": "array",
                "items": {"type": "string", "default": ""},
                "x-kubernetes-list-type": "set",
                "x-kubernetes-patch-strategy": "merge",
            },
            "ownerReferences": list_of(&format!("{META}OwnerReference"), Some("merge"), Some("uid")),
        })),
    );
    def(
        format!("{META}OwnerReference"),
        object(json!({
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "name": {"type": "string"},
            "uid": {"type": "string"},
            "controller": {"type": "boolean"},
        })),
    );
    def(
        format!("{META}LabelSelector"),
        object(json!({
            "matchLabels": string_map(),
            "matchExpressions": {"type": "array", "items": {"type": "object"}},
        })),
    );
    def(
        format!("{APPS}DeploymentSpec"),
        object(json!({
            "replicas": {"type": "integer", "format": "int32"},
            "minReadySeconds": {"type": "integer", "format": "int32"},
            "selector": reference(&format!("{META}LabelSelector")),
            "template": reference(&format!("{CORE}PodTemplateSpec")),
            "strategy": {
                "allOf": [{"$ref": format!("#/components/schemas/{APPS}DeploymentStrategy")}],
                "x-kubernetes-patch-strategy": "retainKeys",
            },
        })),
    );
    def(
        format!("{APPS}DeploymentStrategy"),
        object(json!({
            "type": {"type": "string"},
            "rollingUpdate": reference(&format!("{APPS}RollingUpdateDeployment")),
        })),
    );
    def(
        format!("{APPS}RollingUpdateDeployment"),
        object(json!({
            "maxSurge": reference("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
            "maxUnavailable": reference("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
        })),
    );
    def(
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString".to_owned(),
        json!({"type": "string", "format": "int-or-string"}),
    );
    def(
        format!("{CORE}PodTemplateSpec"),
        object(json!({
            "metadata": reference(&format!("{META}ObjectMeta")),
            "spec": reference(&format!("{CORE}PodSpec")),
        })),
    );
    def(
        format!("{CORE}PodSpec"),
        object(json!({
            "containers": list_of(&format!("{CORE}Container"), Some("merge"), Some("name")),
            "initContainers": list_of(&format!("{CORE}Container"), Some("merge"), Some("name")),
            "volumes": list_of(&format!("{CORE}Volume"), Some("merge,retainKeys"), Some("name")),
            "tolerations": list_of(&format!("{CORE}Toleration"), None, None),
            "nodeSelector": string_map(),
            "restartPolicy": {"type": "string"},
            "terminationGracePeriodSeconds": {"type": "integer", "format": "int64"},
        })),
    );
    def(
        format!("{CORE}Container"),
        object(json!({
            "name": {"type": "string"},
            "image": {"type": "string"},
            "command": {"type": "array", "items": {"type": "string", "default": ""}},
            "args": {"type": "array", "items": {"type": "string", "default": ""}},
            "env": list_of(&format!("{CORE}EnvVar"), Some("merge"), Some("name")),
            "ports": {
                "type": "array",
                "items": reference(&format!("{CORE}ContainerPort")),
                "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "containerPort",
                "x-kubernetes-patch-strategy": "merge",
            },
            "resources": reference(&format!("{CORE}ResourceRequirements")),
        })),
    );
    def(
        format!("{CORE}EnvVar"),
        object(json!({
            "name": {"type": "string"},
            "value": {"type": "string"},
        })),
    );
    def(
        format!("{CORE}ContainerPort"),
        object(json!({
            "containerPort": {"type": "integer", "format": "int32"},
            "protocol": {"type": "string"},
            "name": {"type": "string"},
        })),
    );
    def(
        format!("{CORE}ResourceRequirements"),
        object(json!({
            "limits": {"type": "object", "additionalProperties": reference("io.k8s.apimachinery.pkg.api.resource.Quantity")},
            "requests": {"type": "object", "additionalProperties": reference("io.k8s.apimachinery.pkg.api.resource.Quantity")},
        })),
    );
    def(
        "io.k8s.apimachinery.pkg.api.resource.Quantity".to_owned(),
        json!({"type": "string"}),
    );
    def(
        format!("{CORE}Volume"),
        object(json!({
            "name": {"type": "string"},
            "emptyDir": reference(&format!("{CORE}EmptyDirVolumeSource")),
            "configMap": reference(&format!("{CORE}ConfigMapVolumeSource")),
        })),
    );
    def(
        format!("{CORE}EmptyDirVolumeSource"),
        object(json!({"medium": {"type": "string"}})),
    );
    def(
        format!("{CORE}ConfigMapVolumeSource"),
        object(json!({"name": {"type": "string"}})),
    );
    def(
        format!("{CORE}Toleration"),
        object(json!({
            "key": {"type": "string"},
            "operator": {"type": "string"},
            "value": {"type": "string"},
            "effect": {"type": "string"},
            "tolerationSeconds": {"type": "integer", "format": "int64"},
        })),
    );
    defs
}

/// A recursive test type with one field per patch behaviour, like upstream's `MergeItem`.
pub(super) fn merge_item_definitions() -> Map<String, Value> {
    let mut defs = Map::new();
    let item = |retain_keys_list: bool| {
        let mut properties = json!({
            "name": {"type": "string"},
            "value": {"type": "string"},
            "other": {"type": "string"},
            "mergingList": list_of("mergeItem", Some("merge"), Some("name")),
            "nonMergingList": list_of("mergeItem", None, None),
            "mergingIntList": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-patch-strategy": "merge"},
            "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
            "simpleMap": string_map(),
        });
        if retain_keys_list {
            properties["mergeItemPtr"] = json!({
                "allOf": [{"$ref": "#/components/schemas/mergeItem"}],
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "name",
            });
            properties["replacingItem"] =
                json!({"type": "object", "x-kubernetes-patch-strategy": "replace"});
            properties["retainKeysMap"] = json!({
                "allOf": [{"$ref": "#/components/schemas/retainKeysMergeItem"}],
                "x-kubernetes-patch-strategy": "retainKeys",
            });
            properties["retainKeysMergingList"] =
                list_of("mergeItem", Some("merge,retainKeys"), Some("name"));
        }
        object(properties)
    };
    defs.insert("mergeItem".to_owned(), item(true));
    defs.insert("retainKeysMergeItem".to_owned(), item(false));
    defs
}
