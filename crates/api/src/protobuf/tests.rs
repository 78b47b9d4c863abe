//! Decoding tests: real kubectl 1.32 request bodies captured with `capture.py` (compared
//! with the same command's `--dry-run=client -o json` output, byte for byte), and
//! hand-built payloads for the cases kubectl does not produce.

use serde_json::{json, Value};

use super::*;

/// A protobuf message under construction, for payloads kubectl does not send.
#[derive(Default, Clone)]
struct Msg(Vec<u8>);

impl Msg {
    fn key(mut self, field: u32, wire_type: u8) -> Self {
        self.0.extend(varint(u64::from(field) << 3 | u64::from(wire_type)));
        self
    }
    fn varint(self, field: u32, v: u64) -> Self {
        let mut m = self.key(field, 0);
        m.0.extend(varint(v));
        m
    }
    fn int(self, field: u32, v: i64) -> Self {
        self.varint(field, v as u64)
    }
    fn double(self, field: u32, v: f64) -> Self {
        let mut m = self.key(field, 1);
        m.0.extend(v.to_bits().to_le_bytes());
        m
    }
    fn bytes(self, field: u32, b: &[u8]) -> Self {
        let mut m = self.key(field, 2);
        m.0.extend(varint(b.len() as u64));
        m.0.extend(b);
        m
    }
    fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(self, field: u32, m: Msg) -> Self {
        self.bytes(field, &m.0)
    }
    /// A `map<string, string>` entry.
    fn entry(self, field: u32, k: &str, v: &str) -> Self {
        self.msg(field, Msg::default().str(1, k).str(2, v))
    }
    /// A map entry with a message value.
    fn entry_msg(self, field: u32, k: &str, v: Msg) -> Self {
        self.msg(field, Msg::default().str(1, k).msg(2, v))
    }
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `k8s\0` + runtime.Unknown{typeMeta, raw}.
fn envelope(api_version: &str, kind: &str, raw: Msg) -> Vec<u8> {
    let unknown = Msg::default()
        .msg(1, Msg::default().str(1, api_version).str(2, kind))
        .msg(2, raw)
        .str(4, CONTENT_TYPE);
    [MAGIC.as_slice(), &unknown.0].concat()
}

fn quantity(s: &str) -> Msg {
    Msg::default().str(1, s)
}

fn int_port(port: i64) -> Msg {
    Msg::default().int(1, 0).int(2, port)
}

fn named_port(name: &str) -> Msg {
    Msg::default().int(1, 1).int(2, 0).str(3, name)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/src/protobuf/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

/// Decodes `<name>.pb` and checks it against `<name>.json`, including the field order.
fn assert_capture_matches(name: &str) {
    let decoded = decode(&fixture(&format!("{name}.pb")))
        .unwrap_or_else(|e| panic!("decoding {name}.pb: {e}"));
    let expected = fixture_json(&format!("{name}.json"));
    assert_eq!(
        serde_json::to_string_pretty(&decoded).expect("serializes"),
        serde_json::to_string_pretty(&expected).expect("serializes"),
        "{name}"
    );
}

#[test]
fn kubectl_create_captures_decode_to_kubectls_own_json() {
    for name in [
        "namespace",
        "configmap",
        "secret",
        "secret-tls",
        "secret-registry",
        "deployment",
        "deployment-multi",
        "service",
        "service-nodeport",
        "service-external",
        "job",
        "cronjob",
        "role",
        "rolebinding",
        "clusterrole",
        "clusterrole-aggregated",
        "clusterrolebinding",
        "serviceaccount",
        "priorityclass",
        "quota",
        "pdb",
        "pdb-int",
        "ingress",
        // template copied from a CronJob the server defaulted; ownerReferences
        "job-from-cronjob",
    ] {
        assert_capture_matches(name);
    }
}

#[test]
fn kubectl_autoscale_sends_an_autoscaling_v1_hpa() {
    // kubectl 1.32 posts autoscaling/v1 (its --dry-run=client output shows v2 instead), so
    // the expectation is written out from the Go types: v1 status counts have no omitempty.
    let decoded = decode(&fixture("autoscale.pb")).expect("decodes");
    assert_eq!(
        serde_json::to_string(&decoded).expect("serializes"),
        serde_json::to_string(&json!({
            "kind": "HorizontalPodAutoscaler",
            "apiVersion": "autoscaling/v1",
            "metadata": {"name": "web", "creationTimestamp": null},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                "minReplicas": 2,
                "maxReplicas": 5,
                "targetCPUUtilizationPercentage": 80
            },
            "status": {"currentReplicas": 0, "desiredReplicas": 0}
        }))
        .expect("serializes")
    );
}

#[test]
fn kubectl_certificate_approve_put_decodes_to_the_stored_object_plus_the_condition() {
    let mut decoded = decode(&fixture("csr-approve.pb")).expect("decodes");
    let conditions = decoded["status"]["conditions"].take();
    assert_eq!(
        conditions,
        json!([{
            "type": "Approved",
            "status": "True",
            "reason": "KubectlApprove",
            "message": "This CSR was approved by kubectl certificate approve.",
            "lastUpdateTime": "2026-11-25T07:56:10Z",
            // metav1.Time without a pointer: Go writes the zero time as null
            "lastTransitionTime": null
        }])
    );
    decoded["status"] = json!({});
    // what the server returned for the object kubectl read and modified
    let mut stored = fixture_json("csr-before-approve.json");
    stored["status"] = json!({});
    assert_eq!(decoded, stored);
}

#[test]
fn kubectl_create_token_sends_a_token_request() {
    let decoded = decode(&fixture("token.pb")).expect("decodes");
    assert_eq!(
        serde_json::to_string(&decoded).expect("serializes"),
        serde_json::to_string(&json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            // pointer without omitempty: nil is null
            "spec": {"audiences": ["api"], "expirationSeconds": 3600, "boundObjectRef": null},
            "status": {"token": "", "expirationTimestamp": null}
        }))
        .expect("serializes")
    );
}

