//! `rkube snapshot save|restore|ls` and the server's scheduled snapshots.
//!
//! A snapshot is [`rkube_store::snapshot`]'s file: every key of the datastore at one
//! revision, the cluster's identity (the `kube-system` namespace uid) and the cluster CA,
//! service-account and admin key pairs (so a restored cluster keeps its kubeconfigs and
//! tokens; its serving certificate is reissued for the new machine's addresses on start).
//!
//! `save` asks the running server over HTTPS with the admin kubeconfig (the embedded
//! store's directory is locked by the server) or, with `--datastore-endpoint`, reads etcd
//! directly. `restore` works offline on a data directory. Scheduled snapshots follow k3s:
//! `--etcd-snapshot-schedule-cron`, `--etcd-snapshot-retention`, `--etcd-snapshot-dir`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rkube_store::snapshot::{self, Snapshot};
use rkube_store::Store;

/// The PKI files a snapshot carries, relative to the data dir.
const PKI_FILES: &[&str] =
    &["tls/ca.crt", "tls/ca.key", "tls/sa.key", "tls/sa.pub", "tls/admin.crt", "tls/admin.key"];
/// Name prefix of scheduled snapshots (the ones retention prunes).
pub const SCHEDULED_PREFIX: &str = "rkube-snapshot-";

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Save a consistent snapshot of the running cluster's datastore to FILE
    /// (default: <data-dir>/snapshots/on-demand-<host>-<unix time>).
    Save(SaveArgs),
    /// Restore FILE into --data-dir (the server must be stopped; the old datastore is kept
    /// as <data-dir>/db.old).
    Restore(RestoreArgs),
    /// List the snapshots in the snapshot directory, checking each one's checksum.
    Ls(LsArgs),
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Where to write the snapshot.
    pub file: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Admin kubeconfig of the running server (default: <data-dir>/kubeconfig.yaml).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Read this etcd directly instead of asking the server (comma-separated URLs).
    #[arg(long, value_name = "URLS")]
    pub datastore_endpoint: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub datastore_cafile: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub datastore_certfile: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub datastore_keyfile: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// The data dir to restore into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory to list (default: <data-dir>/snapshots).
    #[arg(long = "etcd-snapshot-dir", alias = "snapshot-dir", value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
}

pub async fn run(args: SnapshotArgs) -> anyhow::Result<()> {
    match args.command {
        SnapshotCommand::Save(a) => save(a).await,
        SnapshotCommand::Restore(a) => restore(a),
        SnapshotCommand::Ls(a) => ls(a),
    }
}

