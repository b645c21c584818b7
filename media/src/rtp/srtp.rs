//! SRTP for `RTP/SAVP` SIP peers keyed through SDES (RFC 4568), on the crate's in-place
//! [`crate::srtp`] (RFC 3711, RFC 7714 for AEAD-GCM): nothing is allocated per packet.

use super::RtpError;
use crate::sdp::{CryptoAttribute, CryptoSuite};
use crate::srtp::{SrtpError, SrtpProfile, SrtpSession};

/// Both directions of an SDES-keyed SRTP session: our key protects what we send, the peer's
/// key unprotects what it sends (RFC 4568 section 6.1: each side announces its own sending key).
pub struct SdesSrtp {
    session: SrtpSession,
}

impl std::fmt::Debug for SdesSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdesSrtp")
            .field("profile", &self.profile())
            .finish_non_exhaustive()
    }
}

/// The SRTP profile of an SDES crypto suite (the same transforms, RFC 7714 section 14).
pub fn suite_profile(suite: CryptoSuite) -> SrtpProfile {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 => SrtpProfile::Aes128CmHmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => SrtpProfile::Aes128CmHmacSha1_32,
        CryptoSuite::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
        CryptoSuite::AeadAes256Gcm => SrtpProfile::AeadAes256Gcm,
    }
}

impl SdesSrtp {
    /// Keys a session from our `a=crypto` and the peer's. Both must use the same suite
    /// (RFC 4568 section 7.1.2: the answer picks one of the offered suites).
    pub fn new(local: &CryptoAttribute, remote: &CryptoAttribute) -> Result<Self, RtpError> {
        if local.suite != remote.suite {
            return Err(RtpError::SrtpKey);
        }
        let session = SrtpSession::new(
            suite_profile(local.suite),
            local.master_key(),
            local.master_salt(),
            remote.master_key(),
            remote.master_salt(),
        )
        .map_err(|_| RtpError::SrtpKey)?;
        Ok(Self { session })
    }

    /// The negotiated profile.
    pub fn profile(&self) -> SrtpProfile {
        self.session.outbound.profile()
    }

    /// Bytes protection adds to an RTP packet.
    pub fn rtp_overhead(&self) -> usize {
        self.profile().rtp_overhead()
    }

    /// Bytes protection adds to an RTCP packet.
    pub fn rtcp_overhead(&self) -> usize {
        self.profile().rtcp_overhead()
    }

    /// Protects the plain RTP packet `packet` into `out`; returns the SRTP length.
    pub fn protect_rtp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        copy_into(packet, out)?;
        self.protect_rtp_in_place(out, packet.len())
    }

    /// Protects the plain RTP packet `buf[..len]` in place; `buf` needs
    /// [`SdesSrtp::rtp_overhead`] spare bytes behind it. Returns the SRTP length.
    pub fn protect_rtp_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize, RtpError> {
        self.session
            .outbound
            .protect_rtp(buf, len)
            .map_err(protect_error)
    }

    /// Authenticates and decrypts the SRTP packet in `buf` in place; returns the plain length.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, RtpError> {
        self.session
            .inbound
            .unprotect_rtp(buf)
            .map_err(|_| RtpError::SrtpUnprotect)
    }

    /// Protects a compound RTCP packet into `out` (RFC 3711 section 3.4); returns the length.
    pub fn protect_rtcp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        copy_into(packet, out)?;
        self.protect_rtcp_in_place(out, packet.len())
    }

    /// Protects the compound RTCP packet `buf[..len]` in place; `buf` needs
    /// [`SdesSrtp::rtcp_overhead`] spare bytes behind it. Returns the SRTCP length.
    pub fn protect_rtcp_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize, RtpError> {
        self.session
            .outbound
            .protect_rtcp(buf, len)
            .map_err(protect_error)
    }

    /// Authenticates and decrypts an SRTCP packet in place; returns the plain length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, RtpError> {
        self.session
            .inbound
            .unprotect_rtcp(buf)
            .map_err(|_| RtpError::SrtpUnprotect)
    }
}

fn protect_error(e: SrtpError) -> RtpError {
    match e {
        SrtpError::BufferTooSmall => RtpError::BufferTooSmall,
        _ => RtpError::SrtpProtect,
    }
}

fn copy_into(src: &[u8], out: &mut [u8]) -> Result<(), RtpError> {
    out.get_mut(..src.len())
        .ok_or(RtpError::BufferTooSmall)?
        .copy_from_slice(src);
    Ok(())
}
