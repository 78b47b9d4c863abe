use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;

use x509_parser::prelude::*;

use super::*;
use crate::names::first_service_ip;

const DAY: i64 = 86_400;
/// 2030-01-01T00:00:00Z: a fixed "now" so the tests do not depend on the wall clock.
const NOW: i64 = 1_893_456_000;

fn names() -> ServingNames {
    let mut names = ServingNames::for_cluster(
        first_service_ip("10.43.0.0/16").expect("cidr"),
        "cluster.local",
    );
    names.add_ip("192.0.2.10".parse().expect("ip"));
    names
}

fn all_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    [
        CA_CERT,
        CA_KEY,
        SERVING_CERT,
        SERVING_KEY,
        ADMIN_CERT,
        ADMIN_KEY,
        KUBELET_CLIENT_CERT,
        KUBELET_CLIENT_KEY,
        SA_KEY,
        SA_PUB,
    ]
    .iter()
    .map(|f| ((*f).to_owned(), fs::read(dir.join(f)).expect("file exists")))
    .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn with_cert<T>(pem_text: &str, f: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
    let (_, pem) = parse_x509_pem(pem_text.as_bytes()).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    f(&cert)
}

fn signed_by_ca(leaf_pem: &str, ca_pem: &str) -> bool {
    with_cert(ca_pem, |ca| {
        let spki = ca.public_key().clone();
        with_cert(leaf_pem, |leaf| leaf.verify_signature(Some(&spki)).is_ok())
    })
}

#[test]
fn first_start_creates_every_file_with_private_keys_at_0600() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("tls");
    let pki = ClusterPki::load_or_create_at(&dir, &names(), NOW).expect("create");
    for key in [CA_KEY, SERVING_KEY, ADMIN_KEY, SA_KEY] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }
    for cert in [CA_CERT, SERVING_CERT, ADMIN_CERT, SA_PUB] {
        assert!(dir.join(cert).is_file(), "{cert} missing");
    }
    assert_eq!(
        fs::read_to_string(dir.join(CA_CERT)).expect("read"),
        pki.ca_cert_pem
    );
    assert!(pki.sa_private_pem.contains("BEGIN PRIVATE KEY"));
    assert!(pki.sa_public_pem.contains("BEGIN PUBLIC KEY"));
    let kubeconfig = tmp.path().join("kubeconfig.yaml");
    pki.write_kubeconfig(&kubeconfig, "https://127.0.0.1:6443")
        .expect("kubeconfig");
    assert_eq!(mode(&kubeconfig), 0o600);
}

#[test]
fn second_start_reuses_every_file_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let first = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    let before = all_files(tmp.path());
    let second = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW + DAY).expect("reload");
    assert_eq!(all_files(tmp.path()), before);
    assert_eq!(first, second);
}

#[test]
fn serving_certificate_carries_every_required_name() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pki = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    let (dns, ips) = with_cert(&pki.serving_cert_pem, crate::certs::sans);
    for want in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        assert!(dns.contains(want), "missing DNS SAN {want}: {dns:?}");
    }
    for want in ["127.0.0.1", "::1", "10.43.0.1", "192.0.2.10"] {
        assert!(
            ips.contains(&want.parse::<IpAddr>().expect("ip")),
            "missing IP SAN {want}: {ips:?}"
        );
    }
    assert!(signed_by_ca(&pki.serving_cert_pem, &pki.ca_cert_pem));
    with_cert(&pki.serving_cert_pem, |cert| {
        let eku = cert
            .extended_key_usage()
            .expect("eku parses")
            .expect("eku present");
        assert!(eku.value.server_auth);
        let left = cert.validity().not_after.timestamp() - NOW;
        assert!(
            left >= 365 * DAY,
            "serving cert valid for only {} days",
            left / DAY
        );
    });
}

#[test]
fn ca_is_a_ten_year_certificate_authority() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pki = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    with_cert(&pki.ca_cert_pem, |ca| {
        assert!(ca.is_ca());
        assert!(ca.validity().not_after.timestamp() - NOW >= 3650 * DAY);
    });
}

