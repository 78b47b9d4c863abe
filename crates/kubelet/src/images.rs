//! Images rkube builds itself, and image import.
//!
//! With no internet, the sandbox (pause) image and a small busybox test image are built
//! here from the host's `busybox-static` (Debian) and imported into the node's containerd
//! at start, as OCI layout tarballs. `import` takes any OCI or docker-archive tarball
//! (`rkube images import`), through containerd's own importer (`ctr images import`).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The sandbox image of every pod: busybox's shell waiting for SIGTERM.
pub const PAUSE_IMAGE: &str = "rkube.local/pause:1";
/// The test image: busybox with every applet linked, so `sh`, `sleep`, `httpd`, `nc` work.
pub const BUSYBOX_IMAGE: &str = "rkube.local/busybox:1.35";
/// Where the static busybox comes from (Debian's `busybox-static`).
pub const BUSYBOX_BINARY: &str = "/usr/bin/busybox";

fn sha256_hex(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A minimal ustar archive writer (regular files, directories, symlinks).
#[derive(Default)]
pub struct Tar {
    out: Vec<u8>,
}

impl Tar {
    fn header(&mut self, path: &str, kind: u8, mode: u32, size: usize, link: &str) {
        let mut h = [0u8; 512];
        let (prefix, name) = split_ustar_path(path);
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |field: &mut [u8], value: u64| {
            let text = format!("{:0width$o}\0", value, width = field.len() - 1);
            field.copy_from_slice(text.as_bytes());
        };
        octal(&mut h[100..108], mode as u64);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size as u64);
        octal(&mut h[136..148], 0);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.out.extend_from_slice(&h);
    }

    pub fn dir(&mut self, path: &str, mode: u32) {
        self.header(&format!("{}/", path.trim_end_matches('/')), b'5', mode, 0, "");
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.header(path, b'0', mode, data.len(), "");
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.header(path, b'2', 0o777, 0, target);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

/// Splits a path into ustar's prefix (≤155) and name (≤100) fields.
fn split_ustar_path(path: &str) -> (&str, &str) {
    if path.len() <= 100 {
        return ("", path);
    }
    for (i, _) in path.match_indices('/') {
        if i <= 155 && path.len() - i - 1 <= 100 {
            return (&path[..i], &path[i + 1..]);
        }
    }
    ("", &path[path.len() - 100..])
}

/// The image's filesystem: busybox at /bin/busybox, a link per applet, and the usual dirs.
fn busybox_layer(busybox: &[u8], applets: &[String]) -> Vec<u8> {
    let mut tar = Tar::default();
    for dir in ["bin", "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/bin", "var", "var/www"] {
        tar.dir(dir, 0o755);
    }
    tar.dir("tmp", 0o1777);
    tar.file("bin/busybox", 0o755, busybox);
    for applet in applets {
        if applet != "busybox" && !applet.contains('/') {
            tar.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    tar.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n");
    tar.file("etc/group", 0o644, b"root:x:0:\nnobody:x:65534:\n");
    tar.finish()
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The blobs of a one-layer OCI image: config and manifest JSON, and the layer they name.
pub struct OciImage {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub layer: Vec<u8>,
}

/// `sha256:<hex>` of `data`, as OCI descriptors name blobs.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// A one-layer OCI image (uncompressed layer) for this machine's architecture.
pub fn oci_image(layer: Vec<u8>, entrypoint: &[&str], cmd: &[&str]) -> OciImage {
    let layer_digest = sha256_hex(&layer);
    let config = serde_json::json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": if entrypoint.is_empty() { serde_json::Value::Null } else { serde_json::json!(entrypoint) },
            "Cmd": cmd,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        "history": [{"created_by": "rkube: busybox-static"}],
    });
    let config = serde_json::to_vec(&config).expect("config serializes");
    let config_digest = sha256_hex(&config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_digest}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_digest}"), "size": layer.len()}],
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
    OciImage { config, manifest, layer }
}

/// An OCI image layout tarball holding one image named `name` with one uncompressed layer.
pub fn oci_archive(name: &str, layer: &[u8], entrypoint: &[&str], cmd: &[&str]) -> Vec<u8> {
    let OciImage { config, manifest, .. } = oci_image(layer.to_vec(), entrypoint, cmd);
    let layer_digest = sha256_hex(layer);
    let config_digest = sha256_hex(&config);
    let manifest_digest = sha256_hex(&manifest);
    let tag = name.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map(|(_, t)| t).unwrap_or("latest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest.len(),
            "platform": {"architecture": oci_arch(), "os": "linux"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }],
    });
    let mut tar = Tar::default();
    tar.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#);
    tar.file("index.json", 0o644, &serde_json::to_vec(&index).expect("index serializes"));
    tar.dir("blobs", 0o755);
    tar.dir("blobs/sha256", 0o755);
    tar.file(&format!("blobs/sha256/{layer_digest}"), 0o644, layer);
    tar.file(&format!("blobs/sha256/{config_digest}"), 0o644, &config);
    tar.file(&format!("blobs/sha256/{manifest_digest}"), 0o644, &manifest);
    tar.finish()
}

