//! Pod and pod-spec defaults: SetDefaults_Pod, SetDefaults_PodSpec, SetDefaults_Container and
//! the defaulters of everything a pod spec embeds (volumes, probes, ports, env), plus the
//! status the pod strategy sets on create.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    AzureDiskVolumeSource, Container, ContainerPort, EnvVar, EphemeralContainer, Lifecycle, Pod,
    PodCondition, PodSecurityContext, PodSpec, PodStatus, PodTemplateSpec, Probe,
    ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::image::pull_policy_for;
use super::{or_set, or_set_str, persistent_volume_claim_spec, Creating};

/// Defaults a whole Pod: SetDefaults_Pod, then the pod spec, then (on create) the status the
/// pod strategy's PrepareForCreate sets.
pub(super) fn pod(pod: &mut Pod, Creating(creating): Creating) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    pod_only(spec);
    pod_spec(spec);
    if creating {
        pod.status = Some(create_status(spec));
    }
}

/// Defaults the pod spec of a template (PodTemplate, workloads). Unlike a Pod, a template does
/// not get SetDefaults_Pod (requests from limits, enableServiceLinks, host ports).
///
/// The template's metadata is a plain struct in Go, printed as `metadata: {}` even when empty.
pub(crate) fn pod_template(template: &mut PodTemplateSpec) {
    or_set(&mut template.metadata, Default::default());
    pod_spec(template.spec.get_or_insert_with(PodSpec::default));
}

/// SetDefaults_Pod: requests default to limits, enableServiceLinks true, and with host
/// networking every container port is also a host port.
fn pod_only(spec: &mut PodSpec) {
    let host_network = spec.host_network == Some(true);
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        if let Some(resources) = container.resources.as_mut() {
            requests_from_limits(resources);
        }
        if host_network {
            for port in container.ports.iter_mut().flatten() {
                if port.host_port.unwrap_or(0) == 0 {
                    port.host_port = Some(port.container_port);
                }
            }
        }
    }
    or_set(&mut spec.enable_service_links, true);
}

fn requests_from_limits(resources: &mut ResourceRequirements) {
    let Some(limits) = resources.limits.as_ref() else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (key, value) in limits {
        requests.entry(key.clone()).or_insert_with(|| value.clone());
    }
}

/// SetDefaults_PodSpec and the generated defaults of its volumes and containers.
fn pod_spec(spec: &mut PodSpec) {
    or_set_str(&mut spec.dns_policy, "ClusterFirst");
    or_set_str(&mut spec.restart_policy, "Always");
    or_set(&mut spec.security_context, PodSecurityContext::default());
    or_set(&mut spec.termination_grace_period_seconds, 30);
    or_set_str(&mut spec.scheduler_name, "default-scheduler");
    for volume in spec.volumes.iter_mut().flatten() {
        volume_defaults(volume);
    }
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        container_defaults(container);
    }
    for container in spec.ephemeral_containers.iter_mut().flatten() {
        ephemeral_container_defaults(container);
    }
}

/// SetDefaults_Container and the generated defaults of ports, env, probes and lifecycle.
fn container_defaults(c: &mut Container) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        c.image_pull_policy = Some(pull_policy_for(c.image.as_deref().unwrap_or("")).to_owned());
    }
    or_set_str(&mut c.termination_message_path, "/dev/termination-log");
    or_set_str(&mut c.termination_message_policy, "File");
    // ResourceRequirements is a plain struct in Go: upstream always prints `resources: {}`.
    or_set(&mut c.resources, ResourceRequirements::default());
    ports_defaults(c.ports.iter_mut().flatten());
    env_defaults(c.env.iter_mut().flatten());
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ] {
        if let Some(probe) = probe.as_mut() {
            probe_defaults(probe);
        }
    }
    if let Some(lifecycle) = c.lifecycle.as_mut() {
        lifecycle_defaults(lifecycle);
    }
}

