//! Container environment as upstream's kubelet builds it (pkg/kubelet/kubelet_pods.go
//! makeEnvironmentVariables): service links, `envFrom`, `env` with `value` (with `$(VAR)`
//! expansion), `configMapKeyRef`, `secretKeyRef`, `fieldRef` and `resourceFieldRef`; and the
//! `$(VAR)` expansion of command and args (third_party/forked/golang/expansion).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::Api;
use rkube_api::quantity::Quantity as Parsed;

/// Why a container's config could not be built: the status reason is
/// `CreateContainerConfigError` with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Expands `$(VAR)` references in `input` from `lookup`; `$$` is an escaped `$`, unknown
/// names and unclosed references are kept as written.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut last = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            out.push_str(&input[last..i]);
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                }
                b'(' => match input[i + 2..].find(')') {
                    Some(end) => {
                        let name = &input[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        i += end + 3;
                    }
                    None => {
                        out.push_str(&input[i..]);
                        i = bytes.len();
                    }
                },
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
            last = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&input[last.min(input.len())..]);
    out
}

/// `my-svc` → `MY_SVC` (upstream makeEnvVariableName).
fn env_name(s: &str) -> String {
    s.to_uppercase().replace('-', "_")
}

/// The Docker-links-style variables of the services a pod sees: those of its namespace
/// (when `enable_links`) and the `kubernetes` service of `default` in any case.
pub fn service_env(services: &[Arc<Service>], namespace: &str, enable_links: bool) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for svc in services {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let master = ns == "default" && name == "kubernetes";
        if (enable_links && ns == namespace) || master {
            chosen.insert(name.to_owned(), svc);
        }
    }
    let mut out = Vec::new();
    for (name, svc) in chosen {
        let spec = svc.spec.as_ref().expect("services without spec were skipped above");
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let prefix = env_name(&name);
        let ports = spec.ports.clone().unwrap_or_default();
        out.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        if let Some(first) = ports.first() {
            out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        }
        for p in &ports {
            if let Some(pname) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((format!("{prefix}_SERVICE_PORT_{}", env_name(pname)), p.port.to_string()));
            }
        }
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let url = format!("{}://{ip}:{}", proto.to_lowercase(), p.port);
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((port_prefix.clone(), url));
            out.push((format!("{port_prefix}_PROTO"), proto.to_lowercase()));
            out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
            out.push((format!("{port_prefix}_ADDR"), ip.clone()));
        }
    }
    out
}

/// The value of a downward-API field path for env (upstream podFieldSelectorRuntimeValue).
pub fn field_ref(pod: &Pod, path: &str, host_ip: &str, pod_ips: &[String]) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let map_key = |prefix: &str| path.strip_prefix(prefix).and_then(|r| r.strip_suffix("']")).map(str::to_owned);
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" => host_ip.to_owned(),
        "status.hostIPs" => host_ip.to_owned(),
        "status.podIP" => pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => pod_ips.join(","),
        _ => {
            if let Some(k) = map_key("metadata.labels['") {
                meta.labels.as_ref().and_then(|l| l.get(&k)).cloned().unwrap_or_default()
            } else if let Some(k) = map_key("metadata.annotations['") {
                meta.annotations.as_ref().and_then(|a| a.get(&k)).cloned().unwrap_or_default()
            } else {
                return Err(ConfigError(format!("unsupported fieldPath: {path}")));
            }
        }
    };
    Ok(value)
}

/// The value of a resourceFieldRef: the container's request or limit (limits default to the
/// node's allocatable) divided by `divisor`, rounded up.
pub fn resource_field_ref(container: &Container, resource: &str, divisor: Option<&str>, allocatable: &NodeAllocatable) -> Result<String, ConfigError> {
    let divisor = Parsed::parse(divisor.filter(|d| !d.is_empty()).unwrap_or("1"))
        .map_err(|e| ConfigError(format!("invalid divisor: {e}")))?;
    let (kind, name) = resource.split_once('.').ok_or_else(|| ConfigError(format!("unsupported container resource : {resource}")))?;
    let value = match kind {
        "limits" => super::resources::limit(container, name).unwrap_or(match name {
            "cpu" => allocatable.cpu_milli,
            "memory" => allocatable.memory_bytes,
            _ => allocatable.ephemeral_storage_bytes,
        }),
        "requests" => super::resources::request(container, name),
        _ => return Err(ConfigError(format!("unsupported container resource : {resource}"))),
    };
    let out = if name == "cpu" {
        let d = divisor.milli_value().max(1) as i64;
        (value + d - 1) / d
    } else {
        let d = divisor.value().max(1) as i64;
        (value + d - 1) / d
    };
    Ok(out.to_string())
}

