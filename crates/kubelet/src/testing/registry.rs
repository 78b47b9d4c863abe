//! A real OCI registry on loopback (Debian's `docker-registry`, distribution 2.8) with its
//! storage in a temporary directory, and a push over the registry HTTP API (monolithic blob
//! uploads, manifest PUT) with a tiny HTTP/1.1 client. The process is killed on drop.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::images::{self, OciImage};

/// A running `docker-registry` on `127.0.0.1:<port>`.
pub struct Registry {
    child: tokio::process::Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// One HTTP response: status code, headers (lower-case names), body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request to `addr` (`Connection: close`) and reads the whole answer.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Response> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .context("registry request timed out")??;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of HTTP headers")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || data.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[(eol + 4 + size).min(data.len())..];
    }
    out
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Registry {
    /// Starts `docker-registry serve` on a free loopback port; returns once `/v2/` answers.
    pub async fn start() -> anyhow::Result<Registry> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = tokio::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start docker-registry (Debian's docker-registry package)")?;
        let mut registry = Registry {
            child,
            addr,
            _dir: dir,
        };
        for _ in 0..200 {
            if let Some(status) = registry.child.try_wait()? {
                let log = std::fs::read_to_string(registry._dir.path().join("registry.log"))
                    .unwrap_or_default();
                anyhow::bail!("docker-registry exited ({status}): {log}");
            }
            if http(addr, "GET", "/v2/", &[], b"")
                .await
                .is_ok_and(|r| r.status == 200)
            {
                return Ok(registry);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("docker-registry did not answer on {addr}")
    }

    /// `http://127.0.0.1:<port>`, as an endpoint in registries.yaml.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Uploads one blob (monolithic POST) unless the registry has it.
    async fn push_blob(&self, repository: &str, data: &[u8]) -> anyhow::Result<()> {
        let digest = images::digest(data);
        let head = http(
            self.addr,
            "HEAD",
            &format!("/v2/{repository}/blobs/{digest}"),
            &[],
            b"",
        )
        .await?;
        if head.status == 200 {
            return Ok(());
        }
        // distribution 2.8 has no single-request upload: POST opens a session, PUT completes it.
        let session = http(
            self.addr,
            "POST",
            &format!("/v2/{repository}/blobs/uploads/"),
            &[],
            b"",
        )
        .await?;
        anyhow::ensure!(
            session.status == 202,
            "upload start answered {}",
            session.status
        );
        let location = session
            .header("location")
            .context("upload start gave no Location")?;
        let path = match location.split_once("://") {
            Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
            None => location,
        };
        let separator = if path.contains('?') { '&' } else { '?' };
        let target = format!("{path}{separator}digest={digest}");
        let response = http(
            self.addr,
            "PUT",
            &target,
            &[("Content-Type", "application/octet-stream")],
            data,
        )
        .await?;
        anyhow::ensure!(
            response.status == 201,
            "blob upload answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        Ok(())
    }

    /// Pushes `image` as `repository:tag` (e.g. `library/busybox`, `latest`); returns the
    /// manifest digest.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        image: &OciImage,
    ) -> anyhow::Result<String> {
        self.push_blob(repository, &image.layer).await?;
        self.push_blob(repository, &image.config).await?;
        let response = http(
            self.addr,
            "PUT",
            &format!("/v2/{repository}/manifests/{tag}"),
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            &image.manifest,
        )
        .await?;
        anyhow::ensure!(
            response.status == 201,
            "manifest upload answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        Ok(images::digest(&image.manifest))
    }

    /// Pushes the busybox test image (from the host's busybox-static) as `repository:tag`.
    pub async fn push_busybox(&self, repository: &str, tag: &str) -> anyhow::Result<String> {
        let layer = images::busybox_image_layer(Path::new(images::BUSYBOX_BINARY))?;
        self.push(repository, tag, &images::oci_image(layer, &[], &["sh"]))
            .await
    }
}
