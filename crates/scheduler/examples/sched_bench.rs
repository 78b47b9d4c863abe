//! Scheduler throughput benchmark client: creates N pods (CPU/memory requests and one
//! zone spreading constraint) in a fresh namespace as fast as the API server takes them,
//! watches them get bound, and prints throughput (first create → last bind) and the
//! per-pod latency distribution (create acknowledged → bind seen in the watch).
//!
//! The cluster (API server, scheduler, simulated nodes) is started by
//! `scripts/bench-scheduler`; run that rather than this directly:
//!
//! ```text
//! sched_bench --kubeconfig PATH [--pods 10000] [--concurrency 64] [--namespace bench]
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;

struct Args {
    kubeconfig: String,
    pods: usize,
    concurrency: usize,
    namespace: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { kubeconfig: String::new(), pods: 10_000, concurrency: 64, namespace: "bench".into() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--kubeconfig" => a.kubeconfig = value()?,
            "--pods" => a.pods = value()?.parse().map_err(|e| format!("--pods: {e}"))?,
            "--concurrency" => a.concurrency = value()?.parse().map_err(|e| format!("--concurrency: {e}"))?,
            "--namespace" => a.namespace = value()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.kubeconfig.is_empty() {
        return Err("--kubeconfig is required".into());
    }
    Ok(a)
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {
            "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}],
            "topologySpreadConstraints": [{
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "bench"}}
            }]
        }
    }))
    .expect("static pod JSON")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let kc = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let ns = Api::<Namespace>::all(client.clone());
    let ns_obj: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": args.namespace}}))?;
    if let Err(e) = ns.create(&PostParams::default(), &ns_obj).await {
        eprintln!("namespace: {e}");
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();

    // Watch first, so no bind is missed.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watch = {
        let (pods, bound) = (pods.clone(), bound.clone());
        let total = args.pods;
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default()));
            while let Some(ev) = stream.next().await {
                let p = match ev {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => p,
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("watch: {e}");
                        continue;
                    }
                };
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    let mut b = bound.lock().expect("lock");
                    b.entry(p.metadata.name.unwrap_or_default()).or_insert_with(Instant::now);
                    if b.len() >= total {
                        return;
                    }
                }
            }
        })
    };
    ready_rx.await?;

    let start = Instant::now();
    let results: Vec<Result<(), kube::Error>> = futures::stream::iter(0..args.pods)
        .map(|i| {
            let (pods, created) = (pods.clone(), created.clone());
            async move {
                let name = format!("bench-{i}");
                pods.create(&PostParams::default(), &pod(&name)).await?;
                created.lock().expect("lock").insert(name, Instant::now());
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let create_done = start.elapsed();
    let failures = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("{failures} creates failed, e.g. {e}");
    }
    let expected = args.pods - failures;
    let deadline = Duration::from_secs(600);
    if tokio::time::timeout(deadline, watch).await.is_err() {
        eprintln!("not every pod was bound within {deadline:?}");
    }
    let bound = bound.lock().expect("lock").clone();
    let created = created.lock().expect("lock").clone();
    let last_bind = bound.values().max().copied().unwrap_or(start);
    let total = last_bind.duration_since(start);
    let mut latencies: Vec<Duration> =
        bound.iter().filter_map(|(n, b)| created.get(n).map(|c| b.saturating_duration_since(*c))).collect();
    latencies.sort();
    println!("pods created:        {} ({} failed) in {:.2?}", expected, failures, create_done);
    println!("pods bound:          {}", bound.len());
    println!("first create → last bind: {:.2?}", total);
    println!("throughput:          {:.0} pods/s", bound.len() as f64 / total.as_secs_f64());
    println!(
        "latency create→bind: p50 {:.1?}  p90 {:.1?}  p99 {:.1?}  max {:.1?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}
