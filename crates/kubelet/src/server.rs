//! The kubelet's HTTPS server (`:10250`): what the API server's `pods/log`, `pods/exec`,
//! `pods/attach`, `pods/portforward` and `nodes/proxy` reach.
//!
//! Every request needs a client certificate signed by [`ServerConfig::client_ca_pem`] (the
//! API server's kubelet client certificate); without one the answer is 401, as upstream's
//! kubelet with anonymous auth off. Authorization is not checked beyond that (upstream asks
//! the API server with a SubjectAccessReview). Containers are found through CRI only, by the
//! `io.kubernetes.*` labels ([`lookup`]):
//!
//! | path | what |
//! |---|---|
//! | `GET /healthz` | `ok` |
//! | `GET /pods` | a `PodList` of what the runtime runs (names, uids, containers; no spec) |
//! | `GET /containerLogs/{ns}/{pod}/{container}` | the log, with `follow`, `previous`, `tailLines`, `limitBytes`, `sinceSeconds`, `sinceTime`, `timestamps` ([`logs`]) |
//! | `GET/POST /exec/{ns}/{pod}[/{uid}]/{container}?command=..` | CRI `Exec`, then the upgraded connection relayed ([`relay`]) |
//! | `GET/POST /attach/{ns}/{pod}[/{uid}]/{container}` | CRI `Attach`, relayed likewise |
//! | `GET/POST /portForward/{ns}/{pod}[/{uid}]` | CRI `PortForward` on the pod's ready sandbox, relayed |
//! | `GET /stats/summary` | the Summary API ([`crate::stats`]), `?only_cpu_and_memory=true` |
//! | `GET /metrics/resource` | resource metrics for metrics-server ([`crate::metrics`]) |
//! | `GET /metrics` | kubelet_* and process_* metrics |

pub mod logs;
pub mod lookup;
pub mod relay;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cri::{api, Cri};
use crate::metrics::{self, Sources};
use crate::stats;

/// What the kubelet server needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// PEM of the CA that signs the API server's kubelet client certificate.
    pub client_ca_pem: String,
    /// Serving certificate chain and key (PEM); `None`: a self-signed certificate is made
    /// at start, as upstream's kubelet does without `--tls-cert-file`.
    pub serving_cert_pem: Option<String>,
    pub serving_key_pem: Option<String>,
}

/// Response bodies of this server.
pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

pub(crate) fn text(code: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(full(message.to_owned()));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn json_response(value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(serde_json::to_vec(value).unwrap_or_default()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Binds `config.listen`, starts serving until `shutdown` fires, and returns the bound address.
/// Without stats sources, `/stats/summary` and the metrics endpoints answer 503.
pub async fn serve(config: ServerConfig, cri: Cri, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    serve_with(config, cri, None, shutdown).await
}

/// [`serve`] with the sampler's stats and the kubelet's metrics behind `/stats/summary`,
/// `/metrics/resource` and `/metrics`.
pub async fn serve_with(config: ServerConfig, cri: Cri, sources: Option<Sources>, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let acceptor = acceptor(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let cri = Arc::new(cri);
    let sources = Arc::new(sources);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "kubelet server accept failed");
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(connection(tcp, acceptor.clone(), cri.clone(), sources.clone(), shutdown.clone()));
        }
    });
    tracing::info!(%addr, "kubelet server listening");
    Ok(addr)
}

async fn connection(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    cri: Arc<Cri>,
    sources: Arc<Option<Sources>>,
    shutdown: CancellationToken,
) {
    let tls = match acceptor.accept(tcp).await {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(error = %e, "kubelet server TLS handshake failed");
            return;
        }
    };
    // The verifier has checked any certificate presented; none at all means anonymous.
    let authenticated = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let cri = cri.clone();
        let sources = sources.clone();
        async move {
            if !authenticated {
                return Ok::<_, Infallible>(text(StatusCode::UNAUTHORIZED, "Unauthorized"));
            }
            Ok(route(&cri, sources.as_ref().as_ref(), req).await)
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        }
    }
}

fn certs(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    Ok(rustls_pemfile::certs(&mut pem.as_bytes()).collect::<Result<Vec<_>, _>>()?)
}