/// The busybox test image's only layer, from the static `busybox` binary.
pub fn busybox_image_layer(busybox: &Path) -> anyhow::Result<Vec<u8>> {
    let binary = std::fs::read(busybox)
        .with_context(|| format!("cannot read {} (install Debian's busybox-static)", busybox.display()))?;
    let listed = std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .with_context(|| format!("cannot run {} --list", busybox.display()))?;
    let applets: Vec<String> = String::from_utf8_lossy(&listed.stdout).lines().map(str::to_owned).collect();
    anyhow::ensure!(applets.iter().any(|a| a == "sh"), "{} has no sh applet", busybox.display());
    Ok(busybox_layer(&binary, &applets))
}

/// Builds the pause and busybox images from `busybox` into `dir`; returns the tarballs.
pub fn build_builtin(dir: &Path, busybox: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let layer = busybox_image_layer(busybox)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The pause process: PID 1 that exits on SIGTERM (a bare sleep would ignore it).
    let pause = oci_archive(PAUSE_IMAGE, &layer, &["/bin/sh", "-c"], &["trap 'exit 0' TERM INT; sleep 2147483647 & wait"]);
    let test = oci_archive(BUSYBOX_IMAGE, &layer, &[], &["sh"]);
    let mut written = Vec::new();
    for (file, data) in [("rkube-pause.tar", pause), ("rkube-busybox.tar", test)] {
        let path = dir.join(file);
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// Imports an OCI or docker-archive tarball into the runtime at `socket` (CRI namespace
/// `k8s.io`) with containerd's importer; returns the image names it printed.
pub async fn import(socket: &Path, tarball: &Path) -> anyhow::Result<Vec<String>> {
    let output = tokio::process::Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["--namespace", "k8s.io", "images", "import"])
        .arg(tarball)
        .output()
        .await
        .context("cannot run ctr (from Debian's containerd package)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        anyhow::bail!("cannot import {}: {}", tarball.display(), stderr.trim());
    }
    // ctr prints "unpacking NAME (sha256:...)...done" per image.
    let names: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("unpacking "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!names.is_empty(), "{} holds no named image (an OCI index needs an image name annotation)", tarball.display());
    Ok(names)
}

/// The containerd image label that marks an image pinned: image garbage collection never
/// removes it. containerd 1.7+ reports it as `pinned` in CRI ImageStatus; 1.6.20 (Debian 12)
/// does not know the label (measured: ImageStatus says `pinned: false`, and the string is not
/// in its binary), so rkube reads the label itself with [`pinned_images`].
pub const PINNED_LABEL: &str = "io.cri-containerd.pinned=pinned";

/// The names of the pinned images in the runtime at `socket` (from containerd's labels, so
/// it survives restarts and follows the image), for image garbage collection.
pub async fn pinned_images(socket: &Path) -> anyhow::Result<Vec<String>> {
    let output = tokio::process::Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["--namespace", "k8s.io", "images", "ls", "-q", "labels.\"io.cri-containerd.pinned\"==pinned"])
        .output()
        .await
        .context("cannot run ctr (from Debian's containerd package)")?;
    anyhow::ensure!(
        output.status.success(),
        "cannot list pinned images: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect())
}

/// Marks `name` pinned in the runtime at `socket` (CRI namespace `k8s.io`).
pub async fn pin(socket: &Path, name: &str) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["--namespace", "k8s.io", "images", "label", name, PINNED_LABEL])
        .output()
        .await
        .context("cannot run ctr (from Debian's containerd package)")?;
    anyhow::ensure!(
        output.status.success(),
        "cannot pin {name}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// [`import`], then pins every imported image: what `rkube images import` and the airgap
/// directory bring in is never garbage-collected.
pub async fn import_pinned(socket: &Path, tarball: &Path) -> anyhow::Result<Vec<String>> {
    let names = import(socket, tarball).await?;
    for name in &names {
        pin(socket, name).await?;
    }
    Ok(names)
}

/// Imports (pinned) every `*.tar` in `dir` (k3s's airgap directory, `<data-dir>/agent/images`)
/// in name order; a missing directory imports nothing. Returns every imported image name.
pub async fn import_dir(socket: &Path, dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut tarballs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "tar"))
        .collect();
    tarballs.sort();
    let mut names = Vec::new();
    for tarball in &tarballs {
        names.extend(import_pinned(socket, tarball).await?);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_have_valid_checksums_and_long_paths_split() {
        let mut tar = Tar::default();
        tar.file("a/b.txt", 0o644, b"hello");
        let out = tar.finish();
        assert_eq!(out.len() % 512, 0);
        let h = &out[..512];
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| b as u32).sum::<u32>());
        assert_eq!(&out[512..517], b"hello");
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let (prefix, name) = split_ustar_path(&long);
        assert_eq!((prefix.len(), name.len()), (120, 90));
    }

    #[test]
    fn oci_archive_names_the_image_and_links_digests() {
        let layer = Tar::default().finish();
        let tar = oci_archive("rkube.local/x:2", &layer, &[], &["sh"]);
        let text = String::from_utf8_lossy(&tar);
        assert!(text.contains("\"io.containerd.image.name\":\"rkube.local/x:2\""));
        assert!(text.contains(&format!("blobs/sha256/{}", sha256_hex(&layer))));
    }
}

