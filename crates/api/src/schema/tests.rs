use super::*;

fn definition(name: &str) -> &'static Value {
    definitions()
        .get(name)
        .unwrap_or_else(|| panic!("{name} is defined"))
}

fn property(definition_name: &str, property: &str) -> &'static Value {
    definition(definition_name)
        .get("properties")
        .and_then(|p| p.get(property))
        .unwrap_or_else(|| panic!("{definition_name} has property {property}"))
}

const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";

#[test]
fn every_served_kind_and_its_list_carry_their_group_version_kind() {
    for info in resources::RESOURCES {
        for (name, kind) in [
            (definition_name(info), info.kind.to_owned()),
            (list_definition_name(info), format!("{}List", info.kind)),
        ] {
            let gvks = definition(&name)
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("{name} has a group-version-kind"));
            let wanted = json!({ "group": info.group, "kind": kind, "version": info.version });
            assert!(gvks.contains(&wanted), "{name}: {gvks:?} lacks {wanted}");
        }
    }
}

#[test]
fn definition_names_follow_upstream() {
    let name = |group, version, plural| {
        definition_name(resources::find(group, version, plural).expect("served"))
    };
    assert_eq!(name("", "v1", "pods"), "io.k8s.api.core.v1.Pod");
    assert_eq!(
        name("apps", "v1", "deployments"),
        "io.k8s.api.apps.v1.Deployment"
    );
    assert_eq!(
        name("rbac.authorization.k8s.io", "v1", "roles"),
        "io.k8s.api.rbac.v1.Role"
    );
    assert_eq!(
        name("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    );
    assert_eq!(
        name("events.k8s.io", "v1", "events"),
        "io.k8s.api.events.v1.Event"
    );
    assert_eq!(
        api_package("networking.k8s.io", "v1"),
        "io.k8s.api.networking.v1"
    );
    assert_eq!(scale_definition_name(), "io.k8s.api.autoscaling.v1.Scale");
}

#[test]
fn delete_options_is_registered_in_every_group_version() {
    let gvks = definition("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        ["x-kubernetes-group-version-kind"]
        .as_array()
        .expect("an array");
    assert_eq!(gvks.len(), resources::group_versions().len());
    assert!(gvks.contains(&json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"})));
}

#[test]
fn pod_spec_lists_carry_upstream_patch_metadata() {
    let containers = property(POD_SPEC, "containers");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));

    let volumes = property(POD_SPEC, "volumes");
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    assert_eq!(volumes["x-kubernetes-patch-merge-key"], "name");

    let tolerations = property(POD_SPEC, "tolerations");
    assert_eq!(tolerations["x-kubernetes-list-type"], "atomic");
    assert!(tolerations.get("x-kubernetes-patch-merge-key").is_none());
    assert!(tolerations.get("x-kubernetes-patch-strategy").is_none());

    let ports = property(CONTAINER, "ports");
    assert_eq!(ports["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        json!(["containerPort", "protocol"])
    );

    let env = property(CONTAINER, "env");
    assert_eq!(env["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
}

#[test]
fn field_meta_answers_typed_lookups() {
    let containers = field_meta(POD_SPEC, "containers").expect("containers have metadata");
    assert!(containers.patch_strategy.merge);
    assert!(!containers.patch_strategy.retain_keys);
    assert_eq!(containers.patch_merge_key, Some("name"));
    assert_eq!(containers.list_type, Some(ListType::Map));

    let volumes = field_meta(POD_SPEC, "volumes").expect("volumes have metadata");
    assert!(volumes.patch_strategy.merge && volumes.patch_strategy.retain_keys);

    let tolerations = field_meta(POD_SPEC, "tolerations").expect("tolerations are atomic");
    assert_eq!(tolerations.patch_merge_key, None);
    assert!(tolerations.patch_strategy.is_empty());
    assert_eq!(tolerations.list_type, Some(ListType::Atomic));

    let finalizers = field_meta(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    )
    .expect("finalizers have metadata");
    assert_eq!(finalizers.list_type, Some(ListType::Set));

    assert_eq!(field_meta(POD_SPEC, "hostname"), None);
    assert_eq!(field_meta(POD_SPEC, "."), None);
    assert_eq!(field_meta("io.k8s.api.core.v1.Nope", "containers"), None);
    assert_eq!(
        definition_map_type("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
        Some(MapType::Atomic)
    );
    assert_eq!(definition_map_type(POD_SPEC), None);
}

#[test]
fn deployment_strategy_resolves_to_a_schema_with_rolling_update() {
    let deployment = "io.k8s.api.apps.v1.Deployment";
    let spec = property_ref(deployment, "spec").expect("spec is a reference");
    assert_eq!(spec, "io.k8s.api.apps.v1.DeploymentSpec");
    let strategy = property_ref(spec, "strategy").expect("strategy is a reference");
    assert_eq!(strategy, "io.k8s.api.apps.v1.DeploymentStrategy");
    // As upstream: a described reference is wrapped in allOf, with the patch strategy beside it.
    let wrapped = property(spec, "strategy");
    assert!(wrapped.get("$ref").is_none());
    assert_eq!(wrapped["x-kubernetes-patch-strategy"], "retainKeys");
    let rolling = property_ref(strategy, "rollingUpdate").expect("rollingUpdate is a reference");
    assert_eq!(rolling, "io.k8s.api.apps.v1.RollingUpdateDeployment");
    assert_eq!(property_ref(POD_SPEC, "containers"), Some(CONTAINER));
    assert_eq!(
        property_ref(POD_SPEC, "overhead"),
        Some("io.k8s.apimachinery.pkg.api.resource.Quantity")
    );
    assert_eq!(property_ref(POD_SPEC, "hostname"), None);
}

fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_to_a_definition() {
    let mut refs = Vec::new();
    for schema in definitions().values() {
        collect_refs(schema, &mut refs);
    }
    assert!(refs.len() > 500, "only {} references", refs.len());
    for reference in refs {
        let name = reference
            .strip_prefix(REF_PREFIX)
            .unwrap_or_else(|| panic!("{reference}"));
        assert!(definitions().contains_key(name), "{reference} dangles");
    }
}

#[test]
fn special_types_have_upstream_shapes() {
    let int_or_string = definition(INT_OR_STRING);
    assert_eq!(int_or_string["format"], "int-or-string");
    assert_eq!(
        int_or_string["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert!(definition(QUANTITY).get("oneOf").is_some());
    let time = definition("io.k8s.apimachinery.pkg.apis.meta.v1.Time");
    assert_eq!(
        (&time["type"], &time["format"]),
        (&json!("string"), &json!("date-time"))
    );
    for name in UNTYPED {
        let keys: Vec<&String> = definition(name)
            .as_object()
            .expect("object")
            .keys()
            .collect();
        assert_eq!(keys, ["description"], "{name}");
    }
}

#[test]
fn required_properties_are_upstreams() {
    // k8s-openapi would require `metadata` (a non-optional Rust field); upstream does not.
    assert!(definition("io.k8s.api.apps.v1.Deployment")
        .get("required")
        .is_none());
    assert_eq!(
        definition("io.k8s.api.rbac.v1.RoleBinding")["required"],
        json!(["roleRef"])
    );
    assert_eq!(definition(POD_SPEC)["required"], json!(["containers"]));
    assert_eq!(
        definition("io.k8s.api.core.v1.SecretKeySelector")["required"],
        json!(["key"])
    );
    let own = definition_meta("io.k8s.api.core.v1.Taint").expect("upstream has Taint");
    assert_eq!(own.required, ["key", "effect"]);
}

#[test]
fn definitions_are_sorted_by_name() {
    let names: Vec<&String> = definitions().keys().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}
