//! The embedded backend (being written).

/// The default, durable, on-disk backend.
pub struct EmbeddedStore;