/// The wall-clock time now, as RFC 3339 and as Unix seconds (for names).
fn now() -> (String, i64) {
    let now = jiff::Timestamp::now();
    (now.round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default(), now.as_second())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Captures the store and the PKI files under `data_dir` into snapshot bytes.
pub async fn take(store: &dyn Store, data_dir: &Path, source: &str) -> anyhow::Result<Vec<u8>> {
    let (created, _) = now();
    let cluster = cluster_id(store).await?;
    let mut snap = snapshot::capture(store, &cluster, &created, source).await?;
    for name in PKI_FILES {
        match std::fs::read(data_dir.join(name)) {
            Ok(data) => snap.files.push((name.to_string(), data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {name}")),
        }
    }
    Ok(snap.encode())
}

/// The cluster's identity: the `kube-system` namespace's uid.
async fn cluster_id(store: &dyn Store) -> anyhow::Result<String> {
    let Some(entry) = store.get("/registry/namespaces/kube-system").await? else {
        return Ok(String::new());
    };
    let ns: serde_json::Value = serde_json::from_slice(&entry.value).unwrap_or_default();
    Ok(ns["metadata"]["uid"].as_str().unwrap_or_default().to_string())
}

/// Writes `bytes` to `path` atomically (temporary name, sync, rename), readable by the
/// owner only: a snapshot holds every Secret and the CA key.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

async fn save(args: SaveArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(crate::server::default_data_dir);
    let bytes = match &args.datastore_endpoint {
        Some(endpoints) => {
            let mut options = rkube_store::EtcdOptions::new(endpoints);
            options.ca_file = args.datastore_cafile.clone();
            options.cert_file = args.datastore_certfile.clone();
            options.key_file = args.datastore_keyfile.clone();
            options.startup_timeout = Some(std::time::Duration::from_secs(10));
            let store = rkube_store::EtcdStore::connect(options)
                .await
                .with_context(|| format!("--datastore-endpoint {endpoints}"))?;
            take(&store, &data_dir, "etcd").await?
        }
        None => {
            let kubeconfig = args.kubeconfig.clone().unwrap_or_else(|| data_dir.join("kubeconfig.yaml"));
            fetch(&kubeconfig).await?
        }
    };
    // Check what came over the wire before writing it anywhere.
    let meta = Snapshot::check(&bytes).context("the server sent a bad snapshot")?;
    let file = args.file.clone().unwrap_or_else(|| {
        let (_, unix) = now();
        data_dir.join("snapshots").join(format!("on-demand-{}-{unix}", host_name()))
    });
    write_private(&file, &bytes)?;
    println!(
        "snapshot saved: {} (revision {}, cluster {}, {} bytes)",
        file.display(),
        meta.revision,
        meta.cluster,
        bytes.len()
    );
    Ok(())
}

/// Asks the running server for a snapshot with the admin kubeconfig.
async fn fetch(kubeconfig: &Path) -> anyhow::Result<Vec<u8>> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read the kubeconfig {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let request = http::Request::get(rkube_apiserver::handlers::SNAPSHOT_PATH)
        .body(kube::client::Body::empty())?;
    let response = client.send(request).await.context("cannot reach the API server")?;
    let status = response.status();
    let body = response.into_body().collect_bytes().await?;
    if !status.is_success() {
        let message: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = message["message"].as_str().unwrap_or("").to_string();
        bail!("the API server refused the snapshot ({status}): {message}");
    }
    Ok(body.to_vec())
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(crate::server::default_data_dir);
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    // The whole file is validated before anything in the data dir is touched.
    let snap = Snapshot::decode(&bytes)
        .with_context(|| format!("refusing to restore {}", args.file.display()))?;
    let restored = snapshot::restore_embedded(&snap, &data_dir).with_context(|| {
        format!("cannot restore into {} (is a server running on it?)", data_dir.display())
    })?;
    println!(
        "restored {} keys at revision {} of cluster {} into {}",
        restored.entries,
        restored.revision,
        snap.meta.cluster,
        data_dir.display()
    );
    if let Some(previous) = restored.previous {
        println!("the previous datastore was kept in {}", previous.display());
    }
    Ok(())
}

fn ls(args: LsArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(crate::server::default_data_dir);
    let dir = args.snapshot_dir.clone().unwrap_or_else(|| data_dir.join("snapshots"));
    let mut names: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    names.sort();
    println!("{:<48} {:>10} {:<22} {:>10}  STATUS", "NAME", "SIZE", "CREATED", "REVISION");
    for path in names {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(&path).unwrap_or_default();
        match Snapshot::check(&bytes) {
            Ok(meta) => println!(
                "{name:<48} {:>10} {:<22} {:>10}  ok",
                bytes.len(),
                meta.created,
                meta.revision
            ),
            Err(e) => println!("{name:<48} {:>10} {:<22} {:>10}  {e}", bytes.len(), "-", "-"),
        }
    }
    Ok(())
}

/// Scheduled snapshots: settings from the server flags.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: crate::cron::Cron,
    pub retention: usize,
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    pub source: &'static str,
}

/// Takes a snapshot whenever the cron expression fires, keeping the newest `retention`
/// scheduled ones; failures are logged and the schedule goes on.
pub async fn run_schedule(schedule: Schedule, store: Arc<dyn Store>, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        let current = jiff::Timestamp::now();
        let Some(next) = schedule.cron.next_after(current) else {
            tracing::warn!("the snapshot schedule never fires; scheduled snapshots are off");
            return;
        };
        let wait = current.duration_until(next).unsigned_abs();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let (_, unix) = now();
        let path = schedule.dir.join(format!("{SCHEDULED_PREFIX}{}-{unix}", host_name()));
        let result = async {
            let bytes = take(&*store, &schedule.data_dir, schedule.source).await?;
            write_private(&path, &bytes)?;
            prune(&schedule.dir, schedule.retention)
        }
        .await;
        match result {
            Ok(()) => tracing::info!(path = %path.display(), "scheduled snapshot saved"),
            Err(e) => tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "scheduled snapshot failed"),
        }
    }
}

/// Deletes the oldest scheduled snapshots beyond `retention` (by the Unix time in the name).
pub fn prune(dir: &Path, retention: usize) -> anyhow::Result<()> {
    let mut scheduled: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(SCHEDULED_PREFIX)?;
            let unix = rest.rsplit('-').next()?.parse().ok()?;
            Some((unix, e.path()))
        })
        .collect();
    scheduled.sort();
    let excess = scheduled.len().saturating_sub(retention.max(1));
    for (_, path) in scheduled.into_iter().take(excess) {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}