#[test]
fn kubectl_drain_falls_back_to_delete_with_protobuf_delete_options() {
    // our server had no pods/eviction, so kubectl deleted the pod with a body whose
    // apiVersion is the pod's group-version: DeleteOptions is registered in every group
    let decoded = decode(&fixture("delete-options.pb")).expect("decodes");
    assert_eq!(
        decoded,
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 7})
    );
    assert!(supports("apps/v1", "DeleteOptions"));
    assert!(!supports("apps/v1", "Status"));
}

#[test]
fn deployment_keeps_zero_replicas_and_decodes_containers() {
    let container = Msg::default()
        .str(1, "web")
        .str(2, "nginx:1.27")
        .msg(6, Msg::default().str(1, "http").int(3, 8080).str(4, "TCP"))
        .msg(7, Msg::default().str(1, "MODE").str(2, "prod"))
        .msg(
            7,
            Msg::default()
                .str(1, "POD_IP")
                .msg(3, Msg::default().msg(1, Msg::default().str(1, "v1").str(2, "status.podIP"))),
        )
        .msg(
            8,
            Msg::default()
                .entry_msg(1, "memory", quantity("128Mi"))
                .entry_msg(1, "cpu", quantity("500m"))
                .entry_msg(2, "cpu", quantity("250m")),
        )
        .msg(
            10,
            Msg::default()
                .msg(1, Msg::default().msg(3, Msg::default().msg(1, int_port(8080))))
                .int(2, 5),
        )
        .msg(
            11,
            Msg::default()
                .msg(
                    1,
                    Msg::default()
                        .msg(2, Msg::default().str(1, "/healthz").msg(2, named_port("http"))),
                )
                .int(4, 10),
        );
    let deployment = Msg::default()
        .msg(1, Msg::default().str(1, "web").str(3, "default").entry(11, "app", "web"))
        .msg(
            2,
            Msg::default()
                .int(1, 0)
                .msg(2, Msg::default().entry(1, "app", "web"))
                .msg(
                    3,
                    Msg::default()
                        .msg(1, Msg::default().entry(11, "app", "web"))
                        .msg(2, Msg::default().msg(2, container)),
                )
                // gogo writes non-pointer scalars even when zero
                .int(5, 0)
                .varint(7, 0),
        )
        .msg(3, Msg::default());
    let decoded = decode(&envelope("apps/v1", "Deployment", deployment)).expect("decodes");
    let expected = json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": null,
            "labels": {"app": "web"}
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "env": [
                            {"name": "MODE", "value": "prod"},
                            {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}
                        ],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m"}
                        },
                        "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 5},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
                    }]
                }
            },
            // a non-pointer struct is always written, even empty
            "strategy": {}
        },
        "status": {}
    });
    assert_eq!(
        serde_json::to_string(&decoded).expect("serializes"),
        serde_json::to_string(&expected).expect("serializes")
    );
}

