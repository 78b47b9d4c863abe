//! kill -9 durability: a child process writes from many tasks and prints every key whose
//! write was acknowledged; the parent SIGKILLs it mid-stream and checks, after reopening,
//! that every acknowledged key is there.
//!
//! The child is this same test binary, re-run with only `durability::child_writer` selected
//! and the data directory in an environment variable.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use rkube_store::Store;

use crate::open;

const CHILD_ENV: &str = "RKUBE_STORE_DURABILITY_CHILD_DIR";
const WRITERS: usize = 8;

/// The child half; does nothing unless started by `acknowledged_writes_survive_kill_9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let store: Arc<dyn Store> = Arc::new(open(Path::new(&dir)).await);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("/durable/{w}/{i:08}");
                store.create(&key, Bytes::from(key.clone().into_bytes())).await.unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {key}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "durability::child_writer", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 3000 {
        let line = lines.next().expect("child stopped writing").unwrap();
        if let Some(key) = line.strip_prefix("ack ") {
            acked.push(key.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acknowledgements the child printed after we stopped reading count too.
    for line in lines {
        if let Some(key) = line.unwrap().strip_prefix("ack ") {
            acked.push(key.to_string());
        }
    }

    let store = open(dir.path()).await;
    for key in &acked {
        let entry = store.get(key).await.unwrap();
        let entry = entry.unwrap_or_else(|| panic!("acknowledged {key} is lost"));
        assert_eq!(&entry.value[..], key.as_bytes());
    }
    // Every writer's keys form a gap-free run: no later write survived an earlier loss.
    for w in 0..WRITERS {
        let page = store.list(&format!("/durable/{w}/"), Default::default()).await.unwrap();
        for (i, entry) in page.entries.iter().enumerate() {
            assert_eq!(entry.key, format!("/durable/{w}/{i:08}"));
        }
    }
}
