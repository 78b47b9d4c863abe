//! The connect subresources: `pods/log`, `pods/exec`, `pods/attach`, `pods/portforward` and
//! `nodes/proxy`, answered by the kubelet of the pod's node.
//!
//! As kube-apiserver: the API server checks the pod and container ([`location`]), finds the
//! kubelet from the Node (InternalIP, else Hostname; `daemonEndpoints.kubeletEndpoint.Port`),
//! and connects over TLS with its kubelet client certificate, without verifying the
//! kubelet's serving certificate (upstream's default without
//! `--kubelet-certificate-authority`). Logs are streamed back, kubelet errors turned into a
//! `Status` as upstream's `GenericHttpResponseChecker` does. Exec, attach and port-forward
//! are HTTP/1.1 upgrades: the request goes to the kubelet with its upgrade headers, a `101`
//! answer is passed back, and both upgraded connections are spliced byte for byte (SPDY/3.1
//! or WebSocket, whatever the client and the runtime's streaming server agree on).

pub mod location;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;

use crate::handlers::State;
use crate::request::ResourcePath;
use crate::status::{ApiError, Result};

/// Time allowed to connect to a kubelet and get its response headers.
const KUBELET_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest kubelet error body read (upstream's `maxReadLength`).
const MAX_ERROR_BODY: usize = 50_000;

/// Connects to kubelets with the API server's kubelet client certificate.
#[derive(Clone)]
pub struct KubeletClient {
    tls: tokio_rustls::TlsConnector,
}

impl KubeletClient {
    /// A client presenting `cert_pem`/`key_pem` (`--kubelet-client-certificate`/`-key`).
    pub fn new(cert_pem: &str, key_pem: &str) -> std::result::Result<KubeletClient, crate::Error> {
        let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| crate::Error::Tls(format!("bad kubelet client certificate PEM: {e}")))?;
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_bytes())
            .map_err(|e| crate::Error::Tls(format!("bad kubelet client key PEM: {e}")))?
            .ok_or_else(|| crate::Error::Tls("no private key in the kubelet client key PEM".into()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| crate::Error::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_client_auth_cert(certs, key)
            .map_err(|e| crate::Error::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient { tls: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    /// Sends `req` to the kubelet at `host:port` over a new HTTP/1.1 connection (with
    /// upgrades enabled) and returns its response head.
    async fn send(&self, host: &str, port: u16, req: Request<Body>) -> Result<http::Response<hyper::body::Incoming>> {
        let url = format!("https://{}{}", host_port(host, port), req.uri());
        let method = method_name(req.method());
        let failed = |e: &dyn std::fmt::Display| ApiError::internal(format!("{method} \"{url}\": {e}"));
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| failed(&format!("dial tcp {}: {e}", host_port(host, port))))?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(host.to_owned()).map_err(|e| failed(&e))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| failed(&format!("remote error: {e}")))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| failed(&e))?;
            tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!(error = %e, "kubelet connection ended");
                }
            });
            sender.send_request(req).await.map_err(|e| failed(&e))
        };
        match tokio::time::timeout(KUBELET_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::timeout(format!("the kubelet at {} did not answer in time", host_port(host, port)))),
        }
    }
}

fn method_name(m: &Method) -> String {
    let s = m.as_str().to_lowercase();
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Accepts any kubelet serving certificate (signatures are still checked), as
/// kube-apiserver does without `--kubelet-certificate-authority`.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Query pairs in order, repeated keys kept (`command=sh&command=-c`), `+` as a space.
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

fn client(state: &State) -> Result<&KubeletClient> {
    state.kubelet.as_ref().ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "no kubelet client credentials are configured"))
}

async fn node_address(state: &State, node_name: &str) -> Result<(String, u16)> {
    let nodes = rkube_api::resources::find("", "v1", "nodes").ok_or_else(ApiError::no_route)?;
    let rp = ResourcePath { info: nodes, namespace: None, name: Some(node_name.to_owned()), subresource: None };
    let node = state.registry.get(&rp).await?;
    location::kubelet_address(&node)
}