/// SetDefaults_EphemeralContainer: the same defaults as a container. EphemeralContainer is a
/// separate type in k8s-openapi with the container's fields plus `targetContainerName`, so it
/// is defaulted through a Container and the defaulted fields are copied back.
fn ephemeral_container_defaults(ec: &mut EphemeralContainer) {
    let mut c = Container {
        image: ec.image.clone(),
        image_pull_policy: ec.image_pull_policy.take(),
        termination_message_path: ec.termination_message_path.take(),
        termination_message_policy: ec.termination_message_policy.take(),
        resources: ec.resources.take(),
        ports: ec.ports.take(),
        env: ec.env.take(),
        liveness_probe: ec.liveness_probe.take(),
        readiness_probe: ec.readiness_probe.take(),
        startup_probe: ec.startup_probe.take(),
        lifecycle: ec.lifecycle.take(),
        ..Container::default()
    };
    container_defaults(&mut c);
    ec.image_pull_policy = c.image_pull_policy;
    ec.termination_message_path = c.termination_message_path;
    ec.termination_message_policy = c.termination_message_policy;
    ec.resources = c.resources;
    ec.ports = c.ports;
    ec.env = c.env;
    ec.liveness_probe = c.liveness_probe;
    ec.readiness_probe = c.readiness_probe;
    ec.startup_probe = c.startup_probe;
    ec.lifecycle = c.lifecycle;
}

fn ports_defaults<'a>(ports: impl Iterator<Item = &'a mut ContainerPort>) {
    for port in ports {
        or_set_str(&mut port.protocol, "TCP");
    }
}

/// SetDefaults_ObjectFieldSelector on env fieldRefs: apiVersion v1.
fn env_defaults<'a>(env: impl Iterator<Item = &'a mut EnvVar>) {
    for var in env {
        if let Some(field_ref) = var.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            or_set_str(&mut field_ref.api_version, "v1");
        }
    }
}

/// SetDefaults_Probe, SetDefaults_HTTPGetAction and the gRPC service default.
fn probe_defaults(probe: &mut Probe) {
    set_if_zero(&mut probe.timeout_seconds, 1);
    set_if_zero(&mut probe.period_seconds, 10);
    set_if_zero(&mut probe.success_threshold, 1);
    set_if_zero(&mut probe.failure_threshold, 3);
    if let Some(http_get) = probe.http_get.as_mut() {
        or_set_str(&mut http_get.path, "/");
        or_set_str(&mut http_get.scheme, "HTTP");
    }
    if let Some(grpc) = probe.grpc.as_mut() {
        or_set(&mut grpc.service, String::new());
    }
}

fn lifecycle_defaults(lifecycle: &mut Lifecycle) {
    for handler in [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
        .into_iter()
        .flatten()
    {
        if let Some(http_get) = handler.http_get.as_mut() {
            or_set_str(&mut http_get.path, "/");
            or_set_str(&mut http_get.scheme, "HTTP");
        }
    }
}

/// Go's `if x == 0 { x = value }` on a non-pointer integer.
fn set_if_zero(slot: &mut Option<i32>, value: i32) {
    if slot.unwrap_or(0) == 0 {
        *slot = Some(value);
    }
}

/// SetDefaults_Volume and the defaulters of each volume source.
fn volume_defaults(volume: &mut Volume) {
    if !has_source(volume) {
        volume.empty_dir = Some(Default::default());
    }
    if let Some(host_path) = volume.host_path.as_mut() {
        or_set(&mut host_path.type_, String::new());
    }
    if let Some(secret) = volume.secret.as_mut() {
        or_set(&mut secret.default_mode, 0o644);
    }
    if let Some(config_map) = volume.config_map.as_mut() {
        or_set(&mut config_map.default_mode, 0o644);
    }
    if let Some(downward_api) = volume.downward_api.as_mut() {
        or_set(&mut downward_api.default_mode, 0o644);
        for item in downward_api.items.iter_mut().flatten() {
            if let Some(field_ref) = item.field_ref.as_mut() {
                or_set_str(&mut field_ref.api_version, "v1");
            }
        }
    }
    if let Some(projected) = volume.projected.as_mut() {
        or_set(&mut projected.default_mode, 0o644);
        for source in projected.sources.iter_mut().flatten() {
            for item in source
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                if let Some(field_ref) = item.field_ref.as_mut() {
                    or_set_str(&mut field_ref.api_version, "v1");
                }
            }
            if let Some(token) = source.service_account_token.as_mut() {
                or_set(&mut token.expiration_seconds, 3600);
            }
        }
    }
    if let Some(iscsi) = volume.iscsi.as_mut() {
        or_set_str(&mut iscsi.iscsi_interface, "default");
    }
    if let Some(rbd) = volume.rbd.as_mut() {
        or_set_str(&mut rbd.pool, "rbd");
        or_set_str(&mut rbd.user, "admin");
        or_set_str(&mut rbd.keyring, "/etc/ceph/keyring");
    }
    if let Some(disk) = volume.azure_disk.as_mut() {
        azure_disk(disk);
    }
    if let Some(scale_io) = volume.scale_io.as_mut() {
        or_set_str(&mut scale_io.storage_mode, "ThinProvisioned");
        or_set_str(&mut scale_io.fs_type, "xfs");
    }
    let claim_template = volume
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut());
    if let Some(template) = claim_template {
        persistent_volume_claim_spec(&mut template.spec);
    }
}

