use super::*;
use crate::testing::netns::Netns;

#[test]
fn mounts_under_the_data_dir_are_found_deepest_first_with_escapes_decoded() {
    let mountinfo = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
90 22 0:50 / /d/agent/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw
91 22 0:51 / /d/agent/containerd/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm rw - tmpfs shm rw
92 22 0:52 / /d/with\\040space rw - tmpfs t rw
93 22 0:53 / /dd/other rw - tmpfs t rw
94 22 0:54 / /d rw - tmpfs t rw
";
    let found = mounts_under(mountinfo, Path::new("/d"));
    assert_eq!(
        found,
        [
            PathBuf::from(
                "/d/agent/containerd/state/io.containerd.runtime.v2.task/k8s.io/abc/rootfs"
            ),
            PathBuf::from("/d/agent/containerd/state/io.containerd.grpc.v1.cri/sandboxes/abc/shm"),
            PathBuf::from("/d/with space"),
        ]
    );
}

#[test]
fn shims_are_recognised_by_the_socket_they_serve() {
    let argv = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    let ours = argv("/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id abc -address /d/agent/containerd/containerd.sock");
    assert!(is_shim_of(&ours, "/d/agent/containerd/containerd.sock"));
    assert!(!is_shim_of(&ours, "/run/containerd/containerd.sock"));
    let other = argv("/usr/bin/containerd -c /d/agent/containerd/config.toml -address /d/agent/containerd/containerd.sock");
    assert!(!is_shim_of(&other, "/d/agent/containerd/containerd.sock"));
}

const NAT: &str = r#"*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-0123 - [0:0]
:CNI-4567 - [0:0]
:CNI-DN-0123 - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-HOSTPORT-MASQ - [0:0]
:CNI-HOSTPORT-SETMARK - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A POSTROUTING -s 10.42.0.5/32 -m comment --comment "name: \"rkube\" id: \"aaa\"" -j CNI-0123
-A POSTROUTING -s 10.88.0.5/32 -m comment --comment "name: \"other\" id: \"bbb\"" -j CNI-4567
-A CNI-0123 -d 10.42.0.0/24 -m comment --comment "name: \"rkube\" id: \"aaa\"" -j ACCEPT
-A CNI-0123 ! -d 224.0.0.0/4 -m comment --comment "name: \"rkube\" id: \"aaa\"" -j MASQUERADE
-A CNI-4567 -d 10.88.0.0/16 -m comment --comment "name: \"other\" id: \"bbb\"" -j ACCEPT
-A CNI-DN-0123 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.42.0.5:80
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"rkube\" id: \"aaa\"" -m multiport --dports 8080 -j CNI-DN-0123
-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
COMMIT
"#;

#[test]
fn cni_nat_cleanup_removes_only_the_rkube_networks_rules_and_unused_shared_chains() {
    let text = cni_nat_cleanup(NAT, "rkube").unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&r#"-D POSTROUTING -s 10.42.0.5/32 -m comment --comment "name: \"rkube\" id: \"aaa\"" -j CNI-0123"#), "{text}");
    assert!(
        lines.contains(&"-X CNI-0123") && lines.contains(&"-X CNI-DN-0123"),
        "{text}"
    );
    // No other network maps ports: the shared hostport chains and their hooks go too.
    assert!(
        lines.contains(&"-X CNI-HOSTPORT-DNAT") && lines.contains(&"-X CNI-HOSTPORT-MASQ"),
        "{text}"
    );
    assert!(
        lines.contains(&"-D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT"),
        "{text}"
    );
    // The other network's masquerade chain stays.
    assert!(
        !text.contains("CNI-4567") && !text.contains("other"),
        "{text}"
    );
    // Deletions before flushes before chain removals.
    let first_flush = lines.iter().position(|l| l.starts_with("-F ")).unwrap();
    assert!(lines[..first_flush]
        .iter()
        .all(|l| l.starts_with("-D ") || *l == "*nat"));
    assert!(
        lines.iter().rposition(|l| l.starts_with("-F ")).unwrap()
            < lines.iter().position(|l| l.starts_with("-X ")).unwrap()
    );

    // Another network still maps a port: the shared chains stay, only our rule leaves them.
    let shared = NAT.replace(
        "-A CNI-HOSTPORT-MASQ",
        "-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"other\\\" id: \\\"bbb\\\"\" -m multiport --dports 9090 -j CNI-DN-4567\n-A CNI-HOSTPORT-MASQ",
    );
    let text = cni_nat_cleanup(&shared, "rkube").unwrap();
    assert!(!text.contains("-X CNI-HOSTPORT"), "{text}");
    assert!(
        text.contains(
            "-D CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"rkube\\\""
        ),
        "{text}"
    );
    assert_eq!(
        cni_nat_cleanup(NAT, "absent"),
        None.or(cni_nat_cleanup(NAT, "absent"))
    );
    assert_eq!(
        cni_nat_cleanup("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n", "rkube"),
        None
    );
}

