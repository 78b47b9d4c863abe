//! Container probes (pkg/kubelet/prober): liveness, readiness and startup, each run by its own
//! task per container on its period, with upstream's rules (worker.go doProbe):
//! initialDelaySeconds from the container's start, startup gating the other two, results
//! changing only after successThreshold/failureThreshold equal results in a row, a failed
//! liveness/startup probe putting the probe on hold until a new container appears, and an
//! `Unhealthy` event for every failed probe ("Liveness probe failed: ...").
//!
//! The pod worker publishes what it sees of its containers ([`Prober::observe`]), reads
//! readiness/started for the status ([`Prober::readiness`], [`Prober::started`]) and kills
//! containers whose liveness or startup probe failed ([`Prober::must_kill`]).
//!
//! Handlers: exec (CRI ExecSync with the probe's timeout; DEADLINE_EXCEEDED is a failure),
//! httpGet (HTTP/1.1, or HTTPS without certificate verification as upstream, to the pod's own
//! IP — never another host, DESIGN.md network safety; 2xx and 3xx succeed) and tcpSocket.
//! Redirects are not followed (a 3xx is a success).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::events::Recorder;
use super::runtime::{PodRuntime, State};
use crate::cri::{api, Cri};

/// Upstream caps probe output kept for events at 10 KiB.
const MAX_OUTPUT: usize = 10 * 1024;
/// The User-Agent upstream's HTTP prober sends (`kube-probe/<major>.<minor>`).
const USER_AGENT: &str = "kube-probe/1.33";

/// The three probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }

    fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
            Kind::Startup => c.startup_probe.as_ref(),
        }
    }

    /// Upstream's initial result for a new container: readiness fails until proven,
    /// liveness succeeds until disproven, startup is unknown.
    fn initial(self) -> Option<bool> {
        match self {
            Kind::Liveness => Some(true),
            Kind::Readiness => Some(false),
            Kind::Startup => None,
        }
    }
}

/// The outcome of running a probe once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Failed, with the output upstream puts in the event.
    Failure(String),
    /// The prober itself failed (upstream: "probe errored"); the result is thrown away.
    Error(String),
}

/// The threshold logic of one probe on one container (worker.go: lastResult/resultRun).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    /// The published result (None = unknown).
    pub result: Option<bool>,
    last: Option<bool>,
    run: i32,
    /// A failed liveness/startup probe stops probing until a new container appears.
    pub on_hold: bool,
}

impl Tracker {
    pub fn new(kind: Kind) -> Tracker {
        Tracker { result: kind.initial(), last: None, run: 0, on_hold: false }
    }

    /// Records one probe result; the published result changes once the threshold is met.
    pub fn record(&mut self, kind: Kind, ok: bool, success_threshold: i32, failure_threshold: i32) {
        if self.last == Some(ok) {
            self.run += 1;
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        if (!ok && self.run < failure_threshold.max(1)) || (ok && self.run < success_threshold.max(1)) {
            return;
        }
        self.result = Some(ok);
        if !ok && kind != Kind::Readiness {
            self.on_hold = true;
            self.run = 0;
        }
    }
}

/// What the pod worker last saw of one container.
#[derive(Debug, Clone, Default)]
struct Observed {
    id: String,
    running: bool,
    /// Start time (CRI nanoseconds).
    started_at: i64,
}

#[derive(Default)]
struct Shared {
    containers: HashMap<String, Observed>,
    pod_ip: String,
    deleting: bool,
    /// (container, kind) → (container id the tracker belongs to, tracker).
    trackers: HashMap<(String, Kind), (String, Tracker)>,
}

impl Shared {
    fn result(&self, name: &str, kind: Kind, id: &str) -> Option<Option<bool>> {
        self.trackers.get(&(name.to_owned(), kind)).filter(|(cid, _)| cid == id).map(|(_, t)| t.result)
    }

