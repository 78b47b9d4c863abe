//! Private registries and mirrors: `<data-dir>/registries.yaml`, in the format k3s users know,
//! translated into containerd's `certs.d/<registry>/hosts.toml` files.
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//!     rewrite: {"^rancher/(.*)": "mirrored/$1"}
//! configs:
//!   "127.0.0.1:5000":
//!     auth: {username: u, password: p}        # or auth: <base64 user:pass>, identity_token
//!     tls: {ca_file: ..., cert_file: ..., key_file: ..., insecure_skip_verify: false}
//! ```
//!
//! Differences from k3s, and why:
//! - containerd 1.6's `hosts.toml` always appends the registry's own server (for `docker.io`,
//!   `registry-1.docker.io`) after the mirrors unless `server` names something else. A registry
//!   with mirror endpoints is served **only** by those mirrors here: the last endpoint becomes
//!   `server`. With no internet (DESIGN.md, network safety) the fallback could only send DNS
//!   and TLS attempts off the machine and would replace the mirror's answer ("not found") in
//!   the pull error with a connection error. [`HostsOptions::default_endpoint`] restores the
//!   k3s behaviour (fallback to the registry itself).
//! - `hosts.toml` in containerd 1.6 holds no credentials, so [`Registries::credentials`]
//!   returns CRI `AuthConfig`s the kubelet passes on `PullImage`, each bound to one host by
//!   its `server_address` (containerd sends it to that host only).
//! - containerd 1.6 has no `rewrite`; [`Registries::rewrite_image`] applies it to the image
//!   reference the kubelet pulls (equivalent when the registry is mirror-only, as here).
//! - The `*` mirror becomes certs.d's `_default` directory (used for registries without their
//!   own directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::cri::api::AuthConfig;

/// The file name under the data dir.
pub const FILE: &str = "registries.yaml";

/// The whole registries.yaml.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// Mirrors per registry host (`docker.io`, `registry.example:5000`, or `*`).
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    /// Auth and TLS per registry or endpoint host (`host[:port]`).
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

/// One registry's mirrors.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Endpoint URLs tried in order (`http://` allowed; no scheme means `https://`).
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// Repository rewrites: regular expression → replacement (`$1` groups).
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

/// Auth and TLS for one host.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(default)]
    pub auth: Option<RegistryAuth>,
    #[serde(default)]
    pub tls: Option<RegistryTls>,
}

/// Credentials, as in k3s (and CRI's AuthConfig).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// base64 of `username:password`.
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub identity_token: Option<String>,
}

/// TLS settings for one host.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryTls {
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// How `hosts.toml` files are written.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostsOptions {
    /// Fall back to the registry itself after its mirrors (k3s's default; off in rkube).
    pub default_endpoint: bool,
}

/// A parsed endpoint URL: scheme, `host[:port]`, and the full URL for `hosts.toml`.
#[derive(Clone, Debug, PartialEq)]
struct Endpoint {
    url: String,
    host: String,
}

fn parse_endpoint(raw: &str) -> anyhow::Result<Endpoint> {
    let url = if raw.contains("://") {
        raw.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", raw.trim_end_matches('/'))
    };
    let (scheme, rest) = url.split_once("://").expect("scheme added above");
    anyhow::ensure!(
        matches!(scheme, "http" | "https"),
        "endpoint {raw:?}: scheme must be http or https"
    );
    let host = rest.split('/').next().unwrap_or_default();
    anyhow::ensure!(
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c)),
        "endpoint {raw:?} has no valid host"
    );
    Ok(Endpoint {
        host: host.to_owned(),
        url,
    })
}

