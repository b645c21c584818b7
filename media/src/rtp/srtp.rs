//! SRTP for `RTP/SAVP` SIP peers keyed through SDES (RFC 4568), using `rtc::srtp` (RFC 3711,
//! RFC 7714 for AEAD-GCM).
//!
//! `rtc::srtp` returns each protected or unprotected packet in a fresh buffer; we copy it into
//! the caller's buffer so the leg's API stays buffer-in/buffer-out, but that one allocation per
//! SRTP packet remains (see the performance notes). Plain RTP legs allocate nothing.

use rtc::srtp::context::Context;
use rtc::srtp::option::{srtcp_replay_protection, srtp_replay_protection};

use super::RtpError;
use crate::sdp::CryptoAttribute;

/// Replay window for packets from the peer (RFC 3711 section 3.3.2 asks for at least 64).
const REPLAY_WINDOW: usize = 1024;

/// Both directions of an SDES-keyed SRTP session: our key protects what we send, the peer's
/// key unprotects what it sends (RFC 4568 section 6.1: each side announces its own sending key).
pub struct SdesSrtp {
    outbound: Context,
    inbound: Context,
}

impl std::fmt::Debug for SdesSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdesSrtp")
    }
}

impl SdesSrtp {
    /// Keys a session from our `a=crypto` and the peer's. Both must use the same suite
    /// (RFC 4568 section 7.1.2: the answer picks one of the offered suites).
    pub fn new(local: &CryptoAttribute, remote: &CryptoAttribute) -> Result<Self, RtpError> {
        if local.suite != remote.suite {
            return Err(RtpError::SrtpKey);
        }
        let provider = rtc::crypto::default_provider().map_err(|_| RtpError::SrtpKey)?;
        let crypto = provider.crypto();
        let profile = local.suite.protection_profile();
        let outbound = Context::new(
            local.master_key(),
            local.master_salt(),
            profile,
            None,
            None,
            crypto,
        )
        .map_err(|_| RtpError::SrtpKey)?;
        let inbound = Context::new(
            remote.master_key(),
            remote.master_salt(),
            profile,
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
            crypto,
        )
        .map_err(|_| RtpError::SrtpKey)?;
        Ok(Self { outbound, inbound })
    }

    /// Protects the plain RTP packet `packet` into `out`; returns the SRTP length.
    pub fn protect_rtp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let protected = self
            .outbound
            .encrypt_rtp(packet)
            .map_err(|_| RtpError::SrtpProtect)?;
        copy_into(&protected, out)
    }

    /// Authenticates and decrypts the SRTP packet in `buf` in place; returns the plain length.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, RtpError> {
        let plain = self
            .inbound
            .decrypt_rtp(buf)
            .map_err(|_| RtpError::SrtpUnprotect)?;
        copy_into(&plain, buf)
    }

    /// Protects a compound RTCP packet into `out` (RFC 3711 section 3.4); returns the length.
    pub fn protect_rtcp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let protected = self
            .outbound
            .encrypt_rtcp(packet)
            .map_err(|_| RtpError::SrtpProtect)?;
        copy_into(&protected, out)
    }

    /// Authenticates and decrypts an SRTCP packet in place; returns the plain length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, RtpError> {
        let plain = self
            .inbound
            .decrypt_rtcp(buf)
            .map_err(|_| RtpError::SrtpUnprotect)?;
        copy_into(&plain, buf)
    }
}

fn copy_into(src: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
    out.get_mut(..src.len())
        .ok_or(RtpError::BufferTooSmall)?
        .copy_from_slice(src);
    Ok(src.len())
}
