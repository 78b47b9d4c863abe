//! What the node's stats are made of, read from /proc, cgroup v1 and statvfs (the machine is
//! cgroup v1, no cAdvisor): each reader is a small parser over a file's text, so the parsers
//! are tested on fixtures and the readers only open files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where cgroup v1 hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Cumulative cpu and memory of one cgroup (the root cgroup is the node, as cAdvisor's "/").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupSample {
    /// `cpuacct.usage`, nanoseconds.
    pub cpu_ns: Option<u64>,
    pub memory: Option<CgroupMemory>,
    /// Processes in the cgroup (`pids.current`, else `cgroup.procs` lines).
    pub processes: Option<u64>,
}

/// Memory of a cgroup as cAdvisor reports it on v1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupMemory {
    /// `memory.usage_in_bytes`.
    pub usage: u64,
    /// usage less `total_inactive_file` (cAdvisor's working set).
    pub working_set: u64,
    /// `total_rss`.
    pub rss: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
}

/// `memory.stat` key/values.
pub fn parse_kv(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// The memory of a cgroup from `memory.usage_in_bytes` and `memory.stat`.
pub fn cgroup_memory(usage: u64, stat: &str) -> CgroupMemory {
    let stat = parse_kv(stat);
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    let inactive = get("total_inactive_file");
    CgroupMemory {
        usage,
        working_set: usage.saturating_sub(inactive),
        rss: get("total_rss"),
        page_faults: get("total_pgfault"),
        major_page_faults: get("total_pgmajfault"),
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reads the cgroup at `path` (relative to each hierarchy, "" for the root).
pub fn read_cgroup(path: &str) -> CgroupSample {
    let dir = |hierarchy: &str| -> PathBuf {
        let mut p = PathBuf::from(CGROUP_ROOT).join(hierarchy);
        for part in path.split('/').filter(|s| !s.is_empty()) {
            p.push(part);
        }
        p
    };
    let memory_dir = dir("memory");
    let memory = read_u64(&memory_dir.join("memory.usage_in_bytes"))
        .map(|usage| cgroup_memory(usage, &std::fs::read_to_string(memory_dir.join("memory.stat")).unwrap_or_default()));
    let pids = dir("pids");
    let processes = read_u64(&pids.join("pids.current")).or_else(|| {
        std::fs::read_to_string(pids.join("cgroup.procs")).ok().map(|t| t.lines().filter(|l| !l.is_empty()).count() as u64)
    });
    CgroupSample { cpu_ns: read_u64(&dir("cpuacct").join("cpuacct.usage")), memory, processes }
}

/// Whether a cgroup exists (in the memory hierarchy).
pub fn cgroup_exists(path: &str) -> bool {
    Path::new(CGROUP_ROOT).join("memory").join(path.trim_start_matches('/')).is_dir()
}

/// Counters of one network interface (`/proc/net/dev`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
}

/// Parses `/proc/net/dev` (two header lines, then `name: rx_bytes packets errs ... tx_bytes ...`).
pub fn parse_net_dev(text: &str) -> Vec<Interface> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            (f.len() >= 11).then(|| Interface {
                name: name.trim().to_owned(),
                rx_bytes: f[0],
                rx_errors: f[2],
                tx_bytes: f[8],
                tx_errors: f[10],
            })
        })
        .collect()
}

/// The interface of the default route in `/proc/net/route` (destination 00000000).
pub fn default_route_interface(route: &str) -> Option<String> {
    route.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[1] == "00000000").then(|| f[0].to_owned())
    })
}

/// Interfaces of the network namespace of `pid` ("self" for the node's).
pub fn interfaces(pid: &str) -> Vec<Interface> {
    std::fs::read_to_string(format!("/proc/{pid}/net/dev")).map(|t| parse_net_dev(&t)).unwrap_or_default()
}

/// Space and inodes of a filesystem.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fs {
    pub capacity: u64,
    pub available: u64,
    pub used: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// statvfs(3) of the filesystem holding `path`.
