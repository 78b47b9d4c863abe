//! Kubeconfig files, in the layout `kubectl config view --raw` prints.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The name used for the cluster, the user and the context, as k3s does.
pub const DEFAULT_NAME: &str = "default";

/// Renders a kubeconfig with one cluster, one user authenticating with a client
/// certificate and one context, all named `default`, and `current-context: default`.
pub fn kubeconfig_yaml(server_url: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |pem: &str| STANDARD.encode(pem.as_bytes());
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - cluster:\n    \
             certificate-authority-data: {ca}\n    \
             server: {server}\n  \
           name: {n}\n\
         contexts:\n\
         - context:\n    \
             cluster: {n}\n    \
             user: {n}\n  \
           name: {n}\n\
         current-context: {n}\n\
         preferences: {{}}\n\
         users:\n\
         - name: {n}\n  \
           user:\n    \
             client-certificate-data: {cert}\n    \
             client-key-data: {key}\n",
        ca = b64(ca_pem),
        server = yaml_quote(server_url),
        n = DEFAULT_NAME,
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

/// A YAML double-quoted scalar: safe for any URL (colons, `#`, spaces).
fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_quoted_so_yaml_keeps_them_verbatim() {
        assert_eq!(
            yaml_quote("https://127.0.0.1:6443"),
            "\"https://127.0.0.1:6443\""
        );
        assert_eq!(yaml_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
