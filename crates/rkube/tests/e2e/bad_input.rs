//! Bad input gets a clear Status with the right code and reason, and changes nothing.

use crate::harness::{json, Cluster};

fn status(body: &str) -> serde_json::Value {
    let v = json(body);
    assert_eq!(v["kind"], "Status", "not a Status: {body}");
    v
}

#[test]
fn malformed_and_invalid_requests_get_statuses_and_change_nothing() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "dev"]);
    let before = c.k(&["get", "cm", "-n", "dev", "-o", "name"]);

    let (code, body) = c.curl("POST", "/api/v1/namespaces/dev/configmaps", Some("{\"apiVersion\":\"v1\",\"kind\":"), "application/json", true);
    assert_eq!(code, 400);
    assert_eq!(status(&body)["reason"], "BadRequest");

    let (code, body) = c.curl("POST", "/api/v1/namespaces/dev/configmaps", Some("a: [b\n"), "application/yaml", true);
    assert_eq!(code, 400, "{body}");

    let (code, body) = c.curl("POST", "/api/v1/namespaces/dev/configmaps", Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#), "application/json", true);
    assert_eq!(code, 422);
    let s = status(&body);
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");

    let (code, body) = c.curl("POST", "/api/v1/namespaces/nope/configmaps", Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#), "application/json", true);
    assert_eq!(code, 404);
    assert_eq!(status(&body)["message"], "namespaces \"nope\" not found");

    let (code, body) = c.curl("GET", "/api/v1/namespaces/dev/frobnicators", None, "application/json", true);
    assert_eq!(code, 404);
    assert_eq!(status(&body)["reason"], "NotFound");
    let (code, _) = c.curl("GET", "/apis/nope.example.com/v1/things", None, "application/json", true);
    assert_eq!(code, 404);

    let big = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#, "x".repeat(3 * 1024 * 1024 + 10));
    let (code, body) = c.curl("POST", "/api/v1/namespaces/dev/configmaps", Some(&big), "application/json", true);
    assert_eq!(code, 413, "{}", &body[..body.len().min(200)]);

    let (code, body) = c.curl("GET", "/api/v1/namespaces", None, "application/json", false);
    assert_eq!(code, 401);
    assert_eq!(status(&body)["reason"], "Unauthorized");
    for open in ["/healthz", "/livez", "/readyz", "/version"] {
        let (code, _) = c.curl("GET", open, None, "application/json", false);
        assert_eq!(code, 200, "{open} must answer without credentials");
    }

    // stale resourceVersion
    c.k(&["create", "configmap", "cm1", "-n", "dev", "--from-literal=a=b"]);
    let mut cm = json(&c.k(&["get", "cm", "cm1", "-n", "dev", "-o", "json"]));
    c.k(&["label", "cm", "cm1", "-n", "dev", "x=y"]);
    cm["data"]["a"] = "c".into();
    let (code, body) = c.curl("PUT", "/api/v1/namespaces/dev/configmaps/cm1", Some(&cm.to_string()), "application/json", true);
    assert_eq!(code, 409);
    assert_eq!(status(&body)["reason"], "Conflict");
    assert_eq!(c.k(&["get", "cm", "cm1", "-n", "dev", "-o", "jsonpath={.data.a}"]), "b");

    // already exists
    let (code, body) = c.curl("POST", "/api/v1/namespaces/dev/configmaps", Some(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1"}}"#), "application/json", true);
    assert_eq!(code, 409);
    assert_eq!(status(&body)["reason"], "AlreadyExists");

    // unsupported patch type, wrong method
    let (code, _) = c.curl("PATCH", "/api/v1/namespaces/dev/configmaps/cm1", Some("{}"), "text/plain", true);
    assert_eq!(code, 415);
    let (code, _) = c.curl("PUT", "/api/v1/namespaces/dev/configmaps", Some("{}"), "application/json", true);
    assert_eq!(code, 405);

    // garbage of every kind never crashes the server
    for body in ["", "null", "[]", "42", "\"s\"", "{\"metadata\": 5}", "{\"metadata\":{\"name\":7}}", "{\"kind\":\"Secret\"}", "\u{0}\u{1}"] {
        let (code, _) = c.curl("POST", "/api/v1/namespaces/dev/configmaps", Some(body), "application/json", true);
        assert!((400..500).contains(&code), "body {body:?} gave {code}");
    }
    for path in ["/api/v1/namespaces/dev/pods?limit=abc", "/api/v1/pods?labelSelector=a%20in%20(", "/api/v1/pods?resourceVersion=x&resourceVersionMatch=Exact", "/api/v1/pods?continue=garbage"] {
        let (code, body) = c.curl("GET", path, None, "application/json", true);
        assert_eq!(code, 400, "{path}: {body}");
    }
    assert!(c.kubectl(&["get", "--raw", "/readyz"]).ok, "server died");
    let after = c.k(&["get", "cm", "-n", "dev", "-o", "name"]);
    assert_eq!(after.lines().count(), before.lines().count() + 1, "only cm1 was created:\n{after}");
}

#[test]
fn a_watch_from_a_revision_the_server_no_longer_has_gets_410_expired() {
    let c = Cluster::start();
    for i in 0..3 {
        c.k(&["create", "configmap", &format!("w{i}"), "--from-literal=a=b"]);
    }
    // the watch cache starts at the current revision: revision 1 is gone for watchers
    let (code, body) = c.curl("GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1&timeoutSeconds=2", None, "application/json", true);
    assert_eq!(code, 200, "{body}");
    let first = json(body.lines().next().unwrap_or_default());
    assert_eq!(first["type"], "ERROR", "{body}");
    assert_eq!(first["object"]["code"], 410);
    assert_eq!(first["object"]["reason"], "Expired");
    // a list at an exact revision that is still kept works; a watch from now works
    let rv = json(&c.k(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]))["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_owned();
    let (code, body) = c.curl("GET", &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=1"), None, "application/json", true);
    assert_eq!(code, 200);
    assert!(!body.contains("ERROR"), "{body}");
}
