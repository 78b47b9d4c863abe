//! The `node-ipam` controller (upstream `pkg/controller/nodeipam`, the range allocator): every
//! node without `spec.podCIDR` gets the first free /`node_cidr_mask_size` of the cluster CIDR.
//! The allocation table is rebuilt from the nodes themselves (the informer's first list
//! passes every node through the handler, which marks its podCIDR used), so a restart never
//! hands out a range twice; a deleted node's range is released. When the cluster CIDR is
//! exhausted the node gets a `CIDRNotAvailable` event and is retried with back-off.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use rkube_api::ObjectKey;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller::run_workers;
use crate::error::{is_not_found, Error, Result};
use crate::events::{Recorder, NORMAL};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;

/// The /`node_bits` ranges of a cluster CIDR and which are taken (upstream `CidrSet`).
#[derive(Debug, Clone)]
pub struct CidrSet {
    base: u32,
    cluster_bits: u8,
    node_bits: u8,
    used: BTreeSet<u32>,
}

impl CidrSet {
    /// Ranges of `/node_bits` inside `cluster`; `node_bits` must not be shorter than the
    /// cluster's prefix.
    pub fn new(cluster: (Ipv4Addr, u8), node_bits: u8) -> CidrSet {
        let cluster_bits = cluster.1.min(32);
        let node_bits = node_bits.clamp(cluster_bits, 32);
        let mask = if cluster_bits == 0 { 0 } else { u32::MAX << (32 - cluster_bits) };
        CidrSet { base: u32::from(cluster.0) & mask, cluster_bits, node_bits, used: BTreeSet::new() }
    }

    /// How many node ranges the cluster CIDR holds.
    pub fn capacity(&self) -> u64 {
        1u64 << (self.node_bits - self.cluster_bits)
    }

    fn render(&self, index: u32) -> String {
        let ip = Ipv4Addr::from(self.base + (index << (32 - self.node_bits as u32)));
        format!("{ip}/{}", self.node_bits)
    }

    /// The index of `cidr` when it is one of this set's ranges.
    fn index(&self, cidr: &str) -> Option<u32> {
        let (ip, bits) = cidr.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        if bits.parse::<u8>().ok()? != self.node_bits {
            return None;
        }
        let offset = u32::from(ip).checked_sub(self.base)?;
        let index = offset >> (32 - self.node_bits as u32);
        let aligned = offset & !(u32::MAX << (32 - self.node_bits as u32)) == 0;
        (aligned && (index as u64) < self.capacity()).then_some(index)
    }

    /// Marks `cidr` used; false when it is not one of this set's ranges.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        match self.index(cidr) {
            Some(i) => {
                self.used.insert(i);
                true
            }
            None => false,
        }
    }

    /// Frees `cidr`.
    pub fn release(&mut self, cidr: &str) {
        if let Some(i) = self.index(cidr) {
            self.used.remove(&i);
        }
    }

    /// Takes the lowest free range, `None` when the cluster CIDR is exhausted.
    pub fn allocate(&mut self) -> Option<String> {
        let free = (0..self.capacity()).map(|i| i as u32).find(|i| !self.used.contains(i))?;
        self.used.insert(free);
        Some(self.render(free))
    }
}

fn pod_cidr(node: &Node) -> Option<&str> {
    node.spec.as_ref()?.pod_cidr.as_deref().filter(|c| !c.is_empty())
}

struct Allocations {
    set: CidrSet,
    /// node → the range this controller knows it has (observed or assigned).
    by_node: HashMap<String, String>,
}

pub struct NodeIpamController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    nodes: Arc<Informer<Node>>,
    allocations: Mutex<Allocations>,
    recorder: Recorder,
    queue: WorkQueue<ObjectKey>,
}

impl NodeIpamController {
    /// Registers the node handler (before the informers start).
    pub fn new(informers: &Informers, cluster_cidr: (Ipv4Addr, u8), node_cidr_mask_size: u8) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            nodes: informers.get::<Node>(),
            allocations: Mutex::new(Allocations { set: CidrSet::new(cluster_cidr, node_cidr_mask_size), by_node: HashMap::new() }),
            recorder: Recorder::new(informers.client().clone(), "cidrAllocator"),
            queue: WorkQueue::new(Duration::from_millis(100), Duration::from_secs(60)),
        });
        let weak = Arc::downgrade(&ctx);
        ctx.nodes.add_handler(move |change| {
            if let Some(ctx) = weak.upgrade() {
                ctx.node_changed(change);
            }
        });
        NodeIpamController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("nodeipam", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key.name).await }
        })
        .await;
    }
}

