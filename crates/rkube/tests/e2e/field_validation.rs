//! `fieldValidation`: kubectl's `--validate=strict|warn|ignore` on create, apply, replace and
//! patch, and the raw query parameter, as a user sees them.

use crate::harness::{json, Cluster};

const MISSPELT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: dev}
spec:
  replicass: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, imagee: typo}]
"#;

#[test]
fn kubectl_strict_rejects_misspelt_fields_and_warn_creates_with_warnings() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "dev"]);

    // kubectl's default is --validate=strict, which it sends as fieldValidation=Strict
    for args in [&["apply", "-f", "-"][..], &["apply", "--validate=strict", "-f", "-"], &["create", "-f", "-"]] {
        let r = c.kubectl_with(args, Some(MISSPELT), &[]);
        assert!(!r.ok, "{args:?} must fail: {}", r.stdout);
        assert!(r.stderr.contains(r#"unknown field "spec.replicass""#), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(r#"unknown field "spec.template.spec.containers[0].imagee""#), "{args:?}: {}", r.stderr);
    }
    assert!(!c.kubectl(&["get", "deploy", "web", "-n", "dev"]).ok, "nothing was created");

    let r = c.kubectl_with(&["apply", "--validate=warn", "-f", "-"], Some(MISSPELT), &[]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("deployment.apps/web created"), "{}", r.stdout);
    assert!(r.stderr.contains(r#"Warning: unknown field "spec.replicass""#), "{}", r.stderr);
    // the unknown fields were dropped: replicas is the default, the image is kept
    let d = json(&c.k(&["get", "deploy", "web", "-n", "dev", "-o", "json"]));
    assert_eq!(d["spec"]["replicas"], 1);
    assert!(d["spec"].get("replicass").is_none());
    assert!(d["spec"]["template"]["spec"]["containers"][0].get("imagee").is_none());

    // ignore: no warning at all
    let r = c.kubectl_with(&["apply", "--validate=false", "-f", "-"], Some(&MISSPELT.replace("nginx", "nginx:2")), &[]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("unknown field"), "{}", r.stderr);

    // patch: kubectl patch has no --validate and sends no fieldValidation, so the server's
    // default (Warn) applies: patched, with a warning for the misspelt field
    let r = c.kubectl(&["patch", "deploy", "web", "-n", "dev", "--type=strategic", "-p", r#"{"spec":{"replicas":4,"replicaz":4}}"#]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains(r#"Warning: unknown field "spec.replicaz""#), "{}", r.stderr);
    // Strict through the API: 422 Invalid on `patch`, nothing changed
    let (code, body) = c.curl("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web?fieldValidation=Strict", Some(r#"{"spec":{"replicas":5,"replicaz":5}}"#), "application/merge-patch+json", true);
    assert_eq!(code, 422, "{body}");
    let s = json(&body);
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["causes"][0]["field"], "patch");
    assert!(s["message"].as_str().unwrap().ends_with(r#"strict decoding error: unknown field "spec.replicaz""#), "{body}");
    assert_eq!(c.k(&["get", "deploy", "web", "-n", "dev", "-o", "jsonpath={.spec.replicas}"]), "4");
}

#[test]
fn raw_requests_get_upstreams_status_and_warning_headers() {
    let c = Cluster::start();
    let dup = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dupfield"},"data":{"k":"v"},"data":{"k":"w"}}"#;
    let (code, body) = c.curl("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", Some(dup), "application/json", true);
    assert_eq!(code, 400, "{body}");
    let s = json(&body);
    assert_eq!(s["reason"], "BadRequest");
    assert_eq!(s["message"], r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data""#);

    // no parameter means Warn, as upstream: created, with the last value, and a warning
    let out = std::process::Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", dup])
        .arg("--cacert").arg(c.data_dir().join("tls/ca.crt"))
        .arg("--cert").arg(c.data_dir().join("tls/admin.crt"))
        .arg("--key").arg(c.data_dir().join("tls/admin.key"))
        .arg(format!("https://127.0.0.1:{}/api/v1/namespaces/default/configmaps", c.port))
        .output()
        .expect("curl");
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(headers.contains("201"), "{headers}");
    assert!(headers.contains(r#"warning: 299 - "duplicate field \"data\"""#), "{headers}");
    assert_eq!(c.k(&["get", "cm", "dupfield", "-o", "jsonpath={.data.k}"]), "w");

    let (code, body) = c.curl("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Bogus", Some("{}"), "application/json", true);
    assert_eq!(code, 400, "{body}");

    // YAML bodies are checked as well
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  nam: typo\n";
    let (code, body) = c.curl("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", Some(yaml), "application/yaml", true);
    assert_eq!(code, 400, "{body}");
    assert!(json(&body)["message"].as_str().unwrap().ends_with(r#"unknown field "metadata.nam""#), "{body}");

    // PUT with Strict
    let mut cm = json(&c.k(&["get", "cm", "dupfield", "-o", "json"]));
    cm["bogus"] = 1.into();
    let (code, body) = c.curl("PUT", "/api/v1/namespaces/default/configmaps/dupfield?fieldValidation=Strict", Some(&cm.to_string()), "application/json", true);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains(r#"unknown field \"bogus\""#), "{body}");
}
