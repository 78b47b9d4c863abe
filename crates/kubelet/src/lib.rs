//! rkube's kubelet: registers the node, runs the pods bound to it through CRI on
//! containerd, reports their status, and serves logs/exec/port-forward (DESIGN.md §5).

pub mod containerd;
pub mod cri;
pub mod images;
pub mod server;
#[cfg(any(test, feature = "test-support"))]
pub mod testpod;
