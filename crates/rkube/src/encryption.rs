//! `--encryption-provider-config`: reads upstream's EncryptionConfiguration
//! (`apiserver.config.k8s.io/v1`) into the store's encryption rules.
//!
//! ```yaml
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: EncryptionConfiguration
//! resources:
//!   - resources: [secrets]
//!     providers:
//!       - aesgcm: {keys: [{name: key1, secret: <base64 of 16 or 32 bytes>}]}
//!       - identity: {}
//! ```
//!
//! Providers: `aescbc`, `aesgcm`, `identity` (others are refused by name). Resources are
//! `plural` (core) or `plural.group`; `*.*` means every resource.

use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine;
use rkube_store::encryption::{Provider, Rule};
use serde_json::Value;

pub fn load(path: &Path) -> anyhow::Result<Vec<Rule>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("--encryption-provider-config {}", path.display()))
}

pub fn parse(text: &str) -> anyhow::Result<Vec<Rule>> {
    let doc: Value = serde_saphyr::from_str(text).context("not valid YAML")?;
    if doc["kind"] != "EncryptionConfiguration" {
        bail!("kind must be EncryptionConfiguration");
    }
    let mut rules = Vec::new();
    for entry in doc["resources"].as_array().context("resources must be a list")? {
        let mut prefixes = Vec::new();
        for name in entry["resources"].as_array().context("resources[].resources must be a list")? {
            let name = name.as_str().context("a resource name must be a string")?;
            prefixes.push(storage_prefix(name)?);
        }
        let mut providers = Vec::new();
        for p in entry["providers"].as_array().context("resources[].providers must be a list")? {
            providers.push(provider(p)?);
        }
        rules.push(Rule { prefixes, providers });
    }
    rkube_store::encryption::validate(&rules).map_err(anyhow::Error::msg)?;
    Ok(rules)
}

fn storage_prefix(name: &str) -> anyhow::Result<String> {
    if name == "*.*" {
        return Ok("/registry/".into());
    }
    let (plural, group) = name.split_once('.').unwrap_or((name, ""));
    let info = rkube_api::resources::RESOURCES
        .iter()
        .find(|r| r.plural == plural && r.group == group)
        .with_context(|| format!("unknown resource {name:?}"))?;
    Ok(info.storage_prefix())
}

fn provider(p: &Value) -> anyhow::Result<Provider> {
    let object = p.as_object().context("a provider must be a map")?;
    let (kind, body) = object.iter().next().context("empty provider")?;
    let keys = || -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for key in body["keys"].as_array().with_context(|| format!("{kind}.keys must be a list"))? {
            let name = key["name"].as_str().with_context(|| format!("{kind} key without a name"))?;
            let secret = key["secret"].as_str().with_context(|| format!("{kind} key {name} without a secret"))?;
            let secret = base64::engine::general_purpose::STANDARD
                .decode(secret)
                .with_context(|| format!("{kind} key {name}: the secret is not base64"))?;
            out.push((name.to_string(), secret));
        }
        Ok(out)
    };
    match kind.as_str() {
        "identity" => Ok(Provider::Identity),
        "aesgcm" => Ok(Provider::AesGcm(keys()?)),
        "aescbc" => Ok(Provider::AesCbc(keys()?)),
        other => bail!("provider {other} is not supported (use aescbc, aesgcm or identity)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, leases.coordination.k8s.io]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
      - identity: {}
";

    #[test]
    fn parses_upstream_configuration() {
        let rules = parse(CONFIG).unwrap();
        assert_eq!(rules[0].prefixes, ["/registry/secrets/", "/registry/leases/"]);
        assert_eq!(format!("{:?}", rules[0].providers), "[aescbc[\"key1\"], identity]");
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        for (bad, why) in [
            (CONFIG.replace("aescbc", "kms"), "kms"),
            (CONFIG.replace("secrets,", "widgets,"), "widgets"),
            (CONFIG.replace("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAEC"), "bytes"),
            (CONFIG.replace("EncryptionConfiguration", "Other"), "kind"),
        ] {
            let e = format!("{:#}", parse(&bad).unwrap_err());
            assert!(e.contains(why), "{e}");
        }
    }
}
