//! End-to-end tests: the real `rkube` binary, driven by the real `kubectl` (and kube-rs),
//! as a user would. One test binary; each test starts its own server on a free port with
//! its own data dir.

mod harness;

mod api_fidelity;
mod bad_input;
mod discovery;
mod durability;
mod kubectl_get;
mod kubectl_write;
mod scheduling;
