use super::*;
use crate::resources::{find, ResourceInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use serde_json::json;
use std::collections::BTreeMap;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse_err(s: &str) -> String {
    LabelSelector::parse(s).expect_err(s)
}

const NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must \
    start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', \
    regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric \
    characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. \
    'MyValue',  or 'my_value',  or '12345', regex used for validation is \
    '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

// --- label selector syntax ---------------------------------------------------------------

#[test]
fn every_operator_parses_and_renders_canonically() {
    let cases = [
        ("a=b", "a=b", Operator::Equals),
        ("a==b", "a==b", Operator::DoubleEquals),
        ("a!=b", "a!=b", Operator::NotEquals),
        ("a in (y,x)", "a in (x,y)", Operator::In),
        ("a notin (x)", "a notin (x)", Operator::NotIn),
        ("a", "a", Operator::Exists),
        ("!a", "!a", Operator::DoesNotExist),
        ("a>1", "a>1", Operator::GreaterThan),
        ("a<1", "a<1", Operator::LessThan),
    ];
    for (input, canonical, op) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(sel.to_string(), canonical, "{input}");
        assert_eq!(sel.requirements().len(), 1);
        assert_eq!(sel.requirements()[0].operator(), op, "{input}");
        assert_eq!(sel.requirements()[0].key(), "a");
        assert_eq!(
            LabelSelector::parse(canonical).expect("canonical form parses"),
            sel
        );
    }
}

#[test]
fn whitespace_is_tolerated_and_requirements_sort_by_key() {
    let sel =
        LabelSelector::parse("  zone = east ,  app in ( web , api ) ,\t!legacy ").expect("parses");
    assert_eq!(sel.to_string(), "app in (api,web),!legacy,zone=east");
    let keys: Vec<&str> = sel.requirements().iter().map(Requirement::key).collect();
    assert_eq!(keys, ["app", "legacy", "zone"]);
}

#[test]
fn empty_values_and_keywords_as_identifiers_follow_upstream() {
    let sel = LabelSelector::parse("x in (foo,,baz),y,z notin ()").expect("upstream's own example");
    assert_eq!(sel.to_string(), "x in (,baz,foo),y,z notin ()");
    assert_eq!(sel.requirements()[0].values(), ["", "baz", "foo"]);
    let sel = LabelSelector::parse("in in (in,notin)").expect("in as key and value");
    assert_eq!(sel.to_string(), "in in (in,notin)");
    let sel = LabelSelector::parse("a=,b!=").expect("empty exact values");
    assert_eq!(sel.requirements()[0].values(), [""]);
    assert_eq!(sel.to_string(), "a=,b!=");
}

#[test]
fn the_empty_selector_selects_everything() {
    let sel = LabelSelector::parse("").expect("empty");
    assert!(sel.is_empty());
    assert!(sel.matches(&labels(&[])));
    assert_eq!(sel.to_string(), "");
    assert_eq!(
        LabelSelector::parse("   ").expect("blank"),
        LabelSelector::everything()
    );
}

