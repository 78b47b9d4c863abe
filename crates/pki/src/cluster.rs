//! [`ClusterPki`]: the cluster's credentials on disk, created once and reused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rcgen::KeyPair;
use tracing::info;

use crate::certs::{self, IssuedCert, LeafSpec, Usage};
use crate::error::{Error, Result};
use crate::files::{self, PRIVATE, PUBLIC};
use crate::kubeconfig::kubeconfig_yaml;
use crate::names::ServingNames;

/// File names inside the PKI directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const SERVING_CERT: &str = "serving.crt";
pub const SERVING_KEY: &str = "serving.key";
pub const ADMIN_CERT: &str = "admin.crt";
pub const ADMIN_KEY: &str = "admin.key";
pub const KUBELET_CLIENT_CERT: &str = "apiserver-kubelet-client.crt";
pub const KUBELET_CLIENT_KEY: &str = "apiserver-kubelet-client.key";
pub const SA_KEY: &str = "sa.key";
pub const SA_PUB: &str = "sa.pub";

/// Subject of the CA certificate.
pub const CA_COMMON_NAME: &str = "rkube-ca";
/// Subject of the API server's serving certificate.
pub const SERVING_COMMON_NAME: &str = "kube-apiserver";
/// The admin user: in `system:masters`, which RBAC binds to `cluster-admin`.
pub const ADMIN_COMMON_NAME: &str = "system:admin";
pub const ADMIN_ORGANIZATION: &str = "system:masters";
/// The API server's identity towards kubelets (kubeadm's `apiserver-kubelet-client`).
pub const KUBELET_CLIENT_COMMON_NAME: &str = "kube-apiserver-kubelet-client";

/// The cluster's PKI, every item PEM: a CA, the API server's serving certificate, the
/// admin client certificate and the service-account token signing key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterPki {
    /// The directory the files live in (`<data-dir>/tls`).
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// The API server's client certificate for kubelets (logs, exec, port-forward),
    /// `CN=kube-apiserver-kubelet-client, O=system:masters`.
    pub kubelet_client_cert_pem: String,
    pub kubelet_client_key_pem: String,
    /// Verifies service-account tokens (`--service-account-key-file`).
    pub sa_public_pem: String,
    /// Signs service-account tokens (`--service-account-signing-key-file`), PKCS#8.
    pub sa_private_pem: String,
}

impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Certificates only: private keys never reach a log line.
        f.debug_struct("ClusterPki")
            .field("dir", &self.dir)
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("serving_cert_pem", &self.serving_cert_pem)
            .field("admin_cert_pem", &self.admin_cert_pem)
            .field("kubelet_client_cert_pem", &self.kubelet_client_cert_pem)
            .field("sa_public_pem", &self.sa_public_pem)
            .finish_non_exhaustive()
    }
}

impl ClusterPki {
    /// Loads the PKI from `dir`, creating whatever is missing.
    ///
    /// Existing files are reused byte for byte. The CA and the service-account key are
    /// never replaced (a CA with only one of its two files is an error). A leaf certificate
    /// is reissued, with a fresh key, when it is missing, was not signed by the CA, expires
    /// within 90 days, or (the serving certificate) lacks a name `names` now requires.
    /// Private keys are created with mode 0600; every file is replaced atomically.
    pub fn load_or_create(dir: &Path, names: &ServingNames) -> Result<ClusterPki> {
        Self::load_or_create_at(dir, names, certs::unix_now())
    }