/// Where the registry itself is served when nothing else is configured (containerd's rule).
fn default_server(registry: &str) -> String {
    if registry == "docker.io" {
        "https://registry-1.docker.io".into()
    } else {
        format!("https://{registry}")
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

impl Registries {
    /// Reads `<data_dir>/registries.yaml`; a missing file means no registries configured.
    /// A bad file is a one-line error naming the file and what is wrong where.
    pub fn load(data_dir: &Path) -> anyhow::Result<Registries> {
        let path = data_dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registries::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Registries::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses registries.yaml text and checks every endpoint and rewrite.
    pub fn parse(text: &str) -> anyhow::Result<Registries> {
        if text.trim().is_empty() {
            return Ok(Registries::default());
        }
        // The path of the failing field (serde_path_to_error) plus the parser's own first line
        // ("line 3 column 5: unknown field ..."), without the source snippet.
        let mut field = String::new();
        let mut options = serde_saphyr::Options::default();
        options.with_snippet = false;
        let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                field = e.path().to_string();
                e.into_inner()
            })
        });
        let registries: Registries = parsed.map_err(|e| {
            let message = e.to_string();
            let message = message
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .trim_start_matches("error: ");
            match field.as_str() {
                "" | "." => anyhow::anyhow!("{message}"),
                field => anyhow::anyhow!("{field}: {message}"),
            }
        })?;
        for (registry, mirror) in &registries.mirrors {
            for endpoint in &mirror.endpoint {
                parse_endpoint(endpoint).with_context(|| format!("mirrors.{registry}.endpoint"))?;
            }
            for pattern in mirror.rewrite.keys() {
                regex::Regex::new(pattern).map_err(|e| {
                    anyhow::anyhow!(
                        "mirrors.{registry}.rewrite: bad pattern {pattern:?}: {}",
                        e.to_string().lines().last().unwrap_or_default()
                    )
                })?;
            }
        }
        Ok(registries)
    }

    fn tls_lines(&self, host: &str, prefix: &str) -> String {
        let Some(tls) = self.configs.get(host).and_then(|c| c.tls.as_ref()) else {
            return String::new();
        };
        let mut out = String::new();
        if let Some(ca) = &tls.ca_file {
            out.push_str(&format!("{prefix}ca = {}\n", toml_string(ca)));
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => out.push_str(&format!(
                "{prefix}client = [[{}, {}]]\n",
                toml_string(cert),
                toml_string(key)
            )),
            (Some(cert), None) => {
                out.push_str(&format!("{prefix}client = {}\n", toml_string(cert)))
            }
            _ => {}
        }
        if tls.insecure_skip_verify {
            out.push_str(&format!("{prefix}skip_verify = true\n"));
        }
        out
    }

    /// The `hosts.toml` files to write: directory name under certs.d → content (pure).
    pub fn hosts_files(&self, options: HostsOptions) -> anyhow::Result<BTreeMap<String, String>> {
        let mut files = BTreeMap::new();
        for (registry, mirror) in &self.mirrors {
            let mut endpoints = mirror
                .endpoint
                .iter()
                .map(|e| parse_endpoint(e))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let dir = if registry == "*" {
                "_default".to_owned()
            } else {
                registry.clone()
            };
            let server = match endpoints.last() {
                Some(last) if !options.default_endpoint => Some(last.clone()),
                // `*` has no server of its own: without `server`, containerd falls back to
                // the requested registry itself.
                _ if registry == "*" => None,
                _ => Some(parse_endpoint(&default_server(registry))?),
            };
            if endpoints.is_empty() {
                endpoints.extend(server.clone());
            }
            if endpoints.is_empty() {
                continue;
            }
            files.insert(dir, self.hosts_toml(server.as_ref(), &endpoints));
        }
        // Registries with only TLS settings (no mirror): the registry itself, with them.
        for (host, config) in &self.configs {
            let is_endpoint = self.mirrors.values().any(|m| {
                m.endpoint
                    .iter()
                    .any(|e| parse_endpoint(e).is_ok_and(|e| &e.host == host))
            });
            if config.tls.is_none()
                || files.contains_key(host)
                || self.mirrors.contains_key(host)
                || is_endpoint
            {
                continue;
            }
            let server = parse_endpoint(&default_server(host))?;
            files.insert(
                host.clone(),
                self.hosts_toml(Some(&server), std::slice::from_ref(&server)),
            );
        }
        Ok(files)
    }

    /// One `hosts.toml`. containerd 1.6 rejects a file without a `[host]` table (and then
    /// ignores it, falling back to the registry itself), so every endpoint is listed as a
    /// host, the server included: it is tried last, as containerd's root entry.
    fn hosts_toml(&self, server: Option<&Endpoint>, hosts: &[Endpoint]) -> String {
        let mut text =
            String::from("# Generated by rkube from registries.yaml; rewritten at every start.\n");
        if let Some(server) = server {
            text.push_str(&format!("server = {}\n", toml_string(&server.url)));
            text.push_str("capabilities = [\"pull\", \"resolve\"]\n");
            text.push_str(&self.tls_lines(&server.host, ""));
        }
        for host in hosts {
            text.push_str(&format!(
                "\n[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n",
                toml_string(&host.url)
            ));
            text.push_str(&self.tls_lines(&host.host, "  "));
        }
        text
    }

    /// CRI credentials for pulling `image` (a reference as in a pod spec), most specific
    /// first: one per mirror endpoint of the image's registry that has auth configured, then
    /// the registry's own. Each carries `server_address`, so containerd sends it only there.
    pub fn credentials(&self, image: &str) -> Vec<AuthConfig> {
        let registry = image_registry(image);
        let mut hosts: Vec<(String, String)> = Vec::new();
        let mirror = self
            .mirrors
            .get(&registry)
            .or_else(|| self.mirrors.get("*"));
        for endpoint in mirror.map(|m| m.endpoint.as_slice()).unwrap_or_default() {
            if let Ok(endpoint) = parse_endpoint(endpoint) {
                let (scheme, _) = endpoint
                    .url
                    .split_once("://")
                    .expect("parsed endpoints have a scheme");
                hosts.push((
                    endpoint.host.clone(),
                    format!("{scheme}://{}", endpoint.host),
                ));
            }
        }
        let own = default_server(&registry);
        hosts.push((registry.clone(), own.clone()));
        hosts
            .into_iter()
            .filter_map(|(host, server_address)| {
                let auth = self.configs.get(&host)?.auth.as_ref()?;
                Some(AuthConfig {
                    username: auth.username.clone().unwrap_or_default(),
                    password: auth.password.clone().unwrap_or_default(),
                    auth: auth.auth.clone().unwrap_or_default(),
                    server_address,
                    identity_token: auth.identity_token.clone().unwrap_or_default(),
                    registry_token: String::new(),
                })
            })
            .collect()
    }

    /// The reference to pull for `image` after its registry's `rewrite` rules (the first
    /// matching pattern, in key order, rewrites the repository path), or `None` if no rule
    /// applies. `busybox` is `docker.io/library/busybox`.
    pub fn rewrite_image(&self, image: &str) -> Option<String> {
        let registry = image_registry(image);
        let mirror = self.mirrors.get(&registry)?;
        let (repository, suffix) = split_repository(image);
        for (pattern, replacement) in &mirror.rewrite {
            let regex = regex::Regex::new(pattern).ok()?;
            if regex.is_match(&repository) {
                let rewritten = regex.replace(&repository, replacement.as_str());
                return Some(format!("{registry}/{rewritten}{suffix}"));
            }
        }
        None
    }
}

