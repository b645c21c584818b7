//! TEMPORARY stub over rtc::srtp (replaced by the in-place implementation).
#![allow(missing_docs)]
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpProfile {
    Aes128CmHmacSha1_80,
    Aes128CmHmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}
impl SrtpProfile {
    fn pp(self) -> ProtectionProfile {
        match self {
            Self::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Self::Aes128CmHmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            Self::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            Self::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        }
    }
    pub fn master_key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }
    pub fn master_salt_len(self) -> usize {
        match self {
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
            _ => 14,
        }
    }
    pub fn from_dtls_id(id: u16) -> Option<Self> {
        Some(match id {
            1 => Self::Aes128CmHmacSha1_80,
            2 => Self::Aes128CmHmacSha1_32,
            7 => Self::AeadAes128Gcm,
            8 => Self::AeadAes256Gcm,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
            Self::Aes128CmHmacSha1_32 => "SRTP_AES128_CM_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpError {
    Failed,
}
impl std::fmt::Display for SrtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("srtp failed")
    }
}
impl std::error::Error for SrtpError {}
pub struct SrtpContext(Context);
fn put(src: &[u8], buf: &mut [u8]) -> Result<usize, SrtpError> {
    buf.get_mut(..src.len())
        .ok_or(SrtpError::Failed)?
        .copy_from_slice(src);
    Ok(src.len())
}
impl SrtpContext {
    pub fn new(
        profile: SrtpProfile,
        key: &[u8],
        salt: &[u8],
        inbound: bool,
    ) -> Result<Self, SrtpError> {
        let p = rtc::crypto::default_provider().map_err(|_| SrtpError::Failed)?;
        let (a, b) = if inbound {
            (
                Some(rtc::srtp::option::srtp_replay_protection(128)),
                Some(rtc::srtp::option::srtcp_replay_protection(128)),
            )
        } else {
            (None, None)
        };
        Ok(Self(
            Context::new(key, salt, profile.pp(), a, b, p.crypto())
                .map_err(|_| SrtpError::Failed)?,
        ))
    }
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let o = self
            .0
            .encrypt_rtp(&buf[..len])
            .map_err(|_| SrtpError::Failed)?;
        put(&o, buf)
    }
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let o = self.0.decrypt_rtp(buf).map_err(|_| SrtpError::Failed)?;
        put(&o, buf)
    }
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let o = self
            .0
            .encrypt_rtcp(&buf[..len])
            .map_err(|_| SrtpError::Failed)?;
        put(&o, buf)
    }
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let o = self.0.decrypt_rtcp(buf).map_err(|_| SrtpError::Failed)?;
        put(&o, buf)
    }
}
pub struct SrtpSession {
    pub outbound: SrtpContext,
    pub inbound: SrtpContext,
}
impl SrtpSession {
    pub fn dtls_keying_material_len(p: SrtpProfile) -> usize {
        2 * (p.master_key_len() + p.master_salt_len())
    }
    pub fn from_dtls_keying_material(
        p: SrtpProfile,
        m: &[u8],
        client: bool,
    ) -> Result<Self, SrtpError> {
        let k = p.master_key_len();
        let s = p.master_salt_len();
        if m.len() < 2 * (k + s) {
            return Err(SrtpError::Failed);
        }
        let (ck, sk, cs, ss) = (
            &m[..k],
            &m[k..2 * k],
            &m[2 * k..2 * k + s],
            &m[2 * k + s..2 * k + 2 * s],
        );
        let (lk, ls, rk, rs) = if client {
            (ck, cs, sk, ss)
        } else {
            (sk, ss, ck, cs)
        };
        Ok(Self {
            outbound: SrtpContext::new(p, lk, ls, false)?,
            inbound: SrtpContext::new(p, rk, rs, true)?,
        })
    }
}
