//! CRI client: runtime.v1 `RuntimeService` and `ImageService` over containerd's unix socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use k8s_cri::v1 as api;
use api::image_service_client::ImageServiceClient;
use api::runtime_service_client::RuntimeServiceClient;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// One connection to a CRI runtime; cheap to clone (the gRPC channel is shared).
#[derive(Clone)]
pub struct Cri {
    pub runtime: RuntimeServiceClient<Channel>,
    pub image: ImageServiceClient<Channel>,
    pub endpoint: PathBuf,
}

/// Largest CRI message accepted (upstream's kubelet allows 16 MiB).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

impl Cri {
    /// Connects to the runtime at `endpoint`: a socket path, or `unix:///path`.
    pub async fn connect(endpoint: &str) -> anyhow::Result<Cri> {
        let path = PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint));
        let socket = path.clone();
        // The URI is unused: every connection goes to the socket.
        let channel = Endpoint::try_from("http://localhost")?
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move { tokio::net::UnixStream::connect(socket).await.map(TokioIo::new) }
            }))
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to the container runtime at {}: {e}", path.display()))?;
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            image: ImageServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            endpoint: path,
        })
    }

    /// The runtime's name and version (`containerd`, `1.6.20`), as nodeInfo reports it.
    pub async fn version(&self) -> anyhow::Result<api::VersionResponse> {
        let mut runtime = self.runtime.clone();
        let response = runtime.version(api::VersionRequest { version: "v1".into() }).await?;
        Ok(response.into_inner())
    }

    /// Whether the runtime has the image `reference` (name:tag or digest).
    pub async fn has_image(&self, reference: &str) -> anyhow::Result<bool> {
        let mut image = self.image.clone();
        let request = api::ImageStatusRequest {
            image: Some(api::ImageSpec { image: reference.into(), ..Default::default() }),
            verbose: false,
        };
        Ok(image.image_status(request).await?.into_inner().image.is_some())
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.endpoint
    }
}
