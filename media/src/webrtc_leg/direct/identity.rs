//! The gateway's DTLS identity: one self-signed ECDSA P-256 certificate, made once by the
//! application and shared by every call, as browsers keep one per origin. RFC 8827 sec. 6.5
//! authenticates the DTLS peer only through the `a=fingerprint` carried in the
//! (WebSocket-protected) signalling, so the certificate itself needs no CA and no per-call
//! freshness; generating one per call would cost a key generation and a signature on every
//! call setup.

use std::sync::Arc;

use rtc::crypto::{HashAlgorithm, RTCCryptoProvider};
use rtc::dtls::crypto::Certificate;

use crate::error::WebrtcError;

/// The certificate DTLS presents, its SDP fingerprint and the crypto provider of every ICE
/// agent and DTLS endpoint built with it. Create one with [`DtlsIdentity::generate`] at
/// start-up and hand it to every bridge (`Arc`) through
/// [`WebrtcLegConfig::identity`](crate::webrtc_leg::WebrtcLegConfig::identity).
pub struct DtlsIdentity {
    /// Certificate and private key for the DTLS handshake.
    pub(crate) certificate: Certificate,
    /// `sha-256` fingerprint in the RFC 8122 sec. 5 form: upper-case hex pairs joined by `:`.
    pub(crate) fingerprint: String,
    /// The crypto provider every DTLS/ICE object of this identity uses.
    pub(crate) provider: Arc<dyn RTCCryptoProvider>,
}

impl DtlsIdentity {
    /// A fresh self-signed certificate (key generation and a signature: do it once).
    pub fn generate() -> Result<DtlsIdentity, WebrtcError> {
        let failed = |why: String| WebrtcError::Engine {
            op: "create the DTLS identity",
            source: rtc::shared::error::Error::Other(why),
        };
        let provider =
            rtc::crypto::default_provider().map_err(|e| failed(format!("crypto provider: {e}")))?;
        let certificate =
            Certificate::generate_self_signed(vec!["sylk-gateway".to_owned()], provider.crypto())
                .map_err(|e| failed(format!("DTLS certificate: {e}")))?;
        let der = certificate
            .certificate
            .first()
            .ok_or_else(|| failed("DTLS certificate: empty chain".to_owned()))?;
        let digest = provider
            .crypto()
            .hash(HashAlgorithm::Sha256, der.as_ref())
            .map_err(|e| failed(format!("certificate fingerprint: {e}")))?;
        Ok(DtlsIdentity {
            certificate,
            fingerprint: hex_fingerprint(&digest),
            provider,
        })
    }

    /// The `sha-256` fingerprint written into our SDP (`AB:CD:...`, RFC 8122 sec. 5).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// `AB:CD:...` (RFC 8122 sec. 5 `fingerprint` syntax).
pub(crate) fn hex_fingerprint(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}