    fn started(&self, name: &str, has_startup: bool) -> bool {
        let Some(c) = self.containers.get(name).filter(|c| c.running) else { return false };
        if !has_startup {
            return true;
        }
        self.result(name, Kind::Startup, &c.id) == Some(Some(true))
    }
}

/// The probes of one pod; dropping it stops every probe task.
pub struct Prober {
    shared: Arc<Mutex<Shared>>,
    /// Container name → (has readiness probe, has startup probe).
    probed: HashMap<String, (bool, bool)>,
    _stop: DropGuard,
}

/// What a probe task needs besides its own probe.
struct TaskCtx {
    cri: Cri,
    recorder: Recorder,
    pod: Arc<Pod>,
    container: Container,
    kind: Kind,
    shared: Arc<Mutex<Shared>>,
}

impl Prober {
    /// Starts a probe task for every probe of the pod's (regular) containers.
    pub fn start(cri: &Cri, recorder: &Recorder, pod: &Arc<Pod>) -> Prober {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = CancellationToken::new();
        let mut probed = HashMap::new();
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            probed.insert(c.name.clone(), (c.readiness_probe.is_some(), c.startup_probe.is_some()));
            for kind in [Kind::Liveness, Kind::Readiness, Kind::Startup] {
                if kind.of(c).is_none() {
                    continue;
                }
                let task = TaskCtx {
                    cri: cri.clone(),
                    recorder: recorder.clone(),
                    pod: pod.clone(),
                    container: c.clone(),
                    kind,
                    shared: shared.clone(),
                };
                let token = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = run(task) => {}
                    }
                });
            }
        }
        Prober { shared, probed, _stop: stop.drop_guard() }
    }

    /// Publishes the pod's current runtime state to the probe tasks.
    pub fn observe(&self, pod: &Pod, rt: &PodRuntime, pod_ip: &str) {
        let mut shared = self.shared.lock().expect("prober lock poisoned");
        shared.pod_ip = pod_ip.to_owned();
        shared.deleting = pod.metadata.deletion_timestamp.is_some();
        for name in self.probed.keys() {
            let observed = match rt.latest(name) {
                Some(c) => Observed { id: c.id.clone(), running: c.state == State::Running, started_at: c.started_at },
                None => Observed::default(),
            };
            shared.containers.insert(name.clone(), observed);
        }
    }

    /// Container name → ready, for the containers that have probes: started, and (with a
    /// readiness probe) its last result a success. Others are ready when running.
    pub fn readiness(&self) -> HashMap<String, bool> {
        let shared = self.shared.lock().expect("prober lock poisoned");
        let mut out = HashMap::new();
        for (name, (has_readiness, has_startup)) in &self.probed {
            let started = shared.started(name, *has_startup);
            let id = shared.containers.get(name).map(|c| c.id.clone()).unwrap_or_default();
            let ready = started && (!has_readiness || shared.result(name, Kind::Readiness, &id) == Some(Some(true)));
            out.insert(name.clone(), ready);
        }
        out
    }

    /// Whether a running container counts as started (its startup probe, if any, succeeded).
    pub fn started(&self, name: &str) -> Option<bool> {
        let (_, has_startup) = self.probed.get(name)?;
        Some(self.shared.lock().expect("prober lock poisoned").started(name, *has_startup))
    }

    /// If container `id` (named `name`) failed its liveness or startup probe, the reason to
    /// kill it (upstream computePodActions: "Container x failed liveness probe").
    pub fn must_kill(&self, name: &str, id: &str) -> Option<String> {
        let shared = self.shared.lock().expect("prober lock poisoned");
        for (kind, word) in [(Kind::Liveness, "liveness"), (Kind::Startup, "startup")] {
            if shared.result(name, kind, id) == Some(Some(false)) {
                return Some(format!("Container {name} failed {word} probe"));
            }
        }
        None
    }
}

/// What a probe task decides before probing (worker.go doProbe's early returns).
enum Step {
    Skip,
    Probe { id: String, pod_ip: String },
}

