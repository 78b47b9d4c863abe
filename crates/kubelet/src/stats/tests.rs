use super::*;

const S: i64 = 1_000_000_000;

fn fixture(time_ns: i64, node_cpu: u64, container_cpu: u64) -> RawSample {
    let fs = host::Fs { capacity: 1000, available: 400, used: 600, inodes: 100, inodes_free: 60 };
    RawSample {
        time_ns,
        node_name: "n1".into(),
        boot_time: Some(1_700_000_000),
        node_cpu_ns: Some(node_cpu),
        node_memory: Some(host::CgroupMemory { usage: 900, working_set: 700, rss: 500, page_faults: 3, major_page_faults: 1 }),
        memory_capacity: 1000,
        interfaces: vec![
            host::Interface { name: "lo".into(), rx_bytes: 1, ..Default::default() },
            host::Interface { name: "rkube0".into(), rx_bytes: 2, ..Default::default() },
            host::Interface { name: "eth0".into(), rx_bytes: 30, tx_bytes: 40, ..Default::default() },
        ],
        default_interface: Some("eth0".into()),
        nodefs: Some(fs),
        imagefs: Some((fs, 250, 12)),
        max_pid: Some(4_194_304),
        processes: Some(321),
        pods: vec![RawPod {
            name: "web".into(),
            namespace: "default".into(),
            uid: "u1".into(),
            created_ns: 1_700_000_100 * S,
            cgroup: None,
            interfaces: vec![host::Interface { name: "eth0".into(), rx_bytes: 5, tx_bytes: 6, ..Default::default() }],
            volumes: vec![("cache".into(), 4096, 2)],
            containers: vec![RawContainer {
                id: "c1".into(),
                name: "app".into(),
                created_ns: 1_700_000_101 * S,
                cpu_ns: Some(container_cpu),
                memory: Some(host::CgroupMemory { usage: 300, working_set: 200, ..Default::default() }),
                rootfs: Some((8192, 3)),
                logs: (1024, 1),
            }],
        }],
    }
}

#[test]
fn nano_cores_need_two_samples_and_are_the_rate_between_them() {
    let first = fixture(100 * S, 10 * S as u64, S as u64);
    let empty = CpuHistory::new();
    let s = assemble(&first, &empty);
    let node_cpu = s.node.cpu.as_ref().unwrap();
    assert_eq!(node_cpu.usage_nano_cores, None);
    assert_eq!(node_cpu.usage_core_nano_seconds, Some(10 * S as u64));
    // 10 s later the node used 5 cpu-seconds (half a core), the container 1 (0.1 core).
    let second = fixture(110 * S, 15 * S as u64, 2 * S as u64);
    let s = assemble(&second, &cpu_history(&first));
    assert_eq!(s.node.cpu.unwrap().usage_nano_cores, Some(500_000_000));
    let pod = &s.pods[0];
    assert_eq!(pod.containers[0].cpu.as_ref().unwrap().usage_nano_cores, Some(100_000_000));
    // Without a pod cgroup the pod's cpu is its containers' sum.
    assert_eq!(pod.cpu.as_ref().unwrap().usage_nano_cores, Some(100_000_000));
    // A counter that went backwards (a restarted container) gives no rate, not a huge one.
    let restarted = fixture(120 * S, 16 * S as u64, 1);
    let s = assemble(&restarted, &cpu_history(&second));
    assert_eq!(s.pods[0].containers[0].cpu.as_ref().unwrap().usage_nano_cores, None);
}

#[test]
fn summary_serializes_with_upstream_field_names() {
    let s = assemble(&fixture(100 * S, 10, 20), &CpuHistory::new());
    let v = serde_json::to_value(&s).unwrap();
    let node = &v["node"];
    assert_eq!(node["nodeName"], "n1");
    assert_eq!(node["startTime"], "2023-11-14T22:13:20Z");
    assert_eq!(node["memory"]["workingSetBytes"], 700);
    assert_eq!(node["memory"]["availableBytes"], 300);
    assert_eq!(node["memory"]["rssBytes"], 500);
    // The default interface's counters inline, loopback left out of the list.
    assert_eq!(node["network"]["name"], "eth0");
    assert_eq!(node["network"]["rxBytes"], 30);
    assert_eq!(node["network"]["interfaces"].as_array().unwrap().len(), 2);
    assert_eq!(node["fs"]["availableBytes"], 400);
    assert_eq!(node["fs"]["inodesUsed"], 40);
    assert_eq!(node["runtime"]["imageFs"]["usedBytes"], 250);
    assert_eq!(node["rlimit"]["maxpid"], 4_194_304);
    assert_eq!(node["rlimit"]["curproc"], 321);
    let pod = &v["pods"][0];
    assert_eq!(pod["podRef"], serde_json::json!({"name": "web", "namespace": "default", "uid": "u1"}));
    assert_eq!(pod["containers"][0]["name"], "app");
    assert_eq!(pod["containers"][0]["memory"]["workingSetBytes"], 200);
    assert_eq!(pod["containers"][0]["rootfs"]["usedBytes"], 8192);
    assert_eq!(pod["containers"][0]["logs"]["usedBytes"], 1024);
    assert_eq!(pod["memory"]["workingSetBytes"], 200);
    assert_eq!(pod["network"]["name"], "eth0");
    assert_eq!(pod["volume"][0]["name"], "cache");
    assert_eq!(pod["volume"][0]["usedBytes"], 4096);
    // writable layer + logs + emptyDir
    assert_eq!(pod["ephemeral-storage"]["usedBytes"], 8192 + 1024 + 4096);
    assert_eq!(pod["ephemeral-storage"]["inodesUsed"], 6);
    // Round trip through the types.
    let back: Summary = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

#[test]
fn a_pod_cgroup_is_preferred_over_the_containers_sum() {
    let mut raw = fixture(100 * S, 10, 20);
    raw.pods[0].cgroup = Some(host::CgroupSample {
        cpu_ns: Some(99),
        memory: Some(host::CgroupMemory { usage: 5000, working_set: 4000, ..Default::default() }),
        processes: Some(3),
    });
    let s = assemble(&raw, &CpuHistory::new());
    assert_eq!(s.pods[0].cpu.as_ref().unwrap().usage_core_nano_seconds, Some(99));
    assert_eq!(s.pods[0].memory.as_ref().unwrap().working_set_bytes, Some(4000));
    assert_eq!(s.pods[0].process_stats.as_ref().unwrap().process_count, Some(3));
}
