//! Pure decisions of the connect subresources, ported from upstream's
//! `pkg/registry/core/pod/strategy.go` (`LogLocation`, `streamLocation`, `validateContainer`),
//! the kubelet's `validateContainerLogStatus` and the node connection info getter.

use serde_json::Value;

use crate::status::ApiError;

/// Which container a request means: the named one, which must be in the pod, or the only
/// one. Upstream's messages.
pub fn validate_container(container: Option<&str>, pod: &Value) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str().map(str::to_owned)).collect()
    };
    let containers = names("containers");
    match container.filter(|c| !c.is_empty()) {
        None => match containers.len() {
            1 => Ok(containers[0].clone()),
            0 => Err(ApiError::bad_request(format!("a container name must be specified for pod {name}"))),
            _ => {
                let all: Vec<String> =
                    [names("initContainers"), containers, names("ephemeralContainers")].concat();
                Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    all.join(" ")
                )))
            }
        },
        Some(c) => {
            let known = ["containers", "initContainers", "ephemeralContainers"].iter().any(|f| names(f).iter().any(|n| n == c));
            if known {
                Ok(c.to_owned())
            } else {
                Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}")))
            }
        }
    }
}

/// The log error the kubelet would give from the pod's reported status, when the status
/// already says there is nothing to read (upstream's `validateContainerLogStatus`, the
/// cases that do not need the runtime). `None`: ask the kubelet.
pub fn log_status_error(pod: &Value, container: &str, previous: bool) -> Option<String> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let status = ["containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"]
        .iter()
        .flat_map(|f| pod["status"][f].as_array().into_iter().flatten())
        .find(|s| s["name"] == container)?;
    let last_terminated = status["lastState"]["terminated"].is_object();
    let state = &status["state"];
    if previous {
        return (!last_terminated).then(|| format!("previous terminated container {container:?} in pod {pod_name:?} not found"));
    }
    if state["running"].is_object() || state["terminated"].is_object() || last_terminated {
        return None;
    }
    let reason = state["waiting"]["reason"].as_str()?;
    Some(match reason {
        "ErrImagePull" => format!("container {container:?} in pod {pod_name:?} is waiting to start: image can't be pulled"),
        "ImagePullBackOff" => format!("container {container:?} in pod {pod_name:?} is waiting to start: trying and failing to pull image"),
        other => format!("container {container:?} in pod {pod_name:?} is waiting to start: {other}"),
    })
}

/// What a kubelet 404 on logs means to a user: no instance of the container exists yet.
pub fn not_started(pod: &Value, container: &str) -> String {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    format!("container {container:?} in pod {pod_name:?} is waiting to start: ContainerCreating")
}

/// Upstream's default kubelet port.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// Where a node's kubelet listens: its InternalIP (else Hostname) address and
/// `status.daemonEndpoints.kubeletEndpoint.Port`.
pub fn kubelet_address(node: &Value) -> Result<(String, u16), ApiError> {
    let name = node["metadata"]["name"].as_str().unwrap_or_default();
    let addresses = node["status"]["addresses"].as_array().cloned().unwrap_or_default();
    let of_type = |t: &str| addresses.iter().find(|a| a["type"] == t).and_then(|a| a["address"].as_str()).map(str::to_owned);
    let host = of_type("InternalIP")
        .or_else(|| of_type("Hostname"))
        .ok_or_else(|| ApiError::bad_request(format!("no preferred addresses found; known addresses: [] (node {name})")))?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok((host, port))
}

/// Go's `strconv.ParseBool` for the option query parameters.
pub fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!("invalid value {value:?} for {name}: must be a boolean"))),
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The kubelet's query for pod log options given by the client (`PodLogOptions`).
pub fn log_query(pairs: &[(String, String)]) -> Result<String, ApiError> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "follow" | "previous" | "timestamps" if parse_bool(k, v)? => out.push(format!("{k}=true")),
            "sinceSeconds" | "tailLines" | "limitBytes" => {
                let n: i64 = v.parse().map_err(|_| ApiError::bad_request(format!("invalid value {v:?} for {k}")))?;
                let min = if k == "tailLines" { 0 } else { 1 };
                if n < min {
                    return Err(ApiError::bad_request(format!("{k}: Invalid value: {n}: must be greater than or equal to {min}")));
                }
                out.push(format!("{k}={n}"));
            }
            "sinceTime" => out.push(format!("sinceTime={}", encode(v))),
            _ => {}
        }
    }
    Ok(out.join("&"))
}

