use super::*;

const EXAMPLE: &str = r#"
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.internal:5000"
      - "http://127.0.0.1:5000"
    rewrite:
      "^rancher/(.*)": "mirrored/rancher-$1"
  registry.example:
    endpoint: []
  "*":
    endpoint: ["http://127.0.0.1:5001"]
configs:
  "mirror.internal:5000":
    auth: {username: alice, password: s3cret}
    tls:
      ca_file: /etc/rkube/ca.pem
      cert_file: /etc/rkube/client.pem
      key_file: /etc/rkube/client-key.pem
  docker.io:
    auth: {auth: "Ym9iOmh1bnRlcjI="}
  secure.example:
    tls: {insecure_skip_verify: true}
"#;

#[test]
fn registries_yaml_in_the_k3s_format_parses() {
    let registries = Registries::parse(EXAMPLE).unwrap();
    assert_eq!(registries.mirrors["docker.io"].endpoint.len(), 2);
    assert_eq!(
        registries.mirrors["docker.io"].rewrite["^rancher/(.*)"],
        "mirrored/rancher-$1"
    );
    let tls = registries.configs["mirror.internal:5000"]
        .tls
        .as_ref()
        .unwrap();
    assert_eq!(tls.ca_file.as_deref(), Some("/etc/rkube/ca.pem"));
    assert!(
        registries.configs["secure.example"]
            .tls
            .as_ref()
            .unwrap()
            .insecure_skip_verify
    );
    assert_eq!(Registries::parse("").unwrap(), Registries::default());
}

#[test]
fn mirror_only_hosts_toml_makes_the_last_endpoint_the_server() {
    let files = Registries::parse(EXAMPLE)
        .unwrap()
        .hosts_files(HostsOptions::default())
        .unwrap();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        [
            "_default",
            "docker.io",
            "registry.example",
            "secure.example"
        ]
    );
    let docker = &files["docker.io"];
    let body: Vec<&str> = docker.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        body,
        [
            "server = \"http://127.0.0.1:5000\"",
            "capabilities = [\"pull\", \"resolve\"]",
            "",
            "[host.\"https://mirror.internal:5000\"]",
            "  capabilities = [\"pull\", \"resolve\"]",
            "  ca = \"/etc/rkube/ca.pem\"",
            "  client = [[\"/etc/rkube/client.pem\", \"/etc/rkube/client-key.pem\"]]",
            "",
            "[host.\"http://127.0.0.1:5000\"]",
            "  capabilities = [\"pull\", \"resolve\"]",
        ]
    );
    assert!(files["_default"].contains("server = \"http://127.0.0.1:5001\""));
    // A mirror entry without endpoints, and a TLS-only config: the registry itself.
    assert!(files["registry.example"].contains("server = \"https://registry.example\""));
    assert!(files["registry.example"].contains("[host.\"https://registry.example\"]"));
    let secure = &files["secure.example"];
    assert!(secure.contains("server = \"https://secure.example\"\ncapabilities = [\"pull\", \"resolve\"]\nskip_verify = true\n"), "{secure}");
    assert!(secure.contains("[host.\"https://secure.example\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"), "{secure}");
    // containerd 1.6 ignores a hosts.toml without a [host] table.
    assert!(files.values().all(|f| f.contains("\n[host.")));
}

#[test]
fn default_endpoint_option_falls_back_to_the_registry_like_k3s() {
    let files = Registries::parse(EXAMPLE)
        .unwrap()
        .hosts_files(HostsOptions {
            default_endpoint: true,
        })
        .unwrap();
    let docker = &files["docker.io"];
    assert!(docker.contains("server = \"https://registry-1.docker.io\""));
    assert!(docker.contains("[host.\"https://mirror.internal:5000\"]"));
    assert!(docker.contains("[host.\"http://127.0.0.1:5000\"]"));
    assert!(!files["_default"].contains("server ="));
}

#[test]
fn bad_registries_yaml_is_one_line_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    for (text, field) in [
        (
            "mirrors:\n  docker.io:\n    endpoints: [\"http://x\"]\n",
            "endpoints",
        ),
        (
            "mirrors:\n  docker.io:\n    endpoint: \"http://x\"\n",
            "endpoint",
        ),
        (
            "configs:\n  h:\n    tls: {insecure_skip_verify: maybe}\n",
            "insecure_skip_verify",
        ),
        (
            "mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n",
            "mirrors.docker.io.endpoint",
        ),
        (
            "mirrors:\n  docker.io:\n    rewrite: {\"(\": x}\n",
            "mirrors.docker.io.rewrite",
        ),
        ("mirrors: [\n", ""),
    ] {
        std::fs::write(&path, text).unwrap();
        let error = format!("{:#}", Registries::load(dir.path()).unwrap_err());
        assert!(!error.contains('\n'), "{error}");
        assert!(error.starts_with(&path.display().to_string()), "{error}");
        assert!(error.contains(field), "{field} missing from: {error}");
    }
    std::fs::remove_file(&path).unwrap();
    assert_eq!(Registries::load(dir.path()).unwrap(), Registries::default());
}

