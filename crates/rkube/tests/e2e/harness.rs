//! Starts `rkube server` and runs kubectl against it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Extra `rkube server` flags (e.g. `--datastore-endpoint URL`), passed on every spawn.
    pub extra_args: Vec<String>,
    /// Whether the server runs its agent (kubelet + containerd); see [`Cluster::start_agent`].
    pub agent: bool,
    /// Held while an agent runs: agents share the machine's pod bridge and pod subnet.
    /// Held while this cluster's agent runs: a lock on a machine-wide file, so agents of
    /// concurrent test processes (other checkouts too) take turns on the one pod bridge.
    agent_lock: Option<std::fs::File>,
    child: Option<Child>,
}

pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub fn rkube_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rkube")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Cluster {
    /// A fresh server on a new data dir.
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// A fresh server on a new data dir with extra server flags.
    pub fn start_with(extra_args: &[&str]) -> Cluster {
        Cluster::start_on(tempfile::tempdir().expect("temp dir"), extra_args)
    }

    /// A server on `dir`/data, which may already hold a cluster (e.g. a restored snapshot).
    pub fn start_on(dir: tempfile::TempDir, extra_args: &[&str]) -> Cluster {
        let extra_args = extra_args.iter().map(|a| a.to_string()).collect();
        let mut c = Cluster { dir, port: free_port(), extra_args, agent: false, agent_lock: None, child: None };
        c.spawn();
        c
    }

    /// A fresh server with its agent: a real kubelet and containerd under the data dir, a
    /// unique node name (`e2e-<port>`) and a free kubelet port. On drop every sandbox of that
    /// containerd is stopped and removed and containerd stops. Agents share the machine's pod
    /// bridge (`rkube0`, one subnet per bridge) and the default pod /24, so agents run one at
    /// a time, on this machine: this waits until every other agent cluster is dropped (an
    /// exclusive lock on /run/lock/rkube-e2e-agent.lock, released by the kernel even when a
    /// test process dies).
    pub fn start_agent() -> Cluster {
        Cluster::start_agent_with(&[], |_| {})
    }

    /// [`Cluster::start_agent`] with extra server flags, and `setup` run on the data dir
    /// before the server starts (e.g. to write registries.yaml). The machine's shared disk is
    /// usually past upstream's default nodefs/imagefs eviction thresholds (DiskPressure, a
    /// NoSchedule taint) and image GC threshold: unless `extra_args` sets them, the agent
    /// gets `--eviction-hard memory.available<100Mi` and `--image-gc-high-threshold 100`.
    pub fn start_agent_with(extra_args: &[&str], setup: impl FnOnce(&Path)) -> Cluster {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/lock/rkube-e2e-agent.lock")
            .expect("open the agent lock file");
        lock.lock().expect("lock the agent lock file");
        let agent_lock = Some(lock);
        let port = free_port();
        let node = format!("e2e-{port}");
        let mut args: Vec<String> = ["--node-name", &node, "--kubelet-port", &free_port().to_string()]
            .iter()
            .map(|a| a.to_string())
            .collect();
        for (flag, value) in [("--eviction-hard", "memory.available<100Mi"), ("--image-gc-high-threshold", "100")] {
            if !extra_args.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut c = Cluster { dir: tempfile::tempdir().expect("temp dir"), port, extra_args: args, agent: true, agent_lock, child: None };
        std::fs::create_dir_all(c.data_dir()).expect("data dir");
        setup(&c.data_dir());
        c.spawn();
        c
    }

    /// The agent's node name (with [`Cluster::start_agent`]).
    pub fn node_name(&self) -> String {
        format!("e2e-{}", self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir().join("kubeconfig.yaml")
    }

    /// Starts the server process on the existing data dir and waits for /readyz.
    pub fn spawn(&mut self) {
        let mut command = Command::new(rkube_bin());
        command.arg("server");
        if !self.agent {
            command.arg("--disable-agent");
        }
        let mut child = command
            .args(["--bind-address", "127.0.0.1", "--https-port"])
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.extra_args)
            .env("RKUBE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rkube server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("API server listening") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                eprintln!("[rkube] {line}");
            }
        });
        // Generous: on a loaded 2-core machine a server over etcd fills ~45 watch caches first.
        rx.recv_timeout(Duration::from_secs(90)).expect("rkube server did not start within 90 s");
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.kubectl(&["get", "--raw", "/readyz"]).ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server never became ready");
    }

    /// Stops the server with SIGTERM (graceful) or SIGKILL.
    pub fn stop(&mut self, kill: bool) {
        if let Some(mut child) = self.child.take() {
            let sig = if kill { "-KILL" } else { "-TERM" };
            let _ = Command::new("kill").arg(sig).arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_with(args, None, &[])
    }

    /// Runs kubectl with optional stdin and extra environment.
    pub fn kubectl_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new("kubectl");
        cmd.args(args).env("KUBECONFIG", self.kubeconfig()).env_remove("KUBERNETES_SERVICE_HOST");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().expect("kubectl on the PATH");
        if let Some(input) = stdin {
            use std::io::Write;
            let mut si = child.stdin.take().expect("stdin");
            si.write_all(input.as_bytes()).expect("write stdin");
        }
        Run::from(child.wait_with_output().expect("kubectl ran"))
    }

    /// kubectl that must succeed; returns stdout.
    #[track_caller]
    pub fn k(&self, args: &[&str]) -> String {
        let r = self.kubectl(args);
        assert!(r.ok, "kubectl {args:?} failed: {}{}", r.stdout, r.stderr);
        r.stdout
    }

    #[track_caller]
    pub fn apply(&self, yaml: &str) -> String {
        let r = self.kubectl_with(&["apply", "-f", "-"], Some(yaml), &[]);
        assert!(r.ok, "kubectl apply failed: {}{}", r.stdout, r.stderr);
        r.stdout
    }

    /// curl against the server with the admin client certificate (or none), returning
    /// (status code, body).
    pub fn curl(&self, method: &str, path: &str, body: Option<&str>, content_type: &str, with_cert: bool) -> (u16, String) {
        let tls = self.data_dir().join("tls");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method])
            .arg("--cacert")
            .arg(tls.join("ca.crt"))
            .args(["-H", &format!("Content-Type: {content_type}")]);
        if with_cert {
            cmd.arg("--cert").arg(tls.join("admin.crt")).arg("--key").arg(tls.join("admin.key"));
        }
        if body.is_some() {
            cmd.args(["--data-binary", "@-"]);
            cmd.stdin(Stdio::piped());
        }
        cmd.arg(format!("https://127.0.0.1:{}{path}", self.port));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("curl on the PATH");
        if let Some(b) = body {
            use std::io::Write;
            let mut si = child.stdin.take().expect("stdin");
            si.write_all(b.as_bytes()).expect("write body");
        }
        let out = child.wait_with_output().expect("curl ran");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// GET-like request with an explicit Accept header, returning (status code, body).
    pub fn curl_accept(&self, method: &str, path: &str, accept: &str) -> (u16, String) {
        let tls = self.data_dir().join("tls");
        let out = Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H", &format!("Accept: {accept}")])
            .arg("--cacert").arg(tls.join("ca.crt"))
            .arg("--cert").arg(tls.join("admin.crt"))
            .arg("--key").arg(tls.join("admin.key"))
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .output()
            .expect("curl on the PATH");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// A kube-rs client for the admin kubeconfig.
    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(self.kubeconfig()).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kubeconfig");
        kube::Client::try_from(config).expect("client")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop(true);
        if self.agent {
            // The killed server's containerd exits with it (parent-death signal); containers
            // live on in their shims until their sandboxes are removed.
            let data_dir = self.data_dir();
            let cleanup = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
                runtime.block_on(rkube_kubelet::agent::remove_all_pods(&data_dir))
            });
            match cleanup.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("cleaning up the agent's pods failed: {e:#}"),
                Err(_) => eprintln!("cleaning up the agent's pods panicked"),
            }
            self.agent_lock.take();
        }
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write file");
    p
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A child `rkube` process (sim-nodes, a second scheduler, a controller manager), killed on drop.
pub struct Proc(pub std::process::Child);

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `rkube ARGS --kubeconfig <the cluster's>`.
pub fn rkube_child(c: &Cluster, args: &[&str]) -> Proc {
    let child = Command::new(rkube_bin())
        .args(args)
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .env("RKUBE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rkube");
    Proc(child)
}

/// (name, Ready status) of every node.
pub fn node_ready(c: &Cluster) -> Vec<(String, String)> {
    let out = c.k(&["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
    out.lines().filter_map(|l| l.split_once(' ')).map(|(n, s)| (n.to_owned(), s.to_owned())).collect()
}

/// `rkube sim-nodes` with `count` nodes named `<prefix>0`, `<prefix>1`, ... (and `extra`
/// flags); returns once every one of them is Ready.
pub fn sim_nodes(c: &Cluster, prefix: &str, count: usize, extra: &[&str]) -> Proc {
    let count_arg = count.to_string();
    let mut args = vec!["sim-nodes", "--count", &count_arg, "--name-prefix", prefix];
    args.extend_from_slice(extra);
    let p = rkube_child(c, &args);
    let ok = eventually(Duration::from_secs(60), || {
        node_ready(c).iter().filter(|(n, s)| n.starts_with(prefix) && s == "True").count() == count
    });
    assert!(ok, "{count} sim nodes {prefix}* did not become Ready");
    p
}