    /// [`ClusterPki::load_or_create`] at the given time (seconds since the Unix epoch).
    pub fn load_or_create_at(dir: &Path, names: &ServingNames, now: i64) -> Result<ClusterPki> {
        files::ensure_dir(dir)?;
        let ca = load_or_create_ca(dir, now)?;
        let (dns, ips) = (names.required_dns(), names.required_ips());
        let serving = LeafSpec {
            common_name: SERVING_COMMON_NAME,
            organizations: &[],
            dns: &dns,
            ips: &ips,
            usage: Usage::Server,
        };
        let serving = load_or_issue_leaf(dir, (SERVING_CERT, SERVING_KEY), &ca, &serving, now)?;
        let admin_orgs = [ADMIN_ORGANIZATION.to_owned()];
        let admin = LeafSpec {
            common_name: ADMIN_COMMON_NAME,
            organizations: &admin_orgs,
            dns: &BTreeSet::new(),
            ips: &BTreeSet::new(),
            usage: Usage::Client,
        };
        let admin = load_or_issue_leaf(dir, (ADMIN_CERT, ADMIN_KEY), &ca, &admin, now)?;
        let kubelet_client = LeafSpec {
            common_name: KUBELET_CLIENT_COMMON_NAME,
            organizations: &admin_orgs,
            dns: &BTreeSet::new(),
            ips: &BTreeSet::new(),
            usage: Usage::Client,
        };
        let kubelet_client =
            load_or_issue_leaf(dir, (KUBELET_CLIENT_CERT, KUBELET_CLIENT_KEY), &ca, &kubelet_client, now)?;
        let (sa_private_pem, sa_public_pem) = load_or_create_sa(dir)?;
        Ok(ClusterPki {
            dir: dir.to_owned(),
            ca_cert_pem: ca.cert_pem,
            ca_key_pem: ca.key_pem,
            serving_cert_pem: serving.cert_pem,
            serving_key_pem: serving.key_pem,
            admin_cert_pem: admin.cert_pem,
            admin_key_pem: admin.key_pem,
            kubelet_client_cert_pem: kubelet_client.cert_pem,
            kubelet_client_key_pem: kubelet_client.key_pem,
            sa_public_pem,
            sa_private_pem,
        })
    }

    /// The path of one of the PKI files ([`CA_CERT`], [`SERVING_KEY`], ...).
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Issues a client certificate (valid one year) signed by the CA: the user is `cn`
    /// and its groups are `orgs` (one `O=` attribute each), as kube-apiserver's x509
    /// authenticator reads them. Nothing is written to disk.
    pub fn issue_client_cert(&self, cn: &str, orgs: &[&str]) -> Result<IssuedCert> {
        let orgs: Vec<String> = orgs.iter().map(|o| (*o).to_owned()).collect();
        let spec = LeafSpec {
            common_name: cn,
            organizations: &orgs,
            dns: &BTreeSet::new(),
            ips: &BTreeSet::new(),
            usage: Usage::Client,
        };
        certs::issue_leaf(&self.ca(), &spec, certs::unix_now())
    }

    /// Issues a serving certificate (valid one year) signed by the CA for other components
    /// (a kubelet's `:10250`, the metrics server). `names` is used as given, without the
    /// API server's mandatory names. Nothing is written to disk.
    pub fn issue_serving_cert(&self, cn: &str, names: &ServingNames) -> Result<IssuedCert> {
        let dns: BTreeSet<String> = names.dns.iter().cloned().collect();
        let ips = names.ips.iter().copied().collect();
        let spec = LeafSpec {
            common_name: cn,
            organizations: &[],
            dns: &dns,
            ips: &ips,
            usage: Usage::Server,
        };
        certs::issue_leaf(&self.ca(), &spec, certs::unix_now())
    }

    /// The admin kubeconfig for `server_url` (e.g. `https://127.0.0.1:6443`).
    pub fn kubeconfig(&self, server_url: &str) -> String {
        kubeconfig_yaml(
            server_url,
            &self.ca_cert_pem,
            &self.admin_cert_pem,
            &self.admin_key_pem,
        )
    }

    /// Writes the admin kubeconfig to `path` (mode 0600, atomically). A file that already
    /// holds exactly this content is left untouched.
    pub fn write_kubeconfig(&self, path: &Path, server_url: &str) -> Result<()> {
        let yaml = self.kubeconfig(server_url);
        if files::read_optional(path)?.as_deref() == Some(yaml.as_str()) {
            return Ok(());
        }
        files::write_atomic(path, yaml.as_bytes(), PRIVATE)
    }

    fn ca(&self) -> IssuedCert {
        IssuedCert {
            cert_pem: self.ca_cert_pem.clone(),
            key_pem: self.ca_key_pem.clone(),
        }
    }
}

