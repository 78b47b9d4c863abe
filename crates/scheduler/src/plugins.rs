//! The in-tree plugins (one file each, named as upstream) and the profile they make up.

pub mod balanced_allocation;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
pub mod volume_binding;

use std::sync::Arc;

use crate::framework::{FilterPlugin, PreFilterPlugin, PreScorePlugin, ScorePlugin, WeightedScore};

/// Names of the plugins that are not in a file of their own.
pub const PRIORITY_SORT: &str = "PrioritySort";
pub const DEFAULT_PREEMPTION: &str = "DefaultPreemption";
pub const DEFAULT_BINDER: &str = "DefaultBinder";
pub const SCHEDULING_GATES: &str = "SchedulingGates";

/// Extension points a plugin can be configured at (KubeSchedulerConfiguration `plugins.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    PreEnqueue,
    QueueSort,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    Bind,
}

/// Every known plugin: name, the points it implements, and its default score weight
/// (upstream v1.33 `getDefaultPlugins`, in upstream order).
pub const KNOWN: &[(&str, &[Point], i64)] = &[
    (SCHEDULING_GATES, &[Point::PreEnqueue], 0),
    (PRIORITY_SORT, &[Point::QueueSort], 0),
    (node_unschedulable::NAME, &[Point::Filter], 0),
    (node_name::NAME, &[Point::Filter], 0),
    (taint_toleration::NAME, &[Point::Filter, Point::PreScore, Point::Score], 3),
    (node_affinity::NAME, &[Point::Filter, Point::PreScore, Point::Score], 2),
    (node_ports::NAME, &[Point::PreFilter, Point::Filter], 0),
    (node_resources_fit::NAME, &[Point::PreFilter, Point::Filter, Point::PreScore, Point::Score], 1),
    (volume_binding::NAME, &[Point::PreFilter, Point::Filter, Point::Reserve, Point::PreBind], 0),
    (pod_topology_spread::NAME, &[Point::PreFilter, Point::Filter, Point::PreScore, Point::Score], 2),
    (inter_pod_affinity::NAME, &[Point::PreFilter, Point::Filter, Point::PreScore, Point::Score], 2),
    (DEFAULT_PREEMPTION, &[Point::PostFilter], 0),
    (balanced_allocation::NAME, &[Point::PreScore, Point::Score], 1),
    (image_locality::NAME, &[Point::Score], 1),
    (DEFAULT_BINDER, &[Point::Bind], 0),
];

/// Plugin arguments from `pluginConfig`.
#[derive(Debug, Clone, Default)]
pub struct PluginArgs {
    pub fit: node_resources_fit::NodeResourcesFit,
}

/// The instances a profile's plugin lists point to.
pub struct Instances {
    pub args: PluginArgs,
}

impl Instances {
    pub fn pre_filter(&self, name: &str) -> Option<Arc<dyn PreFilterPlugin>> {
        Some(match name {
            n if n == inter_pod_affinity::NAME => Arc::new(inter_pod_affinity::InterPodAffinity),
            n if n == pod_topology_spread::NAME => Arc::new(pod_topology_spread::PodTopologySpread),
            n if n == volume_binding::NAME => Arc::new(volume_binding::VolumeBinding),
            _ => return None,
        })
    }

    pub fn filter(&self, name: &str) -> Option<Arc<dyn FilterPlugin>> {
        Some(match name {
            n if n == node_unschedulable::NAME => Arc::new(node_unschedulable::NodeUnschedulable),
            n if n == node_name::NAME => Arc::new(node_name::NodeName),
            n if n == taint_toleration::NAME => Arc::new(taint_toleration::TaintToleration),
            n if n == node_affinity::NAME => Arc::new(node_affinity::NodeAffinity),
            n if n == node_ports::NAME => Arc::new(node_ports::NodePorts),
            n if n == node_resources_fit::NAME => Arc::new(self.args.fit.clone()),
            n if n == volume_binding::NAME => Arc::new(volume_binding::VolumeBinding),
            n if n == pod_topology_spread::NAME => Arc::new(pod_topology_spread::PodTopologySpread),
            n if n == inter_pod_affinity::NAME => Arc::new(inter_pod_affinity::InterPodAffinity),
            _ => return None,
        })
    }

    pub fn pre_score(&self, name: &str) -> Option<Arc<dyn PreScorePlugin>> {
        Some(match name {
            n if n == image_locality::NAME => Arc::new(image_locality::ImageLocality),
            n if n == inter_pod_affinity::NAME => Arc::new(inter_pod_affinity::InterPodAffinity),
            n if n == pod_topology_spread::NAME => Arc::new(pod_topology_spread::PodTopologySpread),
            _ => return None,
        })
    }

    pub fn score(&self, name: &str, weight: i64) -> Option<WeightedScore> {
        let plugin: Arc<dyn ScorePlugin> = match name {
            n if n == taint_toleration::NAME => Arc::new(taint_toleration::TaintToleration),
            n if n == node_affinity::NAME => Arc::new(node_affinity::NodeAffinity),
            n if n == node_resources_fit::NAME => Arc::new(self.args.fit.clone()),
            n if n == pod_topology_spread::NAME => Arc::new(pod_topology_spread::PodTopologySpread),
            n if n == inter_pod_affinity::NAME => Arc::new(inter_pod_affinity::InterPodAffinity),
            n if n == balanced_allocation::NAME => Arc::new(balanced_allocation::BalancedAllocation::default()),
            n if n == image_locality::NAME => Arc::new(image_locality::ImageLocality),
            _ => return None,
        };
        Some(WeightedScore { plugin, weight })
    }
}
