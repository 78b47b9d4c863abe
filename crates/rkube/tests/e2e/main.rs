//! End-to-end tests: the real `rkube` binary, driven by the real `kubectl` (and kube-rs),
//! as a user would. One test binary; each test starts its own server on a free port with
//! its own data dir.

mod harness;

mod images_import;

mod api_fidelity;
mod bad_input;
mod delete_options;
mod discovery;
mod durability;
mod field_validation;
mod hardening;
mod encryption;
mod etcd;
mod kubectl_get;
mod snapshot;
mod store_metrics;
mod watch_compaction;
mod kubectl_write;
mod server_side_apply;
mod validation;
mod python_client;
mod scheduling;
mod streaming;
mod controllers;
mod jobs;
mod kubelet;
mod kubelet_probes;
mod kubelet_volumes;
mod kubelet_stats;
mod workloads;
mod namespaces;
mod node_lifecycle;
mod node_ipam;
mod podgc;
mod disruption;
mod quota;
mod hpa;