#[test]
fn credentials_are_bound_to_their_host_most_specific_first() {
    let registries = Registries::parse(EXAMPLE).unwrap();
    let creds = registries.credentials("busybox");
    let summary: Vec<(&str, &str, &str)> = creds
        .iter()
        .map(|c| {
            (
                c.server_address.as_str(),
                c.username.as_str(),
                c.auth.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("https://mirror.internal:5000", "alice", ""),
            ("https://registry-1.docker.io", "", "Ym9iOmh1bnRlcjI=")
        ]
    );
    assert_eq!(creds[0].password, "s3cret");
    assert!(registries.credentials("quay.io/x/y:1").is_empty());
}

#[test]
fn rewrite_applies_to_the_repository_path_of_the_registry() {
    let registries = Registries::parse(EXAMPLE).unwrap();
    assert_eq!(
        registries.rewrite_image("rancher/pause:3.6").as_deref(),
        Some("docker.io/mirrored/rancher-pause:3.6")
    );
    assert_eq!(
        registries
            .rewrite_image("docker.io/rancher/x@sha256:abc")
            .as_deref(),
        Some("docker.io/mirrored/rancher-x@sha256:abc")
    );
    assert_eq!(registries.rewrite_image("busybox"), None);
    assert_eq!(registries.rewrite_image("quay.io/rancher/x"), None);
    assert_eq!(image_registry("localhost:5000/a"), "localhost:5000");
    assert_eq!(image_registry("library/busybox"), "docker.io");
}

#[test]
fn write_hosts_replaces_directories_of_registries_no_longer_configured() {
    let dir = tempfile::tempdir().unwrap();
    let certs_d = dir.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join("old.example")).unwrap();
    std::fs::write(
        certs_d.join("old.example/hosts.toml"),
        "server = \"https://old.example\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(FILE), EXAMPLE).unwrap();
    write_hosts(dir.path(), &certs_d).unwrap();
    assert!(!certs_d.join("old.example").exists());
    assert!(
        std::fs::read_to_string(certs_d.join("docker.io/hosts.toml"))
            .unwrap()
            .contains("127.0.0.1:5000")
    );
    std::fs::remove_file(dir.path().join(FILE)).unwrap();
    write_hosts(dir.path(), &certs_d).unwrap();
    assert!(!certs_d.join("docker.io").exists());
}

/// Real docker-registry on loopback, real containerd, CRI PullImage through the mirror.
mod runtime {
    use super::*;
    use crate::containerd::{Containerd, Layout, Options};
    use crate::cri::{api, Cri};
    use crate::testing::registry::Registry;
    use std::time::Duration;

    #[tokio::test]
    async fn image_busybox_is_pulled_from_a_loopback_mirror_of_docker_io() {
        let registry = Registry::start().await.unwrap();
        registry
            .push_busybox("library/busybox", "latest")
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE),
            format!(
                "mirrors:\n  docker.io:\n    endpoint: [\"{}\"]\n",
                registry.url()
            ),
        )
        .unwrap();
        let layout = Layout::new(&dir.path().join("agent"));
        write_hosts(dir.path(), &layout.certs_d()).unwrap();
        let options = Options {
            sandbox_image: crate::images::PAUSE_IMAGE.into(),
            cni_conf_dir: dir.path().join("agent/cni/net.d"),
            cni_bin_dir: "/usr/lib/cni".into(),
        };
        let containerd = Containerd::start(layout, &options).await.unwrap();
        let cri = Cri::connect(&containerd.socket().display().to_string())
            .await
            .unwrap();
        let pull = |image: &str| {
            let mut client = cri.image.clone();
            let request = api::PullImageRequest {
                image: Some(api::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                auth: credentials(dir.path(), image).unwrap().into_iter().next(),
                sandbox_config: None,
            };
            async move {
                client
                    .pull_image(request)
                    .await
                    .map(|r| r.into_inner().image_ref)
            }
        };
        let image_ref = pull("busybox").await.unwrap();
        assert!(image_ref.starts_with("sha256:"), "{image_ref}");
        assert!(cri
            .has_image("docker.io/library/busybox:latest")
            .await
            .unwrap());
        let error = pull("docker.io/library/nonexistent:1").await.unwrap_err();
        assert!(error.message().contains("not found"), "{}", error.message());
        assert!(
            error.message().contains("docker.io/library/nonexistent:1"),
            "{}",
            error.message()
        );
        containerd.stop(Duration::from_secs(5)).await;
    }
}
