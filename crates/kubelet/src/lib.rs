//! rkube's kubelet: registers the node, runs the pods bound to it through CRI on
//! containerd, reports their status, and serves logs/exec/port-forward (DESIGN.md §5).
//!
//! Modules: [`agent`] wires everything ([`Kubelet::run`]); [`node`] registers the Node and
//! keeps its Lease and status fresh; [`pods`] watches this node's pods and runs one worker
//! per pod over CRI ([`cri`]) on the containerd of [`containerd`], with the images of
//! [`images`] and the CNI config of [`network`], and the volumes of [`volumes`]; [`clock`] is the one wall clock.
//!
//! Design: all pod state lives in CRI (upstream's labels and annotations on sandboxes and
//! containers), so a worker's sync is level-triggered and a restarted kubelet adopts running
//! containers instead of recreating them. containerd 1.6 has no event stream, so workers
//! re-read CRI state every second.

pub mod cleanup;
pub mod agent;
pub mod clock;
pub mod containerd;
pub mod cri;
pub mod eviction;
pub mod imagegc;
pub mod images;
pub mod network;
pub mod registries;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod metrics;
pub mod server;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod testpod;
pub mod node;
pub mod pods;
pub mod volumes;

pub use agent::{Config, Kubelet};
