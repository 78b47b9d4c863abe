//! CRI configs built from a pod (pkg/kubelet/kuberuntime/kuberuntime_sandbox.go and
//! kuberuntime_container.go): sandbox config, container config, and image pull auth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SecurityContext};

use super::runtime::{
    ANNOTATION_GRACE, ANNOTATION_IMAGE, ANNOTATION_RESTART_COUNT, LABEL_CONTAINER_NAME, LABEL_MANAGED, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID,
};
use crate::cri::api;

/// Default terminationGracePeriodSeconds.
pub const DEFAULT_GRACE_SECS: i64 = 30;

/// The pod's namespace, name and uid.
pub fn pod_identity(pod: &Pod) -> (String, String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// `<pods dir>/<ns>_<name>_<uid>`, as upstream's /var/log/pods layout.
pub fn log_directory(pods_dir: &Path, pod: &Pod) -> PathBuf {
    let (ns, name, uid) = pod_identity(pod);
    pods_dir.join(format!("{ns}_{name}_{uid}"))
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
}

fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let (ns, name, uid) = pod_identity(pod);
    let mut labels: HashMap<String, String> = pod.metadata.labels.clone().unwrap_or_default().into_iter().collect();
    labels.insert(LABEL_POD_NAME.into(), name);
    labels.insert(LABEL_POD_NAMESPACE.into(), ns);
    labels.insert(LABEL_POD_UID.into(), uid);
    labels.insert(LABEL_MANAGED.into(), "rkube".into());
    labels
}

fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.as_ref();
    let mode = |host: Option<bool>| if host.unwrap_or(false) { api::NamespaceMode::Node } else { api::NamespaceMode::Pod };
    let pid = match (spec.and_then(|s| s.host_pid).unwrap_or(false), spec.and_then(|s| s.share_process_namespace).unwrap_or(false)) {
        (true, _) => api::NamespaceMode::Node,
        (false, true) => api::NamespaceMode::Pod,
        (false, false) => api::NamespaceMode::Container,
    };
    api::NamespaceOption {
        network: mode(spec.and_then(|s| s.host_network)) as i32,
        pid: pid as i32,
        ipc: mode(spec.and_then(|s| s.host_ipc)) as i32,
        ..Default::default()
    }
}

fn seccomp(profile: Option<&k8s_openapi::api::core::v1::SeccompProfile>) -> Option<api::SecurityProfile> {
    let p = profile?;
    let (profile_type, localhost_ref) = match p.type_.as_str() {
        "RuntimeDefault" => (api::security_profile::ProfileType::RuntimeDefault, String::new()),
        "Localhost" => (api::security_profile::ProfileType::Localhost, p.localhost_profile.clone().unwrap_or_default()),
        _ => (api::security_profile::ProfileType::Unconfined, String::new()),
    };
    Some(api::SecurityProfile { profile_type: profile_type as i32, localhost_ref })
}

/// The sandbox config: hostname, log directory, port mappings, labels, cgroup parent and
/// the pod-level security context.
pub fn sandbox_config(pod: &Pod, attempt: u32, log_dir: &Path, cgroup_parent: &str) -> api::PodSandboxConfig {
    let (ns, name, uid) = pod_identity(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let psc: PodSecurityContext = spec.security_context.clone().unwrap_or_default();
    // runc refuses to set a hostname without a private UTS namespace.
    let hostname = match host_network(pod) {
        true => String::new(),
        false => spec.hostname.clone().unwrap_or_else(|| name.clone()),
    };
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| api::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => api::Protocol::Udp,
                Some("SCTP") => api::Protocol::Sctp,
                _ => api::Protocol::Tcp,
            } as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let sysctls = psc.sysctls.iter().flatten().map(|s| (s.name.clone(), s.value.clone())).collect();
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata { name, uid, namespace: ns, attempt }),
        hostname,
        log_directory: log_dir.display().to_string(),
        dns_config: None,
        port_mappings,
        labels: pod_labels(pod),
        annotations: pod.metadata.annotations.clone().unwrap_or_default().into_iter().collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: psc.run_as_user.map(|value| api::Int64Value { value }),
                run_as_group: psc.run_as_group.map(|value| api::Int64Value { value }),
                supplemental_groups: psc.supplemental_groups.clone().unwrap_or_default(),
                seccomp: seccomp(psc.seccomp_profile.as_ref()),
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

