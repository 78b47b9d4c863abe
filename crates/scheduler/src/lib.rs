//! rkube-scheduler: watches pods without a node, picks the best node and binds the pod
//! through the `pods/binding` subresource, as kube-scheduler does.
//!
//! Modules:
//! - [`config`]: settings and the KubeSchedulerConfiguration file (profiles, weights).
//! - [`framework`]: one trait per extension point, `CycleState`, `Status`, `Snapshot`.
//! - [`plugins`]: the in-tree filter and score plugins, one file each.
//! - [`algorithm`]: one scheduling attempt (pure), and the upstream FitError message.
//! - [`preemption`]: DefaultPreemption's candidate search (pure).
//! - [`queue`]: active / back-off / unschedulable sub-queues.
//! - [`cache`]: nodes with their assigned and assumed pods.
//! - [`scheduler`]: the async shell: watches, the scheduling loop, binding, events, status.
//! - [`leader`]: leader election on a `coordination.k8s.io` Lease.
//! - [`quantity`], [`selectors`], [`node_info`]: helpers over k8s-openapi types.
//!
//! Design: one task owns the cache and the queue and runs scheduling cycles one pod at a
//! time (plugins are synchronous and pure over the cache, which is the snapshot); binding,
//! events and status writes are sent to bounded pools of async workers, and their results
//! come back to the owner as messages. A pod is *assumed* on its node as soon as it is
//! chosen, so the next cycle already sees the resources it takes, as upstream.

/// Leader election, shared with the controller manager (moved to `rkube_api::leader`).
pub use rkube_api::leader;

pub mod algorithm;
pub mod cache;
pub mod config;
pub mod framework;
pub mod node_info;
pub mod plugins;
pub mod preemption;
pub mod quantity;
pub mod queue;
pub mod scheduler;
pub mod selectors;

pub use config::Config;
pub use scheduler::{Error, Result, Scheduler};
