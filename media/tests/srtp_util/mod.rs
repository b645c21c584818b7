//! Vec-in, Vec-out wrappers around the in-place `SrtpContext` calls, for the SRTP tests.
#![allow(dead_code)]

use media::srtp::{SrtpContext, SrtpError};

/// Protects `plain` with `ctx` in a buffer with room for the trailer.
pub fn protect_rtp(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.profile().rtp_overhead(), 0);
    let n = ctx.protect_rtp(&mut buf, plain.len()).expect("protect_rtp");
    buf.truncate(n);
    buf
}

/// Protects a compound RTCP packet likewise.
pub fn protect_rtcp(ctx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.profile().rtcp_overhead(), 0);
    let n = ctx
        .protect_rtcp(&mut buf, plain.len())
        .expect("protect_rtcp");
    buf.truncate(n);
    buf
}

/// Unprotects a copy of `wire`.
pub fn unprotect_rtp(ctx: &mut SrtpContext, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = ctx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Unprotects a copy of an SRTCP packet.
pub fn unprotect_rtcp(ctx: &mut SrtpContext, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = ctx.unprotect_rtcp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}
