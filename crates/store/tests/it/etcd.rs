//! The etcd backend against real etcd processes on loopback: the shared suite, plus what
//! only a networked store has (fail-over, resumed watches, unreachable endpoints, TLS).

use std::ops::Deref;
use std::time::Duration;

use rkube_store::etcd::process::{LocalEtcd, LocalEtcdConfig};
use rkube_store::{EtcdOptions, EtcdStore, Store};
use tempfile::TempDir;

/// A store on its own etcd; fields drop in order: client, etcd processes, data.
pub struct TempEtcd {
    pub store: EtcdStore,
    pub etcd: LocalEtcd,
    pub dir: TempDir,
}

impl Deref for TempEtcd {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        &self.store
    }
}

pub async fn start_cluster(members: usize) -> TempEtcd {
    let dir = tempfile::tempdir().unwrap();
    let config = LocalEtcdConfig { members, ..Default::default() };
    let etcd = LocalEtcd::start(dir.path(), config).unwrap();
    etcd.wait_ready(Duration::from_secs(60)).await.unwrap();
    let store = EtcdStore::connect(etcd.options()).await.unwrap();
    TempEtcd { store, etcd, dir }
}

pub async fn fresh() -> TempEtcd {
    start_cluster(1).await
}

mod suite {
    rkube_store::store_suite!(super::fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_named_in_the_error() {
    let port = rkube_store::etcd::process::free_port().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut options = EtcdOptions::new(&endpoint);
    options.startup_timeout = Some(Duration::from_millis(500));
    let error = match EtcdStore::connect(options).await {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => format!("{e}: {:?}", std::error::Error::source(&e).map(|s| s.to_string())),
    };
    assert!(error.contains(&endpoint), "{error}");
}

/// Three members; the leader is SIGKILLed during a write loop. Writes pause and go on, no
/// acknowledged write is lost, and a watch opened before the kill sees every write once,
/// in order (it resumes on a surviving member from where it was).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_during_writes_loses_nothing_and_watch_resumes() {
    use futures::StreamExt;
    let mut t = start_cluster(3).await;
    let start = t.store.current_revision().await.unwrap();
    let mut watch = t.store.watch("/failover/", start).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..200 {
        if i == 60 {
            let leader = t.etcd.leader().await.expect("a leader");
            t.etcd.kill(leader);
        }
        let key = format!("/failover/{i:04}");
        let rev = t.store.create(&key, bytes::Bytes::from(key.clone())).await.unwrap();
        acked.push((key, rev));
    }
    for (key, rev) in &acked {
        let entry = t.store.get(key).await.unwrap().unwrap_or_else(|| panic!("{key} lost"));
        assert_eq!(entry.mod_revision, *rev);
    }
    for (key, rev) in &acked {
        let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("watch stalled")
            .expect("watch ended")
            .expect("watch failed");
        assert_eq!((&event.entry.key, event.revision()), (key, *rev));
    }
    assert!(t.dir.path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_while_watching_ends_the_watch_with_compacted_after_a_break() {
    // A watch whose history is compacted while it is disconnected gets `Compacted`, never
    // a silent gap: member 0 (the watch's only endpoint) is killed, the others compact,
    // and when the watch resumes its cursor is gone.
    use futures::StreamExt;
    let mut t = start_cluster(3).await;
    let mut only_0 = t.etcd.options();
    only_0.endpoints = vec![t.etcd.endpoint(0).to_string()];
    only_0.request_timeout = Duration::from_secs(60);
    let watcher = EtcdStore::connect(only_0).await.unwrap();
    let start = t.store.current_revision().await.unwrap();
    let mut watch = watcher.watch("/gap/", start).await.unwrap();
    let r1 = t.store.create("/gap/a", "1".into()).await.unwrap();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.revision(), r1);

    t.etcd.kill(0);
    let mut others = t.etcd.options();
    others.endpoints = vec![t.etcd.endpoint(1).to_string(), t.etcd.endpoint(2).to_string()];
    let others = EtcdStore::connect(others).await.unwrap();
    let r2 = others.update("/gap/a", "2".into(), r1).await.unwrap();
    let r3 = others.delete("/gap/a", None).await.unwrap().revision;
    others.create("/gap/b", "x".into()).await.unwrap();
    others.compact(others.current_revision().await.unwrap()).await.unwrap();
    t.etcd.restart(0).unwrap();

    let item = tokio::time::timeout(Duration::from_secs(60), watch.next())
        .await
        .expect("watch stalled")
        .expect("watch ended without telling");
    match item {
        Err(rkube_store::Error::Compacted { requested, .. }) => assert_eq!(requested, r1),
        Ok(event) => panic!("got {event:?} after a compaction that removed r{r2} and r{r3}"),
        Err(e) => panic!("expected Compacted, got {e}"),
    }
}

/// Writes a CA and one certificate for 127.0.0.1 usable as etcd's serving certificate and
/// as a client certificate, into `dir`.
fn write_test_pki(dir: &std::path::Path) -> rkube_store::etcd::process::TlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    leaf.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let files = rkube_store::etcd::process::TlsFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join("etcd.crt"),
        key: dir.join("etcd.key"),
    };
    std::fs::write(&files.ca, ca_cert.pem()).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let tls = write_test_pki(dir.path());
    let config = LocalEtcdConfig { tls: Some(tls), ..Default::default() };
    let etcd = LocalEtcd::start(dir.path(), config).unwrap();
    etcd.wait_ready(Duration::from_secs(60)).await.unwrap();
    assert!(etcd.endpoints().starts_with("https://"));

    let store = EtcdStore::connect(etcd.options()).await.unwrap();
    let r = store.create("/tls/a", "1".into()).await.unwrap();
    assert_eq!(store.get("/tls/a").await.unwrap().unwrap().mod_revision, r);

    // Without a client certificate etcd refuses the connection.
    let mut no_cert = etcd.options();
    (no_cert.cert_file, no_cert.key_file) = (None, None);
    no_cert.startup_timeout = Some(Duration::from_secs(1));
    assert!(EtcdStore::connect(no_cert).await.is_err(), "connected without a client certificate");
    // A certificate file that is missing is named.
    let mut missing = etcd.options();
    missing.cert_file = Some(dir.path().join("nope.crt"));
    let error = EtcdStore::connect(missing).await.err().expect("connected with a missing file");
    assert!(format!("{error:?}").contains("nope.crt"), "{error:?}");
}
