//! Finding a pod's sandbox and containers through CRI alone, by the labels every rkube
//! sandbox and container carries (upstream's `io.kubernetes.*` labels).

use std::collections::HashMap;

use crate::cri::{api, Cri};

pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

fn pod_labels(namespace: &str, pod: &str) -> HashMap<String, String> {
    HashMap::from([
        (POD_NAMESPACE_LABEL.to_owned(), namespace.to_owned()),
        (POD_NAME_LABEL.to_owned(), pod.to_owned()),
    ])
}

/// Every container (any state) of container `name` in pod `namespace/pod`.
pub async fn containers(cri: &Cri, namespace: &str, pod: &str, name: &str) -> Result<Vec<api::Container>, tonic::Status> {
    let mut labels = pod_labels(namespace, pod);
    labels.insert(CONTAINER_NAME_LABEL.to_owned(), name.to_owned());
    let filter = api::ContainerFilter { label_selector: labels, ..Default::default() };
    let mut runtime = cri.runtime.clone();
    let response = runtime.list_containers(api::ListContainersRequest { filter: Some(filter) }).await?;
    Ok(response.into_inner().containers)
}

/// Every container of every sandbox (the node's whole pod set, for `/pods`).
pub async fn all_containers(cri: &Cri) -> Result<Vec<api::Container>, tonic::Status> {
    let mut runtime = cri.runtime.clone();
    Ok(runtime.list_containers(api::ListContainersRequest { filter: None }).await?.into_inner().containers)
}

/// The sandboxes of pod `namespace/pod` (or of every pod when both are empty).
pub async fn sandboxes(cri: &Cri, namespace: &str, pod: &str) -> Result<Vec<api::PodSandbox>, tonic::Status> {
    let filter = (!namespace.is_empty()).then(|| api::PodSandboxFilter { label_selector: pod_labels(namespace, pod), ..Default::default() });
    let mut runtime = cri.runtime.clone();
    Ok(runtime.list_pod_sandbox(api::ListPodSandboxRequest { filter }).await?.into_inner().items)
}

/// The ready sandbox of a pod; the newest when several are (a pod deleted and recreated).
pub fn ready_sandbox(sandboxes: &[api::PodSandbox]) -> Option<&api::PodSandbox> {
    sandboxes
        .iter()
        .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
        .max_by_key(|s| s.created_at)
}

fn attempt(c: &api::Container) -> u32 {
    c.metadata.as_ref().map_or(0, |m| m.attempt)
}

fn uid(c: &api::Container) -> &str {
    c.labels.get(POD_UID_LABEL).map_or("", String::as_str)
}

/// The current instance of a container: of the newest pod (by uid of the most recently
/// created container), the highest attempt.
pub fn current(containers: &[api::Container]) -> Option<&api::Container> {
    let newest = containers.iter().max_by_key(|c| c.created_at)?;
    containers
        .iter()
        .filter(|c| uid(c) == uid(newest))
        .max_by_key(|c| (attempt(c), c.created_at))
}

/// The previous instance, as `kubectl logs --previous` means it: the exited container of the
/// same pod with the highest attempt below the current one's.
pub fn previous<'a>(containers: &'a [api::Container], current: &api::Container) -> Option<&'a api::Container> {
    containers
        .iter()
        .filter(|c| uid(c) == uid(current) && attempt(c) < attempt(current))
        .filter(|c| c.state == api::ContainerState::ContainerExited as i32)
        .max_by_key(|c| (attempt(c), c.created_at))
}

/// The container's full status (its log path, state, exit code).
pub async fn status(cri: &Cri, id: &str) -> Result<Option<api::ContainerStatus>, tonic::Status> {
    let mut runtime = cri.runtime.clone();
    let request = api::ContainerStatusRequest { container_id: id.to_owned(), verbose: false };
    Ok(runtime.container_status(request).await?.into_inner().status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(id: &str, uid: &str, attempt: u32, state: api::ContainerState, created_at: i64) -> api::Container {
        api::Container {
            id: id.into(),
            metadata: Some(api::ContainerMetadata { name: "c".into(), attempt }),
            state: state as i32,
            created_at,
            labels: HashMap::from([(POD_UID_LABEL.to_owned(), uid.to_owned())]),
            ..Default::default()
        }
    }

    #[test]
    fn current_is_the_highest_attempt_of_the_newest_pod_and_previous_the_exited_one_below() {
        use api::ContainerState::{ContainerExited as Exited, ContainerRunning as Running};
        let list = vec![
            container("old-pod", "u1", 5, Exited, 10),
            container("a0", "u2", 0, Exited, 20),
            container("a1", "u2", 1, Exited, 30),
            container("a2", "u2", 2, Running, 40),
        ];
        let cur = current(&list).unwrap();
        assert_eq!(cur.id, "a2");
        assert_eq!(previous(&list, cur).unwrap().id, "a1");
        assert!(previous(&list, &list[1]).is_none());
        assert!(current(&[]).is_none());
    }
}
