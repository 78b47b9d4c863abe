//! The kubelet server against a real containerd: pods made through CRI ([`crate::testpod`]),
//! requests made with curl and a client certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::testpod::TestRuntime;

/// A CA and a client certificate it signed, as files for curl.
struct Credentials {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

fn credentials() -> Credentials {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test-ca");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "kube-apiserver-kubelet-client");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.path().join("client.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("client.key"), key.serialize_pem()).unwrap();
    Credentials { ca_pem: ca_cert.pem(), cert: dir.path().join("client.crt"), key: dir.path().join("client.key"), _dir: dir }
}

fn curl_command(creds: Option<&Credentials>, url: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "-k", "-N", "-w", "\n%{http_code}"]);
    if let Some(c) = creds {
        cmd.arg("--cert").arg(&c.cert).arg("--key").arg(&c.key);
    }
    cmd.arg(url).kill_on_drop(true);
    cmd
}

/// (status code, body)
async fn curl(creds: Option<&Credentials>, url: &str) -> (u16, String) {
    let out = curl_command(creds, url).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

async fn exec_sync(rt: &TestRuntime, id: &str, cmd: &[&str]) {
    let mut runtime = rt.cri.runtime.clone();
    let request = api::ExecSyncRequest { container_id: id.into(), cmd: cmd.iter().map(|s| (*s).to_owned()).collect(), timeout: 10 };
    let r = runtime.exec_sync(request).await.unwrap().into_inner();
    assert_eq!(r.exit_code, 0, "{cmd:?}: {}", String::from_utf8_lossy(&r.stderr));
}

async fn start_server(rt: &TestRuntime, creds: &Credentials, shutdown: &CancellationToken) -> String {
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        client_ca_pem: creds.ca_pem.clone(),
        serving_cert_pem: None,
        serving_key_pem: None,
    };
    let addr = serve(config, rt.cri.clone(), shutdown.clone()).await.unwrap();
    format!("https://{addr}")
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_serve_current_previous_tail_timestamps_and_follow() {
    let rt = TestRuntime::start().await.unwrap();
    let creds = credentials();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let base = start_server(&rt, &creds, &shutdown).await;
    let pod = rt.pod("default", "bb").await.unwrap();

    let first = rt.container(&pod, "c", 0, &["sh", "-c", "echo one; echo two >&2; exit 1"], false).await.unwrap();
    rt.wait_exited(&first, Duration::from_secs(10)).await.unwrap();
    let script = "echo hello; echo world; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo late";
    let second = rt.container(&pod, "c", 1, &["sh", "-c", script], false).await.unwrap();
    let logs = format!("{base}/containerLogs/default/bb/c");
    // wait for both lines to be written
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while curl(Some(&creds), &logs).await.1 != "hello\nworld\n" {
        assert!(tokio::time::Instant::now() < deadline, "logs never showed both lines");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exists(&pod.log_directory.join("c/1.log")));
    assert_eq!(curl(Some(&creds), &format!("{logs}?tailLines=1")).await, (200, "world\n".into()));
    assert_eq!(curl(Some(&creds), &format!("{logs}?limitBytes=3")).await, (200, "hel".into()));
    let (code, stamped) = curl(Some(&creds), &format!("{logs}?timestamps=true")).await;
    assert_eq!(code, 200);
    for (line, text) in stamped.lines().zip(["hello", "world"]) {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{line}");
        assert_eq!(rest, text);
    }
    let (code, previous) = curl(Some(&creds), &format!("{logs}?previous=true")).await;
    // stdout and stderr are separate pipes: their relative order in the log is the runtime's.
    let mut lines: Vec<&str> = previous.lines().collect();
    lines.sort_unstable();
    assert_eq!((code, lines), (200, vec!["one", "two"]));
    assert_eq!(curl(Some(&creds), &format!("{base}/containerLogs/default/bb/nope")).await.0, 404);
    let (code, body) = curl(Some(&creds), &format!("{base}/containerLogs/default/other/c?previous=true")).await;
    assert_eq!(code, 404, "{body}");

    // follow: the stream stays open, delivers what comes later and ends when the container exits
    let mut follower = curl_command(Some(&creds), &format!("{logs}?follow=true")).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut out = follower.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("world\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), out.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "follow ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    exec_sync(&rt, &second, &["touch", "/tmp/go"]).await;
    tokio::time::timeout(Duration::from_secs(20), out.read_to_end(&mut seen)).await.unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&seen), "hello\nworld\nlate\n\n200");
    // the previous container keeps being the exited attempt 0
    let (_, previous) = curl(Some(&creds), &format!("{logs}?previous=1")).await;
    assert!(previous.lines().any(|l| l == "one") && !previous.contains("late"), "{previous}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_client_certificate_are_unauthorized() {
    let rt = TestRuntime::start().await.unwrap();
    let creds = credentials();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let base = start_server(&rt, &creds, &shutdown).await;
    assert_eq!(curl(None, &format!("{base}/healthz")).await.0, 401);
    assert_eq!(curl(Some(&creds), &format!("{base}/healthz")).await, (200, "ok".into()));
    // a certificate from another CA fails the handshake
    let stranger = credentials();
    assert_eq!(curl(Some(&stranger), &format!("{base}/healthz")).await.0, 0);
    let pod = rt.pod("ns1", "web").await.unwrap();
    rt.container(&pod, "app", 0, &["sleep", "600"], false).await.unwrap();
    let (code, body) = curl(Some(&creds), &format!("{base}/pods")).await;
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let web = list["items"].as_array().unwrap().iter().find(|p| p["metadata"]["name"] == "web").expect("pod listed");
    assert_eq!(web["metadata"]["uid"], pod.uid.as_str());
    assert_eq!(web["spec"]["containers"][0]["name"], "app");
    // exec without an upgrade: the runtime's answer (an error) is passed on, nothing hangs
    let (code, _) = curl(Some(&creds), &format!("{base}/exec/ns1/web/app?command=true&stdout=1")).await;
    assert!(code >= 400, "{code}");
    assert_eq!(curl(Some(&creds), &format!("{base}/exec/ns1/web/app?stdout=1")).await.0, 400);
}