#[test]
fn syntax_errors_carry_upstreams_messages() {
    let cases = [
        // Captured from kube-apiserver v1.26.1 (03-errors/list-pods-invalid-label-selector).
        (
            "app===web",
            "unable to parse requirement: found '=', expected: identifier",
        ),
        (
            "a b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
        ),
        ("a=b,", "found '', expected: identifier after ','"),
        (
            ",a",
            "found ',', expected: !, identifier, or 'end of string'",
        ),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        (
            "a in x",
            "unable to parse requirement: found 'x' expected: '('",
        ),
        (
            "a in (x",
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        (
            "a in (=)",
            "unable to parse requirement: found '=', expected: ',', ')' or identifier",
        ),
        (
            "a in (x,=)",
            "unable to parse requirement: found '=', expected: ',', or identifier",
        ),
        (
            "!",
            "unable to parse requirement: found '', expected: identifier",
        ),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        (
            "=a",
            "found '=', expected: !, identifier, or 'end of string'",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_err(input), want, "{input}");
    }
}

#[test]
fn invalid_keys_and_values_are_rejected_with_upstreams_validation_text() {
    assert_eq!(
        parse_err("-a=b"),
        format!("unable to parse requirement: <nil>: Invalid value: \"-a\": name part {NAME_RULE}")
    );
    assert_eq!(
        parse_err("a=-b"),
        format!("unable to parse requirement: values[0][a]: Invalid value: \"-b\": {VALUE_RULE}")
    );
    assert_eq!(
        parse_err("a>b"),
        "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, \
         the value must be an integer"
    );
    assert_eq!(
        parse_err("/app"),
        "unable to parse requirement: <nil>: Invalid value: \"/app\": prefix part must be non-empty"
    );
    let long = "k".repeat(64);
    assert_eq!(
        parse_err(&long),
        format!("unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be no more than 63 characters")
    );
    assert!(parse_err("Example.com/app").contains("prefix part a lowercase RFC 1123 subdomain"));
    assert!(parse_err("a/b/c").contains("a qualified name must consist of"));
    assert!(
        parse_err(&format!("a={}", "v".repeat(64))).contains("must be no more than 63 characters")
    );
    LabelSelector::parse("example.com/app-name_1.x=Value_1.2-3")
        .expect("valid prefixed key and value");
}

// --- label matching ----------------------------------------------------------------------

#[test]
fn matching_follows_upstream_semantics_for_every_operator() {
    let obj = labels(&[("app", "web"), ("tier", "front"), ("replicas", "5")]);
    let none = labels(&[]);
    let cases = [
        ("app=web", true, false),
        ("app==web", true, false),
        ("app=api", false, false),
        ("app!=api", true, true),
        ("app!=web", false, true),
        ("app in (api,web)", true, false),
        ("app notin (api,web)", false, true),
        ("app notin (api)", true, true),
        ("app", true, false),
        ("!app", false, true),
        ("replicas>4", true, false),
        ("replicas>5", false, false),
        ("replicas<6", true, false),
        ("tier>1", false, false),
        ("app=web,tier=back", false, false),
        ("app=web,tier=front", true, false),
    ];
    for (input, on_obj, on_none) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(sel.matches(&obj), on_obj, "{input} on labelled object");
        assert_eq!(sel.matches(&none), on_none, "{input} on unlabelled object");
    }
}

#[test]
fn nothing_matches_nothing_and_renders_empty() {
    let sel = LabelSelector::nothing();
    assert!(!sel.matches(&labels(&[])));
    assert!(!sel.is_empty());
    assert!(sel.is_nothing());
    assert_eq!(sel.to_string(), "");
}

#[test]
fn exact_matches_are_reported_for_equality_and_single_value_in() {
    let sel = LabelSelector::parse("a=1,b in (2),c in (3,4),d!=5").expect("parses");
    assert_eq!(sel.requires_exact_match("a"), Some("1"));
    assert_eq!(sel.requires_exact_match("b"), Some("2"));
    assert_eq!(sel.requires_exact_match("c"), None);
    assert_eq!(sel.requires_exact_match("d"), None);
    assert_eq!(sel.requires_exact_match("e"), None);
}

// --- metav1.LabelSelector ----------------------------------------------------------------

fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_owned(),
        operator: op.to_owned(),
        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

#[test]
fn metav1_selectors_convert_with_all_expression_operators() {
    let k8s = metav1::LabelSelector {
        match_labels: Some(labels(&[("tier", "front"), ("app", "web")])),
        match_expressions: Some(vec![
            expr("env", "In", &["prod", "dev"]),
            expr("track", "NotIn", &["canary"]),
            LabelSelectorRequirement {
                key: "owner".into(),
                operator: "Exists".into(),
                values: None,
            },
            expr("legacy", "DoesNotExist", &[]),
        ]),
    };
    let sel = LabelSelector::from_k8s(&k8s).expect("converts");
    assert_eq!(
        sel.to_string(),
        "app=web,env in (dev,prod),!legacy,owner,tier=front,track notin (canary)"
    );
    let good = labels(&[
        ("app", "web"),
        ("tier", "front"),
        ("env", "dev"),
        ("owner", "me"),
    ]);
    assert!(sel.matches(&good));
    let mut canary = good.clone();
    canary.insert("track".into(), "canary".into());
    assert!(!sel.matches(&canary));
}