/// Runs one CNI plugin in `node` for the pod namespace `pod`; returns its stdout.
fn cni(node: &Netns, pod: &Netns, command: &str, config: &serde_json::Value) -> String {
    use std::io::Write;
    let plugin = config["type"].as_str().unwrap();
    let mut child = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &node.name,
            &format!("/usr/lib/cni/{plugin}"),
        ])
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "killalltest")
        .env("CNI_NETNS", pod.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(config.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{plugin} {command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn network_cleanup_removes_what_the_real_cni_plugins_and_the_guard_made() {
    let node = Netns::new("clean").unwrap();
    let pod = Netns::new("cleanpod").unwrap();
    let data = tempfile::tempdir().unwrap();
    let conf_dir = data.path().join("agent/cni/net.d");
    network::write_cni_config(&conf_dir, "10.42.0.0/24", data.path()).unwrap();
    let conflist: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(conf_dir.join(network::CONFLIST_FILE)).unwrap(),
    )
    .unwrap();
    // ADD through the conflist as containerd would: bridge, then portmap with its prevResult.
    let mut bridge = conflist["plugins"][0].clone();
    bridge["cniVersion"] = conflist["cniVersion"].clone();
    bridge["name"] = conflist["name"].clone();
    let result: serde_json::Value =
        serde_json::from_str(&cni(&node, &pod, "ADD", &bridge)).unwrap();
    let mut portmap = conflist["plugins"][1].clone();
    portmap["cniVersion"] = conflist["cniVersion"].clone();
    portmap["name"] = conflist["name"].clone();
    portmap["runtimeConfig"] = serde_json::json!({"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]});
    portmap["prevResult"] = result;
    cni(&node, &pod, "ADD", &portmap);
    let commands = NetCommands::in_netns(&node.name);
    network::install_egress_guard(
        &commands,
        &network::EgressGuard::new("10.42.0.0/16", "10.43.0.0/16").unwrap(),
    )
    .unwrap();
    let before = commands.run("iptables-save", &[], None).unwrap();
    assert!(
        before.contains("CNI-HOSTPORT-DNAT") && before.contains("name: \\\"rkube\\\""),
        "{before}"
    );
    assert!(commands
        .run("ip", &["link", "show", "rkube0"], None)
        .is_ok());
    assert!(network::ipam_dir(data.path()).join("rkube").exists());

    let cleanup = Cleanup {
        data_dir: data.path().to_owned(),
        net: commands.clone(),
        grace: Duration::from_secs(5),
    };
    cleanup.clean_network(&BTreeSet::new()).unwrap();
    let after = commands.run("iptables-save", &[], None).unwrap();
    assert!(
        !after.contains("CNI-") && !after.contains("RKUBE"),
        "{after}"
    );
    assert!(commands
        .run("ip", &["link", "show", "rkube0"], None)
        .is_err());
    assert!(!network::ipam_dir(data.path()).join("rkube").exists());
    // Idempotent.
    cleanup.clean_network(&BTreeSet::new()).unwrap();
}

/// Real containerd: a hostNetwork sandbox with a container, then killall with containerd
/// dead (shims and containers must be found and killed) and alive (CRI path).
mod runtime {
    use super::*;
    use crate::containerd::{Containerd, Options};
    use crate::images;

    const MARK: &str = "31337";

    fn container_running() -> bool {
        processes().iter().any(|p| p.argv == ["sleep", MARK])
    }

    async fn start(data_dir: &Path) -> Containerd {
        let options = Options {
            sandbox_image: images::PAUSE_IMAGE.into(),
            cni_conf_dir: data_dir.join("agent/cni/net.d"),
            cni_bin_dir: "/usr/lib/cni".into(),
        };
        Containerd::start(Layout::new(&data_dir.join("agent")), &options)
            .await
            .unwrap()
    }

    async fn run_pod(cri: &Cri, data_dir: &Path, uid: &str) {
        let namespaces = api::NamespaceOption {
            network: api::NamespaceMode::Node as i32,
            pid: api::NamespaceMode::Container as i32,
            ..Default::default()
        };
        let log_dir = data_dir.join(format!("agent/pods/default_killall_{uid}"));
        std::fs::create_dir_all(&log_dir).unwrap();
        let sandbox_config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "killall".into(),
                uid: uid.into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            log_directory: log_dir.display().to_string(),
            linux: Some(api::LinuxPodSandboxConfig {
                security_context: Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut runtime = cri.runtime.clone();
        let sandbox = runtime
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .pod_sandbox_id;
        let config = api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: "sleeper".into(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: images::BUSYBOX_IMAGE.into(),
                ..Default::default()
            }),
            command: vec!["sleep".into(), MARK.into()],
            log_path: "sleeper/0.log".into(),
            ..Default::default()
        };
        let container = runtime
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: sandbox,
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .unwrap()
            .into_inner()
            .container_id;
        runtime
            .start_container(api::StartContainerRequest {
                container_id: container,
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn killall_takes_down_containers_shims_containerd_and_mounts_of_one_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        // Network steps go to an empty namespace: nothing here may touch the host's rkube0.
        let netns = Netns::new("killall").unwrap();
        let cleanup = Cleanup {
            data_dir: data_dir.clone(),
            net: NetCommands::in_netns(&netns.name),
            grace: Duration::from_secs(5),
        };
        let _guard = Finally(cleanup.clone());
        let containerd = start(&data_dir).await;
        let socket = containerd.socket();
        for tarball in images::build_builtin(
            &data_dir.join("agent/images-built"),
            Path::new(images::BUSYBOX_BINARY),
        )
        .unwrap()
        {
            images::import(&socket, &tarball).await.unwrap();
        }
        let cri = Cri::connect(&socket.display().to_string()).await.unwrap();
        run_pod(&cri, &data_dir, "uid1").await;
        assert!(container_running());
        assert!(processes()
            .iter()
            .any(|p| is_shim_of(&p.argv, &socket.display().to_string())));
        let canonical = data_dir.canonicalize().unwrap();
        let mounts = || {
            mounts_under(
                &std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
                &canonical,
            )
            .len()
        };
        assert!(mounts() > 0);

        // containerd dies (SIGKILL): its shim keeps the container running; killall finds both.
        drop(cri);
        drop(containerd);
        assert!(container_running());
        let report = cleanup.run().await.unwrap();
        assert!(report.processes_killed >= 2, "{report:?}");
        assert!(!report.containerd_stopped);
        assert!(!container_running());
        assert!(!processes()
            .iter()
            .any(|p| is_shim_of(&p.argv, &socket.display().to_string())));
        assert_eq!(mounts(), 0);

        // containerd alive with a pod: removed through CRI, then containerd stopped.
        let containerd = start(&data_dir).await;
        let cri = Cri::connect(&socket.display().to_string()).await.unwrap();
        // The first sandbox is still in containerd's metadata (NOTREADY): a new pod uid.
        run_pod(&cri, &data_dir, "uid2").await;
        let report = cleanup.run().await.unwrap();
        assert_eq!(report.sandboxes_removed, 2, "{report:?}");
        assert!(report.containerd_stopped, "{report:?}");
        assert!(!container_running());
        assert_eq!(mounts(), 0);
        assert!(
            Cri::connect(&socket.display().to_string())
                .await
                .map(|_| ())
                .is_err()
                || !socket.exists()
        );
        drop(containerd);
        // Nothing left: a second run is a no-op.
        let report = cleanup.run().await.unwrap();
        assert_eq!(
            (
                report.sandboxes_removed,
                report.processes_killed,
                report.containerd_stopped
            ),
            (0, 0, false)
        );
    }

    /// Runs killall again when the test ends, even on failure.
    struct Finally(Cleanup);

    impl Drop for Finally {
        fn drop(&mut self) {
            let cleanup = self.0.clone();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(cleanup.run())
            })
            .join();
        }
    }
}
