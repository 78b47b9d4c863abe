//! `rkube images import FILE.tar...`: air-gapped image import into a node's containerd.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Import OCI-layout or docker-archive tarballs into the node's container runtime; the
    /// images are pinned (never garbage-collected). Prints the imported image names.
    Import(ImportArgs),
}

#[derive(Args)]
struct ImportArgs {
    /// Tarballs to import.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The node's data dir: the runtime is <data-dir>/agent/containerd/containerd.sock
    /// (default: /var/lib/rkube as root, ~/.rkube otherwise).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The runtime's socket, for a containerd rkube did not start (unix:///path or a path).
    #[arg(long)]
    container_runtime_endpoint: Option<String>,
}

pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    match args.command {
        ImagesCommand::Import(args) => import(args).await,
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let socket = match &args.container_runtime_endpoint {
        Some(endpoint) => PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint)),
        None => {
            let data_dir = args
                .data_dir
                .clone()
                .unwrap_or_else(crate::server::default_data_dir);
            rkube_kubelet::containerd::Layout::new(&data_dir.join("agent")).socket()
        }
    };
    let answering = match rkube_kubelet::cri::Cri::connect(&socket.display().to_string()).await {
        Ok(cri) => cri.version().await.is_ok(),
        Err(_) => false,
    };
    anyhow::ensure!(
        answering,
        "no container runtime answers at {} (is the rkube server or agent for this --data-dir running?)",
        socket.display()
    );
    for file in &args.files {
        anyhow::ensure!(file.is_file(), "{}: no such file", file.display());
        let names = rkube_kubelet::images::import_pinned(&socket, file)
            .await
            .with_context(|| format!("importing {}", file.display()))?;
        for name in names {
            println!("{name}");
        }
    }
    Ok(())
}
