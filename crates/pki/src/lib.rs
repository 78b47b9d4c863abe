//! rkube-pki: the cluster's certificate authority and credentials.
//!
//! On first start [`ClusterPki::load_or_create`] creates, under `<data-dir>/tls`:
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` | the cluster CA (ECDSA P-256, ten years) |
//! | `serving.crt`, `serving.key` | the API server's serving certificate (one year) |
//! | `admin.crt`, `admin.key` | the admin client certificate, `CN=system:admin, O=system:masters` |
//! | `apiserver-kubelet-client.crt`, `.key` | the API server's client certificate for kubelets, `CN=kube-apiserver-kubelet-client, O=system:masters` |
//! | `sa.key`, `sa.pub` | the service-account token signing key pair (PKCS#8 / SPKI PEM) |
//!
//! and [`ClusterPki::write_kubeconfig`] writes the admin kubeconfig. Later starts reuse
//! every file; a leaf certificate is reissued only when it is missing, not signed by the
//! CA, within 90 days of expiry, or (the serving certificate) missing a name the caller
//! now requires, such as a new bind address. The CA and the service-account key are never
//! replaced, since that would invalidate every credential and token handed out.
//!
//! Writes are atomic (temp file + fsync + rename) and private keys are created with mode
//! 0600, never chmodded afterwards, so no key is ever readable by others.
//!
//! Modules: [`names`] (which names the serving certificate carries, host addresses, the
//! first service IP), [`kubeconfig`] (the kubeconfig layout), `certs` (issuing and checking
//! certificates with `rcgen` and `x509-parser`), `der` (the one DER rewrite rcgen cannot
//! express: several `O=` groups in a subject), `files` (atomic writes).
//!
//! The crate is synchronous and does no networking: the binary calls it once at start-up.

mod certs;
mod cluster;
mod der;
mod error;
mod files;
pub mod kubeconfig;
pub mod names;

pub use certs::IssuedCert;
pub use cluster::{
    ClusterPki, ADMIN_CERT, ADMIN_COMMON_NAME, ADMIN_KEY, ADMIN_ORGANIZATION, CA_CERT,
    CA_COMMON_NAME, CA_KEY, KUBELET_CLIENT_CERT, KUBELET_CLIENT_COMMON_NAME, KUBELET_CLIENT_KEY, SA_KEY, SA_PUB, SERVING_CERT, SERVING_COMMON_NAME, SERVING_KEY,
};
pub use error::{Error, Result};
pub use names::{first_service_ip, host_addresses, ServingNames};