/// The registry host of an image reference, with Docker's defaults (`busybox` → `docker.io`).
pub fn image_registry(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "index.docker.io" {
                "docker.io".into()
            } else {
                first.to_owned()
            }
        }
        _ => "docker.io".into(),
    }
}

/// The repository path of `image` within its registry, and the rest (`:tag`, `@digest`).
fn split_repository(image: &str) -> (String, String) {
    let registry = image_registry(image);
    let path = match image.split_once('/') {
        Some((first, rest)) if first == registry || first == "index.docker.io" => rest,
        _ => image,
    };
    let (name, suffix) = match path.find('@') {
        Some(at) => path.split_at(at),
        None => match path.rfind(':') {
            Some(colon) if !path[colon..].contains('/') => path.split_at(colon),
            _ => (path, ""),
        },
    };
    let name = if registry == "docker.io" && !name.contains('/') {
        format!("library/{name}")
    } else {
        name.to_owned()
    };
    (name, suffix.to_owned())
}

/// Writes containerd's `hosts.toml` files for `<data_dir>/registries.yaml` into `certs_d`
/// (`containerd::Layout::certs_d()`), mirror-only (see the module docs), and removes
/// directories of registries no longer configured. Call before starting containerd.
pub fn write_hosts(data_dir: &Path, certs_d: &Path) -> anyhow::Result<()> {
    write_hosts_with(data_dir, certs_d, HostsOptions::default())
}

/// [`write_hosts`] with explicit options.
pub fn write_hosts_with(
    data_dir: &Path,
    certs_d: &Path,
    options: HostsOptions,
) -> anyhow::Result<()> {
    let files = Registries::load(data_dir)?.hosts_files(options)?;
    std::fs::create_dir_all(certs_d)
        .with_context(|| format!("cannot create {}", certs_d.display()))?;
    for entry in
        std::fs::read_dir(certs_d).with_context(|| format!("cannot read {}", certs_d.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !files.contains_key(&name) && entry.path().join("hosts.toml").exists() {
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    for (dir, text) in files {
        let dir: PathBuf = certs_d.join(dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("hosts.toml");
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// [`Registries::credentials`] for `image` from `<data_dir>/registries.yaml`.
pub fn credentials(data_dir: &Path, image: &str) -> anyhow::Result<Vec<AuthConfig>> {
    Ok(Registries::load(data_dir)?.credentials(image))
}

#[cfg(test)]
#[path = "registries_tests.rs"]
mod tests;
