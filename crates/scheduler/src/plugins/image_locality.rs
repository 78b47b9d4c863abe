//! ImageLocality: favours nodes that already have the pod's images, weighted by how
//! widely each image is spread (upstream `scaledImageScore` and thresholds).

use std::collections::HashMap;

use crate::framework::{CycleState, Plugin, PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE};
use crate::node_info::{normalize_image, NodeInfo, PodInfo};

pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

struct PreScoreState {
    images: Vec<String>,
    /// image → number of nodes having it
    spread: HashMap<String, i64>,
    total_nodes: i64,
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _nodes: &[&NodeInfo], snapshot: &Snapshot) -> Status {
        let spec = pod.pod.spec.as_ref();
        let images: Vec<String> = spec
            .into_iter()
            .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
            .filter_map(|c| c.image.as_deref())
            .map(normalize_image)
            .collect();
        let mut spread = HashMap::new();
        if snapshot.nodes.iter().any(|n| !n.images.is_empty()) {
            for image in &images {
                spread.insert(image.clone(), snapshot.nodes.iter().filter(|n| n.images.contains_key(image)).count() as i64);
            }
        }
        state.write(NAME, PreScoreState { images, spread, total_nodes: snapshot.nodes.len() as i64 });
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<PreScoreState>(NAME) else { return 0 };
        if s.total_nodes == 0 || s.images.is_empty() {
            return 0;
        }
        let sum: i64 = s
            .images
            .iter()
            .filter_map(|i| node.images.get(i).map(|size| (i, *size)))
            .map(|(i, size)| (size as f64 * (s.spread.get(i).copied().unwrap_or(0) as f64 / s.total_nodes as f64)) as i64)
            .sum();
        let max = MAX_CONTAINER_THRESHOLD * s.images.len() as i64;
        let sum = sum.clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::ContainerImage;
    use std::sync::Arc;

    #[test]
    fn nodes_with_the_image_score_higher() {
        let mut with = node("a", "1", "1Gi", &[]);
        let mut obj = (*with.node).clone();
        obj.status.as_mut().unwrap().images = Some(vec![ContainerImage { names: Some(vec!["busybox:latest".into()]), size_bytes: Some(500 * MB) }]);
        with.set_node(Arc::new(obj));
        let without = node("b", "1", "1Gi", &[]);
        let p = info(pod("p", None, None));
        let mut st = CycleState::default();
        let snap = Snapshot::new(vec![&with, &without]);
        ImageLocality.pre_score(&mut st, &p, &snap.nodes, &snap);
        // 500MB * 1/2 spread = 250MB → (250-23)*100/(1000-23) = 23
        assert_eq!(ImageLocality.score(&st, &p, &with), 23);
        assert_eq!(ImageLocality.score(&st, &p, &without), 0);
    }
}
