//! Relaying an upgraded connection (SPDY/3.1 or WebSocket) to containerd's streaming server.
//!
//! CRI `Exec`, `Attach` and `PortForward` answer with a one-time URL of the runtime's
//! streaming server (`http://127.0.0.1:<port>/exec/<token>`). As upstream's kubelet does
//! (it no longer redirects clients), the request is forwarded there with its upgrade
//! headers; a `101 Switching Protocols` answer is passed back and both connections are then
//! spliced byte for byte, so whatever protocol the client and runtime agree on
//! (`v4.channel.k8s.io` over SPDY, `portforward.k8s.io`, WebSocket channels) flows through
//! untouched. Any other answer (the runtime refusing a protocol) is returned as it came.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::{text, Body};

/// Time allowed to connect to the streaming server and get its answer.
const BACKEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest error body passed back from the streaming server.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Why a relay failed before any answer came from the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the runtime returned an invalid streaming URL {0:?}")]
    BadUrl(String),
    #[error("the runtime's streaming URL {0:?} is not on loopback")]
    NotLoopback(String),
    #[error("cannot reach the runtime's streaming server: {0}")]
    Connect(#[source] std::io::Error),
    #[error("the runtime's streaming server failed: {0}")]
    Http(#[source] hyper::Error),
    #[error("the runtime's streaming server did not answer in time")]
    Timeout,
}

/// The loopback address and path of a streaming URL. Only loopback is ever dialled: the
/// runtime's streaming server listens there, and nothing else may be reached this way.
fn target(url: &str) -> Result<(SocketAddr, String), RelayError> {
    let uri: Uri = url.parse().map_err(|_| RelayError::BadUrl(url.to_owned()))?;
    let authority = uri.authority().ok_or_else(|| RelayError::BadUrl(url.to_owned()))?;
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().map_err(|_| RelayError::NotLoopback(url.to_owned()))?;
    if !ip.is_loopback() {
        return Err(RelayError::NotLoopback(url.to_owned()));
    }
    let port = authority.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok((SocketAddr::new(ip, port), path))
}

/// Forwards `req` (an upgrade request) to `url` and relays the upgraded connections.
pub async fn relay(mut req: Request<Incoming>, url: &str) -> Result<Response<Body>, RelayError> {
    let (addr, path) = target(url)?;
    let client_upgrade = hyper::upgrade::on(&mut req);
    let answer = tokio::time::timeout(BACKEND_TIMEOUT, async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(RelayError::Connect)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(RelayError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "streaming server connection ended");
            }
        });
        let mut backend = Request::builder().method(req.method().clone()).uri(path);
        for (name, value) in req.headers() {
            if name != header::HOST && name != header::AUTHORIZATION && name != header::CONTENT_LENGTH {
                backend = backend.header(name, value);
            }
        }
        let backend = backend
            .header(header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|_| RelayError::BadUrl(url.to_owned()))?;
        sender.send_request(backend).await.map_err(RelayError::Http)
    })
    .await
    .map_err(|_| RelayError::Timeout)??;
    Ok(answer_client(answer, client_upgrade).await)
}

async fn answer_client(mut answer: Response<Incoming>, client_upgrade: hyper::upgrade::OnUpgrade) -> Response<Body> {
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The runtime refused (e.g. an unsupported protocol version): pass its answer on.
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = http_body_util::Limited::new(answer.into_body(), MAX_ERROR_BODY).collect().await;
        let bytes = body.map(|b| b.to_bytes()).unwrap_or_default();
        let mut r = Response::new(super::full(bytes));
        *r.status_mut() = status;
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            r.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
        }
        return r;
    }
    let backend_upgrade = hyper::upgrade::on(&mut answer);
    let mut r = Response::new(super::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *r.headers_mut() = answer.headers().clone();
    tokio::spawn(async move {
        let (client, backend) = match tokio::try_join!(client_upgrade, backend_upgrade) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "stream upgrade failed");
                return;
            }
        };
        splice(client, backend).await;
    });
    r
}

/// Copies bytes both ways until both sides are done, passing half-closes on.
pub async fn splice(a: hyper::upgrade::Upgraded, b: hyper::upgrade::Upgraded) {
    let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
    if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
        tracing::debug!(error = %e, "stream relay ended");
    }
}

/// The answer when the runtime could not be asked at all.
pub fn failure(e: &RelayError) -> Response<Body> {
    text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_streaming_urls_are_dialled() {
        let (addr, path) = target("http://127.0.0.1:4321/exec/AbC").unwrap();
        assert_eq!(addr, "127.0.0.1:4321".parse().unwrap());
        assert_eq!(path, "/exec/AbC");
        assert!(target("http://[::1]:80/attach/x").is_ok());
        assert!(matches!(target("http://10.1.2.3:80/exec/x"), Err(RelayError::NotLoopback(_))));
        assert!(matches!(target("http://example.com/exec/x"), Err(RelayError::NotLoopback(_))));
        assert!(matches!(target("not a url"), Err(RelayError::BadUrl(_)) | Err(RelayError::NotLoopback(_))));
    }
}