/// Whether a volume names any source (Go: not all pointer fields of VolumeSource are nil).
fn has_source(v: &Volume) -> bool {
    v.aws_elastic_block_store.is_some()
        || v.azure_disk.is_some()
        || v.azure_file.is_some()
        || v.cephfs.is_some()
        || v.cinder.is_some()
        || v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.fc.is_some()
        || v.flex_volume.is_some()
        || v.flocker.is_some()
        || v.gce_persistent_disk.is_some()
        || v.git_repo.is_some()
        || v.glusterfs.is_some()
        || v.host_path.is_some()
        || v.image.is_some()
        || v.iscsi.is_some()
        || v.nfs.is_some()
        || v.persistent_volume_claim.is_some()
        || v.photon_persistent_disk.is_some()
        || v.portworx_volume.is_some()
        || v.projected.is_some()
        || v.quobyte.is_some()
        || v.rbd.is_some()
        || v.scale_io.is_some()
        || v.secret.is_some()
        || v.storageos.is_some()
        || v.vsphere_volume.is_some()
}

/// SetDefaults_AzureDiskVolumeSource.
pub(super) fn azure_disk(disk: &mut AzureDiskVolumeSource) {
    or_set(&mut disk.caching_mode, "ReadWrite".to_owned());
    or_set(&mut disk.kind, "Shared".to_owned());
    or_set(&mut disk.fs_type, "ext4".to_owned());
    or_set(&mut disk.read_only, false);
}

/// The status the pod strategy's PrepareForCreate sets: phase Pending, the QoS class, and
/// `PodScheduled=False` (reason SchedulingGated) while scheduling gates remain.
fn create_status(spec: &PodSpec) -> PodStatus {
    let mut status = PodStatus {
        phase: Some("Pending".to_owned()),
        qos_class: Some(qos_class(spec).to_owned()),
        ..PodStatus::default()
    };
    if spec
        .scheduling_gates
        .as_ref()
        .is_some_and(|gates| !gates.is_empty())
    {
        status.conditions = Some(vec![PodCondition {
            type_: "PodScheduled".to_owned(),
            status: "False".to_owned(),
            reason: Some("SchedulingGated".to_owned()),
            message: Some("Scheduling is blocked due to non-empty scheduling gates".to_owned()),
            ..PodCondition::default()
        }]);
    }
    status
}