/// The node's allocatable resources (limits of containers that set none).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeAllocatable {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
    pub ephemeral_storage_bytes: i64,
}

/// What building an environment reads besides the pod.
pub struct EnvSources<'a> {
    pub client: &'a kube::Client,
    pub services: &'a [Arc<Service>],
    pub allocatable: NodeAllocatable,
    pub host_ip: String,
    pub pod_ips: Vec<String>,
}

/// ConfigMaps and Secrets read once per environment build.
#[derive(Default)]
struct Fetched {
    config_maps: HashMap<String, Option<BTreeMap<String, String>>>,
    secrets: HashMap<String, Option<BTreeMap<String, String>>>,
}

impl Fetched {
    async fn config_map(&mut self, client: &kube::Client, ns: &str, name: &str) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
        if let Some(v) = self.config_maps.get(name) {
            return Ok(v.clone());
        }
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let v = api
            .get_opt(name)
            .await
            .map_err(|e| ConfigError(format!("failed to get configmap {ns}/{name}: {e}")))?
            .map(|cm| cm.data.unwrap_or_default());
        self.config_maps.insert(name.to_owned(), v.clone());
        Ok(v)
    }

    async fn secret(&mut self, client: &kube::Client, ns: &str, name: &str) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
        if let Some(v) = self.secrets.get(name) {
            return Ok(v.clone());
        }
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let v = api.get_opt(name).await.map_err(|e| ConfigError(format!("failed to get secret {ns}/{name}: {e}")))?.map(|s| {
            let mut data: BTreeMap<String, String> =
                s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect();
            data.extend(s.string_data.unwrap_or_default());
            data
        });
        self.secrets.insert(name.to_owned(), v.clone());
        Ok(v)
    }
}

/// The container's environment in upstream's precedence: envFrom, then env (each `value`
/// expanded against what came before and the service variables), then service variables
/// not already set.
pub async fn container_env(sources: &EnvSources<'_>, pod: &Pod, container: &Container) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let enable_links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    let service_vars = service_env(sources.services, ns, enable_links);
    let service_map: HashMap<String, String> = service_vars.iter().cloned().collect();
    let mut fetched = Fetched::default();
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| match env.iter_mut().find(|(n, _)| *n == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, optional, what, name) = if let Some(cm) = &from.config_map_ref {
            (fetched.config_map(sources.client, ns, &cm.name).await?, cm.optional.unwrap_or(false), "configmap", cm.name.clone())
        } else if let Some(s) = &from.secret_ref {
            (fetched.secret(sources.client, ns, &s.name).await?, s.optional.unwrap_or(false), "secret", s.name.clone())
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    set(&mut env, format!("{prefix}{k}"), v);
                }
            }
            None if optional => {}
            None => return Err(ConfigError(format!("{what} \"{name}\" not found"))),
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                field_ref(pod, &f.field_path, &sources.host_ip, &sources.pod_ips)?
            } else if let Some(r) = &from.resource_field_ref {
                let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                    Some(n) => pod.spec.as_ref().and_then(|s| s.containers.iter().chain(s.init_containers.iter().flatten()).find(|c| c.name == n)).unwrap_or(container),
                    None => container,
                };
                resource_field_ref(target, &r.resource, r.divisor.as_ref().map(|d| d.0.as_str()), &sources.allocatable)?
            } else if let Some(k) = &from.config_map_key_ref {
                let optional = k.optional.unwrap_or(false);
                match fetched.config_map(sources.client, ns, &k.name).await? {
                    Some(data) => match data.get(&k.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => return Err(ConfigError(format!("couldn't find key {} in ConfigMap {ns}/{}", k.key, k.name))),
                    },
                    None if optional => continue,
                    None => return Err(ConfigError(format!("configmap \"{}\" not found", k.name))),
                }
            } else if let Some(k) = &from.secret_key_ref {
                let optional = k.optional.unwrap_or(false);
                match fetched.secret(sources.client, ns, &k.name).await? {
                    Some(data) => match data.get(&k.key) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => return Err(ConfigError(format!("couldn't find key {} in Secret {ns}/{}", k.key, k.name))),
                    },
                    None if optional => continue,
                    None => return Err(ConfigError(format!("secret \"{}\" not found", k.name))),
                }
            } else {
                String::new()
            }
        } else {
            let known: HashMap<String, String> = env.iter().cloned().collect();
            expand(var.value.as_deref().unwrap_or(""), &|n| known.get(n).or_else(|| service_map.get(n)).cloned())
        };
        set(&mut env, var.name.clone(), value);
    }
    for (k, v) in service_vars {
        if !env.iter().any(|(n, _)| *n == k) {
            env.push((k, v));
        }
    }
    Ok(env)
}

