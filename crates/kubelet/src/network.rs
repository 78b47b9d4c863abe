//! The pod network's CNI configuration: one conflist (bridge `rkube0` + host-local IPAM over
//! the node's podCIDR + portmap for hostPorts), read by containerd's CRI plugin.
//!
//! `loopback` is not listed: containerd brings `lo` up itself. The file is written in place
//! (not renamed into the directory), because containerd 1.6 reloads CNI config on a write
//! event only (notes/containerd-cri-here.md).

use std::path::Path;

use anyhow::Context;

/// Name of the conflist file; the first in lexical order is the one containerd uses.
pub const CONFLIST: &str = "10-rkube.conflist";
/// The bridge every pod's veth is attached to.
pub const BRIDGE: &str = "rkube0";

/// Writes the CNI conflist for `pod_cidr` into `conf_dir`; host-local keeps its leases under
/// `data_dir`.
pub fn write_cni_config(conf_dir: &Path, pod_cidr: &str, data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(conf_dir).with_context(|| format!("cannot create {}", conf_dir.display()))?;
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "rkube",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "dataDir": data_dir.join("ipam").display().to_string(),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    let path = conf_dir.join(CONFLIST);
    let text = serde_json::to_string_pretty(&conflist).context("encoding the CNI conflist")?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflist_has_bridge_host_local_and_portmap_but_no_loopback() {
        let dir = tempfile::tempdir().unwrap();
        write_cni_config(dir.path(), "10.42.0.0/24", Path::new("/data/cni")).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CONFLIST)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let types: Vec<&str> = v["plugins"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["bridge", "portmap"]);
        assert_eq!(v["plugins"][0]["bridge"], "rkube0");
        assert_eq!(v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.42.0.0/24");
        assert_eq!(v["plugins"][0]["ipam"]["dataDir"], "/data/cni/ipam");
    }
}
