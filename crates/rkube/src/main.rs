//! `rkube`: the single binary. `rkube server` runs the control plane (API server with the
//! embedded datastore, the scheduler, the controller manager and an agent for this machine);
//! `rkube apiserver`, `rkube scheduler`, `rkube controller-manager` and `rkube kubelet` run one
//! component alone, `rkube agent` runs the node agent, and
//! `rkube sim-nodes` registers simulated nodes for tests and benchmarks.

mod agent;
mod compaction_events;
mod cron;
mod encryption;
mod components;
mod images;
mod killall;
mod server;
mod snapshot;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "rkube", version, about = "A Kubernetes-compatible container orchestrator in one binary.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane on this machine: API server, the embedded datastore, the
    /// scheduler and an agent (kubelet) for this machine.
    Server(server::ServerArgs),
    /// Run the API server alone (same flags as `server`).
    Apiserver(server::ServerArgs),
    /// Save, restore and list datastore snapshots.
    Snapshot(snapshot::SnapshotArgs),
    /// Run the scheduler alone against an API server.
    Scheduler(components::SchedulerArgs),
    /// Run the controller manager alone against an API server.
    ControllerManager(components::ControllerManagerArgs),
    /// Register simulated nodes (KWOK-style) that run bound pods without containers.
    SimNodes(components::SimNodesArgs),
    /// Manage the node's container images (`rkube images import FILE.tar`).
    Images(images::ImagesArgs),
    /// Stop the node's pods, containers, containerd and network setup (like k3s-killall.sh).
    Killall(killall::KillallArgs),
    /// Run the node agent (kubelet) on this machine against an API server.
    Agent(agent::AgentArgs),
    /// Run the kubelet alone against an API server (same flags as `agent`).
    Kubelet(agent::AgentArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RKUBE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rkube: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args, true).await,
            Command::Apiserver(args) => server::run(args, false).await,
            Command::Snapshot(args) => snapshot::run(args).await,
            Command::Scheduler(args) => components::run_scheduler(args).await,
            Command::ControllerManager(args) => components::run_controller_manager(args).await,
            Command::SimNodes(args) => components::run_sim_nodes(args).await,
            Command::Images(args) => images::run(args).await,
            Command::Killall(args) => killall::run(args).await,
            Command::Agent(args) | Command::Kubelet(args) => agent::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkube: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
