//! RTCP on the SIP leg, written and read straight from byte buffers (no allocation):
//! SR/RR + SDES CNAME compounds (RFC 3550 sec. 6.4, 6.5, 6.1), PLI (RFC 4585 sec. 6.3.1),
//! FIR (RFC 5104 sec. 4.3.1). `rtc` does not surface the browser's SR/RR
//! (media-rtc.md pitfall 3), so the bridge terminates RTCP per leg instead of relaying it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::stats::ReceiveStats;

const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_SDES: u8 = 202;
const PT_PSFB: u8 = 206;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;
/// Seconds between 1900-01-01 (NTP era 0) and 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Wall clock for NTP timestamps without reading the clock: a (monotonic, wall) pair taken
/// by the reactor when the bridge was created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NtpClock {
    base_instant: Instant,
    base_wall: SystemTime,
}

impl NtpClock {
    pub(crate) fn new(base_instant: Instant, base_wall: SystemTime) -> Self {
        Self {
            base_instant,
            base_wall,
        }
    }

    /// 64-bit NTP timestamp (RFC 5905 sec. 6) for `now`.
    pub(crate) fn ntp(&self, now: Instant) -> u64 {
        let wall = self.base_wall + now.saturating_duration_since(self.base_instant);
        let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since_unix.as_secs() + NTP_UNIX_OFFSET;
        let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }
}

/// What we sent on one SIP stream, for the SR sender info (RFC 3550 sec. 6.4.1).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SenderCounters {
    pub(crate) packets: u32,
    pub(crate) octets: u32,
}

fn write_header(out: &mut [u8], count: u8, pt: u8, len_bytes: usize) {
    out[0] = 0x80 | (count & 0x1F);
    out[1] = pt;
    let words = (len_bytes / 4).saturating_sub(1) as u16;
    out[2..4].copy_from_slice(&words.to_be_bytes());
}

/// Write an SR (when `sent` is `Some`) or RR, then SDES CNAME, into `out`. Returns the
/// compound length, or `None` if `out` is too small (never with a 1500-byte slot).
pub(crate) fn write_report(
    out: &mut [u8],
    now: Instant,
    clock: &NtpClock,
    own_ssrc: u32,
    sent: Option<(SenderCounters, u32)>,
    receive: &mut ReceiveStats,
    cname: &str,
) -> Option<usize> {
    if out.len() < 28 + 24 + 12 + cname.len() + 4 {
        return None;
    }
    let mut pos;
    let count;
    match sent {
        Some((counters, rtp_ts)) => {
            out[4..8].copy_from_slice(&own_ssrc.to_be_bytes());
            out[8..16].copy_from_slice(&clock.ntp(now).to_be_bytes());
            out[16..20].copy_from_slice(&rtp_ts.to_be_bytes());
            out[20..24].copy_from_slice(&counters.packets.to_be_bytes());
            out[24..28].copy_from_slice(&counters.octets.to_be_bytes());
            pos = 28;
            count = receive
                .write_report_block(now, &mut out[pos..])
                .map_or(0, |n| {
                    pos += n;
                    1
                });
            write_header(out, count, PT_SR, pos);
        }
        None => {
            out[4..8].copy_from_slice(&own_ssrc.to_be_bytes());
            pos = 8;
            count = receive
                .write_report_block(now, &mut out[pos..])
                .map_or(0, |n| {
                    pos += n;
                    1
                });
            write_header(out, count, PT_RR, pos);
        }
    }
    // SDES with one chunk: SSRC, CNAME item, end item, padding to 32 bits (sec. 6.5).
    let start = pos;
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    out[pos + 4..pos + 8].copy_from_slice(&own_ssrc.to_be_bytes());
    out[pos + 8] = 1;
    out[pos + 9] = cname.len() as u8;
    out[pos + 10..pos + 10 + cname.len()].copy_from_slice(cname);
    let mut end = pos + 10 + cname.len();
    // At least one zero octet ends the item list, then pad to a multiple of 4.
    out[end] = 0;
    end += 1;
    while (end - start) % 4 != 0 {
        out[end] = 0;
        end += 1;
    }
    write_header(&mut out[start..], 1, PT_SDES, end - start);
    Some(end)
}

/// Write a PLI from `sender_ssrc` about `media_ssrc` (RFC 4585 sec. 6.3.1): 12 bytes.
pub(crate) fn write_pli(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32) -> Option<usize> {
    let out = out.get_mut(..12)?;
    write_header(out, FMT_PLI, PT_PSFB, 12);
    out[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    out[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
    Some(12)
}

/// What the bridge cares about in an RTCP compound from the SIP peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RtcpSummary {
    /// (sender SSRC, NTP middle 32 bits) of an SR, for LSR (RFC 3550 sec. 6.4.1).
    pub(crate) sender_report: Option<(u32, u32)>,
    /// A PLI or FIR asked for a key frame.
    pub(crate) keyframe_request: bool,
}

/// Walk a compound RTCP packet (RFC 3550 sec. 6.1). Malformed input ends the walk; it
/// never panics and never allocates.
pub(crate) fn parse_compound(mut bytes: &[u8]) -> RtcpSummary {
    let mut summary = RtcpSummary::default();
    while bytes.len() >= 4 {
        let first = bytes[0];
        if first >> 6 != 2 {
            break;
        }
        let fmt = first & 0x1F;
        let pt = bytes[1];
        let len = (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])) + 1) * 4;
        let Some(packet) = bytes.get(..len) else {
            break;
        };
        match pt {
            PT_SR if packet.len() >= 16 => {
                let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
                let middle = u32::from_be_bytes([packet[10], packet[11], packet[12], packet[13]]);
                summary.sender_report = Some((ssrc, middle));
            }
            PT_PSFB if fmt == FMT_PLI || fmt == FMT_FIR => summary.keyframe_request = true,
            _ => {}
        }
        bytes = &bytes[len..];
    }
    summary
}

/// RFC 5761 sec. 4: with rtcp-mux, a datagram whose second byte (marker bit masked off) is
/// 64..=95 is RTCP (PT 192..=223), anything else on the RTP port is RTP.
pub(crate) fn looks_like_rtcp(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && (192..=223).contains(&bytes[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_through_the_parser() {
        let t0 = Instant::now();
        let clock = NtpClock::new(t0, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let mut rx = ReceiveStats::new(8000);
        rx.on_packet(42, 1, 0, 160, t0);
        let mut buf = [0u8; 256];
        let counters = SenderCounters {
            packets: 3,
            octets: 480,
        };
        let n = write_report(
            &mut buf,
            t0,
            &clock,
            7,
            Some((counters, 1234)),
            &mut rx,
            "gw",
        )
        .unwrap();
        assert_eq!(n % 4, 0);
        assert_eq!(buf[1], PT_SR);
        assert_eq!(buf[0] & 0x1F, 1, "one report block");
        let summary = parse_compound(&buf[..n]);
        let (ssrc, middle) = summary.sender_report.unwrap();
        assert_eq!(ssrc, 7);
        assert_eq!(middle, ((clock.ntp(t0) >> 16) & 0xFFFF_FFFF) as u32);
        assert!(!summary.keyframe_request);
        let n = write_pli(&mut buf, 1, 2).unwrap();
        assert!(parse_compound(&buf[..n]).keyframe_request);
        assert!(looks_like_rtcp(&buf[..n]));
    }

    #[test]
    fn garbage_does_not_panic() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 0x80) as u8).collect();
            let _ = parse_compound(&junk);
        }
        let _ = parse_compound(&[0x80, 200, 0xFF, 0xFF]);
    }
}