/// The QoS class (`pkg/apis/core/helper/qos`), over cpu and memory of regular and init
/// containers: BestEffort without any non-zero request or limit, Guaranteed when every
/// container limits both and requests equal limits, Burstable otherwise. Quantities are
/// compared as written (requests defaulted from limits are textually equal).
pub(crate) fn qos_class(spec: &PodSpec) -> &'static str {
    const COMPUTE: [&str; 2] = ["cpu", "memory"];
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let mut any_set = false;
    let mut guaranteed = true;
    for container in containers {
        let resources = container.resources.as_ref();
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        let positive = |map: Option<&BTreeMap<String, Quantity>>, name: &str| {
            map.and_then(|m| m.get(name))
                .filter(|q| !quantity_is_zero(q))
                .cloned()
        };
        for name in COMPUTE {
            let request = positive(requests, name);
            let limit = positive(limits, name);
            any_set |= request.is_some() || limit.is_some();
            match (request, limit) {
                (_, None) => guaranteed = false,
                (Some(request), Some(limit)) if request != limit => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any_set {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Whether a quantity is zero: only zero digits before its suffix.
fn quantity_is_zero(q: &Quantity) -> bool {
    let number = q.0.trim_start_matches(['+', '-']);
    let digits: String = number
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    !digits.is_empty() && digits.chars().all(|c| c == '0' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HTTPGetAction, PodSchedulingGate};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn container(name: &str) -> Container {
        Container {
            name: name.to_owned(),
            image: Some("busybox:1.36".to_owned()),
            ..Default::default()
        }
    }

    fn resources(
        requests: &[(&str, &str)],
        limits: &[(&str, &str)],
    ) -> Option<ResourceRequirements> {
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
                    .collect()
            })
        };
        Some(ResourceRequirements {
            requests: map(requests),
            limits: map(limits),
            ..Default::default()
        })
    }

    #[test]
    fn pod_requests_default_to_limits_and_make_it_guaranteed() {
        let mut c = container("app");
        c.resources = resources(&[], &[("cpu", "500m"), ("memory", "64Mi")]);
        let mut p = Pod {
            spec: Some(PodSpec {
                containers: vec![c],
                ..Default::default()
            }),
            ..Default::default()
        };
        pod(&mut p, Creating(true));
        let spec = p.spec.as_ref().expect("spec is set");
        let requests = spec.containers[0]
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .expect("requests");
        assert_eq!(requests["cpu"], Quantity("500m".into()));
        assert_eq!(requests["memory"], Quantity("64Mi".into()));
        let status = p.status.expect("status on create");
        assert_eq!(status.qos_class.as_deref(), Some("Guaranteed"));
        assert_eq!(status.phase.as_deref(), Some("Pending"));
    }

    #[test]
    fn qos_is_burstable_when_only_some_resources_are_limited() {
        let mut c = container("app");
        c.resources = resources(&[("cpu", "100m")], &[]);
        let spec = PodSpec {
            containers: vec![c],
            ..Default::default()
        };
        assert_eq!(qos_class(&spec), "Burstable");
        let mut zero = container("zero");
        zero.resources = resources(&[("cpu", "0")], &[]);
        assert_eq!(
            qos_class(&PodSpec {
                containers: vec![zero],
                ..Default::default()
            }),
            "BestEffort"
        );
    }

    #[test]
    fn probes_and_http_handlers_get_their_defaults() {
        let mut c = container("app");
        c.liveness_probe = Some(Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(8080),
                ..Default::default()
            }),
            period_seconds: Some(0),
            ..Default::default()
        });
        container_defaults(&mut c);
        let probe = c.liveness_probe.expect("probe kept");
        assert_eq!(
            (
                probe.timeout_seconds,
                probe.period_seconds,
                probe.success_threshold,
                probe.failure_threshold
            ),
            (Some(1), Some(10), Some(1), Some(3))
        );
        let http_get = probe.http_get.expect("httpGet kept");
        assert_eq!(http_get.path.as_deref(), Some("/"));
        assert_eq!(http_get.scheme.as_deref(), Some("HTTP"));
    }

    #[test]
    fn host_network_pods_expose_container_ports_on_the_host() {
        let mut c = container("app");
        c.ports = Some(vec![ContainerPort {
            container_port: 8080,
            ..Default::default()
        }]);
        let mut p = Pod {
            spec: Some(PodSpec {
                containers: vec![c],
                host_network: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        pod(&mut p, Creating(false));
        let spec = p.spec.expect("spec");
        let port = &spec.containers[0].ports.as_ref().expect("ports")[0];
        assert_eq!(port.host_port, Some(8080));
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert!(p.status.is_none(), "no create-time status on update");
    }

    #[test]
    fn templates_do_not_get_pod_only_defaults() {
        let mut t = PodTemplateSpec {
            spec: Some(PodSpec {
                containers: vec![container("app")],
                ..Default::default()
            }),
            ..Default::default()
        };
        pod_template(&mut t);
        let spec = t.spec.expect("spec");
        assert_eq!(spec.enable_service_links, None);
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
    }

    #[test]
    fn volumes_without_a_source_become_empty_dirs_and_modes_default_to_0644() {
        let mut spec = PodSpec {
            volumes: Some(vec![
                Volume {
                    name: "scratch".into(),
                    ..Default::default()
                },
                Volume {
                    name: "cfg".into(),
                    config_map: Some(Default::default()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        pod_spec(&mut spec);
        let volumes = spec.volumes.expect("volumes");
        assert!(volumes[0].empty_dir.is_some());
        assert_eq!(
            volumes[1].config_map.as_ref().and_then(|c| c.default_mode),
            Some(420)
        );
    }

    #[test]
    fn scheduling_gates_add_the_gated_condition_on_create() {
        let spec = PodSpec {
            containers: vec![container("app")],
            scheduling_gates: Some(vec![PodSchedulingGate {
                name: "example.com/wait".into(),
            }]),
            ..Default::default()
        };
        let status = create_status(&spec);
        let conditions = status.conditions.expect("conditions");
        assert_eq!(conditions[0].type_, "PodScheduled");
        assert_eq!(conditions[0].reason.as_deref(), Some("SchedulingGated"));
    }
}
