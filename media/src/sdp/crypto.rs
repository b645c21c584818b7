//! `a=crypto` (RFC 4568 section 9.1): SDES keys for `RTP/SAVP` SIP peers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::SdpError;

/// Longest master key plus salt we handle: AES-256 (32) + 14-byte salt.
const MAX_KEY_SALT_LEN: usize = 46;

/// An SRTP crypto suite that can be keyed through SDES and that `rtc::srtp` implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoSuite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568 section 6.2.1), the suite every SDES peer offers.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568 section 6.2.2).
    AesCm128HmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714 section 14.2).
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM` (RFC 7714 section 14.2).
    AeadAes256Gcm,
}

impl CryptoSuite {
    /// The suite name as written in `a=crypto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Parses a suite name (case-sensitive, as RFC 4568 section 6.2 registers them).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "AES_CM_128_HMAC_SHA1_80" => Self::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_32" => Self::AesCm128HmacSha1_32,
            "AEAD_AES_128_GCM" => Self::AeadAes128Gcm,
            "AEAD_AES_256_GCM" => Self::AeadAes256Gcm,
            _ => return None,
        })
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes: 112 bits for AES-CM (RFC 3711 section 8.2), 96 bits for
    /// AEAD (RFC 7714 section 12).
    pub fn salt_len(self) -> usize {
        match self {
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
            _ => 14,
        }
    }

    /// The matching `rtc::srtp` protection profile.
    pub fn protection_profile(self) -> rtc::srtp::protection_profile::ProtectionProfile {
        use rtc::srtp::protection_profile::ProtectionProfile as P;
        match self {
            Self::AesCm128HmacSha1_80 => P::Aes128CmHmacSha1_80,
            Self::AesCm128HmacSha1_32 => P::Aes128CmHmacSha1_32,
            Self::AeadAes128Gcm => P::AeadAes128Gcm,
            Self::AeadAes256Gcm => P::AeadAes256Gcm,
        }
    }
}

/// One `a=crypto:<tag> <suite> inline:<key||salt>[|lifetime][|MKI:len]` line.
///
/// Only the first key parameter is used and its lifetime is ignored (rekeying happens through
/// a new offer/answer). Lines we could not honour are refused rather than half-applied, so
/// the peer's next crypto line (or a 488) is chosen instead of silent one-way audio: an MKI
/// (RFC 4568 section 6.1; `rtc::srtp` has no MKI support, so every packet would fail
/// authentication) and the session parameters UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP,
/// UNAUTHENTICATED_SRTP and a non-zero KDR (section 6.3).
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag that pairs an answer's crypto with the offered one (RFC 4568 section 9.1).
    pub tag: u32,
    /// The crypto suite.
    pub suite: CryptoSuite,
    key_salt: [u8; MAX_KEY_SALT_LEN],
}

impl CryptoAttribute {
    /// Whether `other` carries the same suite and key (the tag may differ: an answer names
    /// the offered tag it accepts, RFC 4568 section 7.1.2).
    pub fn same_key(&self, other: &CryptoAttribute) -> bool {
        self.suite == other.suite && self.key_salt == other.key_salt
    }
}

impl std::fmt::Debug for CryptoAttribute {
    // Key material stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish()
    }
}

impl CryptoAttribute {
    /// Builds an attribute from raw key material: `key_salt` must be exactly
    /// `suite.key_len() + suite.salt_len()` bytes of fresh randomness (RFC 4568 section 6.1).
    pub fn new(tag: u32, suite: CryptoSuite, key_salt: &[u8]) -> Result<Self, SdpError> {
        if key_salt.len() != suite.key_len() + suite.salt_len() {
            return Err(SdpError::BadCrypto);
        }
        let mut buf = [0u8; MAX_KEY_SALT_LEN];
        buf[..key_salt.len()].copy_from_slice(key_salt);
        Ok(Self {
            tag,
            suite,
            key_salt: buf,
        })
    }

    /// Parses the value of an `a=crypto` attribute (everything after `a=crypto:`).
    pub fn parse(value: &str) -> Result<Self, SdpError> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields
            .next()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or(SdpError::BadCrypto)?;
        let suite = fields
            .next()
            .and_then(CryptoSuite::parse)
            .ok_or(SdpError::BadCrypto)?;
        let key_params = fields.next().ok_or(SdpError::BadCrypto)?;
        // Several key params are separated by ';' (RFC 4568 section 9.1); the first one is used.
        let first = key_params.split(';').next().unwrap_or("");
        let inline = first.strip_prefix("inline:").ok_or(SdpError::BadCrypto)?;
        let mut key_fields = inline.split('|');
        let b64 = key_fields.next().unwrap_or("");
        // `lifetime` is `2^n` or a number; `MKI:length` is the only field with a colon.
        if key_fields.any(|f| f.contains(':')) {
            return Err(SdpError::BadCrypto);
        }
        for param in fields {
            let unsupported = param.starts_with("UNENCRYPTED_SRTP")
                || param.starts_with("UNENCRYPTED_SRTCP")
                || param.starts_with("UNAUTHENTICATED_SRTP")
                || param.strip_prefix("KDR=").is_some_and(|kdr| kdr != "0");
            if unsupported {
                return Err(SdpError::BadCrypto);
            }
        }
        let want = suite.key_len() + suite.salt_len();
        // Decoding into a fixed buffer keeps hostile lengths from allocating; base64 of 46
        // bytes is at most 64 characters.
        if b64.len() > 64 {
            return Err(SdpError::BadCrypto);
        }
        let mut buf = [0u8; 64];
        let n = STANDARD
            .decode_slice(b64, &mut buf)
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD.decode_slice(b64, &mut buf)
            })
            .map_err(|_| SdpError::BadCrypto)?;
        if n != want {
            return Err(SdpError::BadCrypto);
        }
        Self::new(tag, suite, &buf[..n])
    }

    /// The attribute value (without `a=crypto:`).
    pub fn to_value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.as_str(),
            STANDARD.encode(self.key_salt())
        )
    }

    /// Master key followed by master salt.
    pub fn key_salt(&self) -> &[u8] {
        &self.key_salt[..self.suite.key_len() + self.suite.salt_len()]
    }

    /// The master key.
    pub fn master_key(&self) -> &[u8] {
        &self.key_salt[..self.suite.key_len()]
    }

    /// The master salt.
    pub fn master_salt(&self) -> &[u8] {
        &self.key_salt[self.suite.key_len()..self.suite.key_len() + self.suite.salt_len()]
    }
}