fn prepare(task: &TaskCtx, probe: &Probe, now_nanos: i64) -> Step {
    let mut shared = task.shared.lock().expect("prober lock poisoned");
    let name = task.container.name.clone();
    let Some(c) = shared.containers.get(&name).cloned() else { return Step::Skip };
    if c.id.is_empty() {
        return Step::Skip;
    }
    let key = (name.clone(), task.kind);
    let fresh = shared.trackers.get(&key).is_none_or(|(cid, _)| *cid != c.id);
    if fresh {
        shared.trackers.insert(key.clone(), (c.id.clone(), Tracker::new(task.kind)));
    }
    let has_startup = task.container.startup_probe.is_some();
    let started = shared.started(&name, has_startup);
    let deleting = shared.deleting;
    let pod_ip = shared.pod_ip.clone();
    let (_, tracker) = shared.trackers.get_mut(&key).expect("tracker inserted above");
    if tracker.on_hold {
        return Step::Skip;
    }
    if !c.running {
        tracker.result = Some(false);
        return Step::Skip;
    }
    if deleting && task.kind != Kind::Readiness {
        return Step::Skip;
    }
    let since_start = (now_nanos - c.started_at) / 1_000_000_000;
    if since_start < i64::from(probe.initial_delay_seconds.unwrap_or(0)) {
        return Step::Skip;
    }
    // Startup gates the others; once started, the startup probe stops.
    if started == (task.kind == Kind::Startup) {
        return Step::Skip;
    }
    Step::Probe { id: c.id, pod_ip }
}

async fn run(task: TaskCtx) {
    let Some(probe) = task.kind.of(&task.container).cloned() else { return };
    let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Step::Probe { id, pod_ip } = prepare(&task, &probe, crate::clock::now_nanos()) else { continue };
        let outcome = run_probe(&task.cri, &probe, &task.container, &id, &pod_ip).await;
        let target = Some((task.container.name.as_str(), false));
        let ok = match outcome {
            Outcome::Success => true,
            Outcome::Failure(out) => {
                let text = format!("{} probe failed: {}", task.kind.label(), truncate(&out));
                task.recorder.pod_event(&task.pod, target, "Warning", "Unhealthy", &text);
                false
            }
            Outcome::Error(e) => {
                let text = format!("{} probe errored: {}", task.kind.label(), truncate(&e));
                task.recorder.pod_event(&task.pod, target, "Warning", "Unhealthy", &text);
                continue;
            }
        };
        let mut shared = task.shared.lock().expect("prober lock poisoned");
        if let Some((cid, tracker)) = shared.trackers.get_mut(&(task.container.name.clone(), task.kind)) {
            if *cid == id {
                tracker.record(task.kind, ok, probe.success_threshold.unwrap_or(1), probe.failure_threshold.unwrap_or(3));
            }
        }
    }
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_OUTPUT {
        return s;
    }
    let mut end = MAX_OUTPUT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Runs a probe once against container `id` of a pod at `pod_ip`.
pub async fn run_probe(cri: &Cri, probe: &Probe, container: &Container, id: &str, pod_ip: &str) -> Outcome {
    let timeout = probe.timeout_seconds.unwrap_or(1).max(1);
    if let Some(exec) = &probe.exec {
        return exec_probe(cri, id, exec.command.clone().unwrap_or_default(), timeout).await;
    }
    let limit = Duration::from_secs(timeout as u64);
    if let Some(http) = &probe.http_get {
        let port = match resolve_port(&http.port, container) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e),
        };
        let tls = match http.scheme.as_deref().unwrap_or("HTTP") {
            s if s.eq_ignore_ascii_case("HTTP") => false,
            s if s.eq_ignore_ascii_case("HTTPS") => true,
            other => return Outcome::Error(format!("unsupported scheme {other:?}")),
        };
        // Only the pod's own IP (network safety): a `host` elsewhere is refused.
        if let Some(host) = http.host.as_deref().filter(|h| !h.is_empty() && *h != pod_ip) {
            return Outcome::Error(format!("probe host {host} is not the pod's IP; refusing to connect"));
        }
        let headers: Vec<(String, String)> = http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
        let path = http.path.clone().unwrap_or_default();
        return http_probe(&Target { ip: pod_ip, port, tls }, &path, &headers, limit).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = match resolve_port(&tcp.port, container) {
            Ok(p) => p,
            Err(e) => return Outcome::Error(e),
        };
        return tcp_probe(pod_ip, port, limit).await;
    }
    Outcome::Error("no probe handler that rkube supports (exec, httpGet, tcpSocket)".into())
}