fn load_or_create_ca(dir: &Path, now: i64) -> Result<IssuedCert> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    match (
        files::read_optional(&cert_path)?,
        files::read_optional(&key_path)?,
    ) {
        (Some(cert_pem), Some(key_pem)) => {
            let invalid = |reason: String| Error::CertificateInvalid {
                path: cert_path.clone(),
                reason,
            };
            let pem = certs::parse_pem(&cert_pem).map_err(invalid)?;
            certs::parse_cert(&pem).map_err(invalid)?;
            KeyPair::from_pem(&key_pem).map_err(|source| Error::KeyInvalid {
                path: key_path.clone(),
                source,
            })?;
            Ok(IssuedCert { cert_pem, key_pem })
        }
        (None, None) => {
            let ca = certs::generate_ca(CA_COMMON_NAME, now)?;
            files::write_atomic(&key_path, ca.key_pem.as_bytes(), PRIVATE)?;
            files::write_atomic(&cert_path, ca.cert_pem.as_bytes(), PUBLIC)?;
            info!(dir = %dir.display(), "created cluster CA");
            Ok(ca)
        }
        (Some(_), None) => Err(Error::CaIncomplete {
            present: cert_path,
            missing: key_path,
        }),
        (None, Some(_)) => Err(Error::CaIncomplete {
            present: key_path,
            missing: cert_path,
        }),
    }
}

fn load_or_issue_leaf(
    dir: &Path,
    (cert_file, key_file): (&str, &str),
    ca: &IssuedCert,
    spec: &LeafSpec<'_>,
    now: i64,
) -> Result<IssuedCert> {
    let (cert_path, key_path) = (dir.join(cert_file), dir.join(key_file));
    if let (Some(cert_pem), Some(key_pem)) = (
        files::read_optional(&cert_path)?,
        files::read_optional(&key_path)?,
    ) {
        let required = match spec.usage {
            Usage::Server => Some((spec.dns, spec.ips)),
            Usage::Client => None,
        };
        if certs::leaf_usable(&cert_pem, &ca.cert_pem, now, required)
            && key_matches(&cert_pem, &key_pem)
        {
            return Ok(IssuedCert { cert_pem, key_pem });
        }
    }
    let leaf = certs::issue_leaf(ca, spec, now)?;
    files::write_atomic(&key_path, leaf.key_pem.as_bytes(), PRIVATE)?;
    files::write_atomic(&cert_path, leaf.cert_pem.as_bytes(), PUBLIC)?;
    info!(cert = %cert_path.display(), "issued certificate");
    Ok(leaf)
}

/// Whether `key_pem` is the private half of the certificate's public key.
fn key_matches(cert_pem: &str, key_pem: &str) -> bool {
    let Ok(key) = KeyPair::from_pem(key_pem) else {
        return false;
    };
    let Ok(pem) = certs::parse_pem(cert_pem) else {
        return false;
    };
    let Ok(cert) = certs::parse_cert(&pem) else {
        return false;
    };
    cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw()
}

/// Loads the service-account key pair; creates it only when the private key is absent.
fn load_or_create_sa(dir: &Path) -> Result<(String, String)> {
    let (key_path, pub_path) = (dir.join(SA_KEY), dir.join(SA_PUB));
    let key_pem = match files::read_optional(&key_path)? {
        Some(pem) => pem,
        None => {
            let key = KeyPair::generate().map_err(|source| Error::Generate {
                what: "service-account key",
                source,
            })?;
            let pem = key.serialize_pem();
            files::write_atomic(&key_path, pem.as_bytes(), PRIVATE)?;
            info!(dir = %dir.display(), "created service-account signing key");
            pem
        }
    };
    let key = KeyPair::from_pem(&key_pem).map_err(|source| Error::KeyInvalid {
        path: key_path.clone(),
        source,
    })?;
    let pub_pem = key.public_key_pem();
    if files::read_optional(&pub_path)?.as_deref() != Some(pub_pem.as_str()) {
        files::write_atomic(&pub_path, pub_pem.as_bytes(), PUBLIC)?;
    }
    Ok((key_pem, pub_pem))
}

#[cfg(test)]
mod tests;
