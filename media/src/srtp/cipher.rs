//! The two SRTP transforms, keyed once with session keys and used in place:
//! AES-CM with HMAC-SHA1 (RFC 3711 sections 4.1.1 and 4.2) through `rtc`'s provider-neutral
//! crypto traits, and AEAD AES-GCM (RFC 7714) through `ring`.
//!
//! Nothing here allocates after construction: `rtc`'s stream cipher and MAC are boxed once,
//! and both `apply_keystream` and `sign` work on caller buffers; `ring`'s `LessSafeKey`
//! seals and opens in place with a detached tag.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_128_GCM, AES_256_GCM};
use rtc::crypto::{HmacAlgorithm, Mac, RTCCrypto, StreamCipher, StreamCipherAlgorithm};

use super::SrtpError;

/// Session salt length of AES-CM (RFC 3711 section 8.2: 112 bits).
pub(crate) const CM_SALT_LEN: usize = 14;
/// Session authentication key length of HMAC-SHA1 (RFC 3711 section 8.2: 160 bits).
pub(crate) const CM_AUTH_KEY_LEN: usize = 20;
/// Untruncated HMAC-SHA1 output.
const SHA1_LEN: usize = 20;
/// Session salt length of AEAD AES-GCM (RFC 7714 section 12: 96 bits).
pub(crate) const GCM_SALT_LEN: usize = 12;
/// AES-GCM tag length (RFC 7714 section 12: 16 octets).
pub(crate) const GCM_TAG_LEN: usize = 16;

/// Session keys of one of SRTP or SRTCP, as the key derivation produced them.
// ring's expanded GCM key is ~560 bytes inline; boxing it would add a pointer chase per
// packet for nothing, since a context is built once and stays where it is.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Transform {
    Cm(CmTransform),
    Gcm(GcmTransform),
}

/// AES-128 in counter mode plus HMAC-SHA1.
pub(crate) struct CmTransform {
    cipher: Box<dyn StreamCipher>,
    mac: Box<dyn Mac>,
    salt: [u8; CM_SALT_LEN],
}

impl CmTransform {
    pub(crate) fn new(
        crypto: &dyn RTCCrypto,
        encryption_key: &[u8],
        salt: &[u8],
        auth_key: &[u8],
    ) -> Result<Self, SrtpError> {
        let algorithm = match encryption_key.len() {
            16 => StreamCipherAlgorithm::Aes128Ctr,
            32 => StreamCipherAlgorithm::Aes256Ctr,
            _ => return Err(SrtpError::BadKeyLength),
        };
        if auth_key.len() != CM_AUTH_KEY_LEN {
            return Err(SrtpError::BadKeyLength);
        }
        Ok(Self {
            cipher: crypto
                .new_stream_cipher(algorithm, encryption_key)
                .map_err(|_| SrtpError::Crypto)?,
            mac: crypto
                .new_hmac(HmacAlgorithm::Sha1, auth_key)
                .map_err(|_| SrtpError::Crypto)?,
            salt: salt.try_into().map_err(|_| SrtpError::BadSaltLength)?,
        })
    }

    /// Encrypts or decrypts `data` in place with the keystream of RFC 3711 section 4.1.1:
    /// IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16), where `index` is the 48-bit SRTP
    /// packet index or (section 3.4) the 31-bit SRTCP index.
    pub(crate) fn apply_keystream(
        &mut self,
        ssrc: u32,
        index: u64,
        data: &mut [u8],
    ) -> Result<(), SrtpError> {
        let mut iv = [0u8; 16];
        iv[..CM_SALT_LEN].copy_from_slice(&self.salt);
        xor_into(&mut iv[4..8], &ssrc.to_be_bytes());
        xor_into(&mut iv[8..14], &index.to_be_bytes()[2..]);
        self.cipher
            .apply_keystream(&iv, data)
            .map_err(|_| SrtpError::Crypto)
    }

    /// The untruncated HMAC-SHA1 over the concatenation of `parts` (RFC 3711 section 4.2.1).
    pub(crate) fn tag(&mut self, parts: &[&[u8]]) -> Result<[u8; SHA1_LEN], SrtpError> {
        let mut tag = [0u8; SHA1_LEN];
        self.mac
            .sign(parts, &mut tag)
            .map_err(|_| SrtpError::Crypto)?;
        Ok(tag)
    }
}

/// AES-128-GCM or AES-256-GCM with a 16-octet tag.
pub(crate) struct GcmTransform {
    key: LessSafeKey,
    salt: [u8; GCM_SALT_LEN],
}

impl GcmTransform {
    pub(crate) fn new(encryption_key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        let algorithm = match encryption_key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            _ => return Err(SrtpError::BadKeyLength),
        };
        let key = UnboundKey::new(algorithm, encryption_key).map_err(|_| SrtpError::Crypto)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            salt: salt.try_into().map_err(|_| SrtpError::BadSaltLength)?,
        })
    }

    /// The 12-octet IV: for SRTP (RFC 7714 section 8.1) 00 00 || SSRC || ROC || SEQ, for
    /// SRTCP (section 9.1) 00 00 || SSRC || 00 00 || 0 || SRTCP index; both are
    /// 00 00 || SSRC || 48-bit index, XORed with the session salt.
    fn nonce(&self, ssrc: u32, index: u64) -> Nonce {
        let mut iv = self.salt;
        xor_into(&mut iv[2..6], &ssrc.to_be_bytes());
        xor_into(&mut iv[6..12], &index.to_be_bytes()[2..]);
        Nonce::assume_unique_for_key(iv)
    }

    /// Encrypts `data` in place and returns the tag over `aad` and the ciphertext.
    pub(crate) fn seal(
        &self,
        ssrc: u32,
        index: u64,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; GCM_TAG_LEN], SrtpError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(ssrc, index), Aad::from(aad), data)
            .map_err(|_| SrtpError::Crypto)?;
        tag.as_ref().try_into().map_err(|_| SrtpError::Crypto)
    }

    /// Verifies `tag` over `aad` and the ciphertext `data`, and decrypts `data` in place.
    /// On failure `ring` zeroes `data` rather than leave unauthenticated plaintext behind.
    pub(crate) fn open(
        &self,
        ssrc: u32,
        index: u64,
        aad: &[u8],
        data: &mut [u8],
        tag: [u8; GCM_TAG_LEN],
    ) -> Result<(), SrtpError> {
        self.key
            .open_in_place_separate_tag(
                self.nonce(ssrc, index),
                Aad::from(aad),
                Tag::from(tag),
                data,
                0..,
            )
            .map(|_| ())
            .map_err(|_| SrtpError::AuthFailed)
    }
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// Compares two tags in time independent of where they differ (RFC 3711 section 9.5 asks
/// for tag checks that leak nothing).
pub(crate) fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}
