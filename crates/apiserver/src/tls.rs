//! TLS termination with optional client certificates, and the accept loop.

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::handlers::{self, State};
use crate::{Config, Error};

/// Who made a request: from the client certificate's CN and O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("bad certificate PEM: {e}")))
}

pub fn acceptor(config: &Config) -> Result<TlsAcceptor, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&config.client_ca_pem)? {
        roots.add(c).map_err(|e| Error::Tls(format!("bad client CA: {e}")))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut config.serving_key_pem.as_bytes())
        .map_err(|e| Error::Tls(format!("bad key PEM: {e}")))?
        .ok_or_else(|| Error::Tls("no private key in PEM".into()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&config.serving_cert_pem)?, key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn identity(certs: Option<&[CertificateDer<'_>]>) -> Option<Identity> {
    let cert = certs?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject.iter_organization().filter_map(|o| o.as_str().ok().map(str::to_owned)).collect();
    Some(Identity { user, groups })
}

/// Accepts connections until `shutdown` fires.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>, shutdown: CancellationToken) {
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
            };
            let who = identity(tls.get_ref().1.peer_certificates());
            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let state = state.clone();
                let who = who.clone();
                async move {
                    let req = req.map(axum::body::Body::new);
                    Ok::<_, std::convert::Infallible>(handlers::handle(state, who, req).await)
                }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // Headers up to 1 MiB, as Go's http.Server (kube-apiserver) accepts: a long label
            // selector must reach the selector parser and get its 400, not a reset stream.
            builder.http2().max_header_list_size(1 << 20);
            builder.http1().max_buf_size(1 << 20);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}
