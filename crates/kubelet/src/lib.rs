//! rkube's kubelet: registers the node, runs the pods bound to it through CRI on
//! containerd, reports their status, and serves logs/exec/port-forward (DESIGN.md §5).

pub mod cleanup;
pub mod containerd;
pub mod cri;
pub mod images;
pub mod network;
pub mod registries;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod server;
#[cfg(any(test, feature = "testing"))]
pub mod testpod;
