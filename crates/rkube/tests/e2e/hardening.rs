//! Overload and hostile input: in-flight limits (429 with Retry-After), request and watch
//! timeouts, deeply nested bodies, huge selectors, impossible patches. The server answers
//! each with a 4xx/5xx Status and keeps serving.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{json, Cluster};

/// curl returning (status, headers + body) for raw header checks.
fn curl_headers(c: &Cluster, path: &str) -> (u16, String) {
    let tls = c.data_dir().join("tls");
    let out = Command::new("curl")
        .args(["-sS", "-i", "-w", "\n%{http_code}"])
        .arg("--cacert").arg(tls.join("ca.crt"))
        .arg("--cert").arg(tls.join("admin.crt"))
        .arg("--key").arg(tls.join("admin.key"))
        .arg(format!("https://127.0.0.1:{}{path}", c.port))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), rest.to_owned())
}

/// A read that holds its in-flight slot for about 3 s: a list at a resourceVersion the
/// server has not reached waits for its cache before answering 504.
const SLOW_READ: &str = "/api/v1/namespaces/default/configmaps?resourceVersion=999999999";

#[test]
fn over_the_in_flight_limit_requests_get_429_and_accepted_ones_complete() {
    let c = Cluster::start_with(&["--max-requests-inflight", "1"]);
    // a watch is long-running: it does not take the only read slot
    let mut watch = Command::new("kubectl")
        .args(["get", "configmaps", "-w"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl watch");
    std::thread::sleep(Duration::from_millis(500)); // let the watch connect; not asserted on
    let (code, _) = c.curl("GET", "/api/v1/namespaces", None, "application/json", true);
    assert_eq!(code, 200, "a read next to a watch is served");

    let slow = {
        let tls = c.data_dir().join("tls");
        let url = format!("https://127.0.0.1:{}{SLOW_READ}", c.port);
        std::thread::spawn(move || {
            let out = Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg("--cacert").arg(tls.join("ca.crt"))
                .arg("--cert").arg(tls.join("admin.crt"))
                .arg("--key").arg(tls.join("admin.key"))
                .arg(url)
                .output()
                .expect("curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    // while the slow read holds the slot, others are turned away with 429 and Retry-After
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut refused = None;
    while Instant::now() < deadline && refused.is_none() {
        let (code, text) = curl_headers(&c, "/api/v1/namespaces/default/configmaps");
        if code == 429 {
            refused = Some(text);
        }
    }
    let refused = refused.expect("a request over the limit must get 429");
    assert!(refused.to_lowercase().contains("retry-after: 1"), "{refused}");
    let body = refused.split("\r\n\r\n").last().unwrap();
    let s = json(body);
    assert_eq!(s["reason"], "TooManyRequests");
    assert_eq!(s["code"], 429);
    // the accepted request completes with its own answer
    assert_eq!(slow.join().unwrap(), "504");
    // and the server serves again; kubectl (which retries 429s) works throughout
    assert!(c.k(&["get", "namespaces"]).contains("default"));
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn timeouts_and_hostile_input_get_statuses() {
    let c = Cluster::start();
    // ?timeout= shortens the request's deadline: 504 Timeout before the 3 s cache wait
    let started = Instant::now();
    let (code, body) = c.curl("GET", &format!("{SLOW_READ}&timeout=1s"), None, "application/json", true);
    assert_eq!(code, 504, "{body}");
    assert_eq!(json(&body)["reason"], "Timeout");
    assert!(json(&body)["message"].as_str().unwrap().contains("did not complete within the allotted timeout"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let (code, _) = c.curl("GET", "/api/v1/namespaces?timeout=soon", None, "application/json", true);
    assert_eq!(code, 400);
    // a negative watch timeout
    let (code, body) = c.curl("GET", "/api/v1/configmaps?watch=true&timeoutSeconds=-1", None, "application/json", true);
    assert_eq!(code, 400, "{body}");
    // a watch with timeoutSeconds ends by itself
    let (code, _) = c.curl("GET", "/api/v1/configmaps?watch=true&timeoutSeconds=1", None, "application/json", true);
    assert_eq!(code, 200);

    // 10,000 nested arrays / objects in every body decoder
    let arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    c.k(&["create", "configmap", "cm"]);
    for body in [&arrays, &objects] {
        for ct in ["application/json", "application/yaml"] {
            let (code, resp) = c.curl("POST", "/api/v1/namespaces/default/configmaps", Some(body), ct, true);
            assert!((400..500).contains(&code), "{ct}: {code} {resp}");
        }
        let wrapped = format!(r#"{{"data": {body}}}"#);
        for ct in ["application/merge-patch+json", "application/strategic-merge-patch+json", "application/json-patch+json"] {
            let (code, resp) = c.curl("PATCH", "/api/v1/namespaces/default/configmaps/cm", Some(&wrapped), ct, true);
            assert!((400..500).contains(&code), "{ct}: {code} {resp}");
        }
    }
    // a 60 KB label selector reaches the parser (a value over 63 characters: 400); a 100 KB
    // one is over the HTTP layer's 64 KiB URI limit: 414 over HTTP/1.1
    let selector = format!("a={}", "x".repeat(60 * 1024));
    let (code, body) = c.curl("GET", &format!("/api/v1/configmaps?labelSelector={selector}"), None, "application/json", true);
    assert_eq!(code, 400, "{}", &body[..body.len().min(300)]);
    let tls = c.data_dir().join("tls");
    let out = Command::new("curl")
        .args(["-sS", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg("--cacert").arg(tls.join("ca.crt"))
        .arg("--cert").arg(tls.join("admin.crt"))
        .arg("--key").arg(tls.join("admin.key"))
        .arg(format!("https://127.0.0.1:{}/api/v1/configmaps?labelSelector=a={}", c.port, "x".repeat(100 * 1024)))
        .output()
        .expect("curl");
    let code: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    assert!((400..500).contains(&code), "100 KB selector over HTTP/1.1 gave {code}");
    let many = vec!["a=b"; 15_000].join(",");
    let (code, _) = c.curl("GET", &format!("/api/v1/configmaps?labelSelector={many}"), None, "application/json", true);
    assert!(code == 200 || (400..500).contains(&code), "{code}");
    // a JSON patch that moves a path into itself
    let (code, body) = c.curl(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/cm",
        Some(r#"[{"op":"add","path":"/data","value":{"k":"v"}},{"op":"move","from":"/data","path":"/data/k2"}]"#),
        "application/json-patch+json",
        true,
    );
    assert!((400..500).contains(&code), "{code} {body}");
    // still serving, nothing changed
    assert!(c.k(&["get", "cm", "cm", "-o", "json"]).contains("\"name\": \"cm\""));
    let cm = json(&c.k(&["get", "cm", "cm", "-o", "json"]));
    assert!(cm.get("data").is_none(), "{cm}");
}
