//! Reopen and crash recovery: everything acknowledged comes back; torn tails are cut;
//! damage in the middle of the log is reported, not papered over.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rkube_store::{EmbeddedStore, Entry, Error, ListOptions, Revision, Store};

use crate::{open, test_options};

async fn everything(store: &dyn Store) -> (Vec<Entry>, Revision, Revision) {
    let page = store.list("/", ListOptions::default()).await.unwrap();
    let compacted = store.compacted_revision().await.unwrap();
    (page.entries, page.revision, compacted)
}

/// The active log file (the only `log.<gen>` left after a clean open).
fn log_file(dir: &Path) -> PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log."))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    logs.pop().unwrap()
}

/// Offset just past the last non-zero byte of the log (the end of the written frames).
fn data_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().rposition(|b| *b != 0).unwrap() + 1
}

async fn write_some(store: &dyn Store, from: usize, n: usize) {
    for i in from..from + n {
        let key = format!("/r/{i:03}");
        let rev = store.create(&key, Bytes::from(format!("v{i}"))).await.unwrap();
        if i % 3 == 0 {
            store.update(&key, Bytes::from(format!("w{i}")), rev).await.unwrap();
        }
        if i % 5 == 0 {
            store.delete(&key, None).await.unwrap();
        }
    }
}

#[tokio::test]
async fn reopen_recovers_keys_revisions_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write_some(&store, 0, 30).await;
    let before = everything(&store).await;
    let past = store.list("/", ListOptions { revision: Some(Revision(10)), ..Default::default() });
    let past = past.await.unwrap().entries;
    store.close().await;

    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, before);
    let again = store.list("/", ListOptions { revision: Some(Revision(10)), ..Default::default() });
    assert_eq!(again.await.unwrap().entries, past);
    // Writing continues at the next revision.
    let next = store.create("/r/new", Bytes::new()).await.unwrap();
    assert_eq!(next, Revision(before.1 .0 + 1));
}

#[tokio::test]
async fn reopen_after_compaction_recovers_snapshot_and_later_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write_some(&store, 0, 20).await;
    let cut = store.current_revision().await.unwrap();
    let at_cut = store.list("/", ListOptions { revision: Some(cut), ..Default::default() });
    let at_cut = at_cut.await.unwrap().entries;
    store.compact(Revision(cut.0 - 5)).await.unwrap();
    store.compact(cut).await.unwrap();
    write_some(&store, 20, 10).await;
    let before = everything(&store).await;
    assert_eq!(before.2, cut);
    store.close().await;
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.contains(&"snap.2".to_string()) && names.contains(&"log.2".to_string()));
    assert!(!names.iter().any(|n| n.ends_with(".1") || n == "log.0"), "{names:?}");

    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, before);
    let again = store.list("/", ListOptions { revision: Some(cut), ..Default::default() });
    assert_eq!(again.await.unwrap().entries, at_cut);
    let below =
        store.list("/", ListOptions { revision: Some(Revision(cut.0 - 1)), ..Default::default() });
    assert!(matches!(below.await, Err(Error::Compacted { .. })));
}

#[tokio::test]
async fn a_log_cut_mid_record_loses_only_the_torn_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write_some(&store, 0, 10).await;
    let kept = everything(&store).await;
    store.create("/r/torn", Bytes::from(vec![7u8; 100])).await.unwrap();
    store.close().await;

    let log = log_file(dir.path());
    let end = data_end(&log);
    OpenOptions::new().write(true).open(&log).unwrap().set_len(end as u64 - 40).unwrap();

    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, kept);
    assert_eq!(store.get("/r/torn").await.unwrap(), None);
    let rev = store.create("/r/after", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(rev, Revision(kept.1 .0 + 1));
    store.close().await;
    let store = open(dir.path()).await;
    assert_eq!(store.get("/r/after").await.unwrap().unwrap().mod_revision, rev);
}

#[tokio::test]
async fn garbage_after_the_last_record_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write_some(&store, 0, 10).await;
    let kept = everything(&store).await;
    store.close().await;

    let log = log_file(dir.path());
    let end = data_end(&log);
    let mut file = OpenOptions::new().write(true).open(&log).unwrap();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(end as u64)).unwrap();
    let garbage: Vec<u8> = (0..777u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    file.write_all(&garbage).unwrap();
    drop(file);

    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, kept);
    // New writes land where the garbage was and survive another reopen.
    write_some(&store, 100, 3).await;
    let later = everything(&store).await;
    store.close().await;
    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, later);
}