#[test]
fn metav1_selector_edge_cases_follow_label_selector_as_selector() {
    let empty = metav1::LabelSelector::default();
    assert!(LabelSelector::from_k8s(&empty).expect("empty").is_empty());
    assert!(LabelSelector::from_k8s_opt(None).expect("nil").is_nothing());
    let bad_op = metav1::LabelSelector {
        match_expressions: Some(vec![expr("a", "Gt", &["1"])]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_k8s(&bad_op).expect_err("Gt"),
        "\"Gt\" is not a valid label selector operator"
    );
    let no_values = metav1::LabelSelector {
        match_expressions: Some(vec![expr("a", "In", &[])]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_k8s(&no_values).expect_err("empty In"),
        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
    );
    let exists_with_values = metav1::LabelSelector {
        match_expressions: Some(vec![expr("a", "Exists", &["x"])]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_k8s(&exists_with_values).expect_err("Exists with values"),
        "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
    );
    let bad_key = metav1::LabelSelector {
        match_labels: Some(labels(&[("-x", "-y")])),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_k8s(&bad_key).expect_err("bad key and value"),
        format!("[key: Invalid value: \"-x\": name part {NAME_RULE}, values[0][-x]: Invalid value: \"-y\": {VALUE_RULE}]")
    );
}

#[test]
fn map_selectors_require_every_pair() {
    let sel = LabelSelector::from_map(&labels(&[("b", "2"), ("a", "1")]));
    assert_eq!(sel.to_string(), "a=1,b=2");
    assert!(sel.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
    assert!(!sel.matches(&labels(&[("a", "1")])));
    assert!(LabelSelector::from_map(&labels(&[])).matches(&labels(&[])));
}

// --- field selector syntax ---------------------------------------------------------------

#[test]
fn field_selectors_parse_every_operator_and_render_sorted() {
    let sel = FieldSelector::parse("status.phase!=Running,metadata.name==web,spec.nodeName=n1")
        .expect("parses");
    assert_eq!(
        sel.to_string(),
        "metadata.name=web,spec.nodeName=n1,status.phase!=Running"
    );
    let ops: Vec<FieldOperator> = sel.requirements().iter().map(|r| r.operator).collect();
    assert_eq!(
        ops,
        [
            FieldOperator::Equals,
            FieldOperator::Equals,
            FieldOperator::NotEquals
        ]
    );
    assert_eq!(
        sel.fields(),
        ["metadata.name", "spec.nodeName", "status.phase"]
    );
    assert!(FieldSelector::parse("").expect("empty").is_empty());
    assert_eq!(
        FieldSelector::parse("a=b,,c=d")
            .expect("empty term skipped")
            .requirements()
            .len(),
        2
    );
    assert_eq!(
        FieldSelector::parse("a=")
            .expect("empty value")
            .requirements()[0]
            .value,
        ""
    );
}

#[test]
fn field_values_unescape_and_escape_backslash_comma_and_equals() {
    let sel = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").expect("escaped value");
    assert_eq!(sel.requirements()[0].value, r"a,b=c\d");
    assert_eq!(sel.to_string(), r"metadata.name=a\,b\=c\\d");
    assert_eq!(
        FieldSelector::parse(&sel.to_string()).expect("round trip"),
        sel
    );
}

#[test]
fn field_selector_errors_carry_upstreams_messages() {
    let cases = [
        ("abc", "invalid selector: 'abc'; can't understand 'abc'"),
        (
            "a=b,xyz",
            "invalid selector: 'a=b,xyz'; can't understand 'xyz'",
        ),
        (
            r"a=b\x",
            r"invalid field selector: invalid escape sequence: \x",
        ),
        (
            r"a=b\",
            r"invalid field selector: invalid escape sequence: \",
        ),
        (
            "a=b=c",
            "invalid field selector: unescaped character in value: 61",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            FieldSelector::parse(input).expect_err(input),
            want,
            "{input}"
        );
    }
}

#[test]
fn field_matching_treats_missing_fields_as_empty() {
    let sel = FieldSelector::parse("spec.nodeName=,status.phase!=Running").expect("parses");
    let get = |f: &str| {
        if f == "status.phase" {
            Some("Pending".to_owned())
        } else {
            None
        }
    };
    assert!(sel.matches(&get));
    let running = |f: &str| {
        if f == "status.phase" {
            Some("Running".to_owned())
        } else {
            None
        }
    };
    assert!(!sel.matches(&running));
    assert!(FieldSelector::everything().matches(&|_: &str| None));
    assert_eq!(
        FieldSelector::parse("metadata.name=x,a!=y")
            .expect("p")
            .requires_exact_match("metadata.name"),
        Some("x")
    );
    assert_eq!(
        FieldSelector::parse("metadata.name!=x")
            .expect("p")
            .requires_exact_match("metadata.name"),
        None
    );
}

// --- per-resource fields -----------------------------------------------------------------

fn info(group: &str, version: &str, plural: &str) -> &'static ResourceInfo {
    find(group, version, plural).unwrap_or_else(|| panic!("{group}/{version} {plural} is served"))
}

#[test]
fn unsupported_fields_are_rejected_with_the_resources_own_message() {
    let validate =
        |i: &ResourceInfo, s: &str| FieldSelector::parse(s).expect("parses").validate_for(i);
    assert_eq!(
        validate(info("", "v1", "pods"), "spec.foo=x").expect_err("pods"),
        "field label not supported: spec.foo"
    );
    assert_eq!(
        validate(info("", "v1", "configmaps"), "data.x=1").expect_err("configmaps"),
        "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert_eq!(
        validate(info("apps", "v1", "replicasets"), "status.replicas=0").expect_err("apps/v1 registers none"),
        "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert_eq!(
        validate(info("batch", "v1", "jobs"), "status.failed=1").expect_err("jobs"),
        "field label \"status.failed\" not supported for Job"
    );
    assert_eq!(
        validate(info("", "v1", "nodes"), "metadata.namespace=x").expect_err("nodes"),
        "field label not supported: metadata.namespace"
    );
    assert_eq!(
        validate(
            info("events.k8s.io", "v1", "events"),
            "involvedObject.name=x"
        )
        .expect_err("events.k8s.io"),
        "field label not supported: involvedObject.name"
    );
    validate(
        info("rbac.authorization.k8s.io", "v1", "clusterroles"),
        "metadata.namespace=",
    )
    .expect("default conversion accepts metadata.namespace even for cluster-scoped kinds");
    let converted = validate(info("", "v1", "pods"), "spec.host=n1").expect("legacy spelling");
    assert_eq!(converted.requirements()[0].field, "spec.nodeName");
}

#[test]
fn supported_fields_list_upstreams_registrations() {
    let pods = supported_fields(info("", "v1", "pods"));
    for f in [
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ] {
        assert!(pods.contains(&f), "pods lack {f}");
    }
    assert_eq!(
        supported_fields(info("", "v1", "nodes")),
        ["metadata.name", "spec.unschedulable"]
    );
    assert_eq!(
        supported_fields(info("", "v1", "namespaces")),
        ["metadata.name", "status.phase"]
    );
    assert!(supported_fields(info("", "v1", "secrets")).contains(&"type"));
    assert!(supported_fields(info("", "v1", "replicationcontrollers")).contains(&"status.replicas"));
    assert!(supported_fields(info("batch", "v1", "jobs")).contains(&"status.successful"));
    assert!(supported_fields(info(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests"
    ))
    .contains(&"spec.signerName"));
    for f in [
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ] {
        assert!(
            supported_fields(info("", "v1", "events")).contains(&f),
            "core events lack {f}"
        );
    }
    for f in [
        "regarding.kind",
        "regarding.name",
        "reportingController",
        "reason",
        "type",
    ] {
        assert!(
            supported_fields(info("events.k8s.io", "v1", "events")).contains(&f),
            "events.k8s.io lacks {f}"
        );
    }
    assert_eq!(
        supported_fields(info("", "v1", "configmaps")),
        ["metadata.name", "metadata.namespace"]
    );
}

#[test]
fn pod_fields_render_as_upstream_does() {
    let pods = info("", "v1", "pods");
    let pod = json!({
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                 "serviceAccountName": "default", "hostNetwork": true},
        "status": {"podIP": "10.42.0.9", "podIPs": [{"ip": "10.42.0.9"}, {"ip": "fd00::9"}]}
    });
    let v = |f: &str| field_value(pods, &pod, f);
    assert_eq!(v("metadata.name").as_deref(), Some("web"));
    assert_eq!(v("metadata.namespace").as_deref(), Some("demo"));
    assert_eq!(v("spec.nodeName").as_deref(), Some("n1"));
    assert_eq!(v("spec.host").as_deref(), Some("n1"));
    assert_eq!(v("spec.restartPolicy").as_deref(), Some("Always"));
    assert_eq!(
        v("spec.schedulerName").as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(v("spec.serviceAccountName").as_deref(), Some("default"));
    assert_eq!(v("spec.hostNetwork").as_deref(), Some("true"));
    assert_eq!(
        v("status.phase").as_deref(),
        Some(""),
        "missing phase renders empty"
    );
    assert_eq!(v("status.podIP").as_deref(), Some("10.42.0.9"));
    assert_eq!(
        v("status.podIPs").as_deref(),
        Some(""),
        "never filled upstream"
    );
    assert_eq!(v("status.nominatedNodeName").as_deref(), Some(""));
    assert_eq!(v("spec.containers"), None);
    let bare = json!({"metadata": {"name": "x"}});
    assert_eq!(
        field_value(pods, &bare, "spec.hostNetwork").as_deref(),
        Some("false")
    );
    let sel = FieldSelector::parse("spec.nodeName=n1,status.phase!=Running").expect("parses");
    assert!(sel.matches_object(pods, &pod));
    assert!(!sel.matches_object(pods, &bare));
}

#[test]
fn other_resources_fields_render_as_upstream_does() {
    let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
    let nodes = info("", "v1", "nodes");
    assert_eq!(
        field_value(nodes, &node, "spec.unschedulable").as_deref(),
        Some("true")
    );
    assert_eq!(
        field_value(nodes, &json!({}), "spec.unschedulable").as_deref(),
        Some("false")
    );
    let cr = info("rbac.authorization.k8s.io", "v1", "clusterroles");
    assert_eq!(
        field_value(
            cr,
            &json!({"metadata": {"name": "view"}}),
            "metadata.namespace"
        )
        .as_deref(),
        Some("")
    );
    let ns = json!({"metadata": {"name": "demo"}, "status": {"phase": "Terminating"}});
    assert_eq!(
        field_value(info("", "v1", "namespaces"), &ns, "status.phase").as_deref(),
        Some("Terminating")
    );
    let secret = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
    assert_eq!(
        field_value(info("", "v1", "secrets"), &secret, "type").as_deref(),
        Some("kubernetes.io/tls")
    );
    let svc = json!({"spec": {"clusterIP": "10.43.0.1", "type": "ClusterIP"}});
    assert_eq!(
        field_value(info("", "v1", "services"), &svc, "spec.clusterIP").as_deref(),
        Some("10.43.0.1")
    );
    assert_eq!(
        field_value(info("", "v1", "services"), &svc, "spec.type").as_deref(),
        Some("ClusterIP")
    );
    let rc = json!({"status": {"replicas": 3}});
    assert_eq!(
        field_value(
            info("", "v1", "replicationcontrollers"),
            &rc,
            "status.replicas"
        )
        .as_deref(),
        Some("3")
    );
    assert_eq!(
        field_value(
            info("", "v1", "replicationcontrollers"),
            &json!({}),
            "status.replicas"
        )
        .as_deref(),
        Some("0")
    );
    let job = json!({"status": {"succeeded": 2}});
    assert_eq!(
        field_value(info("batch", "v1", "jobs"), &job, "status.successful").as_deref(),
        Some("2")
    );
    assert_eq!(
        field_value(info("batch", "v1", "jobs"), &json!({}), "status.successful").as_deref(),
        Some("0")
    );
    let csr = json!({"spec": {"signerName": "kubernetes.io/kube-apiserver-client"}});
    let csrs = info("certificates.k8s.io", "v1", "certificatesigningrequests");
    assert_eq!(
        field_value(csrs, &csr, "spec.signerName").as_deref(),
        Some("kubernetes.io/kube-apiserver-client")
    );
    assert_eq!(
        field_value(info("apps", "v1", "replicasets"), &rc, "status.replicas"),
        None
    );
}

#[test]
fn event_fields_render_for_both_event_apis() {
    let core = info("", "v1", "events");
    let ev = json!({
        "metadata": {"name": "e1", "namespace": "demo"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "demo", "uid": "u1",
                           "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
        "reason": "Scheduled", "type": "Normal", "reportingComponent": "default-scheduler"
    });
    let v = |f: &str| field_value(core, &ev, f);
    assert_eq!(v("involvedObject.kind").as_deref(), Some("Pod"));
    assert_eq!(v("involvedObject.name").as_deref(), Some("web"));
    assert_eq!(v("involvedObject.uid").as_deref(), Some("u1"));
    assert_eq!(
        v("involvedObject.fieldPath").as_deref(),
        Some("spec.containers{c}")
    );
    assert_eq!(v("reason").as_deref(), Some("Scheduled"));
    assert_eq!(v("type").as_deref(), Some("Normal"));
    assert_eq!(
        v("reportingComponent").as_deref(),
        Some("default-scheduler")
    );
    assert_eq!(
        v("source").as_deref(),
        Some("default-scheduler"),
        "falls back to reportingComponent"
    );
    let with_source = json!({"source": {"component": "kubelet"}, "reportingComponent": "x"});
    assert_eq!(
        field_value(core, &with_source, "source").as_deref(),
        Some("kubelet")
    );

    let v1 = info("events.k8s.io", "v1", "events");
    let ev = json!({
        "metadata": {"name": "e1", "namespace": "demo"},
        "regarding": {"kind": "Node", "name": "n1"},
        "reason": "Ready", "type": "Normal", "reportingController": "kubelet"
    });
    assert_eq!(
        field_value(v1, &ev, "regarding.kind").as_deref(),
        Some("Node")
    );
    assert_eq!(
        field_value(v1, &ev, "regarding.name").as_deref(),
        Some("n1")
    );
    assert_eq!(field_value(v1, &ev, "regarding.uid").as_deref(), Some(""));
    assert_eq!(
        field_value(v1, &ev, "reportingController").as_deref(),
        Some("kubelet")
    );
    assert_eq!(field_value(v1, &ev, "source").as_deref(), Some("kubelet"));
    assert_eq!(field_value(v1, &ev, "involvedObject.kind"), None);
}

#[test]
fn hostile_input_yields_errors_not_panics() {
    let inputs = [
        "\u{0}",
        "ä=ö",
        "ä in (ö)",
        "((((",
        ")))",
        "!!!",
        "a in ((",
        "a notin",
        "in",
        "notin",
        "a,,b",
        "a in (,",
        "a=(",
        "><",
        "a>>1",
        "a in (x))",
        "!in",
        "a=b\\,c",
        "😀",
        "a=😀",
    ];
    for input in inputs {
        let _ = LabelSelector::parse(input);
        let _ = FieldSelector::parse(input);
    }
    assert_eq!(
        parse_err("a,,b"),
        "found ',', expected: identifier after ','"
    );
    assert!(
        parse_err("ä=ö").starts_with("unable to parse requirement: <nil>: Invalid value: \"ä\"")
    );
    assert_eq!(
        LabelSelector::parse("in")
            .expect("a key named in")
            .to_string(),
        "in"
    );
    assert_eq!(LabelSelector::parse("!in").expect("!in").to_string(), "!in");
}

#[test]
fn requirements_built_directly_are_validated_like_parsed_ones() {
    let two = Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()]);
    assert_eq!(
        two.expect_err("Gt with two values"),
        "values: Invalid value: []string{\"1\", \"2\"}: for 'Gt', 'Lt' operators, exactly one value is required"
    );
    let eq = Requirement::new("a", Operator::Equals, vec![]);
    assert_eq!(
        eq.expect_err("= without value"),
        "values: Invalid value: []string{}: exact-match compatibility requires one single value"
    );
    let ok = Requirement::new("a", Operator::NotIn, vec!["x".into(), "b".into()]).expect("valid");
    assert_eq!(ok.to_string(), "a notin (b,x)");
    assert!(ok.matches(&labels(&[("a", "c")])));
}