/// The kubelet's query for exec/attach options (`PodExecOptions`, `PodAttachOptions`), as
/// upstream's `streamParams` writes it.
pub fn stream_query(pairs: &[(String, String)], with_command: bool) -> Result<String, ApiError> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "stdin" | "stdout" | "stderr" | "tty" if parse_bool(k, v)? => out.push(format!("{k}=1")),
            "command" if with_command => out.push(format!("command={}", encode(v))),
            _ => {}
        }
    }
    if with_command && !out.iter().any(|p| p.starts_with("command=")) {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    Ok(out.join("&"))
}

/// The kubelet's query for port-forward (`PodPortForwardOptions.ports` → `port`).
pub fn port_forward_query(pairs: &[(String, String)]) -> Result<String, ApiError> {
    let mut ports = Vec::new();
    for (k, v) in pairs.iter().filter(|(k, _)| k == "ports") {
        for p in v.split(',') {
            let port: u16 = p.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| ApiError::bad_request(format!("invalid value {p:?} for {k}")))?;
            ports.push(port.to_string());
        }
    }
    Ok(if ports.is_empty() { String::new() } else { format!("port={}", ports.join(",")) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app"}, {"name": "side"}], "initContainers": [{"name": "init"}]}, "status": status})
    }

    #[test]
    fn containers_are_validated_with_upstreams_messages() {
        let p = pod(json!({}));
        assert_eq!(validate_container(Some("side"), &p).unwrap(), "side");
        assert_eq!(validate_container(Some("init"), &p).unwrap(), "init");
        assert_eq!(validate_container(Some("x"), &p).unwrap_err().message, "container x is not valid for pod web");
        let e = validate_container(None, &p).unwrap_err();
        assert_eq!(e.message, "a container name must be specified for pod web, choose one of: [init app side]");
        assert_eq!(e.reason, "BadRequest");
        let single = json!({"metadata": {"name": "one"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(validate_container(Some(""), &single).unwrap(), "c");
    }

    #[test]
    fn log_errors_follow_the_reported_container_state() {
        let waiting = pod(json!({"containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(log_status_error(&waiting, "app", false).unwrap(), "container \"app\" in pod \"web\" is waiting to start: ContainerCreating");
        assert_eq!(log_status_error(&waiting, "app", true).unwrap(), "previous terminated container \"app\" in pod \"web\" not found");
        let pulling = pod(json!({"containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}));
        assert!(log_status_error(&pulling, "app", false).unwrap().ends_with("trying and failing to pull image"));
        let crashing = pod(json!({"containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}}]}));
        assert_eq!(log_status_error(&crashing, "app", false), None);
        assert_eq!(log_status_error(&crashing, "app", true), None);
        let running = pod(json!({"containerStatuses": [{"name": "app", "state": {"running": {}}}]}));
        assert_eq!(log_status_error(&running, "app", false), None);
        // no status reported yet: the kubelet is asked
        assert_eq!(log_status_error(&pod(json!({})), "app", false), None);
    }

    #[test]
    fn kubelet_address_prefers_the_internal_ip_and_the_reported_port() {
        let node = json!({"metadata": {"name": "n"}, "status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}}});
        assert_eq!(kubelet_address(&node).unwrap(), ("127.0.0.1".to_owned(), 12345));
        let bare = json!({"metadata": {"name": "n"}, "status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        assert_eq!(kubelet_address(&bare).unwrap(), ("n1".to_owned(), 10250));
        assert!(kubelet_address(&json!({"metadata": {"name": "n"}})).is_err());
    }

    #[test]
    fn queries_are_rewritten_for_the_kubelet() {
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> { p.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect() };
        assert_eq!(
            log_query(&pairs(&[("container", "app"), ("follow", "true"), ("tailLines", "5"), ("previous", "false")])).unwrap(),
            "follow=true&tailLines=5"
        );
        assert_eq!(log_query(&pairs(&[("limitBytes", "0")])).unwrap_err().reason, "BadRequest");
        assert_eq!(
            stream_query(&pairs(&[("command", "sh"), ("command", "-c"), ("command", "echo a b"), ("stdin", "true"), ("tty", "false")]), true).unwrap(),
            "command=sh&command=%2Dc&command=echo%20a%20b&stdin=1"
        );
        assert!(stream_query(&pairs(&[("stdout", "true")]), true).is_err());
        assert_eq!(stream_query(&pairs(&[("stdout", "true")]), false).unwrap(), "stdout=1");
        assert_eq!(port_forward_query(&pairs(&[("ports", "80,8080")])).unwrap(), "port=80,8080");
        assert!(port_forward_query(&pairs(&[("ports", "x")])).is_err());
    }
}