#[test]
fn admin_certificate_is_system_masters_and_signed_by_the_ca() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pki = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    with_cert(&pki.admin_cert_pem, |cert| {
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().expect("utf8"))
            .collect();
        let orgs: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|a| a.as_str().expect("utf8"))
            .collect();
        assert_eq!(cn, ["system:admin"]);
        assert_eq!(orgs, ["system:masters"]);
        let eku = cert
            .extended_key_usage()
            .expect("eku parses")
            .expect("eku present");
        assert!(eku.value.client_auth);
    });
    assert!(signed_by_ca(&pki.admin_cert_pem, &pki.ca_cert_pem));
}

#[test]
fn kubelet_client_certificate_is_the_api_servers_identity_towards_kubelets() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pki = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    with_cert(&pki.kubelet_client_cert_pem, |cert| {
        let cn: Vec<_> = cert.subject().iter_common_name().map(|a| a.as_str().expect("utf8")).collect();
        let orgs: Vec<_> = cert.subject().iter_organization().map(|a| a.as_str().expect("utf8")).collect();
        assert_eq!(cn, ["kube-apiserver-kubelet-client"]);
        assert_eq!(orgs, ["system:masters"]);
    });
    assert!(signed_by_ca(&pki.kubelet_client_cert_pem, &pki.ca_cert_pem));
    assert_eq!(mode(&tmp.path().join(KUBELET_CLIENT_KEY)), 0o600);
    let again = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("reuse");
    assert_eq!(again.kubelet_client_cert_pem, pki.kubelet_client_cert_pem);
}

#[test]
fn kubeconfig_parses_as_yaml_with_the_admin_credentials() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pki = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    let yaml = pki.kubeconfig("https://127.0.0.1:6443");
    let doc: serde_json::Value = serde_saphyr::from_str(&yaml).expect("valid YAML");
    let b64 = |pem: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(pem)
    };
    assert_eq!(doc["apiVersion"], "v1");
    assert_eq!(doc["kind"], "Config");
    assert_eq!(doc["current-context"], "default");
    assert_eq!(doc["clusters"][0]["name"], "default");
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"],
        "https://127.0.0.1:6443"
    );
    assert_eq!(
        doc["clusters"][0]["cluster"]["certificate-authority-data"],
        b64(&pki.ca_cert_pem)
    );
    assert_eq!(doc["contexts"][0]["name"], "default");
    assert_eq!(doc["contexts"][0]["context"]["cluster"], "default");
    assert_eq!(doc["contexts"][0]["context"]["user"], "default");
    assert_eq!(doc["users"][0]["name"], "default");
    assert_eq!(
        doc["users"][0]["user"]["client-certificate-data"],
        b64(&pki.admin_cert_pem)
    );
    assert_eq!(
        doc["users"][0]["user"]["client-key-data"],
        b64(&pki.admin_key_pem)
    );
}

#[test]
fn write_kubeconfig_leaves_an_identical_file_alone_and_updates_a_changed_one() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pki =
        ClusterPki::load_or_create_at(&tmp.path().join("tls"), &names(), NOW).expect("create");
    let path = tmp.path().join("kubeconfig.yaml");
    pki.write_kubeconfig(&path, "https://127.0.0.1:6443")
        .expect("write");
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).expect("meta"));
    pki.write_kubeconfig(&path, "https://127.0.0.1:6443")
        .expect("rewrite");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).expect("meta")),
        inode
    );
    pki.write_kubeconfig(&path, "https://127.0.0.1:7443")
        .expect("new url");
    assert!(fs::read_to_string(&path)
        .expect("read")
        .contains("https://127.0.0.1:7443"));
}

#[test]
fn a_new_bind_address_reissues_only_the_serving_certificate() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let first = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    let before = all_files(tmp.path());
    let mut more = names();
    more.add_ip("198.51.100.7".parse().expect("ip"));
    let second = ClusterPki::load_or_create_at(tmp.path(), &more, NOW).expect("reload");
    let after = all_files(tmp.path());
    for unchanged in [CA_CERT, CA_KEY, ADMIN_CERT, ADMIN_KEY, SA_KEY, SA_PUB] {
        assert_eq!(before[unchanged], after[unchanged], "{unchanged} changed");
    }
    assert_ne!(before[SERVING_CERT], after[SERVING_CERT]);
    assert_ne!(first.serving_cert_pem, second.serving_cert_pem);
    let (_, ips) = with_cert(&second.serving_cert_pem, crate::certs::sans);
    assert!(ips.contains(&"198.51.100.7".parse::<IpAddr>().expect("ip")));
    assert!(signed_by_ca(&second.serving_cert_pem, &first.ca_cert_pem));
    assert_eq!(mode(&tmp.path().join(SERVING_KEY)), 0o600);
}