/// The effective container security context: the container's over the pod's.
fn container_security(pod: &Pod, container: &Container) -> api::LinuxContainerSecurityContext {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.clone()).unwrap_or_default();
    let sc: SecurityContext = container.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let caps = sc.capabilities.clone().unwrap_or_default();
    api::LinuxContainerSecurityContext {
        capabilities: Some(api::Capability {
            add_capabilities: caps.add.unwrap_or_default(),
            drop_capabilities: caps.drop.unwrap_or_default(),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(namespace_options(pod)),
        run_as_user: sc.run_as_user.or(psc.run_as_user).map(|value| api::Int64Value { value }),
        run_as_group: sc.run_as_group.or(psc.run_as_group).map(|value| api::Int64Value { value }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: psc.supplemental_groups.unwrap_or_default(),
        no_new_privs: !sc.allow_privilege_escalation.unwrap_or(true),
        seccomp: seccomp(sc.seccomp_profile.as_ref().or(psc.seccomp_profile.as_ref())),
        // Upstream's default masked/read-only paths come from the runtime when these are empty.
        ..Default::default()
    }
}

/// Everything a container config needs beyond the pod and the container.
pub struct ContainerInputs {
    pub attempt: u32,
    pub restart_count: i32,
    pub image_ref: String,
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// Volume mounts; the volume manager fills this (later task).
    pub mounts: Vec<api::Mount>,
    pub resources: api::LinuxContainerResources,
}

/// The CRI container config.
pub fn container_config(pod: &Pod, container: &Container, inputs: ContainerInputs) -> api::ContainerConfig {
    let (ns, name, uid) = pod_identity(pod);
    let labels: HashMap<String, String> = [
        (LABEL_POD_NAME.to_owned(), name),
        (LABEL_POD_NAMESPACE.to_owned(), ns),
        (LABEL_POD_UID.to_owned(), uid),
        (LABEL_CONTAINER_NAME.to_owned(), container.name.clone()),
        (LABEL_MANAGED.to_owned(), "rkube".to_owned()),
    ]
    .into();
    let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(DEFAULT_GRACE_SECS);
    let annotations: HashMap<String, String> = [
        (ANNOTATION_RESTART_COUNT.to_owned(), inputs.restart_count.to_string()),
        (ANNOTATION_GRACE.to_owned(), grace.to_string()),
        (ANNOTATION_IMAGE.to_owned(), container.image.clone().unwrap_or_default()),
    ]
    .into();
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: container.name.clone(), attempt: inputs.attempt }),
        image: Some(api::ImageSpec { image: inputs.image_ref, user_specified_image: container.image.clone().unwrap_or_default(), ..Default::default() }),
        command: inputs.command,
        args: inputs.args,
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: inputs.env.into_iter().map(|(key, value)| api::KeyValue { key, value }).collect(),
        mounts: inputs.mounts,
        labels,
        annotations,
        log_path: format!("{}/{}.log", container.name, inputs.attempt),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(inputs.resources),
            security_context: Some(container_security(pod, container)),
        }),
        ..Default::default()
    }
}

/// The kubelet-managed /etc/hosts of a pod (upstream managedHostsFileContent): localhost
/// entries, the pod's IP with its hostname (and FQDN with a subdomain), then hostAliases.
pub fn hosts_file(pod: &Pod, pod_ip: &str) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let hostname = spec.hostname.clone().unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if !pod_ip.is_empty() {
        match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
                out.push_str(&format!("{pod_ip}\t{hostname}.{sub}.{ns}.svc.cluster.local\t{hostname}\n"));
            }
            None => out.push_str(&format!("{pod_ip}\t{hostname}\n")),
        }
    }
    let aliases = spec.host_aliases.unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            out.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.unwrap_or_default().join("\t")));
        }
    }
    out
}

