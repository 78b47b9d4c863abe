//! Integration tests of the embedded backend: the shared conformance suite plus what only a
//! disk-backed store has (reopen, torn tails, kill -9, format marker, lagging watchers).

mod compaction;
mod durability;
mod embedded;
mod etcd;
mod recovery;
mod snapshot;

use std::ops::Deref;
use std::path::Path;

use rkube_store::embedded::EmbeddedOptions;
use rkube_store::{EmbeddedStore, Store};
use tempfile::TempDir;

/// Small preallocation: tests open many stores.
pub fn test_options() -> EmbeddedOptions {
    EmbeddedOptions { preallocate: 256 << 10, ..Default::default() }
}

pub async fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open_with(dir, test_options()).await.unwrap()
}

/// An embedded store in a temporary directory that lives as long as it.
pub struct TempStore {
    pub store: EmbeddedStore,
    pub dir: TempDir,
}

impl Deref for TempStore {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        &self.store
    }
}

pub async fn fresh() -> TempStore {
    let dir = tempfile::tempdir().unwrap();
    TempStore { store: open(dir.path()).await, dir }
}

mod suite {
    rkube_store::store_suite!(crate::fresh);
}
