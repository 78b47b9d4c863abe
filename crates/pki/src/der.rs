//! Minimal DER surgery for what rcgen cannot express: a subject with several `O=`
//! attributes (a client certificate's groups). rcgen's `DistinguishedName` keeps one value
//! per attribute type, so the certificate is issued with one group, then its subject is
//! replaced and the to-be-signed part signed again with the CA key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rcgen::{KeyPair, SigningKey};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const BIT_STRING: u8 = 0x03;
/// 2.5.4.10 (organizationName) and 2.5.4.3 (commonName), DER-encoded arcs.
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// (header length, total length) of the DER element at the start of `der`.
fn element(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some((2, 2 + first as usize));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let len = der
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Some((2 + n, 2 + n + len))
}

fn attribute(oid: &[u8], value: &str) -> Vec<u8> {
    let pair = [tlv(OID, oid), tlv(UTF8_STRING, value.as_bytes())].concat();
    tlv(SET, &tlv(SEQUENCE, &pair))
}

/// The DER of `O=<org>... CN=<common_name>`, one attribute per RDN, in that order.
fn subject(organizations: &[String], common_name: &str) -> Vec<u8> {
    let mut rdns: Vec<u8> = organizations
        .iter()
        .flat_map(|o| attribute(OID_ORGANIZATION, o))
        .collect();
    rdns.extend(attribute(OID_COMMON_NAME, common_name));
    tlv(SEQUENCE, &rdns)
}

/// Replaces the subject of `cert_der` and signs the result with `ca_key`.
pub(crate) fn replace_subject(
    cert_der: &[u8],
    organizations: &[String],
    common_name: &str,
    ca_key: &KeyPair,
) -> Result<Vec<u8>, rcgen::Error> {
    let malformed = || rcgen::Error::CouldNotParseCertificate;
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|_| malformed())?;
    let tbs = cert.tbs_certificate.as_ref();
    let old_subject = cert.subject().as_raw();
    // Both are slices of `cert_der`: the subject's place inside the to-be-signed part.
    let start = (old_subject.as_ptr() as usize)
        .checked_sub(tbs.as_ptr() as usize)
        .filter(|s| s + old_subject.len() <= tbs.len())
        .ok_or_else(malformed)?;
    let (tbs_header, _) = element(tbs).ok_or_else(malformed)?;
    let mut content = tbs[tbs_header..start].to_vec();
    content.extend(subject(organizations, common_name));
    content.extend_from_slice(&tbs[start + old_subject.len()..]);
    let new_tbs = tlv(SEQUENCE, &content);

    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let (cert_header, _) = element(cert_der).ok_or_else(malformed)?;
    let rest = cert_der
        .get(cert_header + tbs.len()..)
        .ok_or_else(malformed)?;
    let (_, alg_len) = element(rest).ok_or_else(malformed)?;
    let algorithm = rest.get(..alg_len).ok_or_else(malformed)?;
    let signature = ca_key.sign(&new_tbs)?;
    let bits = [&[0u8][..], &signature].concat();
    Ok(tlv(
        SEQUENCE,
        &[new_tbs, algorithm.to_vec(), tlv(BIT_STRING, &bits)].concat(),
    ))
}

/// PEM text of a DER certificate.
pub(crate) fn pem_certificate(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    #[test]
    fn lengths_use_the_short_and_long_forms() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], [0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(element(&long), Some((4, 304)));
        assert_eq!(element(&[0x30, 0x03, 1, 2, 3]), Some((2, 5)));
    }

    #[test]
    fn subject_lists_every_group_before_the_common_name() {
        let der = subject(&["a".into(), "b".into()], "u");
        let (_, name) = x509_parser::x509::X509Name::from_der(&der).expect("valid Name");
        let orgs: Vec<_> = name
            .iter_organization()
            .map(|o| o.as_str().expect("utf8"))
            .collect();
        assert_eq!(orgs, ["a", "b"]);
        assert_eq!(name.to_string(), "O=a, O=b, CN=u");
    }
}
