//! Upstream's atomic writer (pkg/volume/util/atomic_writer.go): the files of a configMap,
//! secret, downwardAPI or projected volume live in a timestamped directory
//! (`..2026_11_25_04_20_37.123456789`), `..data` is a symlink to it, and every user-visible
//! top-level entry is a symlink through `..data`. An update writes a new timestamped
//! directory and swaps `..data` with one rename, so a reader in a running container sees the
//! old or the new set of files, never a mix.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path};

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// One file of a volume's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path → file.
pub type Payload = BTreeMap<String, File>;

/// Upstream validatePath: relative, no `..` element, not starting with `..`.
pub fn validate_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("invalid path: must not be empty".into());
    }
    if p.len() > 4096 {
        return Err(format!("invalid path: must be less than or equal to 4096 characters: {p}"));
    }
    let path = Path::new(p);
    if path.is_absolute() {
        return Err(format!("invalid path: must be relative path: {p}"));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("invalid path: must not contain '..': {p}"));
    }
    if p.starts_with("..") {
        return Err(format!("invalid path: must not start with '..': {p}"));
    }
    Ok(())
}

/// The files (relative path → file) under `dir`.
fn read_tree(dir: &Path) -> io::Result<Payload> {
    let mut out = Payload::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry.path().strip_prefix(dir).map_err(io::Error::other)?.to_string_lossy().into_owned();
                out.insert(rel, File { data: std::fs::read(entry.path())?, mode: meta.permissions().mode() & 0o7777 });
            }
        }
    }
    Ok(out)
}

/// The top-level names of a payload (what gets a user-visible symlink).
fn top_level(payload: &Payload) -> BTreeSet<String> {
    payload.keys().filter_map(|p| Path::new(p).components().next()).map(|c| c.as_os_str().to_string_lossy().into_owned()).collect()
}

/// Writes `payload` into `dir` atomically; returns whether anything changed. `stamp` names the
/// new data directory (`2026_11_25_04_20_37.123456789`).
pub fn write(dir: &Path, payload: &Payload, stamp: &str) -> io::Result<bool> {
    for p in payload.keys() {
        validate_path(p).map_err(io::Error::other)?;
    }
    std::fs::create_dir_all(dir)?;
    let old = std::fs::read_link(dir.join(DATA)).ok();
    if let Some(old) = &old {
        if read_tree(&dir.join(old)).is_ok_and(|current| current == *payload) {
            return Ok(false);
        }
    }
    let name = format!("..{stamp}");
    let ts_dir = dir.join(&name);
    std::fs::create_dir(&ts_dir)?;
    std::fs::set_permissions(&ts_dir, std::fs::Permissions::from_mode(0o755))?;
    for (rel, file) in payload {
        let path = ts_dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.data)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))?;
    }
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    symlink(&name, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA))?;
    let wanted = top_level(payload);
    for top in &wanted {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA).join(top), &link)?;
        }
    }
    // User-visible entries no longer in the payload go, then the old data directory.
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let n = entry.file_name().to_string_lossy().into_owned();
        if !n.starts_with("..") && !wanted.contains(&n) && entry.file_type()?.is_symlink() {
            std::fs::remove_file(entry.path())?;
        }
    }
    if let Some(old) = old.filter(|o| o.as_os_str() != name.as_str()) {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

/// The data-directory stamp for `now`, as upstream names them (UTC, nanoseconds).
pub fn stamp(now: jiff::Timestamp) -> String {
    let t = now.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{}.{:09}", t.strftime("%Y_%m_%d_%H_%M_%S"), t.subsec_nanosecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(items: &[(&str, &str, u32)]) -> Payload {
        items.iter().map(|(p, d, m)| (p.to_string(), File { data: d.as_bytes().to_vec(), mode: *m })).collect()
    }

    #[test]
    fn writes_swap_the_data_link_and_keep_user_links_current() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vol");
        assert!(write(&dir, &payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]), "2026_01_01_00_00_00.000000001").unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "2");
        assert_eq!(std::fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(std::fs::metadata(dir.join("sub/b")).unwrap().permissions().mode() & 0o777, 0o600);
        // The same payload again changes nothing.
        assert!(!write(&dir, &payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]), "2026_01_01_00_00_00.000000002").unwrap());
        assert!(dir.join("..2026_01_01_00_00_00.000000001").is_dir());
        // An update replaces the data dir; removed keys disappear.
        assert!(write(&dir, &payload(&[("a", "3", 0o644), ("c", "4", 0o644)]), "2026_01_01_00_00_00.000000003").unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "3");
        assert_eq!(std::fs::read_to_string(dir.join("c")).unwrap(), "4");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
        assert!(!dir.join("..2026_01_01_00_00_00.000000001").exists());
        assert_eq!(std::fs::read_link(dir.join("..data")).unwrap(), Path::new("..2026_01_01_00_00_00.000000003"));
    }

    #[test]
    fn paths_are_validated_as_upstream() {
        assert!(validate_path("a/b").is_ok());
        assert!(validate_path("/etc/passwd").is_err());
        assert!(validate_path("a/../../b").is_err());
        assert!(validate_path("..data").is_err());
        assert!(validate_path("").is_err());
        let tmp = tempfile::tempdir().unwrap();
        assert!(write(tmp.path(), &payload(&[("../x", "1", 0o644)]), "s").is_err());
    }

    #[test]
    fn stamps_look_like_upstream_directory_names() {
        let t: jiff::Timestamp = "2026-11-25T04:20:37.93637131Z".parse().unwrap();
        assert_eq!(stamp(t), "2026_11_25_04_20_37.936371310");
    }
}
