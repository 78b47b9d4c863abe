//! hostPath type checks (pkg/volume/hostpath/host_path.go checkType): `DirectoryOrCreate` and
//! `FileOrCreate` create what is missing, the others only check what exists.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// Checks (and for the *OrCreate types creates) `path` per the hostPath `type_`.
pub fn check_type(path: &Path, type_: &str) -> Result<(), String> {
    let p = path.display();
    let meta = std::fs::metadata(path);
    let failed = |what: &str| format!("hostPath type check failed: {p} is not {what}");
    match type_ {
        "" => Ok(()),
        "DirectoryOrCreate" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(failed("a directory")),
            Err(_) => {
                std::fs::create_dir_all(path).map_err(|e| format!("{e}"))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(|e| format!("{e}"))
            }
        },
        "Directory" => meta.ok().filter(|m| m.is_dir()).map(|_| ()).ok_or_else(|| failed("a directory")),
        "FileOrCreate" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(failed("a file")),
            Err(_) => {
                std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("{e}"))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).map_err(|e| format!("{e}"))
            }
        },
        "File" => meta.ok().filter(|m| m.is_file()).map(|_| ()).ok_or_else(|| failed("a file")),
        "Socket" => meta.ok().filter(|m| m.file_type().is_socket()).map(|_| ()).ok_or_else(|| failed("a socket file")),
        "CharDevice" => meta.ok().filter(|m| m.file_type().is_char_device()).map(|_| ()).ok_or_else(|| failed("a character device")),
        "BlockDevice" => meta.ok().filter(|m| m.file_type().is_block_device()).map(|_| ()).ok_or_else(|| failed("a block device")),
        other => Err(format!("invalid HostPathType {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_check_and_create_as_upstream() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d/e");
        assert!(check_type(&dir, "Directory").is_err());
        check_type(&dir, "DirectoryOrCreate").unwrap();
        assert!(dir.is_dir());
        check_type(&dir, "Directory").unwrap();
        let file = tmp.path().join("f");
        assert_eq!(check_type(&file, "File").unwrap_err(), format!("hostPath type check failed: {} is not a file", file.display()));
        check_type(&file, "FileOrCreate").unwrap();
        assert!(file.is_file());
        assert!(check_type(&file, "Directory").is_err());
        assert!(check_type(&dir, "FileOrCreate").is_err());
        assert!(check_type(&file, "Socket").unwrap_err().ends_with("is not a socket file"));
        let sock = tmp.path().join("s");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        check_type(&sock, "Socket").unwrap();
        check_type(Path::new("/dev/null"), "CharDevice").unwrap();
        check_type(Path::new("/nonexistent-anything"), "").unwrap();
    }
}