impl Context {
    fn node_changed(&self, change: &Change<Node>) {
        let mut a = self.allocations.lock().unwrap_or_else(|e| e.into_inner());
        match change {
            Change::Applied { new, .. } => {
                let name = new.metadata.name.clone().unwrap_or_default();
                match pod_cidr(new) {
                    Some(cidr) => {
                        if !a.set.occupy(cidr) {
                            tracing::debug!(node = %name, cidr, "podCIDR outside the cluster CIDR; not tracked");
                        }
                        if let Some(old) = a.by_node.insert(name, cidr.to_owned()) {
                            if old != cidr {
                                a.set.release(&old);
                            }
                        }
                    }
                    None => self.queue.add(ObjectKey::new(None, &name)),
                }
            }
            Change::Deleted(node) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                if let Some(cidr) = a.by_node.remove(&name) {
                    a.set.release(&cidr);
                }
                if let Some(cidr) = pod_cidr(node) {
                    a.set.release(cidr);
                }
                // A range came free: nodes waiting on an exhausted CIDR try again now.
                for waiting in self.nodes.store().state_filter(|n| pod_cidr(n).is_none()) {
                    self.queue.add(ObjectKey::new(None, waiting.metadata.name.as_deref().unwrap_or_default()));
                }
            }
        }
    }

    /// Upstream `AllocateOrOccupyCIDR` + `updateCIDRsAllocation`.
    async fn sync(&self, name: &str) -> Result<Option<Duration>> {
        let Some(node) = self.nodes.get(None, name) else { return Ok(None) };
        if pod_cidr(&node).is_some() {
            return Ok(None);
        }
        let cidr = {
            let mut a = self.allocations.lock().unwrap_or_else(|e| e.into_inner());
            // A range assigned earlier whose write the cache has not shown yet is reused.
            match a.by_node.get(name).cloned() {
                Some(c) => Some(c),
                None => {
                    let c = a.set.allocate();
                    if let Some(c) = &c {
                        a.by_node.insert(name.to_owned(), c.clone());
                    }
                    c
                }
            }
        };
        let Some(cidr) = cidr else {
            self.recorder.event(node.as_ref(), NORMAL, "CIDRNotAvailable", format!("Node {name} status is now: CIDRNotAvailable"));
            return Err(Error::Failed(format!("no podCIDR left for node {name}")));
        };
        let api: Api<Node> = Api::all(self.client.clone());
        let body = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        match api.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await {
            Ok(_) => {
                tracing::debug!(node = name, cidr = %cidr, "podCIDR assigned");
                Ok(None)
            }
            Err(e) => {
                let mut a = self.allocations.lock().unwrap_or_else(|e| e.into_inner());
                if a.by_node.get(name) == Some(&cidr) {
                    a.by_node.remove(name);
                    a.set.release(&cidr);
                }
                if is_not_found(&e) {
                    return Ok(None);
                }
                Err(Error::api("assign podCIDR to", format!("node {name}"), e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_the_lowest_free_range_and_reuses_released_ones() {
        let mut set = CidrSet::new((Ipv4Addr::new(10, 42, 0, 0), 16), 24);
        assert_eq!(set.capacity(), 256);
        assert!(set.occupy("10.42.0.0/24"));
        assert_eq!(set.allocate().as_deref(), Some("10.42.1.0/24"));
        assert_eq!(set.allocate().as_deref(), Some("10.42.2.0/24"));
        set.release("10.42.1.0/24");
        assert_eq!(set.allocate().as_deref(), Some("10.42.1.0/24"));
        assert_eq!(set.allocate().as_deref(), Some("10.42.3.0/24"));
    }

    #[test]
    fn ranges_outside_or_misaligned_are_not_taken() {
        let mut set = CidrSet::new((Ipv4Addr::new(10, 42, 0, 0), 16), 24);
        assert!(!set.occupy("10.128.0.0/24"));
        assert!(!set.occupy("10.42.0.0/25"));
        assert!(!set.occupy("10.42.0.5/24"));
        assert!(!set.occupy("10.43.0.0/24"));
        assert!(!set.occupy("nonsense"));
        assert!(set.occupy("10.42.255.0/24"));
        assert_eq!(set.allocate().as_deref(), Some("10.42.0.0/24"));
    }

    #[test]
    fn a_full_cluster_cidr_has_nothing_left() {
        let mut set = CidrSet::new((Ipv4Addr::new(10, 42, 0, 7), 30), 31);
        assert_eq!(set.allocate().as_deref(), Some("10.42.0.4/31"));
        assert_eq!(set.allocate().as_deref(), Some("10.42.0.6/31"));
        assert_eq!(set.allocate(), None);
        set.release("10.42.0.4/31");
        assert_eq!(set.allocate().as_deref(), Some("10.42.0.4/31"));
    }
}