/// The image reference with the default tag upstream applies (`:latest` when none).
pub fn image_with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// The pull policy: as set, else Always for `:latest`/untagged images and IfNotPresent
/// otherwise (upstream defaulting).
pub fn pull_policy(container: &Container) -> String {
    if let Some(p) = container.image_pull_policy.as_deref().filter(|p| !p.is_empty()) {
        return p.to_owned();
    }
    let image = container.image.clone().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(&image);
    if image.contains('@') {
        return "IfNotPresent".into();
    }
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent".into(),
        _ => "Always".into(),
    }
}

/// The registry host of an image reference (`docker.io` when it has none).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_owned(),
        _ => "docker.io".into(),
    }
}

/// Credentials for `image` from `.dockerconfigjson` / `.dockercfg` secret payloads.
pub fn auth_for(image: &str, docker_configs: &[Vec<u8>]) -> Option<api::AuthConfig> {
    let registry = registry_of(image);
    let matches = |key: &str| {
        let host = key.trim_start_matches("https://").trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host);
        host == registry || (registry == "docker.io" && (host == "index.docker.io" || host == "registry-1.docker.io"))
    };
    for raw in docker_configs {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) else { continue };
        let auths = v.get("auths").unwrap_or(&v);
        let Some(map) = auths.as_object() else { continue };
        for (key, entry) in map {
            if !matches(key) {
                continue;
            }
            let s = |k: &str| entry.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
            return Some(api::AuthConfig {
                username: s("username"),
                password: s("password"),
                auth: s("auth"),
                server_address: registry.clone(),
                identity_token: s("identitytoken"),
                registry_token: s("registrytoken"),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, PodSpec};
    use kube::api::ObjectMeta;

    fn pod(host_network: bool) -> Pod {
        Pod {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("dev".into()), uid: Some("u1".into()), ..Default::default() },
            spec: Some(PodSpec {
                host_network: Some(host_network),
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("busybox".into()),
                    ports: Some(vec![ContainerPort { container_port: 80, host_port: Some(8080), ..Default::default() }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sandbox_config_carries_labels_ports_and_namespaces() {
        let config = sandbox_config(&pod(false), 1, Path::new("/logs/dev_web_u1"), "/kubepods/besteffort/podu1");
        assert_eq!(config.hostname, "web");
        assert_eq!(config.labels[LABEL_POD_UID], "u1");
        assert_eq!(config.port_mappings[0].host_port, 8080);
        let linux = config.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/kubepods/besteffort/podu1");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.pid, api::NamespaceMode::Container as i32);
        assert_eq!(ns.network, api::NamespaceMode::Pod as i32);
        let host = sandbox_config(&pod(true), 0, Path::new("/l"), "/p");
        assert_eq!(host.hostname, "");
        assert_eq!(host.linux.unwrap().security_context.unwrap().namespace_options.unwrap().network, api::NamespaceMode::Node as i32);
    }

    #[test]
    fn hosts_file_names_the_pod() {
        let text = hosts_file(&pod(false), "10.42.0.7");
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.42.0.7\tweb\n"), "{text}");
    }

    #[test]
    fn pull_policy_defaults_by_tag() {
        let c = |image: &str| Container { image: Some(image.into()), ..Default::default() };
        assert_eq!(pull_policy(&c("busybox")), "Always");
        assert_eq!(pull_policy(&c("busybox:latest")), "Always");
        assert_eq!(pull_policy(&c("busybox:1.35")), "IfNotPresent");
        assert_eq!(pull_policy(&c("localhost:5000/busybox")), "Always");
        assert_eq!(pull_policy(&c("r.io/b@sha256:00")), "IfNotPresent");
        assert_eq!(image_with_default_tag("localhost:5000/busybox"), "localhost:5000/busybox:latest");
        assert_eq!(image_with_default_tag("busybox:1"), "busybox:1");
    }

    #[test]
    fn pull_secrets_match_the_image_registry() {
        let cfg = br#"{"auths":{"https://reg.example:5000":{"username":"u","password":"p","auth":"dTpw"}}}"#.to_vec();
        let auth = auth_for("reg.example:5000/app:1", std::slice::from_ref(&cfg)).unwrap();
        assert_eq!((auth.username.as_str(), auth.password.as_str()), ("u", "p"));
        assert!(auth_for("busybox", &[cfg]).is_none());
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("rkube.local/busybox:1.35"), "rkube.local");
    }
}