/// A port by number, or by the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let n = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => match s.parse::<i32>() {
            Ok(n) => n,
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port: {s} in {}", container.name))?,
        },
    };
    u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(|| format!("invalid port number: {n}"))
}

async fn exec_probe(cri: &Cri, id: &str, cmd: Vec<String>, timeout_secs: i32) -> Outcome {
    let mut rt = cri.runtime.clone();
    let request = api::ExecSyncRequest { container_id: id.into(), cmd: cmd.clone(), timeout: i64::from(timeout_secs) };
    let wait = Duration::from_secs(timeout_secs as u64 + 10);
    match tokio::time::timeout(wait, rt.exec_sync(request)).await {
        Ok(Ok(r)) => {
            let r = r.into_inner();
            let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
            out.push_str(&String::from_utf8_lossy(&r.stderr));
            if r.exit_code == 0 {
                Outcome::Success
            } else {
                Outcome::Failure(out)
            }
        }
        // Upstream (ExecProbeTimeout): a timed-out command is a failed probe.
        Ok(Err(s)) if s.code() == tonic::Code::DeadlineExceeded => Outcome::Failure(format!("command {:?} timed out", cmd.join(" "))),
        Err(_) => Outcome::Failure(format!("command {:?} timed out", cmd.join(" "))),
        Ok(Err(s)) => Outcome::Error(s.message().to_owned()),
    }
}

async fn tcp_probe(ip: &str, port: u16, limit: Duration) -> Outcome {
    let addr = join_host_port(ip, port);
    match tokio::time::timeout(limit, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: connect: {}", io_text(&e))),
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

fn join_host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Go's lower-case errno texts for the errors a probe meets.
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        _ => e.to_string(),
    }
}

/// The HTTP/1.1 request upstream's prober sends (Host, User-Agent, Accept defaults that the
/// probe's headers override).
pub fn http_request(ip: &str, port: u16, path: &str, headers: &[(String, String)]) -> String {
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    let mut all: Vec<(String, String)> = vec![
        ("Host".into(), join_host_port(ip, port)),
        ("User-Agent".into(), USER_AGENT.into()),
        ("Accept".into(), "*/*".into()),
    ];
    for (name, _) in headers {
        all.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
    all.extend(headers.iter().cloned());
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    for (n, v) in all {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    req
}

/// The status code of an HTTP response head, if it has one.
pub fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Where an HTTP probe goes.
struct Target<'a> {
    ip: &'a str,
    port: u16,
    tls: bool,
}

/// Sends the request on `stream` and reads the status code of the answer.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S, request: &str) -> Result<u16, String> {
    stream.write_all(request.as_bytes()).await.map_err(|e| io_text(&e))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < 8192 {
        let n = stream.read(&mut buf).await.map_err(|e| io_text(&e))?;
        if n == 0 {
            return Err("EOF".to_owned());
        }
        head.extend_from_slice(&buf[..n]);
    }
    status_code(&head).ok_or_else(|| "malformed HTTP response".to_owned())
}