pub fn statvfs(path: &Path) -> Option<Fs> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs(3) writes into a zeroed struct we own, reading a NUL-terminated path.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        st
    };
    let frsize = st.f_frsize as u64;
    Some(Fs {
        capacity: st.f_blocks as u64 * frsize,
        available: st.f_bavail as u64 * frsize,
        used: (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize,
        inodes: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}

/// Bytes and inodes under `dir` (files not followed through symlinks, other mounts included);
/// 0 for a missing directory. Bounded by `max_entries` so a huge tree cannot stall a sample.
pub fn disk_usage(dir: &Path, max_entries: usize) -> (u64, u64) {
    let mut bytes = 0;
    let mut inodes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            inodes += 1;
            if inodes as usize > max_entries {
                return (bytes, inodes);
            }
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            // Allocated blocks, as du counts them.
            bytes += std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (bytes, inodes)
}

/// Total memory (`MemTotal`, bytes) from `/proc/meminfo`.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).map(|k| k * 1024)
}

/// Boot time (seconds since the epoch) from `/proc/stat`'s `btime`.
pub fn boot_time(stat: &str) -> Option<i64> {
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// The node's cpu time in nanoseconds from `/proc/stat`'s `cpu` line (every state but idle
/// and iowait), for hosts without a cpuacct root.
pub fn proc_stat_cpu_ns(stat: &str, clock_ticks: u64) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = f.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4 && *i < 8).map(|(_, v)| v).sum();
    Some(busy * (1_000_000_000 / clock_ticks.max(1)))
}

/// Processes and threads on the node, `/proc/loadavg`'s 4th field `running/total`.
pub fn proc_count(loadavg: &str) -> Option<i64> {
    loadavg.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_working_set_is_usage_less_inactive_file() {
        let m = cgroup_memory(1000, "cache 10\ntotal_inactive_file 300\ntotal_rss 600\ntotal_pgfault 7\ntotal_pgmajfault 2\n");
        assert_eq!(m, CgroupMemory { usage: 1000, working_set: 700, rss: 600, page_faults: 7, major_page_faults: 2 });
        assert_eq!(cgroup_memory(100, "total_inactive_file 300").working_set, 0);
    }

    #[test]
    fn net_dev_and_route_parse() {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:  100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 5000 40 3 0 0 0 0 0 7000 50 4 0 0 0 0 0\n";
        let i = parse_net_dev(dev);
        assert_eq!(i.len(), 2);
        assert_eq!(i[1], Interface { name: "eth0".into(), rx_bytes: 5000, rx_errors: 3, tx_bytes: 7000, tx_errors: 4 });
        let route = "Iface\tDestination\tGateway\tFlags\nrkube0\t00002A0A\t00000000\t0001\neth0\t00000000\t0102A8C0\t0003\n";
        assert_eq!(default_route_interface(route).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn proc_files_parse() {
        assert_eq!(mem_total("MemTotal:       2048 kB\nMemFree: 1 kB\n"), Some(2 * 1024 * 1024));
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1700000000\n"), Some(1_700_000_000));
        // user 10 nice 1 system 5 idle 100 iowait 50 irq 1 softirq 1 steal 2 → 20 ticks busy
        assert_eq!(proc_stat_cpu_ns("cpu  10 1 5 100 50 1 1 2 0 0\ncpu0 1 1 1 1\n", 100), Some(200_000_000));
        assert_eq!(proc_count("0.50 0.40 0.30 2/345 6789"), Some(345));
    }

    #[test]
    fn statvfs_and_disk_usage_read_this_machine() {
        let fs = statvfs(Path::new("/")).unwrap();
        assert!(fs.capacity > 0 && fs.available <= fs.capacity);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), vec![1u8; 10_000]).unwrap();
        let (bytes, inodes) = disk_usage(dir.path(), 1000);
        assert!(bytes >= 10_000, "{bytes}");
        assert_eq!(inodes, 2);
        assert_eq!(disk_usage(&dir.path().join("missing"), 1000), (0, 0));
    }
}
