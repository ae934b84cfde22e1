//! The client side of `wss://` for the `client` and `bench` commands and
//! the tests: a rustls client configuration that trusts a PEM bundle.
//!
//! Which certificates are trusted: the file given (`--tls-ca PATH`, e.g. a
//! test CA or a self-signed server certificate), else `$SSL_CERT_FILE`, else
//! the system bundle `/etc/ssl/certs/ca-certificates.crt` (Debian's
//! ca-certificates). No bundle is compiled in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// The system bundle used when neither a file nor `$SSL_CERT_FILE` is given.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The trusted certificates' file: `ca`, else `$SSL_CERT_FILE`, else
/// [`SYSTEM_CA_BUNDLE`].
pub fn ca_file(ca: Option<&Path>) -> PathBuf {
    match ca {
        Some(p) => p.to_owned(),
        None => std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE)),
    }
}

/// A client configuration (ring, TLS 1.3 and 1.2, `http/1.1` ALPN) that
/// trusts the certificates in `ca` (see [`ca_file`]).
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let path = ca_file(ca);
    let pem = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read the trusted certificates {}: {e}",
            path.display()
        )
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: malformed PEM: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: unusable certificate: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name the server's certificate must carry: a DNS name or an IP
/// address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host:?}: not a TLS server name: {e}"))
}