#[tokio::test]
async fn damage_in_the_middle_of_the_log_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write_some(&store, 0, 10).await;
    store.close().await;

    let log = log_file(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    // Inside the first frame's payload (the header is 16 bytes, the frame header 12).
    bytes[16 + 12 + 6] ^= 0x40;
    std::fs::write(&log, bytes).unwrap();
    match EmbeddedStore::open_with(dir.path(), test_options()).await {
        Err(Error::Corrupt { path, reason }) => {
            assert!(path.ends_with("log.0"), "{path}");
            assert!(reason.contains("intact frame"), "{reason}");
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("opened a corrupt log"),
    }
}

#[tokio::test]
async fn a_damaged_snapshot_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write_some(&store, 0, 10).await;
    store.compact(Revision(5)).await.unwrap();
    store.close().await;
    let snap = dir.path().join("snap.1");
    let mut bytes = std::fs::read(&snap).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&snap, bytes).unwrap();
    let opened = EmbeddedStore::open_with(dir.path(), test_options()).await;
    assert!(matches!(opened, Err(Error::Corrupt { .. })), "{:?}", opened.err());
}

#[tokio::test]
async fn leftovers_of_an_interrupted_compaction_are_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write_some(&store, 0, 10).await;
    let before = everything(&store).await;
    store.close().await;
    // A crash after writing the snapshot and the next log, before the rename commits them.
    std::fs::write(dir.path().join("snap.tmp"), b"half a snapshot").unwrap();
    std::fs::write(dir.path().join("log.1"), vec![0u8; 4096]).unwrap();

    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, before);
    assert!(!dir.path().join("snap.tmp").exists());
    // The half-created log.1 is now the (empty) active log; writes go there.
    let rev = store.create("/r/into-log-1", Bytes::new()).await.unwrap();
    assert_eq!(rev, Revision(before.1 .0 + 1));
    let before = everything(&store).await;
    // The next real compaction takes generation 1 cleanly.
    store.compact(before.1).await.unwrap();
    store.close().await;
    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await.0, before.0);
    assert_eq!(store.compacted_revision().await.unwrap(), before.1);
}

/// A crash after compaction switched to the next log but before its snapshot was committed:
/// the old snapshot (here: none) plus both logs hold everything.
#[tokio::test]
async fn a_crash_before_the_snapshot_commits_replays_the_chain_of_logs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    write_some(&store, 0, 10).await;
    store.close().await;
    let log0 = std::fs::read(dir.path().join("log.0")).unwrap();

    let store = open(dir.path()).await;
    let compacted_at = store.current_revision().await.unwrap();
    store.compact(compacted_at).await.unwrap();
    write_some(&store, 10, 10).await;
    let before = everything(&store).await;
    store.close().await;
    // Rebuild the state between the log switch and the snapshot's rename.
    std::fs::write(dir.path().join("log.0"), log0).unwrap();
    std::fs::remove_file(dir.path().join("snap.1")).unwrap();

    let store = open(dir.path()).await;
    let (entries, revision, compacted) = everything(&store).await;
    assert_eq!((entries, revision), (before.0, before.1));
    assert_eq!(compacted, Revision(0), "an uncommitted compaction is forgotten");
    let next = store.create("/r/next", Bytes::new()).await.unwrap();
    assert_eq!(next, Revision(before.1 .0 + 1));
    store.compact(next).await.unwrap();
    store.close().await;
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("log.") || n.starts_with("snap."))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"snap.2".to_string()) && names.contains(&"log.2".to_string()));
    let store = open(dir.path()).await;
    assert_eq!(store.get("/r/next").await.unwrap().unwrap().mod_revision, next);
    assert_eq!(store.compacted_revision().await.unwrap(), next);
}

/// Compactions while writes stream in: the background snapshot (read in chunks beside the
/// writer) plus the new log must reproduce exactly the acknowledged state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_during_writes_recovers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(dir.path()).await);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..1200 {
                    let key = format!("/cw/{w}/{i:05}");
                    let rev = store.create(&key, Bytes::from(vec![w as u8; 64])).await.unwrap();
                    if i % 4 == 0 {
                        store.update(&key, Bytes::from_static(b"updated"), rev).await.unwrap();
                    }
                    if i % 7 == 0 {
                        store.delete(&key, None).await.unwrap();
                    }
                }
            })
        })
        .collect();
    let mut compactions = 0;
    while compactions < 4 {
        let current = store.current_revision().await.unwrap();
        if current.0 > (compactions + 1) * 2000 {
            store.compact(current).await.unwrap();
            compactions += 1;
        }
        tokio::task::yield_now().await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let before = everything(&*store).await;
    assert!(before.0.len() > 8000, "{}", before.0.len());
    let store = std::sync::Arc::into_inner(store).unwrap();
    store.close().await;

    let store = open(dir.path()).await;
    assert_eq!(everything(&store).await, before);
}
