use super::*;

#[test]
fn cidrs_parse_to_their_network_address_and_reject_garbage() {
    let cidr: Cidr = "10.42.3.7/24".parse().unwrap();
    assert_eq!(cidr.to_string(), "10.42.3.0/24");
    assert_eq!(
        "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
        "0.0.0.0/0"
    );
    for bad in [
        "10.42.0.0",
        "10.42.0.0/33",
        "10.42.0/16",
        "10.42.0.0/16 -j ACCEPT",
        "fd00::/8",
        "",
    ] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad:?} parsed");
    }
}

#[test]
fn conflist_is_bridge_host_local_and_portmap_without_loopback() {
    let value = cni_conflist(
        "10.42.7.0/24".parse().unwrap(),
        Path::new("/d/agent/cni/networks"),
    );
    assert_eq!(value["cniVersion"], "1.0.0");
    let plugins = value["plugins"].as_array().unwrap();
    let types: Vec<&str> = plugins
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["bridge", "portmap"]);
    let bridge = &plugins[0];
    assert_eq!(bridge["bridge"], "rkube0");
    assert_eq!(
        (
            bridge["isGateway"].as_bool(),
            bridge["ipMasq"].as_bool(),
            bridge["hairpinMode"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(bridge["ipam"]["type"], "host-local");
    assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.42.7.0/24");
    assert_eq!(bridge["ipam"]["dataDir"], "/d/agent/cni/networks");
    assert_eq!(plugins[1]["capabilities"]["portMappings"], true);
}

#[test]
fn cni_config_is_written_in_place_and_replaces_other_configs() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("agent/cni/net.d");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(conf_dir.join("05-old.conflist"), "{}").unwrap();
    std::fs::write(conf_dir.join("README"), "kept").unwrap();
    write_cni_config(&conf_dir, "10.42.1.0/24", dir.path()).unwrap();
    let path = conf_dir.join(CONFLIST_FILE);
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        value["plugins"][0]["ipam"]["dataDir"],
        dir.path().join("agent/cni/networks").display().to_string()
    );
    assert!(!conf_dir.join("05-old.conflist").exists());
    assert!(conf_dir.join("README").exists());
    // Same content again: the inode (and so containerd's view) is untouched; new CIDR: same file, new text.
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(&path).unwrap().ino();
    write_cni_config(&conf_dir, "10.42.1.0/24", dir.path()).unwrap();
    write_cni_config(&conf_dir, "10.42.2.0/24", dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("10.42.2.0/24"));
    assert!(write_cni_config(&conf_dir, "not-a-cidr", dir.path()).is_err());
}

const EMPTY_FILTER: &str =
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

fn guard() -> EgressGuard {
    EgressGuard::new("10.42.0.0/16", "10.43.0.0/16").unwrap()
}

#[test]
fn guard_rules_return_for_rkube_interfaces_and_reject_cluster_destinations() {
    let text = guard_restore(&guard(), EMPTY_FILTER);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "*filter");
    assert_eq!(lines[1], ":RKUBE-EGRESS-GUARD - [0:0]");
    assert_eq!(lines[2], "-A RKUBE-EGRESS-GUARD -o lo -j RETURN");
    assert_eq!(lines[3], "-A RKUBE-EGRESS-GUARD -o rkube0 -j RETURN");
    assert!(lines[4].starts_with("-A RKUBE-EGRESS-GUARD -d 10.42.0.0/16 "));
    assert!(lines[4].ends_with("-j REJECT --reject-with icmp-port-unreachable"));
    assert!(lines[5].starts_with("-A RKUBE-EGRESS-GUARD -d 10.43.0.0/16 "));
    assert_eq!(
        &lines[6..],
        [
            "-I OUTPUT 1 -j RKUBE-EGRESS-GUARD",
            "-I FORWARD 1 -j RKUBE-EGRESS-GUARD",
            "COMMIT"
        ]
    );
    let extra = guard().allow_interface("rkt-link0").unwrap();
    assert!(guard_restore(&extra, EMPTY_FILTER)
        .contains("-A RKUBE-EGRESS-GUARD -o rkt-link0 -j RETURN\n"));
    assert!(guard().allow_interface("bad name").is_err());
    assert!(EgressGuard::new("10.42.0.0/16", "10.43.0.0").is_err());
}