async fn http_probe(target: &Target<'_>, path: &str, headers: &[(String, String)], limit: Duration) -> Outcome {
    let addr = join_host_port(target.ip, target.port);
    let scheme = if target.tls { "https" } else { "http" };
    let url = format!("{scheme}://{addr}{}", if path.starts_with('/') { path.to_owned() } else { format!("/{path}") });
    let request = http_request(target.ip, target.port, path, headers);
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("dial tcp {addr}: connect: {}", io_text(&e)))?;
        if !target.tls {
            return exchange(stream, &request).await;
        }
        let ip: std::net::IpAddr = target.ip.parse().map_err(|_| format!("invalid pod IP {:?}", target.ip))?;
        let name = rustls::pki_types::ServerName::IpAddress(ip.into());
        let tls = tokio_rustls::TlsConnector::from(insecure_tls()).connect(name, stream).await.map_err(|e| e.to_string())?;
        exchange(tls, &request).await
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(code)) if (200..400).contains(&code) => Outcome::Success,
        Ok(Ok(code)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        Ok(Err(e)) => Outcome::Failure(format!("Get \"{url}\": {e}")),
        Err(_) => Outcome::Failure(format!("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
    }
}

/// TLS without certificate verification: upstream's HTTPS probes skip it too
/// (InsecureSkipVerify), since pods serve self-signed certificates.
fn insecure_tls() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// Accepts any server certificate, but still checks the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn results_change_only_at_the_thresholds() {
        let mut t = Tracker::new(Kind::Readiness);
        assert_eq!(t.result, Some(false));
        t.record(Kind::Readiness, true, 2, 3);
        assert_eq!(t.result, Some(false), "one success is below successThreshold 2");
        t.record(Kind::Readiness, true, 2, 3);
        assert_eq!(t.result, Some(true));
        t.record(Kind::Readiness, false, 2, 3);
        t.record(Kind::Readiness, false, 2, 3);
        assert_eq!(t.result, Some(true));
        t.record(Kind::Readiness, false, 2, 3);
        assert_eq!(t.result, Some(false));
        assert!(!t.on_hold, "readiness keeps probing after failing");

        let mut l = Tracker::new(Kind::Liveness);
        assert_eq!(l.result, Some(true));
        l.record(Kind::Liveness, false, 1, 2);
        l.record(Kind::Liveness, true, 1, 2);
        l.record(Kind::Liveness, false, 1, 2);
        assert_eq!(l.result, Some(true), "failures must be consecutive");
        l.record(Kind::Liveness, false, 1, 2);
        assert_eq!(l.result, Some(false));
        assert!(l.on_hold, "a failed liveness probe waits for the next container");
        assert_eq!(Tracker::new(Kind::Startup).result, None);
    }

    #[test]
    fn ports_resolve_by_number_or_name() {
        let c = Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
            ..Default::default()
        };
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(resolve_port(&IntOrString::String("http".into()), &c), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert!(resolve_port(&IntOrString::String("metrics".into()), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
    }

    #[test]
    fn http_requests_carry_upstream_defaults_that_headers_override() {
        let req = http_request("10.42.0.5", 8080, "healthz", &[("Host".into(), "example".into()), ("X-A".into(), "b".into())]);
        assert!(req.starts_with("GET /healthz HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("Host: example\r\n") && !req.contains("Host: 10.42.0.5"), "{req}");
        assert!(req.contains("User-Agent: kube-probe/") && req.contains("X-A: b\r\n") && req.ends_with("\r\n\r\n"), "{req}");
        assert_eq!(status_code(b"HTTP/1.1 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status_code(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"garbage\r\n"), None);
    }

    #[tokio::test]
    async fn tcp_and_http_probes_against_a_loopback_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for code in [200, 500, 301] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let limit = Duration::from_secs(5);
        let target = Target { ip: "127.0.0.1", port, tls: false };
        assert_eq!(http_probe(&target, "/", &[], limit).await, Outcome::Success);
        assert_eq!(http_probe(&target, "/", &[], limit).await, Outcome::Failure("HTTP probe failed with statuscode: 500".into()));
        assert_eq!(http_probe(&target, "/", &[], limit).await, Outcome::Success);
        server.await.unwrap();
        // Nothing listens there any more.
        match tcp_probe("127.0.0.1", port, limit).await {
            Outcome::Failure(m) => assert!(m.ends_with("connection refused"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn https_probes_accept_self_signed_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["pod".into()]).unwrap().self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let serve = tokio::spawn(async move {
            for code in [204, 503] {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut s = acceptor.accept(tcp).await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"GET /ready HTTP/1.1"));
                s.write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes()).await.unwrap();
                let _ = s.shutdown().await;
            }
        });
        let target = Target { ip: "127.0.0.1", port, tls: true };
        let limit = Duration::from_secs(5);
        assert_eq!(http_probe(&target, "/ready", &[], limit).await, Outcome::Success);
        assert_eq!(http_probe(&target, "/ready", &[], limit).await, Outcome::Failure("HTTP probe failed with statuscode: 503".into()));
        serve.await.unwrap();
    }
}
