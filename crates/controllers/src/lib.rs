//! rkube-controllers: the controller manager (`kube-controller-manager`'s controllers).
//!
//! Modules:
//! - [`informer`]: shared informers, one kube-runtime watcher and reflector per resource for
//!   every controller, with handlers that enqueue keys.
//! - [`queue`]: the rate-limited, de-duplicating work queue (client-go's workqueue).
//! - [`controller`]: the worker loop and helpers every controller shares.
//! - [`expectations`]: creations and deletions in flight.
//! - [`claim`]: adoption and release of dependents (`ControllerRefManager`).
//! - [`events`]: the core/v1 Event recorder.
//! - [`pods`]: pod readiness, availability and the scale-down order.
//! - one module per controller, named as upstream: [`replicaset`], [`deployment`],
//!   [`garbagecollector`], [`serviceaccount`], [`rootcacertpublisher`], [`endpoint`],
//!   [`endpointslice`], [`job`], [`cronjob`], [`ttlafterfinished`],
//!   [`disruption`], [`resourcequota`], [`hpa`] (horizontal pod autoscaling).
//! - workloads and storage: [`daemonset`], [`statefulset`], [`history`] (their
//!   ControllerRevisions), [`pvbinder`], and [`localpath`] (k3s's local-path provisioner).
//! - node and namespace housekeeping: [`namespace`], [`nodelifecycle`], [`nodeipam`], [`podgc`].
//! - [`manager`]: leader election and start-up of the enabled controllers.
//!
//! Design: every controller is level-triggered as upstream's are. Informer handlers only turn
//! changes into keys on the controller's work queue; a worker takes a key, reads the object
//! and everything else it needs from the shared caches, computes what to do with pure
//! functions (unit-tested here), performs it through the API, and returns when to look again.
//! Failures are retried with per-key exponential back-off, and every key is looked at again
//! periodically as a safety net.

pub mod claim;
pub mod clock;
pub mod config;
pub mod controller;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoint;
pub mod endpointslice;
pub mod error;
pub mod events;
pub mod expectations;
pub mod garbagecollector;
pub mod history;
pub mod hpa;
pub mod informer;
pub mod job;
pub mod localpath;
pub mod manager;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod pods;
pub mod pvbinder;
pub mod queue;
pub mod replicaset;
pub mod resourcequota;
pub mod rootcacertpublisher;
pub mod serviceaccount;
pub mod ttlafterfinished;
pub mod statefulset;

pub use config::{parse_controllers, Config};
pub use error::{Error, Result};
pub use manager::ControllerManager;