fn acceptor(config: &ServerConfig) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&config.client_ca_pem)? {
        roots.add(c).map_err(|e| anyhow::anyhow!("bad client CA: {e}"))?;
    }
    // Anonymous connections are accepted at the TLS layer so that they get a 401 answer;
    // a certificate that does not chain to the CA fails the handshake.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let (cert_pem, key_pem) = match (&config.serving_cert_pem, &config.serving_key_pem) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => self_signed()?,
    };
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut key_pem.as_bytes())?.ok_or_else(|| anyhow::anyhow!("no private key in the serving key PEM"))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&cert_pem)?, key)?;
    // HTTP/1.1 only: exec, attach and port-forward are HTTP/1.1 upgrades.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// A self-signed serving certificate for this host, as upstream's kubelet makes one.
fn self_signed() -> anyhow::Result<(String, String)> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(host.trim().to_owned());
    }
    let certified = rcgen::generate_simple_self_signed(names)?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

/// Query pairs, decoded as Go's `url.ParseQuery` does (`+` is a space).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

async fn route(cri: &Cri, sources: Option<&Sources>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let read = method == Method::GET || method == Method::HEAD;
    let stream = read || method == Method::POST;
    match seg.as_slice() {
        ["healthz"] if read => text(StatusCode::OK, "ok"),
        ["pods"] if read => pods(cri).await,
        ["containerLogs", ns, pod, container] if read => container_logs(cri, ns, pod, container, req.uri().query()).await,
        ["exec", ns, pod, container] | ["exec", ns, pod, _, container] if stream => {
            exec_or_attach(cri, ns, pod, container, req, true).await
        }
        ["attach", ns, pod, container] | ["attach", ns, pod, _, container] if stream => {
            exec_or_attach(cri, ns, pod, container, req, false).await
        }
        ["portForward", ns, pod] | ["portForward", ns, pod, _] if stream => port_forward(cri, ns, pod, req).await,
        ["stats", "summary"] if read => stats_summary(sources, req.uri().query()),
        ["metrics", "resource"] if read => match sources {
            Some(s) => prometheus(metrics::resource_metrics(s.stats.latest().as_ref().map(|l| &l.1))),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "stats are not collected by this server"),
        },
        ["metrics"] if read => kubelet_metrics(cri, sources).await,
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

fn runtime_error(e: &tonic::Status) -> Response<Body> {
    text(StatusCode::INTERNAL_SERVER_ERROR, &format!("container runtime error: {}", e.message()))
}

/// `container "x" in pod "y" is not found`: the container has no instance in the runtime
/// (yet). The API server turns this 404 into upstream's "waiting to start" message.
fn not_found(pod: &str, container: &str) -> Response<Body> {
    text(StatusCode::NOT_FOUND, &format!("container {container:?} in pod {pod:?} is not found"))
}

async fn container_logs(cri: &Cri, ns: &str, pod: &str, container: &str, query: Option<&str>) -> Response<Body> {
    let options = match logs::LogOptions::from_query(&query_pairs(query), jiff::Timestamp::now()) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let list = match lookup::containers(cri, ns, pod, container).await {
        Ok(l) => l,
        Err(e) => return runtime_error(&e),
    };
    let Some(current) = lookup::current(&list) else {
        return not_found(pod, container);
    };
    let target = if options.previous {
        match lookup::previous(&list, current) {
            Some(p) => p,
            // upstream's kubelet message (validateContainerLogStatus)
            None => return text(StatusCode::BAD_REQUEST, &format!("previous terminated container {container:?} in pod {pod:?} not found")),
        }
    } else {
        current
    };
    let status = match lookup::status(cri, &target.id).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found(pod, container),
        Err(e) => return runtime_error(&e),
    };
    if status.log_path.is_empty() {
        return text(StatusCode::BAD_REQUEST, &format!("container {container:?} in pod {pod:?} has no log file"));
    }
    let state: Option<Box<dyn logs::ContainerState>> =
        (status.state != api::ContainerState::ContainerExited as i32).then(|| Box::new(Watch { cri: cri.clone(), id: target.id.clone() }) as _);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let path = std::path::PathBuf::from(&status.log_path);
    if let Err(e) = tokio::fs::metadata(&path).await {
        return text(StatusCode::INTERNAL_SERVER_ERROR, &format!("failed to open log file {:?}: {e}", status.log_path));
    }
    tokio::spawn(async move {
        if let Err(e) = logs::stream(path, options, state, tx).await {
            tracing::debug!(error = %e, "reading a container log failed");
        }
    });
    let body = futures::StreamExt::map(tokio_stream_of(rx), |b| Ok::<_, Box<dyn std::error::Error + Send + Sync>>(hyper::body::Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(http_body_util::StreamBody::new(body)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn tokio_stream_of(mut rx: tokio::sync::mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Asks CRI whether a followed container still runs.
struct Watch {
    cri: Cri,
    id: String,
}

impl logs::ContainerState for Watch {
    fn running(&mut self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(async move {
            match lookup::status(&self.cri, &self.id).await {
                Ok(Some(s)) => s.state != api::ContainerState::ContainerExited as i32,
                // gone from the runtime: nothing more will be written
                Ok(None) => false,
                // the runtime is unreachable for a moment: keep following
                Err(_) => true,
            }
        })
    }
}

/// The exec/attach stream flags of a query (`stdin=1&stdout=1&stderr=1&tty=0`).
#[derive(Debug, Default, PartialEq, Eq)]
struct StreamFlags {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn stream_flags(pairs: &[(String, String)]) -> Result<StreamFlags, logs::InvalidParameter> {
    let mut f = StreamFlags::default();
    for (k, v) in pairs {
        match k.as_str() {
            "command" => f.command.push(v.clone()),
            "input" | "stdin" => f.stdin = logs::parse_bool("stdin", v)?,
            "output" | "stdout" => f.stdout = logs::parse_bool("stdout", v)?,
            "error" | "stderr" => f.stderr = logs::parse_bool("stderr", v)?,
            "tty" => f.tty = logs::parse_bool("tty", v)?,
            _ => {}
        }
    }
    Ok(f)
}

async fn exec_or_attach(cri: &Cri, ns: &str, pod: &str, container: &str, req: Request<Incoming>, exec: bool) -> Response<Body> {
    let flags = match stream_flags(&query_pairs(req.uri().query())) {
        Ok(f) => f,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if exec && flags.command.is_empty() {
        return text(StatusCode::BAD_REQUEST, "you must specify at least 1 command");
    }
    if !(flags.stdin || flags.stdout || flags.stderr) {
        return text(StatusCode::BAD_REQUEST, "you must specify at least 1 of stdin, stdout, stderr");
    }
    let list = match lookup::containers(cri, ns, pod, container).await {
        Ok(l) => l,
        Err(e) => return runtime_error(&e),
    };
    let running = lookup::current(&list).filter(|c| c.state == api::ContainerState::ContainerRunning as i32);
    let Some(target) = running else {
        return text(StatusCode::NOT_FOUND, &format!("container not found ({container:?})"));
    };
    let mut runtime = cri.runtime.clone();
    let url = if exec {
        let request = api::ExecRequest {
            container_id: target.id.clone(),
            cmd: flags.command,
            tty: flags.tty,
            stdin: flags.stdin,
            stdout: flags.stdout,
            // with a TTY, stderr is merged into stdout (upstream drops it likewise)
            stderr: flags.stderr && !flags.tty,
        };
        runtime.exec(request).await.map(|r| r.into_inner().url)
    } else {
        let request = api::AttachRequest {
            container_id: target.id.clone(),
            stdin: flags.stdin,
            tty: flags.tty,
            stdout: flags.stdout,
            stderr: flags.stderr && !flags.tty,
        };
        runtime.attach(request).await.map(|r| r.into_inner().url)
    };
    match url {
        Ok(url) => relay::relay(req, &url).await.unwrap_or_else(|e| relay::failure(&e)),
        Err(e) => runtime_error(&e),
    }
}

async fn port_forward(cri: &Cri, ns: &str, pod: &str, req: Request<Incoming>) -> Response<Body> {
    let sandboxes = match lookup::sandboxes(cri, ns, pod).await {
        Ok(s) => s,
        Err(e) => return runtime_error(&e),
    };
    let Some(sandbox) = lookup::ready_sandbox(&sandboxes) else {
        return text(StatusCode::NOT_FOUND, &format!("pod not found ({pod:?})"));
    };
    // Ports come from the stream headers (SPDY) or the `port` query (WebSocket).
    let ports = query_pairs(req.uri().query())
        .into_iter()
        .filter(|(k, _)| k == "port")
        .flat_map(|(_, v)| v.split(',').filter_map(|p| p.trim().parse::<i32>().ok()).collect::<Vec<_>>())
        .collect();
    let mut runtime = cri.runtime.clone();
    let request = api::PortForwardRequest { pod_sandbox_id: sandbox.id.clone(), port: ports };
    match runtime.port_forward(request).await {
        Ok(r) => relay::relay(req, &r.into_inner().url).await.unwrap_or_else(|e| relay::failure(&e)),
        Err(e) => runtime_error(&e),
    }
}

/// `/stats/summary` (`?only_cpu_and_memory=true`: cpu and memory only, as metrics-server asks).
fn stats_summary(sources: Option<&Sources>, query: Option<&str>) -> Response<Body> {
    let Some(latest) = sources.and_then(|s| s.stats.latest()) else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "stats are not available yet");
    };
    let mut summary = latest.1.clone();
    if query_pairs(query).iter().any(|(k, v)| k == "only_cpu_and_memory" && v == "true") {
        summary = stats::only_cpu_and_memory(summary);
    }
    json_response(&serde_json::to_value(&summary).unwrap_or_default())
}

fn prometheus(body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

/// `/metrics`: running pods and containers counted through CRI now, the rest from `sources`.
async fn kubelet_metrics(cri: &Cri, sources: Option<&Sources>) -> Response<Body> {
    let Some(sources) = sources else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "metrics are not collected by this server");
    };
    let (sandboxes, containers) = match tokio::try_join!(lookup::sandboxes(cri, "", ""), lookup::all_containers(cri)) {
        Ok(pair) => pair,
        Err(e) => return runtime_error(&e),
    };
    let running_pods = sandboxes.iter().filter(|s| s.state == api::PodSandboxState::SandboxReady as i32).count() as u64;
    let mut states = metrics::ContainerStates::new();
    for c in &containers {
        let state = match api::ContainerState::try_from(c.state) {
            Ok(api::ContainerState::ContainerCreated) => "created",
            Ok(api::ContainerState::ContainerRunning) => "running",
            Ok(api::ContainerState::ContainerExited) => "exited",
            _ => "unknown",
        };
        *states.entry(state).or_default() += 1;
    }
    let boot = sources.stats.latest().and_then(|l| l.0.boot_time);
    prometheus(metrics::kubelet_metrics(&sources.kubelet, Some(running_pods), Some(&states), boot))
}

/// `/pods`: the pods the runtime runs, as a `PodList` with metadata and container names.
async fn pods(cri: &Cri) -> Response<Body> {
    let (sandboxes, containers) = match tokio::try_join!(lookup::sandboxes(cri, "", ""), lookup::all_containers(cri)) {
        Ok(pair) => pair,
        Err(e) => return runtime_error(&e),
    };
    json_response(&pod_list(&sandboxes, &containers))
}

fn pod_list(sandboxes: &[api::PodSandbox], containers: &[api::Container]) -> serde_json::Value {
    let mut items = Vec::new();
    for sandbox in sandboxes.iter().filter(|s| s.state == api::PodSandboxState::SandboxReady as i32) {
        let Some(meta) = &sandbox.metadata else { continue };
        let mut names: Vec<&str> = containers
            .iter()
            .filter(|c| c.pod_sandbox_id == sandbox.id)
            .filter_map(|c| c.metadata.as_ref().map(|m| m.name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let specs: Vec<serde_json::Value> = names.iter().map(|n| json!({"name": n})).collect();
        items.push(json!({
            "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
            "spec": {"containers": specs},
        }));
    }
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_go_does() {
        let q = query_pairs(Some("command=sh&command=-c&command=echo+a%26b&stdin=1&tty"));
        let f = stream_flags(&q).unwrap();
        assert_eq!(f.command, ["sh", "-c", "echo a&b"]);
        assert!(f.stdin && f.tty && !f.stdout);
        assert!(stream_flags(&query_pairs(Some("stdout=maybe"))).is_err());
    }

    #[test]
    fn pod_list_names_ready_sandboxes_and_their_containers() {
        let sandbox = |id: &str, name: &str, state: api::PodSandboxState| api::PodSandbox {
            id: id.into(),
            metadata: Some(api::PodSandboxMetadata { name: name.into(), uid: format!("uid-{name}"), namespace: "ns".into(), attempt: 0 }),
            state: state as i32,
            ..Default::default()
        };
        let container = |sandbox: &str, name: &str| api::Container {
            pod_sandbox_id: sandbox.into(),
            metadata: Some(api::ContainerMetadata { name: name.into(), attempt: 0 }),
            ..Default::default()
        };
        let list = pod_list(
            &[sandbox("s1", "web", api::PodSandboxState::SandboxReady), sandbox("s2", "gone", api::PodSandboxState::SandboxNotready)],
            &[container("s1", "b"), container("s1", "a"), container("s1", "a"), container("s2", "x")],
        );
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert_eq!(list["items"][0]["metadata"]["uid"], "uid-web");
        assert_eq!(list["items"][0]["spec"]["containers"], json!([{"name": "a"}, {"name": "b"}]));
    }
}

/// Against a real containerd (root, Debian's containerd, busybox-static).
#[cfg(test)]
mod runtime_tests;