/// `pods/{log,exec,attach,portforward}`.
pub async fn pod_subresource(state: &Arc<State>, req: Request<Body>, rp: ResourcePath) -> Result<Response<Body>> {
    let sub = rp.subresource.clone().unwrap_or_default();
    let allowed = match sub.as_str() {
        "log" => req.method() == Method::GET,
        _ => req.method() == Method::GET || req.method() == Method::POST,
    };
    if !allowed {
        return Err(ApiError::method_not_allowed());
    }
    let pod = state.registry.get(&ResourcePath { subresource: None, ..rp.clone() }).await?;
    let pairs = query_pairs(req.uri().query());
    let container_param = pairs.iter().find(|(k, _)| k == "container").map(|(_, v)| v.as_str());
    let container = match sub.as_str() {
        "portforward" => String::new(),
        _ => location::validate_container(container_param, &pod)?,
    };
    let (ns, name) = (rp.namespace.clone().unwrap_or_default(), rp.name.clone().unwrap_or_default());
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    if node_name.is_empty() {
        if sub == "log" {
            // upstream streams nothing for a pod not yet on a node
            return Ok(Response::new(Body::empty()));
        }
        return Err(ApiError::bad_request(format!("pod {name} does not have a host assigned")));
    }
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let (path, query) = match sub.as_str() {
        "log" => {
            let previous = pairs.iter().any(|(k, v)| k == "previous" && location::parse_bool(k, v).unwrap_or(false));
            if let Some(message) = location::log_status_error(&pod, &container, previous) {
                return Err(ApiError::bad_request(message));
            }
            (format!("/containerLogs/{}/{}/{}", enc(&ns), enc(&name), enc(&container)), location::log_query(&pairs)?)
        }
        "exec" | "attach" => (format!("/{sub}/{}/{}/{}", enc(&ns), enc(&name), enc(&container)), location::stream_query(&pairs, sub == "exec")?),
        _ => (format!("/portForward/{}/{}", enc(&ns), enc(&name)), location::port_forward_query(&pairs)?),
    };
    let (host, port) = node_address(state, node_name).await?;
    let path_and_query = if query.is_empty() { path } else { format!("{path}?{query}") };
    if sub == "log" {
        return logs(state, &host, port, &path_and_query, &pod, &container).await;
    }
    forward(client(state)?, &host, port, &path_and_query, req).await
}

async fn logs(state: &State, host: &str, port: u16, path_and_query: &str, pod: &Value, container: &str) -> Result<Response<Body>> {
    let req = Request::get(path_and_query).header(header::HOST, host_port(host, port)).body(Body::empty()).map_err(|e| ApiError::internal(e.to_string()))?;
    let answer = client(state)?.send(host, port, req).await?;
    let status = answer.status();
    if status.is_success() {
        let mut r = Response::new(Body::new(answer.into_body()));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(r);
    }
    let body = http_body_util::Limited::new(answer.into_body(), MAX_ERROR_BODY).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim_end().to_owned();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    Err(match status {
        // no instance of the container in the runtime yet
        StatusCode::NOT_FOUND => ApiError::bad_request(location::not_started(pod, container)),
        other => kubelet_error(other, &text, name),
    })
}

/// A kubelet error answer as a Status (upstream's `GenericHttpResponseChecker`).
fn kubelet_error(code: StatusCode, body: &str, pod: &str) -> ApiError {
    match code {
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal(format!("Internal error occurred: {body}")),
        StatusCode::BAD_REQUEST => ApiError::bad_request(body.to_owned()),
        StatusCode::FORBIDDEN => ApiError::forbidden(format!("{body} (get pods/log {pod})")),
        StatusCode::UNAUTHORIZED => ApiError::new(code, "Unauthorized", format!("the server has asked for the client to provide credentials (get pods/log {pod})")),
        other => ApiError::new(other, "InternalError", format!("an error on the server ({body:?}) has prevented the request from succeeding (get pods/log {pod})")),
    }
}

/// Hop-by-hop and credential headers not passed to a kubelet (the upgrade headers are).
fn forwarded(name: &header::HeaderName) -> bool {
    !matches!(name.as_str(), "host" | "authorization" | "proxy-authorization" | "keep-alive" | "te" | "trailer" | "transfer-encoding")
}