#[test]
fn leaf_certificates_close_to_expiry_are_reissued_but_the_ca_is_kept() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let first = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    let later = NOW + 300 * DAY;
    let second = ClusterPki::load_or_create_at(tmp.path(), &names(), later).expect("renew");
    assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
    assert_eq!(first.sa_private_pem, second.sa_private_pem);
    assert_ne!(first.serving_cert_pem, second.serving_cert_pem);
    assert_ne!(first.admin_cert_pem, second.admin_cert_pem);
    with_cert(&second.admin_cert_pem, |cert| {
        assert!(cert.validity().not_after.timestamp() - later >= 365 * DAY);
    });
}

#[test]
fn a_replaced_ca_reissues_the_leaves_it_did_not_sign() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let first = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    fs::remove_file(tmp.path().join(CA_CERT)).expect("rm");
    fs::remove_file(tmp.path().join(CA_KEY)).expect("rm");
    let second = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("recreate");
    assert_ne!(first.ca_cert_pem, second.ca_cert_pem);
    assert!(signed_by_ca(&second.serving_cert_pem, &second.ca_cert_pem));
    assert!(signed_by_ca(&second.admin_cert_pem, &second.ca_cert_pem));
    assert_eq!(
        first.sa_private_pem, second.sa_private_pem,
        "token key must survive"
    );
}

#[test]
fn half_a_ca_is_an_error_rather_than_a_silent_new_ca() {
    let tmp = tempfile::tempdir().expect("temp dir");
    ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    fs::remove_file(tmp.path().join(CA_KEY)).expect("rm");
    let err = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect_err("must refuse");
    assert!(matches!(err, Error::CaIncomplete { .. }), "{err}");
}

#[test]
fn a_missing_sa_public_key_is_derived_from_the_private_key() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let first = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    fs::remove_file(tmp.path().join(SA_PUB)).expect("rm");
    let second = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("reload");
    assert_eq!(first.sa_public_pem, second.sa_public_pem);
    assert_eq!(
        fs::read_to_string(tmp.path().join(SA_PUB)).expect("read"),
        first.sa_public_pem
    );
}

#[test]
fn issued_client_certificates_carry_user_and_groups() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let pki = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    let issued = pki
        .issue_client_cert("system:node:n1", &["system:nodes", "extra", "third"])
        .expect("issue");
    assert!(signed_by_ca(&issued.cert_pem, &pki.ca_cert_pem));
    assert!(key_matches(&issued.cert_pem, &issued.key_pem));
    with_cert(&issued.cert_pem, |cert| {
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().expect("utf8"))
            .collect();
        let orgs: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|a| a.as_str().expect("utf8"))
            .collect();
        assert_eq!(cn, ["system:node:n1"]);
        assert_eq!(orgs, ["system:nodes", "extra", "third"]);
        let eku = cert
            .extended_key_usage()
            .expect("eku parses")
            .expect("eku present");
        assert!(eku.value.client_auth);
    });
    let single = pki.issue_client_cert("jane", &[]).expect("no groups");
    assert!(signed_by_ca(&single.cert_pem, &pki.ca_cert_pem));
    assert!(
        !format!("{issued:?}").contains("PRIVATE KEY"),
        "Debug must not print the key"
    );
    assert!(
        !format!("{pki:?}").contains("PRIVATE KEY"),
        "Debug must not print keys"
    );
}

#[test]
fn a_tampered_key_file_gets_its_certificate_reissued() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let first = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("create");
    fs::write(tmp.path().join(ADMIN_KEY), &first.serving_key_pem).expect("overwrite");
    let second = ClusterPki::load_or_create_at(tmp.path(), &names(), NOW).expect("reload");
    assert_ne!(first.admin_cert_pem, second.admin_cert_pem);
    assert!(key_matches(&second.admin_cert_pem, &second.admin_key_pem));
}
