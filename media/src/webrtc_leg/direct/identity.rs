//! The gateway's DTLS identity: one self-signed ECDSA P-256 certificate per process, as
//! browsers keep one per origin. RFC 8827 sec. 6.5 authenticates the DTLS peer only through
//! the `a=fingerprint` carried in the (WebSocket-protected) signalling, so the certificate
//! itself needs no CA and no per-call freshness; generating one per call would cost a key
//! generation and a signature on every call setup.

use std::sync::{Arc, OnceLock};

use rtc::crypto::{HashAlgorithm, RTCCryptoProvider};
use rtc::dtls::crypto::Certificate;

use crate::error::WebrtcError;

/// The certificate DTLS presents and its SDP fingerprint.
pub(crate) struct DtlsIdentity {
    /// Certificate and private key for the DTLS handshake.
    pub(crate) certificate: Certificate,
    /// `sha-256` fingerprint in the RFC 8122 sec. 5 form: upper-case hex pairs joined by `:`.
    pub(crate) fingerprint: String,
    /// The crypto provider every DTLS/ICE object of this process uses.
    pub(crate) provider: Arc<dyn RTCCryptoProvider>,
}

static IDENTITY: OnceLock<Result<Arc<DtlsIdentity>, String>> = OnceLock::new();

/// The process-wide identity, generated on first use.
pub(crate) fn shared_identity() -> Result<Arc<DtlsIdentity>, WebrtcError> {
    IDENTITY
        .get_or_init(|| generate().map(Arc::new))
        .clone()
        .map_err(|why| WebrtcError::Engine {
            op: "create the DTLS identity",
            source: rtc::shared::error::Error::Other(why),
        })
}

fn generate() -> Result<DtlsIdentity, String> {
    let provider = rtc::crypto::default_provider().map_err(|e| format!("crypto provider: {e}"))?;
    let certificate =
        Certificate::generate_self_signed(vec!["sylk-gateway".to_owned()], provider.crypto())
            .map_err(|e| format!("DTLS certificate: {e}"))?;
    let der = certificate
        .certificate
        .first()
        .ok_or_else(|| "DTLS certificate: empty chain".to_owned())?;
    let digest = provider
        .crypto()
        .hash(HashAlgorithm::Sha256, der.as_ref())
        .map_err(|e| format!("certificate fingerprint: {e}"))?;
    Ok(DtlsIdentity {
        certificate,
        fingerprint: hex_fingerprint(&digest),
        provider,
    })
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
