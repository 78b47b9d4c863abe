//! `rkube images import`: tarballs into the node's containerd (started here the way the
//! agent starts it, under `<data-dir>/agent/containerd`), pinned; a clear error without one.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rkube_kubelet::containerd::{Containerd, Layout, Options};
use rkube_kubelet::images;

use crate::harness::rkube_bin;

fn tiny_image(path: &Path, name: &str) {
    let mut layer = images::Tar::default();
    layer.file("hello.txt", 0o644, name.as_bytes());
    std::fs::write(
        path,
        images::oci_archive(name, &layer.finish(), &[], &["sh"]),
    )
    .unwrap();
}

fn rkube(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(rkube_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

#[tokio::test]
async fn images_import_loads_tarballs_into_the_nodes_containerd_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let tarball = dir.path().join("one.tar");
    tiny_image(&tarball, "rkube.test/cli:1");

    // No containerd on that data dir yet: one clear line, non-zero exit.
    let out = rkube(&["images", "import", tarball.to_str().unwrap()], &data_dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no container runtime answers at")
            && stderr.contains("agent/containerd/containerd.sock"),
        "{stderr}"
    );

    let layout = Layout::new(&data_dir.join("agent"));
    let options = Options {
        sandbox_image: images::PAUSE_IMAGE.into(),
        cni_conf_dir: data_dir.join("agent/cni/net.d"),
        cni_bin_dir: "/usr/lib/cni".into(),
    };
    let containerd = Containerd::start(layout, &options).await.unwrap();
    let out = rkube(&["images", "import", tarball.to_str().unwrap()], &data_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rkube.test/cli:1\n");
    let cri = rkube_kubelet::cri::Cri::connect(&containerd.socket().display().to_string())
        .await
        .unwrap();
    assert!(cri.has_image("rkube.test/cli:1").await.unwrap());
    assert!(images::pinned_images(&containerd.socket())
        .await
        .unwrap()
        .contains(&"rkube.test/cli:1".to_owned()));

    // --container-runtime-endpoint names the socket directly; a non-image file is an error.
    let second = dir.path().join("two.tar");
    tiny_image(&second, "rkube.test/cli:2");
    let endpoint = format!("unix://{}", containerd.socket().display());
    let out = Command::new(rkube_bin())
        .args([
            "images",
            "import",
            "--container-runtime-endpoint",
            &endpoint,
        ])
        .arg(&second)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rkube.test/cli:2\n");
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"not a tarball").unwrap();
    let out = rkube(&["images", "import", junk.to_str().unwrap()], &data_dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.tar"));
    containerd.stop(Duration::from_secs(5)).await;
}
