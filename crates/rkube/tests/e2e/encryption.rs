//! `--encryption-provider-config`: Secrets never sit in plain text in the data files.

use crate::harness::{json, write_file, Cluster};

const CONFIG: &str = "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - PROVIDER:
          keys:
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
      - identity: {}
";

/// Whether any file under `dir` contains `needle`.
fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.filter_map(Result::ok).any(|e| {
        let path = e.path();
        if path.is_dir() {
            files_contain(&path, needle)
        } else {
            std::fs::read(&path).is_ok_and(|data| data.windows(needle.len()).any(|w| w == needle))
        }
    })
}

fn secret_is_encrypted_at_rest(provider: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_file(dir.path(), "encryption.yaml", &CONFIG.replace("PROVIDER", provider));
    let c = Cluster::start_with(&["--encryption-provider-config", config.to_str().unwrap()]);
    c.k(&["create", "secret", "generic", "db", "-n", "default", "--from-literal=password=SuperSecretValue123"]);
    c.k(&["create", "configmap", "plain", "-n", "default", "--from-literal=marker=VisibleMarkerValue77"]);
    let got = json(&c.k(&["get", "secret", "db", "-n", "default", "-o", "json"]));
    assert_eq!(got["data"]["password"], "U3VwZXJTZWNyZXRWYWx1ZTEyMw==", "kubectl does not get it decrypted");
    let yaml = c.k(&["get", "secret", "db", "-n", "default", "-o", "yaml"]);
    assert!(yaml.contains("U3VwZXJTZWNyZXRWYWx1ZTEyMw=="), "{yaml}");

    let db = c.data_dir().join("db");
    // The grep works: the ConfigMap's value is there in plain text.
    assert!(files_contain(&db, b"VisibleMarkerValue77"), "the data files do not hold the plain ConfigMap");
    assert!(!files_contain(&db, b"U3VwZXJTZWNyZXRWYWx1ZTEyMw=="), "the Secret is in plain text");
    assert!(!files_contain(&db, b"SuperSecretValue123"));
    assert!(!files_contain(&db, b"\"password\""), "the Secret's JSON is in plain text");
}

#[test]
fn secrets_are_encrypted_at_rest_with_aesgcm() {
    secret_is_encrypted_at_rest("aesgcm");
}

#[test]
fn secrets_are_encrypted_at_rest_with_aescbc() {
    secret_is_encrypted_at_rest("aescbc");
}
