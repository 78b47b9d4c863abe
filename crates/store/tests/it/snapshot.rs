//! Snapshot capture and restore into an embedded data directory.

use bytes::Bytes;
use rkube_store::snapshot::{self, Snapshot};
use rkube_store::{EmbeddedStore, Error, ListOptions, Revision, Store};

use crate::open;

/// Writes some history: creates, updates, a delete, a re-create.
async fn populate(store: &dyn Store) -> Revision {
    for i in 0..50 {
        store.create(&format!("/registry/cm/ns/{i:03}"), Bytes::from(format!("v{i}"))).await.unwrap();
    }
    let e = store.get("/registry/cm/ns/007").await.unwrap().unwrap();
    store.update(&e.key, Bytes::from_static(b"updated"), e.mod_revision).await.unwrap();
    store.delete("/registry/cm/ns/008", None).await.unwrap();
    store.delete("/registry/cm/ns/009", None).await.unwrap();
    store.create("/registry/cm/ns/009", Bytes::from_static(b"again")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_reproduces_every_key_with_its_revisions() {
    let source = crate::fresh().await;
    let last = populate(&*source).await;
    let mut snap = snapshot::capture(&*source, "uid-1", "2026-01-01T00:00:00Z", "embedded").await.unwrap();
    snap.files = vec![("tls/ca.crt".into(), b"crt".to_vec()), ("tls/ca.key".into(), b"key".to_vec())];
    assert_eq!(snap.meta.revision, last);
    // Writes after the capture are not in it.
    source.create("/registry/cm/ns/late", Bytes::from_static(b"x")).await.unwrap();
    let bytes = snap.encode();

    let target = tempfile::tempdir().unwrap();
    let decoded = Snapshot::decode(&bytes).unwrap();
    let restored = snapshot::restore_embedded(&decoded, target.path()).unwrap();
    assert_eq!((restored.entries, restored.previous), (49, None));
    assert_eq!(std::fs::read(target.path().join("tls/ca.crt")).unwrap(), b"crt");
    assert_eq!(std::fs::read(target.path().join("tls/ca.key")).unwrap(), b"key");

    let store = open(&target.path().join("db")).await;
    assert_eq!(store.current_revision().await.unwrap(), last);
    let want = source.list("/", ListOptions { revision: Some(last), ..Default::default() }).await.unwrap();
    let got = store.list("/", ListOptions::default()).await.unwrap();
    assert_eq!(got.entries, want.entries, "keys, values and revisions survive");
    // The restored store goes on from the snapshot's revision.
    let e = store.get("/registry/cm/ns/009").await.unwrap().unwrap();
    let next = store.update(&e.key, Bytes::from_static(b"after"), e.mod_revision).await.unwrap();
    assert_eq!(next, Revision(last.0 + 1));
    assert_eq!(store.get(&e.key).await.unwrap().unwrap().version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_live_data_dir_and_keeps_old_data_on_success() {
    let source = crate::fresh().await;
    populate(&*source).await;
    let snap = snapshot::capture(&*source, "uid-1", "t", "embedded").await.unwrap();

    let target = tempfile::tempdir().unwrap();
    let db = target.path().join("db");
    let live = open(&db).await;
    live.create("/registry/old", Bytes::from_static(b"old")).await.unwrap();
    match snapshot::restore_embedded(&snap, target.path()) {
        Err(Error::Unavailable(e)) => assert!(e.to_string().contains("in use"), "{e}"),
        other => panic!("restored over a live store: {other:?}"),
    }
    assert_eq!(&live.get("/registry/old").await.unwrap().unwrap().value[..], b"old");
    live.close().await;

    let restored = snapshot::restore_embedded(&snap, target.path()).unwrap();
    assert_eq!(restored.previous, Some(target.path().join("db.old")));
    let old = open(&target.path().join("db.old")).await;
    assert!(old.get("/registry/old").await.unwrap().is_some(), "the old data was kept");
    let new = EmbeddedStore::open(&db).await.unwrap();
    assert!(new.get("/registry/old").await.unwrap().is_none());
    assert!(new.get("/registry/cm/ns/001").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_etcd_restores_into_the_embedded_store() {
    let etcd = crate::etcd::fresh().await;
    let last = populate(&*etcd).await;
    let snap = snapshot::capture(&*etcd, "uid-2", "t", "etcd").await.unwrap();
    let want = etcd.list("/registry/", ListOptions { revision: Some(last), ..Default::default() }).await.unwrap();
    let decoded = Snapshot::decode(&snap.encode()).unwrap();
    let target = tempfile::tempdir().unwrap();
    snapshot::restore_embedded(&decoded, target.path()).unwrap();
    let store = open(&target.path().join("db")).await;
    let got = store.list("/registry/", ListOptions::default()).await.unwrap();
    assert_eq!(got.entries, want.entries);
}