#[test]
fn times_managed_fields_and_raw_extensions_decode_like_go() {
    let meta = Msg::default()
        .str(1, "rev-1")
        .msg(8, Msg::default().int(1, 1_700_000_000).int(2, 123))
        // a present pointer to the zero time is written as null
        .msg(9, Msg::default())
        .int(10, 30)
        .msg(
            17,
            Msg::default()
                .str(1, "kubectl")
                .str(2, "Update")
                .str(3, "apps/v1")
                .msg(4, Msg::default().int(1, 1_700_000_001))
                .str(6, "FieldsV1")
                .msg(7, Msg::default().bytes(1, br#"{"f:data":{}}"#)),
        );
    let revision = Msg::default()
        .msg(1, meta)
        .msg(2, Msg::default().bytes(1, br#"{"spec":{"template":{"x":1}}}"#))
        .int(3, 2);
    let decoded = decode(&envelope("apps/v1", "ControllerRevision", revision)).expect("decodes");
    assert_eq!(
        decoded,
        json!({
            "kind": "ControllerRevision",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": "rev-1",
                "creationTimestamp": "2023-11-14T22:13:20Z",
                "deletionTimestamp": null,
                "deletionGracePeriodSeconds": 30,
                "managedFields": [{
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": "2023-11-14T22:13:21Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}}
                }]
            },
            "data": {"spec": {"template": {"x": 1}}},
            "revision": 2
        })
    );
}

#[test]
fn micro_time_keeps_microseconds_and_zero_times_are_null() {
    let event = Msg::default()
        .msg(1, Msg::default().str(1, "e1").str(3, "default"))
        .msg(2, Msg::default().int(1, 1_700_000_000).int(2, 123_456_789))
        .str(7, "Started")
        .msg(8, Msg::default().str(1, "Pod").str(3, "web"))
        // zero metav1.Time as gogo writes it: seconds of year 1
        .msg(13, Msg::default().int(1, format::GO_ZERO_TIME_SECONDS));
    let decoded = decode(&envelope("events.k8s.io/v1", "Event", event)).expect("decodes");
    assert_eq!(decoded["eventTime"], json!("2023-11-14T22:13:20.123456Z"));
    assert_eq!(decoded["deprecatedFirstTimestamp"], Value::Null);
    assert_eq!(decoded["deprecatedLastTimestamp"], Value::Null);
    assert_eq!(decoded["regarding"], json!({"kind": "Pod", "name": "web"}));
    assert_eq!(decoded["deprecatedSource"], json!({}));
    assert!(decoded.get("reportingController").is_none(), "empty omitempty string is omitted");
}

#[test]
fn secret_bytes_become_base64_and_repeated_ints_decode_packed_or_not() {
    let secret = Msg::default()
        .msg(1, Msg::default().str(1, "s"))
        .msg(2, Msg::default().str(1, "k").bytes(2, &[0, 255, 16]))
        .msg(2, Msg::default().str(1, "empty"))
        .str(3, "Opaque");
    let decoded = decode(&envelope("v1", "Secret", secret)).expect("decodes");
    assert_eq!(decoded["data"], json!({"empty": "", "k": "AP8Q"}));
    assert_eq!(decoded["type"], json!("Opaque"));

    let packed = Msg::default().bytes(4, &[1, 2, 0xe8, 0x07]);
    let unpacked = Msg::default().int(4, 1).int(4, 2).int(4, 1000);
    for security_context in [packed, unpacked] {
        let pod = Msg::default().msg(2, Msg::default().msg(14, security_context));
        let decoded = decode(&envelope("v1", "Pod", pod)).expect("decodes");
        assert_eq!(decoded["spec"]["securityContext"], json!({"supplementalGroups": [1, 2, 1000]}));
        // containers has no omitempty: a nil slice is null
        assert_eq!(decoded["spec"]["containers"], Value::Null);
    }
}

#[test]
fn named_slice_map_values_decode_from_wrapper_messages() {
    let csr = Msg::default().msg(
        2,
        Msg::default().bytes(1, b"pem").str(7, "example.com/signer").entry_msg(
            6,
            "scopes",
            Msg::default().str(1, "a").str(1, "b"),
        ),
    );
    let decoded = decode(&envelope("certificates.k8s.io/v1", "CertificateSigningRequest", csr))
        .expect("decodes");
    assert_eq!(decoded["spec"]["extra"], json!({"scopes": ["a", "b"]}));
    assert_eq!(decoded["spec"]["request"], json!("cGVt"));
}

#[test]
fn crd_schemas_decode_with_their_special_encodings() {
    let leaf = |ty: &str| Msg::default().str(5, ty);
    let schema = Msg::default()
        .str(5, "object")
        .entry_msg(
            29,
            "replicas",
            leaf("integer").double(9, 10.0).double(11, 0.5).msg(8, Msg::default().bytes(1, b"1")),
        )
        .entry_msg(29, "tags", leaf("array").msg(24, Msg::default().msg(1, leaf("string"))))
        .entry_msg(29, "port", Msg::default().varint(40, 1))
        .entry_msg(
            29,
            "mode",
            leaf("string")
                .msg(20, Msg::default().bytes(1, br#""a""#))
                .msg(20, Msg::default().bytes(1, br#""b""#)),
        )
        .msg(30, Msg::default().varint(1, 0))
        .entry_msg(32, "tags", Msg::default().str(2, "replicas"));
    let version =
        Msg::default().str(1, "v1").varint(2, 1).varint(3, 1).msg(4, Msg::default().msg(1, schema));
    let crd = Msg::default().msg(1, Msg::default().str(1, "widgets.example.com")).msg(
        2,
        Msg::default()
            .str(1, "example.com")
            .msg(3, Msg::default().str(1, "widgets").str(4, "Widget"))
            .str(4, "Namespaced")
            .msg(7, version),
    );
    let decoded = decode(&envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd))
        .expect("decodes");
    assert_eq!(
        decoded["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        json!({
            "type": "object",
            "properties": {
                "mode": {"type": "string", "enum": ["a", "b"]},
                "port": {"x-kubernetes-int-or-string": true},
                "replicas": {"type": "integer", "default": 1, "maximum": 10, "minimum": 0.5},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "additionalProperties": false,
            "dependencies": {"tags": ["replicas"]}
        })
    );
    // CRD status is a non-pointer struct: written even when absent
    assert_eq!(
        decoded["status"],
        json!({"conditions": null, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": null})
    );
}

#[test]
fn bad_bodies_get_clear_errors() {
    let ns = || Msg::default().msg(1, Msg::default().str(1, "demo"));
    assert!(matches!(decode(b"{\"kind\":\"Namespace\"}"), Err(ProtobufError::MissingMagic)));
    assert!(matches!(
        decode(&envelope("example.com/v1", "Widget", ns())),
        Err(ProtobufError::UnknownKind { api_version, kind })
            if api_version == "example.com/v1" && kind == "Widget"
    ));
    assert!(matches!(decode(&envelope("", "", ns())), Err(ProtobufError::MissingTypeMeta)));

    let gzip = Msg::default()
        .msg(1, Msg::default().str(1, "v1").str(2, "Namespace"))
        .msg(2, ns())
        .str(3, "gzip");
    assert!(matches!(
        decode(&[MAGIC.as_slice(), &gzip.0].concat()),
        Err(ProtobufError::UnsupportedEncoding(e)) if e == "gzip"
    ));

    let mut truncated = envelope("v1", "Namespace", ns());
    truncated.truncate(truncated.len() - 30);
    assert!(matches!(decode(&truncated), Err(ProtobufError::Malformed { .. })));

    // metadata.name sent as a varint
    let wrong = Msg::default().msg(1, Msg::default().varint(1, 7));
    match decode(&envelope("v1", "Namespace", wrong)) {
        Err(ProtobufError::Malformed { path, .. }) => assert_eq!(path, "metadata.name"),
        other => panic!("expected a malformed error, got {other:?}"),
    }

    let raw = Msg::default().msg(2, Msg::default().bytes(1, b"{not json"));
    match decode(&envelope("apps/v1", "ControllerRevision", raw)) {
        Err(ProtobufError::InvalidJson { path, .. }) => assert_eq!(path, "data"),
        other => panic!("expected invalid JSON, got {other:?}"),
    }
}

#[test]
fn unknown_fields_are_skipped_as_upstream_does() {
    let ns = Msg::default()
        .msg(1, Msg::default().str(1, "demo").str(99, "from a newer client"))
        .int(42, 1);
    let decoded = decode(&envelope("v1", "Namespace", ns)).expect("decodes");
    assert_eq!(
        decoded,
        json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": "demo", "creationTimestamp": null},
            "spec": {},
            "status": {}
        })
    );
}

#[test]
fn hostile_nesting_is_refused_without_overflowing_the_stack() {
    // JSONSchemaProps.not nests a schema in a schema without end
    let mut schema = Msg::default().str(5, "object");
    for _ in 0..200 {
        schema = Msg::default().msg(28, schema);
    }
    let version = Msg::default().str(1, "v1").msg(4, Msg::default().msg(1, schema));
    let crd = Msg::default().msg(2, Msg::default().msg(7, version));
    let result = decode(&envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd));
    assert!(matches!(result, Err(ProtobufError::Malformed { .. })), "{result:?}");
}

#[test]
fn every_served_kind_decodes_an_empty_object() {
    for r in crate::resources::RESOURCES {
        let decoded = decode(&envelope(&r.api_version(), r.kind, Msg::default()))
            .unwrap_or_else(|e| panic!("{} {}: {e}", r.api_version(), r.kind));
        assert_eq!(decoded["kind"], json!(r.kind));
        assert_eq!(decoded["metadata"]["creationTimestamp"], Value::Null, "{}", r.kind);
    }
    let kinds = known_kinds();
    assert!(kinds.len() > RESOURCES_LEN_FLOOR);
    for (api_version, kind) in kinds {
        decode(&envelope(&api_version, &kind, Msg::default()))
            .unwrap_or_else(|e| panic!("{api_version} {kind}: {e}"));
    }
}

/// Lists and options of every group come on top of the served kinds.
const RESOURCES_LEN_FLOOR: usize = 100;

#[test]
fn kubectl_auth_can_i_sends_a_self_subject_access_review() {
    let decoded = decode(&fixture("can-i.pb")).expect("decodes");
    assert_eq!(
        serde_json::to_string(&decoded).expect("serializes"),
        serde_json::to_string(&json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {
                "namespace": "default",
                "verb": "list",
                "group": "apps",
                "resource": "deployments",
                "subresource": "scale"
            }},
            // `allowed` has no omitempty
            "status": {"allowed": false}
        }))
        .expect("serializes")
    );
}

#[test]
fn kubectl_auth_whoami_alpha_body_is_an_unknown_kind() {
    // kubectl tries v1, v1beta1 then v1alpha1; the last body it sent names a version we
    // have no table for, which the API server must refuse rather than misread
    match decode(&fixture("whoami-v1alpha1.pb")) {
        Err(ProtobufError::UnknownKind { api_version, kind }) => {
            assert_eq!(api_version, "authentication.k8s.io/v1alpha1");
            assert_eq!(kind, "SelfSubjectReview");
        }
        other => panic!("expected an unknown kind, got {other:?}"),
    }
    assert!(supports("authentication.k8s.io/v1", "SelfSubjectReview"));
}
