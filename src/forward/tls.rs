//! DNS over TLS to the upstreams (CoreDNS `forward . tls://ADDR`, RFC 7858):
//! one client configuration, built when the settings are read, from the
//! system's CA certificates or a CA file, with a client certificate if given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// CoreDNS's port for `tls://ADDR`.
pub const DOT_PORT: u16 = 853;

/// The TLS keys as given (`forward_tls_*`): what [`UpstreamTls::new`] reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The name the upstreams' certificate must carry (`tls_servername`);
    /// none: each upstream's IP address.
    pub server_name: Option<String>,
    /// CA certificates (PEM) that verify the upstreams; none: the system's.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for upstreams that ask for one.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// `tls://ADDR[:PORT]`'s address, on port 853 when none is given.
pub fn parse_tls_upstream(address: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip = crate::config::parse_upstream(address)?.ip();
    Ok(SocketAddr::new(ip, DOT_PORT))
}

/// How the upstreams are reached over TLS: the client configuration made
/// from [`TlsFiles`].
#[derive(Clone)]
pub struct UpstreamTls {
    server_name: Option<String>,
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Made from [`TlsFiles`], which are compared beside it.
impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.server_name == other.server_name
    }
}

impl Eq for UpstreamTls {}

impl UpstreamTls {
    /// Reads the CA and client files (or the system's CAs); the error names
    /// what could not be used.
    pub fn new(files: &TlsFiles) -> Result<Self, String> {
        let TlsFiles {
            server_name,
            ca,
            client,
        } = files.clone();
        if let Some(name) = &server_name {
            ServerName::try_from(name.clone())
                .map_err(|_| format!("{name:?} is not a server name"))?;
        }
        let mut roots = rustls::RootCertStore::empty();
        match &ca {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                {
                    let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A system certificate rustls cannot use is skipped, as browsers do.
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            return Err(match &ca {
                Some(path) => format!("{}: no CA certificate in it", path.display()),
                None => "no CA certificates on this system to verify the upstreams; give a CA file"
                    .into(),
            });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match &client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| format!("{}: {e}", cert.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{}: {e}", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("{}: {e}", cert.display()))?
            }
        };
        Ok(UpstreamTls {
            server_name,
            config: Arc::new(config),
        })
    }

    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.config.clone())
    }

    /// The name `upstream`'s certificate is checked against.
    pub fn name_for(&self, upstream: SocketAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .and_then(|name| ServerName::try_from(name).ok())
            .unwrap_or_else(|| ServerName::IpAddress(upstream.ip().into()))
    }
}
