//! Real etcd processes on loopback, for tests and benchmarks: one member or a cluster, each
//! on free ports with its data under a directory the caller owns, killed on drop.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use rkube_store::etcd::process::{LocalEtcd, LocalEtcdConfig};
//! let dir = std::env::temp_dir().join("etcd-demo");
//! let etcd = LocalEtcd::start(&dir, LocalEtcdConfig::default())?;
//! etcd.wait_ready(std::time::Duration::from_secs(30)).await?;
//! println!("etcd at {}", etcd.endpoints());
//! # Ok(()) }
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{EtcdOptions, EtcdStore};
use crate::Store;

/// Certificates for a TLS etcd: served with `cert`/`key`, clients must present a
/// certificate signed by `ca` (etcd's `--client-cert-auth`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct LocalEtcdConfig {
    /// The etcd binary (default `etcd`, found on the PATH; Debian's `etcd-server`).
    pub bin: PathBuf,
    /// Number of members (default 1).
    pub members: usize,
    /// Serve clients over TLS with client-certificate auth (default: plain HTTP).
    pub tls: Option<TlsFiles>,
}

impl Default for LocalEtcdConfig {
    fn default() -> Self {
        LocalEtcdConfig { bin: PathBuf::from("etcd"), members: 1, tls: None }
    }
}

struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    child: Option<Child>,
}

/// A running etcd cluster on loopback. Dropping it kills every member.
pub struct LocalEtcd {
    config: LocalEtcdConfig,
    dir: PathBuf,
    cluster: String,
    members: Vec<Member>,
}

/// A loopback port that is free now (the OS picks it; etcd binds it right after).
pub fn free_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl LocalEtcd {
    /// Starts the members with data and logs under `dir` (which must outlive this value);
    /// does not wait for them: see [`LocalEtcd::wait_ready`].
    pub fn start(dir: &Path, config: LocalEtcdConfig) -> io::Result<LocalEtcd> {
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let mut members = Vec::new();
        for i in 0..config.members.max(1) {
            members.push(Member {
                name: format!("m{i}"),
                client_url: format!("{scheme}://127.0.0.1:{}", free_port()?),
                peer_url: format!("http://127.0.0.1:{}", free_port()?),
                child: None,
            });
        }
        let cluster =
            members.iter().map(|m| format!("{}={}", m.name, m.peer_url)).collect::<Vec<_>>().join(",");
        let mut etcd = LocalEtcd { config, dir: dir.to_path_buf(), cluster, members };
        for i in 0..etcd.members.len() {
            etcd.spawn(i)?;
        }
        Ok(etcd)
    }

    fn spawn(&mut self, i: usize) -> io::Result<()> {
        let member = &self.members[i];
        let data = self.dir.join(&member.name);
        std::fs::create_dir_all(&data)?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path(i))?;
        let mut command = Command::new(&self.config.bin);
        command
            .arg("--data-dir")
            .arg(data.join("data"))
            .args(["--name", &member.name])
            .args(["--listen-client-urls", &member.client_url])
            .args(["--advertise-client-urls", &member.client_url])
            .args(["--listen-peer-urls", &member.peer_url])
            .args(["--initial-advertise-peer-urls", &member.peer_url])
            .args(["--initial-cluster", &self.cluster])
            .args(["--initial-cluster-token", "rkube-test"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(tls) = &self.config.tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let child = command.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot start {}: {e}", self.config.bin.display()))
        })?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Where member `i` writes its log.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.members[i].name))
    }

    /// Every member's client URL, comma-separated (as `--datastore-endpoint` takes them).
    pub fn endpoints(&self) -> String {
        self.members.iter().map(|m| m.client_url.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> &str {
        &self.members[i].client_url
    }

    /// Store options for every member, with the TLS files as client identity if any.
    pub fn options(&self) -> EtcdOptions {
        let mut options = EtcdOptions::new(&self.endpoints());
        if let Some(tls) = &self.config.tls {
            options.ca_file = Some(tls.ca.clone());
            options.cert_file = Some(tls.cert.clone());
            options.key_file = Some(tls.key.clone());
        }
        options
    }

    /// Waits until the cluster answers reads and writes (a quorum is up), or `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> io::Result<()> {
        let mut options = self.options();
        options.startup_timeout = Some(timeout);
        options.request_timeout = timeout;
        let store = EtcdStore::connect(options).await.map_err(|e| self.not_ready(e))?;
        let key = "\0rkube/ready";
        let _ = store.delete(key, None).await;
        store.create(key, "1".into()).await.map_err(|e| self.not_ready(e))?;
        Ok(())
    }

    fn not_ready(&self, e: crate::Error) -> io::Error {
        let log = std::fs::read_to_string(self.log_path(0)).unwrap_or_default();
        let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
        io::Error::other(format!("etcd at {} is not ready: {e:#?}\nlog tail:\n{tail}", self.endpoints()))
    }

    /// SIGKILLs member `i` (no-op if it is not running).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on the same ports and data after [`LocalEtcd::kill`].
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        self.kill(i);
        self.spawn(i)
    }

    /// The index of the current leader, asked of each live member in turn.
    pub async fn leader(&self) -> Option<usize> {
        for (i, m) in self.members.iter().enumerate() {
            if m.child.is_none() {
                continue;
            }
            let mut options = self.options();
            options.endpoints = vec![m.client_url.clone()];
            options.startup_timeout = Some(Duration::from_secs(2));
            let Ok(store) = EtcdStore::connect(options).await else { continue };
            let mut client = store.client().clone();
            let Ok(Ok(status)) =
                tokio::time::timeout(Duration::from_secs(2), client.status()).await
            else {
                continue;
            };
            let me = status.header().map(|h| h.member_id());
            if Some(status.leader()) == me {
                return Some(i);
            }
        }
        None
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
