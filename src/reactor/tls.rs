//! rustls glue: server configuration from PEM, TLS 1.2 and 1.3 only.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::{TlsSource, DEV_CERTIFICATE_PEM, DEV_PRIVATE_KEY_PEM};

/// Builds the `wss://` server configuration. Errors are human-readable and name the file.
pub fn server_config(source: &TlsSource) -> Result<Arc<ServerConfig>, String> {
    let (cert_pem, key_pem, what) = match source {
        TlsSource::EmbeddedDev => (
            DEV_CERTIFICATE_PEM.to_vec(),
            DEV_PRIVATE_KEY_PEM.to_vec(),
            "embedded dev certificate".to_owned(),
        ),
        TlsSource::Files {
            certificate,
            private_key,
        } => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            };
            (
                read(certificate)?,
                read(private_key)?,
                certificate.display().to_string(),
            )
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: bad certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{what}: bad private key PEM: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{what}: {e}"))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_dev_certificate_loads() {
        assert!(server_config(&TlsSource::EmbeddedDev).is_ok());
    }

    #[test]
    fn missing_files_are_named() {
        let e = server_config(&TlsSource::Files {
            certificate: "/nonexistent/cert.pem".into(),
            private_key: "/nonexistent/key.pem".into(),
        })
        .unwrap_err();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }
}