/// Forwards `req` to the kubelet at `path_and_query`: an upgrade is spliced after the
/// kubelet's `101`, anything else streamed back as the kubelet answered.
async fn forward(client: &KubeletClient, host: &str, port: u16, path_and_query: &str, mut req: Request<Body>) -> Result<Response<Body>> {
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut backend = Request::builder().method(parts.method.clone()).uri(path_and_query);
    for (name, value) in parts.headers.iter().filter(|(n, _)| forwarded(n)) {
        backend = backend.header(name, value);
    }
    let body = if upgrade { Body::empty() } else { body };
    let backend = backend.header(header::HOST, host_port(host, port)).body(body).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut answer = client.send(host, port, backend).await?;
    let mut r = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != header::TRANSFER_ENCODING {
            r = r.header(name, value);
        }
    }
    match client_upgrade {
        Some(client_upgrade) if answer.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let kubelet_upgrade = hyper::upgrade::on(&mut answer);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, kubelet_upgrade) {
                    Ok((a, b)) => {
                        let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
                        if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
                            tracing::debug!(error = %e, "kubelet stream ended");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "kubelet stream upgrade failed"),
                }
            });
            r.body(Body::empty()).map_err(|e| ApiError::internal(e.to_string()))
        }
        _ => r.body(Body::new(answer.into_body())).map_err(|e| ApiError::internal(e.to_string())),
    }
}

/// `/api/v1/nodes/{name}/proxy[/{path}]`: the request goes to the node's kubelet at
/// `/{path}` with its query, method, headers and body; the answer comes back unchanged.
pub async fn node_proxy(state: &Arc<State>, req: Request<Body>, node: &str, rest: &str) -> Result<Response<Body>> {
    let (host, port) = node_address(state, node).await?;
    let mut path = format!("/{}", rest.trim_start_matches('/'));
    if let Some(q) = req.uri().query() {
        path = format!("{path}?{q}");
    }
    forward(client(state)?, &host, port, &path, req).await
}

/// Splits `/api/v1/nodes/{name}/proxy[/{rest}]` into the node name and the rest.
pub fn node_proxy_path(path: &str) -> Option<(String, String)> {
    let tail = path.strip_prefix("/api/v1/nodes/")?;
    let (name, after) = tail.split_once('/')?;
    let rest = if after == "proxy" { "" } else { after.strip_prefix("proxy/")? };
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
    (!name.is_empty()).then(|| (name, rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_proxy_paths_split_into_node_and_kubelet_path() {
        assert_eq!(node_proxy_path("/api/v1/nodes/n1/proxy"), Some(("n1".into(), "".into())));
        assert_eq!(node_proxy_path("/api/v1/nodes/n1/proxy/healthz"), Some(("n1".into(), "healthz".into())));
        assert_eq!(node_proxy_path("/api/v1/nodes/n1/proxy/stats/summary"), Some(("n1".into(), "stats/summary".into())));
        assert_eq!(node_proxy_path("/api/v1/nodes/n1/status"), None);
        assert_eq!(node_proxy_path("/api/v1/nodes/n1"), None);
        assert_eq!(node_proxy_path("/api/v1/nodes/n1/proxyx"), None);
    }

    #[test]
    fn kubelet_errors_become_statuses_as_upstream() {
        let e = kubelet_error(StatusCode::BAD_REQUEST, "previous terminated container \"c\" in pod \"p\" not found", "p");
        assert_eq!((e.code, e.reason), (StatusCode::BAD_REQUEST, "BadRequest"));
        assert_eq!(e.message, "previous terminated container \"c\" in pod \"p\" not found");
        let e = kubelet_error(StatusCode::INTERNAL_SERVER_ERROR, "boom", "p");
        assert_eq!((e.reason, e.message.as_str()), ("InternalError", "Internal error occurred: boom"));
    }

    #[test]
    fn repeated_query_keys_are_kept_in_order() {
        let q = query_pairs(Some("command=sh&command=-c&command=echo+hi%21&container=bb&stdin=true"));
        let commands: Vec<&str> = q.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.as_str()).collect();
        assert_eq!(commands, ["sh", "-c", "echo hi!"]);
    }

    #[test]
    fn a_client_is_made_from_the_pki_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let pki = rkube_pki::ClusterPki::load_or_create(dir.path(), &rkube_pki::ServingNames::default()).unwrap();
        assert!(KubeletClient::new(&pki.kubelet_client_cert_pem, &pki.kubelet_client_key_pem).is_ok());
        assert!(KubeletClient::new("junk", "junk").is_err());
    }
}