/// Command and args with `$(VAR)` expanded from the container's environment.
pub fn expand_command(container: &Container, env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |n: &str| map.get(n).map(|v| v.to_string());
    let command = container.command.iter().flatten().map(|s| expand(s, &lookup)).collect();
    let args = container.args.iter().flatten().map(|s| expand(s, &lookup)).collect();
    (command, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use kube::api::ObjectMeta;

    fn lookup(n: &str) -> Option<String> {
        match n {
            "A" => Some("x".into()),
            "B" => Some("$(A)".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_matches_upstream_cases() {
        let cases = [
            ("$(A)", "x"),
            ("pre-$(A)-post", "pre-x-post"),
            ("$(B)", "$(A)"),
            ("$$(A)", "$(A)"),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$(A", "$(A"),
            ("$A", "$A"),
            ("a$", "a$"),
            ("$$$$", "$$"),
            ("", ""),
            ("no refs", "no refs"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &lookup), want, "input {input:?}");
        }
    }

    fn service(ns: &str, name: &str, ip: &str, ports: &[(Option<&str>, i32)]) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(ports.iter().map(|(n, p)| ServicePort { name: n.map(Into::into), port: *p, protocol: Some("TCP".into()), ..Default::default() }).collect()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn service_links_follow_docker_link_naming() {
        let services = [
            service("default", "kubernetes", "10.43.0.1", &[(Some("https"), 443)]),
            service("dev", "my-svc", "10.43.0.7", &[(None, 80)]),
            service("other", "hidden", "10.43.0.8", &[(None, 80)]),
            service("dev", "headless", "None", &[(None, 80)]),
        ];
        let env: BTreeMap<String, String> = service_env(&services, "dev", true).into_iter().collect();
        assert_eq!(env["MY_SVC_SERVICE_HOST"], "10.43.0.7");
        assert_eq!(env["MY_SVC_SERVICE_PORT"], "80");
        assert_eq!(env["MY_SVC_PORT"], "tcp://10.43.0.7:80");
        assert_eq!(env["MY_SVC_PORT_80_TCP_ADDR"], "10.43.0.7");
        assert_eq!(env["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
        assert!(!env.keys().any(|k| k.starts_with("HIDDEN") || k.starts_with("HEADLESS")));
        let off: Vec<String> = service_env(&services, "dev", false).into_iter().map(|(k, _)| k).collect();
        assert!(off.iter().all(|k| k.starts_with("KUBERNETES_")), "{off:?}");
    }

    #[test]
    fn field_and_resource_refs() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("dev".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(field_ref(&pod, "metadata.name", "", &[]).unwrap(), "p");
        assert_eq!(field_ref(&pod, "metadata.labels['app']", "", &[]).unwrap(), "web");
        assert_eq!(field_ref(&pod, "status.podIP", "192.0.2.1", &["10.42.0.5".into()]).unwrap(), "10.42.0.5");
        assert!(field_ref(&pod, "spec.bogus", "", &[]).is_err());
        let c = Container::default();
        let alloc = NodeAllocatable { cpu_milli: 2000, memory_bytes: 1 << 30, ephemeral_storage_bytes: 0 };
        assert_eq!(resource_field_ref(&c, "limits.cpu", None, &alloc).unwrap(), "2");
        assert_eq!(resource_field_ref(&c, "limits.memory", Some("1Mi"), &alloc).unwrap(), "1024");
        assert_eq!(resource_field_ref(&c, "requests.cpu", Some("1m"), &alloc).unwrap(), "0");
    }

    #[test]
    fn commands_expand_from_env() {
        let c = Container { command: Some(vec!["echo".into(), "$(MSG)".into()]), args: Some(vec!["$$(MSG)".into()]), ..Default::default() };
        let (cmd, args) = expand_command(&c, &[("MSG".into(), "hi".into())]);
        assert_eq!(cmd, ["echo", "hi"]);
        assert_eq!(args, ["$(MSG)"]);
    }
}
