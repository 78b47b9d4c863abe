//! NodeResourcesBalancedAllocation: favours nodes whose CPU and memory utilisation stay
//! balanced after placing the pod: score = (1 - standard deviation of the fractions) * 100.

use crate::framework::{CycleState, Plugin, ScorePlugin, MAX_NODE_SCORE};
use crate::node_info::{NodeInfo, PodInfo};
use crate::plugins::node_resources_fit::requested_and_allocatable;

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub struct BalancedAllocation {
    pub resources: Vec<String>,
}

impl Default for BalancedAllocation {
    fn default() -> Self {
        BalancedAllocation { resources: vec!["cpu".into(), "memory".into()] }
    }
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let fractions: Vec<f64> = self
            .resources
            .iter()
            .filter_map(|r| {
                let (req, alloc) = requested_and_allocatable(r, pod, node, true);
                (alloc > 0).then(|| (req as f64 / alloc as f64).min(1.0))
            })
            .collect();
        if fractions.is_empty() {
            return 0;
        }
        let std = if fractions.len() == 2 {
            (fractions[0] - fractions[1]).abs() / 2.0
        } else {
            let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
            (fractions.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / fractions.len() as f64).sqrt()
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::testing::*;

    #[test]
    fn balanced_nodes_score_higher() {
        let st = CycleState::default();
        let p = info(pod("p", Some("1"), Some("1Gi")));
        let mut cpu_heavy = node("a", "4", "4Gi", &[]);
        cpu_heavy.add_pod(info(pod("x", Some("3"), None)));
        let even = node("b", "4", "4Gi", &[]);
        assert_eq!(BalancedAllocation::default().score(&st, &p, &even), 100);
        // cpu 4/4, memory 1/4 → std 0.375 → 62
        assert_eq!(BalancedAllocation::default().score(&st, &p, &cpu_heavy), 62);
    }
}
