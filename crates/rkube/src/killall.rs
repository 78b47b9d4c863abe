//! `rkube killall`: stop everything the node agent of one data dir started (pods, shims,
//! containerd, mounts, the rkube0 bridge and rkube's iptables rules), like k3s-killall.sh.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct KillallArgs {
    /// The node's data dir (default: /var/lib/rkube as root, ~/.rkube otherwise).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub async fn run(args: KillallArgs) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .unwrap_or_else(crate::server::default_data_dir);
    let report = rkube_kubelet::cleanup::Cleanup::new(&data_dir)
        .run()
        .await?;
    println!(
        "removed {} pod sandboxes, killed {} leftover processes, containerd {}, unmounted {}",
        report.sandboxes_removed,
        report.processes_killed,
        if report.containerd_stopped {
            "stopped"
        } else {
            "was not running"
        },
        report.unmounted
    );
    Ok(())
}
