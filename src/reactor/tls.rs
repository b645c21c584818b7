//! rustls glue: server configuration from PEM and the SIP client configuration; TLS 1.2 and
//! 1.3 only.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

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

/// The client configuration for outgoing SIP over TLS: system roots plus `ca_file`, or (lab
/// use only) no verification at all.
pub fn sip_client_config(
    verify: bool,
    ca_file: Option<&Path>,
) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = if verify {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A broken system certificate should not take the others down with it.
            let _ = roots.add(cert);
        }
        if let Some(path) = ca_file {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|e| format!("{}: bad certificate PEM: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        log::warn!("sip: TLS server certificates are NOT verified (sip.tls_verify = false)");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Accepts any server certificate but still checks handshake signatures, for labs with
/// self-signed SIP servers (`sip.tls_verify = false`).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
