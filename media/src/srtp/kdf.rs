//! The SRTP key derivation function (RFC 3711 section 4.3) with the AES-CM PRF of
//! section 4.3.3, or for 256-bit master keys the AES_256_CM_PRF of RFC 6188 section 7.
//!
//! The key derivation rate is 0 (RFC 5764 section 4.1.2 for DTLS-SRTP, and the SDES default
//! of RFC 4568 section 6.3; we refuse a non-zero KDR there), so `r = index DIV kdr` is 0 and
//! each session key is derived once.

use rtc::crypto::{RTCCrypto, StreamCipher, StreamCipherAlgorithm};

use super::SrtpError;

/// Label of the SRTP encryption key (RFC 3711 section 4.3.2).
pub const LABEL_SRTP_ENCRYPTION: u8 = 0x00;
/// Label of the SRTP authentication key.
pub const LABEL_SRTP_AUTHENTICATION: u8 = 0x01;
/// Label of the SRTP salting key.
pub const LABEL_SRTP_SALT: u8 = 0x02;
/// Label of the SRTCP encryption key.
pub const LABEL_SRTCP_ENCRYPTION: u8 = 0x03;
/// Label of the SRTCP authentication key.
pub const LABEL_SRTCP_AUTHENTICATION: u8 = 0x04;
/// Label of the SRTCP salting key.
pub const LABEL_SRTCP_SALT: u8 = 0x05;

/// Master salt length the PRF takes (RFC 3711 section 4.3.1: 112 bits).
const PRF_SALT_LEN: usize = 14;

/// An AES-CM PRF keyed with one master key and salt.
pub(crate) struct Prf {
    cipher: Box<dyn StreamCipher>,
    salt: [u8; PRF_SALT_LEN],
}

impl Prf {
    /// `master_key` is 16 or 32 bytes; `master_salt` is 14 bytes, or 12 for AEAD profiles,
    /// which RFC 7714 section 11 (errata 4938) multiplies by 2^16, i.e. pads with two zero
    /// bytes on the right.
    pub(crate) fn new(
        crypto: &dyn RTCCrypto,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        let algorithm = match master_key.len() {
            16 => StreamCipherAlgorithm::Aes128Ctr,
            32 => StreamCipherAlgorithm::Aes256Ctr,
            _ => return Err(SrtpError::BadKeyLength),
        };
        let mut salt = [0u8; PRF_SALT_LEN];
        salt.get_mut(..master_salt.len())
            .ok_or(SrtpError::BadSaltLength)?
            .copy_from_slice(master_salt);
        Ok(Self {
            cipher: crypto
                .new_stream_cipher(algorithm, master_key)
                .map_err(|_| SrtpError::Crypto)?,
            salt,
        })
    }

    /// Fills `out` with the session key for `label`: the AES-CM keystream under the master
    /// key with IV = x * 2^16, where x = (label || r) XOR master_salt, right-aligned
    /// (RFC 3711 section 4.3.1, r = 0).
    pub(crate) fn derive(&mut self, label: u8, out: &mut [u8]) -> Result<(), SrtpError> {
        let mut iv = [0u8; 16];
        iv[..PRF_SALT_LEN].copy_from_slice(&self.salt);
        // key_id = label || r is 56 bits; right-aligned with the 112-bit salt, the label
        // lands on byte 7.
        iv[7] ^= label;
        out.fill(0);
        self.cipher
            .apply_keystream(&iv, out)
            .map_err(|_| SrtpError::Crypto)
    }
}

/// Derives the session key, salt or authentication key for `label` into `out` (RFC 3711
/// section 4.3.1 with a key derivation rate of 0). `master_key` is 16 or 32 bytes
/// (AES-128 or AES-256 PRF); `master_salt` at most 14 bytes (12-byte AEAD salts are padded
/// per RFC 7714 section 11).
pub fn derive_session_key(
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    let provider = rtc::crypto::default_provider().map_err(|_| SrtpError::Crypto)?;
    Prf::new(provider.crypto(), master_key, master_salt)?.derive(label, out)
}