#[test]
fn guard_hooks_are_kept_single_and_first() {
    // Already first and alone: the chain is refreshed, the hooks are left alone.
    let installed = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:RKUBE-EGRESS-GUARD - [0:0]\n\
        -A FORWARD -j RKUBE-EGRESS-GUARD\n-A FORWARD -j KUBE-FORWARD\n-A OUTPUT -j RKUBE-EGRESS-GUARD\nCOMMIT\n";
    let text = guard_restore(&guard(), installed);
    assert!(!text.contains("-I ") && !text.contains("-D "), "{text}");
    // Pushed down by another program's prepend, and duplicated: one jump, first again.
    let pushed = "*filter\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:RKUBE-EGRESS-GUARD - [0:0]\n\
        -A FORWARD -j KUBE-FORWARD\n-A FORWARD -j RKUBE-EGRESS-GUARD\n-A OUTPUT -j RKUBE-EGRESS-GUARD\n-A OUTPUT -j RKUBE-EGRESS-GUARD\nCOMMIT\n";
    let text = guard_restore(&guard(), pushed);
    let hooks: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("-D ") || l.starts_with("-I "))
        .collect();
    assert_eq!(
        hooks,
        [
            "-D OUTPUT -j RKUBE-EGRESS-GUARD",
            "-D OUTPUT -j RKUBE-EGRESS-GUARD",
            "-I OUTPUT 1 -j RKUBE-EGRESS-GUARD",
            "-D FORWARD -j RKUBE-EGRESS-GUARD",
            "-I FORWARD 1 -j RKUBE-EGRESS-GUARD",
        ]
    );
}

#[test]
fn guard_removal_deletes_hooks_then_the_chain_and_nothing_when_absent() {
    assert_eq!(guard_removal(EMPTY_FILTER), None);
    let installed =
        "*filter\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:RKUBE-EGRESS-GUARD - [0:0]\n\
        -A FORWARD -j RKUBE-EGRESS-GUARD\n-A OUTPUT -j RKUBE-EGRESS-GUARD\nCOMMIT\n";
    assert_eq!(
        guard_removal(installed).unwrap(),
        "*filter\n-D OUTPUT -j RKUBE-EGRESS-GUARD\n-D FORWARD -j RKUBE-EGRESS-GUARD\n-F RKUBE-EGRESS-GUARD\n-X RKUBE-EGRESS-GUARD\nCOMMIT\n"
    );
}

/// Root tests in network namespaces the test creates; nothing touches the host namespace.
mod netns {
    use super::*;
    use crate::testing::netns::{NetnsLab, Ping};

    #[test]
    fn egress_guard_rejects_cluster_traffic_leaving_through_the_uplink_and_passes_rkube0() {
        let lab = NetnsLab::new("guard").unwrap();
        // Without the guard both the node and the pod reach the "outside" host's cluster and
        // service addresses: the test can see the leak it guards against.
        assert_eq!(lab.ping(&lab.node, "10.42.1.5"), Ping::Replied);
        assert_eq!(lab.ping(&lab.pod, "10.42.1.5"), Ping::Replied);
        assert_eq!(lab.ping(&lab.node, "10.43.0.9"), Ping::Replied);

        let commands = NetCommands::in_netns(&lab.node);
        install_egress_guard(&commands, &guard()).unwrap();
        install_egress_guard(&commands, &guard()).unwrap();
        let rules = commands.run("iptables", &["-S"], None).unwrap();
        assert_eq!(
            rules.matches("-A OUTPUT -j RKUBE-EGRESS-GUARD").count(),
            1,
            "{rules}"
        );
        assert_eq!(
            rules.matches("-A FORWARD -j RKUBE-EGRESS-GUARD").count(),
            1,
            "{rules}"
        );
        assert_eq!(rules.matches("-A RKUBE-EGRESS-GUARD").count(), 4, "{rules}");

        // Host → pod and pod → host/pod go through rkube0 and pass.
        assert_eq!(lab.ping(&lab.node, "10.42.0.5"), Ping::Replied);
        assert_eq!(lab.ping(&lab.pod, "10.42.0.1"), Ping::Replied);
        // Cluster and service addresses routed through the uplink are refused here: locally
        // generated packets fail at send (EPERM), forwarded ones come back as ICMP rejects.
        assert_eq!(lab.ping(&lab.node, "10.42.1.5"), Ping::Refused);
        assert_eq!(lab.ping(&lab.node, "10.43.0.9"), Ping::Refused);
        assert_ne!(lab.ping(&lab.pod, "10.42.1.5"), Ping::Replied);
        let counters = commands
            .run("iptables", &["-L", GUARD_CHAIN, "-v", "-x", "-n"], None)
            .unwrap();
        let rejected: u64 = counters
            .lines()
            .filter(|l| l.contains("REJECT"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        assert!(rejected >= 3, "{counters}");
        // Other destinations through the uplink are not the guard's business.
        assert_eq!(lab.ping(&lab.node, "192.0.2.2"), Ping::Replied);

        remove_egress_guard(&commands).unwrap();
        remove_egress_guard(&commands).unwrap();
        assert!(!commands
            .run("iptables", &["-S"], None)
            .unwrap()
            .contains("RKUBE"));
        assert_eq!(lab.ping(&lab.node, "10.42.1.5"), Ping::Replied);
    }
}
