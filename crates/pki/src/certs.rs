//! Issuing and inspecting certificates: the CA, leaf certificates signed by it, and the
//! checks that decide whether an existing certificate can be kept.
//!
//! Keys are ECDSA P-256: kubectl (Go crypto), rustls/kube-rs and the Python client all
//! accept them, and generating one takes microseconds where RSA takes a noticeable moment.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::der;
use crate::error::{Error, Result};

/// The CA is valid for ten years.
pub(crate) const CA_VALIDITY_DAYS: u64 = 3650;
/// Leaf certificates are valid for one year, as k3s issues them.
pub(crate) const LEAF_VALIDITY_DAYS: u64 = 365;
/// A leaf certificate with less than this left is reissued on start.
pub(crate) const RENEW_BEFORE_DAYS: i64 = 90;
const DAY_SECS: u64 = 86_400;
/// `not_before` is backdated so a peer whose clock lags slightly still accepts a new cert.
const BACKDATE_SECS: u64 = 300;

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never let it reach a log line.
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    Server,
    Client,
}

/// The subject and names of a leaf certificate to issue.
#[derive(Debug, Clone)]
pub(crate) struct LeafSpec<'a> {
    pub common_name: &'a str,
    pub organizations: &'a [String],
    pub dns: &'a BTreeSet<String>,
    pub ips: &'a BTreeSet<IpAddr>,
    pub usage: Usage,
}

/// Seconds since the Unix epoch. The crate's only wall-clock read: certificate validity is
/// inherently wall-clock time, and everything below takes `now` as an argument.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn set_validity(params: &mut CertificateParams, now: i64, days: u64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = now.max(0) as u64;
    params.not_before = epoch + Duration::from_secs(now.saturating_sub(BACKDATE_SECS));
    params.not_after = epoch + Duration::from_secs(now + days * DAY_SECS);
}

fn generate(what: &'static str) -> impl Fn(rcgen::Error) -> Error {
    move |source| Error::Generate { what, source }
}

/// Creates a self-signed CA; returns its certificate and key.
pub(crate) fn generate_ca(common_name: &str, now: i64) -> Result<IssuedCert> {
    let key = KeyPair::generate().map_err(generate("CA key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, now, CA_VALIDITY_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(generate("CA certificate"))?;
    Ok(IssuedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a leaf certificate with a fresh key, signed by the CA.
pub(crate) fn issue_leaf(ca: &IssuedCert, spec: &LeafSpec<'_>, now: i64) -> Result<IssuedCert> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(generate("CA signer"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(generate("CA signer"))?;
    let key = KeyPair::generate().map_err(generate("leaf key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    // rcgen keeps one value per attribute type; further groups are added by rewriting the
    // subject below.
    if let Some(org) = spec.organizations.first() {
        params
            .distinguished_name
            .push(DnType::OrganizationName, org.as_str());
    }
    params
        .distinguished_name
        .push(DnType::CommonName, spec.common_name);
    for name in spec.dns {
        let ia5 = Ia5String::try_from(name.as_str()).map_err(|source| Error::NameInvalid {
            name: name.clone(),
            source,
        })?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    params
        .subject_alt_names
        .extend(spec.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![match spec.usage {
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, LEAF_VALIDITY_DAYS);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(generate("leaf certificate"))?;
    let cert_pem = if spec.organizations.len() > 1 {
        let der = der::replace_subject(
            cert.der(),
            spec.organizations,
            spec.common_name,
            issuer.key(),
        )
        .map_err(generate("leaf certificate subject"))?;
        der::pem_certificate(&der)
    } else {
        cert.pem()
    };
    Ok(IssuedCert {
        cert_pem,
        key_pem: key.serialize_pem(),
    })
}

/// Parses the first PEM block of `text` as a certificate container.
pub(crate) fn parse_pem(text: &str) -> std::result::Result<Pem, String> {
    x509_parser::pem::parse_x509_pem(text.as_bytes())
        .map(|(_, pem)| pem)
        .map_err(|e| format!("not PEM: {e}"))
}

/// Parses a PEM container's certificate.
pub(crate) fn parse_cert(pem: &Pem) -> std::result::Result<X509Certificate<'_>, String> {
    pem.parse_x509()
        .map_err(|e| format!("not an X.509 certificate: {e}"))
}

/// The DNS and IP subject alternative names of a certificate.
pub(crate) fn sans(cert: &X509Certificate<'_>) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let (mut dns, mut ips) = (BTreeSet::new(), BTreeSet::new());
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    dns.insert(d.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

/// Whether a leaf certificate can be kept: it parses, the CA signed it, and it has at least
/// [`RENEW_BEFORE_DAYS`] left. `required` names, when given, must all be present.
pub(crate) fn leaf_usable(
    leaf_pem: &str,
    ca_pem: &str,
    now: i64,
    required: Option<(&BTreeSet<String>, &BTreeSet<IpAddr>)>,
) -> bool {
    let (Ok(leaf), Ok(ca)) = (parse_pem(leaf_pem), parse_pem(ca_pem)) else {
        return false;
    };
    let (Ok(leaf), Ok(ca)) = (parse_cert(&leaf), parse_cert(&ca)) else {
        return false;
    };
    if leaf.verify_signature(Some(ca.public_key())).is_err() {
        return false;
    }
    if leaf.validity().not_after.timestamp() - now < RENEW_BEFORE_DAYS * DAY_SECS as i64 {
        return false;
    }
    match required {
        Some((dns, ips)) => {
            let (have_dns, have_ips) = sans(&leaf);
            dns.is_subset(&have_dns) && ips.is_subset(&have_ips)
        }
        None => true,
    }
}
