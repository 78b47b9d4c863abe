//! The scheduler cache: every node with the pods assigned to it, plus pods the scheduler
//! has assumed (sent to binding, not yet seen bound in the watch). Owned by the scheduling
//! task, so the snapshot a cycle reads is the cache itself, without copying.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::framework::Snapshot;
use crate::node_info::{NodeInfo, PodInfo};

#[derive(Default)]
pub struct Cache {
    /// Ordered by name so iteration (and so scheduling) is deterministic.
    nodes: BTreeMap<String, NodeInfo>,
    /// uid → (node name, assumed)
    pods: HashMap<String, (String, bool)>,
    /// Pods bound to nodes the cache has not seen yet.
    orphans: HashMap<String, Vec<Arc<PodInfo>>>,
}

impl Cache {
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    /// All nodes, in name order.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot::new(self.nodes.values().collect())
    }

    pub fn add_or_update_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        match self.nodes.get_mut(&name) {
            Some(n) => n.set_node(node),
            None => {
                let mut n = NodeInfo::new(node);
                for p in self.orphans.remove(&name).unwrap_or_default() {
                    n.add_pod(p);
                }
                self.nodes.insert(name, n);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(n) = self.nodes.remove(name) {
            // Keep the pods accounted in case the node comes back (as upstream keeps a
            // NodeInfo without a node while pods remain).
            if !n.pods.is_empty() {
                self.orphans.insert(name.to_owned(), n.pods);
            }
        }
    }

    fn insert(&mut self, info: Arc<PodInfo>, node: &str, assumed: bool) {
        self.pods.insert(info.uid.clone(), (node.to_owned(), assumed));
        match self.nodes.get_mut(node) {
            Some(n) => n.add_pod(info),
            None => self.orphans.entry(node.to_owned()).or_default().push(info),
        }
    }

    /// A pod seen bound (or updated) in the watch; confirms an assumed pod.
    pub fn add_or_update_pod(&mut self, info: Arc<PodInfo>, node: &str) {
        self.remove_pod(&info.uid.clone());
        self.insert(info, node, false);
    }

    /// Removes a pod (deleted, finished, or a forgotten assumption).
    pub fn remove_pod(&mut self, uid: &str) {
        let Some((node, _)) = self.pods.remove(uid) else { return };
        if let Some(n) = self.nodes.get_mut(&node) {
            n.remove_pod(uid);
        } else if let Some(list) = self.orphans.get_mut(&node) {
            list.retain(|p| p.uid != uid);
        }
    }

    /// Counts the pod on `node` before the binding is confirmed.
    pub fn assume(&mut self, info: Arc<PodInfo>, node: &str) {
        self.remove_pod(&info.uid.clone());
        self.insert(info, node, true);
    }

    /// Drops an assumption after a failed binding (a confirmed pod stays).
    pub fn forget(&mut self, uid: &str) {
        if self.pods.get(uid).is_some_and(|(_, assumed)| *assumed) {
            self.remove_pod(uid);
        }
    }

    /// Uids of the pods seen bound in the watch (not the assumed ones).
    pub fn confirmed_pod_uids(&self) -> Vec<String> {
        self.pods.iter().filter(|(_, (_, assumed))| !assumed).map(|(uid, _)| uid.clone()).collect()
    }

    /// Whether the cache knows this pod (assumed or bound).
    pub fn has_pod(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::testing::*;

    #[test]
    fn assumed_pods_count_until_forgotten_and_confirmed_pods_stay() {
        let mut c = Cache::default();
        c.add_or_update_node(node("a", "2", "2Gi", &[]).node.clone());
        let p = info(pod("p", Some("1"), None));
        c.assume(p.clone(), "a");
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 1000);
        c.forget(&p.uid);
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 0);
        c.assume(p.clone(), "a");
        c.add_or_update_pod(p.clone(), "a");
        c.forget(&p.uid);
        assert_eq!(c.node("a").unwrap().requested.milli_cpu, 1000, "confirmed pods are not forgotten");
        assert_eq!(c.node("a").unwrap().pods.len(), 1);
    }

    #[test]
    fn pods_on_unknown_nodes_are_kept_until_the_node_appears() {
        let mut c = Cache::default();
        c.add_or_update_pod(info(pod("p", Some("1"), None)), "late");
        assert_eq!(c.node_count(), 0);
        c.add_or_update_node(node("late", "2", "2Gi", &[]).node.clone());
        assert_eq!(c.node("late").unwrap().requested.milli_cpu, 1000);
        c.remove_pod("uid-p");
        assert_eq!(c.node("late").unwrap().requested.milli_cpu, 0);
    }
}