/// Real containerd: the airgap directory import and pinning as CRI reports it.
#[cfg(test)]
mod runtime_tests {
    use super::*;
    use crate::containerd::{Containerd, Layout, Options};
    use crate::cri::Cri;

    /// Whether CRI knows the image, and whether rkube sees it pinned.
    async fn status(cri: &Cri, name: &str) -> (bool, bool) {
        let known = cri.has_image(name).await.unwrap();
        (known, pinned_images(cri.socket()).await.unwrap().iter().any(|n| n == name))
    }

    fn tiny_image(name: &str) -> Vec<u8> {
        let mut layer = Tar::default();
        layer.file("hello.txt", 0o644, name.as_bytes());
        oci_archive(name, &layer.finish(), &[], &["sh"])
    }

    #[tokio::test]
    async fn airgap_directory_tarballs_are_imported_in_order_and_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            sandbox_image: PAUSE_IMAGE.into(),
            cni_conf_dir: dir.path().join("agent/cni/net.d"),
            cni_bin_dir: "/usr/lib/cni".into(),
        };
        let containerd = Containerd::start(Layout::new(&dir.path().join("agent")), &options).await.unwrap();
        let socket = containerd.socket();
        let cri = Cri::connect(&socket.display().to_string()).await.unwrap();
        let airgap = dir.path().join("agent/images");
        assert!(import_dir(&socket, &airgap).await.unwrap().is_empty());
        std::fs::create_dir_all(&airgap).unwrap();
        std::fs::write(airgap.join("b.tar"), tiny_image("rkube.test/b:2")).unwrap();
        std::fs::write(airgap.join("a.tar"), tiny_image("rkube.test/a:1")).unwrap();
        std::fs::write(airgap.join("notes.txt"), "not an image").unwrap();
        let names = import_dir(&socket, &airgap).await.unwrap();
        assert_eq!(names, ["rkube.test/a:1", "rkube.test/b:2"]);
        assert_eq!(status(&cri, "rkube.test/a:1").await, (true, true));
        assert_eq!(status(&cri, "rkube.test/b:2").await, (true, true));
        // A plain import is not pinned: the label is what makes the difference.
        let plain = dir.path().join("plain.tar");
        std::fs::write(&plain, tiny_image("rkube.test/plain:1")).unwrap();
        assert_eq!(import(&socket, &plain).await.unwrap(), ["rkube.test/plain:1"]);
        assert_eq!(status(&cri, "rkube.test/plain:1").await, (true, false));
        // Importing again is harmless; a broken tarball is an error naming it.
        assert_eq!(import_dir(&socket, &airgap).await.unwrap().len(), 2);
        std::fs::write(airgap.join("c.tar"), b"garbage").unwrap();
        let error = format!("{:#}", import_dir(&socket, &airgap).await.unwrap_err());
        assert!(error.contains("c.tar"), "{error}");
        containerd.stop(std::time::Duration::from_secs(5)).await;
    }
}
