//! Test fixtures that start real things (network namespaces, a registry on loopback), shared
//! by this crate's tests and, through the `testing` feature, by the end-to-end tests.

pub mod netns;
pub mod registry;
