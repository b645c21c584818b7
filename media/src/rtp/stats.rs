//! Reception and sending statistics for RTCP reports (RFC 3550 section 6.4 and appendix A).

use std::time::{Duration, Instant};

use super::rtcp::{ReportBlock, SenderInfo};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;
/// RFC 3550 appendix A.1 constants.
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u8 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// Maps monotonic [`Instant`]s to NTP wall-clock timestamps for sender reports
/// (RFC 3550 section 4). The reactor reads the system clock once and hands the pair in, so
/// this code never reads a clock itself.
#[derive(Debug, Clone, Copy)]
pub struct NtpClock {
    anchor: Instant,
    unix_at_anchor: Duration,
}

impl NtpClock {
    /// `unix_at_anchor` is the wall-clock time since the Unix epoch at `anchor`.
    pub fn new(anchor: Instant, unix_at_anchor: Duration) -> Self {
        Self {
            anchor,
            unix_at_anchor,
        }
    }

    /// The 64-bit NTP timestamp (32.32 fixed point) for `now`.
    pub fn ntp(&self, now: Instant) -> u64 {
        let since = self.unix_at_anchor + now.saturating_duration_since(self.anchor);
        let secs = since.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS);
        let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }
}

/// The middle 32 bits of an NTP timestamp, as used in LSR (RFC 3550 section 6.4.1).
pub fn ntp_middle_32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Converts a duration to RTP timestamp units at `clock_rate`.
fn to_rtp_units(d: Duration, clock_rate: u32) -> u64 {
    (d.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u64
}

/// Statistics of one received RTP source: sequence tracking (RFC 3550 appendix A.1), loss
/// (A.3), interarrival jitter (A.8) and what is needed for LSR/DLSR (section 6.4.1).
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    ssrc: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u8,
    received: u64,
    bytes: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Jitter estimate scaled by 16, as in appendix A.8.
    jitter_q4: u32,
    /// Arrival minus RTP timestamp, modulo 2^32 (both clocks wrap).
    transit: Option<u32>,
    clock_rate: u32,
    arrival_anchor: Instant,
    last_sr_middle: u32,
    last_sr_at: Option<Instant>,
}

impl ReceptionStats {
    /// Starts tracking a source with its first packet (appendix A.1 `init_seq`, with the
    /// probation of `MIN_SEQUENTIAL` packets before the source counts as valid).
    pub fn new(now: Instant, ssrc: u32, seq: u16) -> Self {
        let mut s = Self {
            ssrc,
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base_seq: u32::from(seq),
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            bytes: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            transit: None,
            clock_rate: 0,
            arrival_anchor: now,
            last_sr_middle: 0,
            last_sr_at: None,
        };
        s.init_seq(seq);
        s.max_seq = seq.wrapping_sub(1);
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// The source this tracks.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Accounts one packet. `rtp_timestamp` and `clock_rate` feed the jitter estimate,
    /// `payload_len` the byte count. Returns whether the packet counted as valid
    /// (appendix A.1 `update_seq`); invalid packets (probation, big jumps) still update nothing
    /// else.
    pub fn record(
        &mut self,
        now: Instant,
        seq: u16,
        rtp_timestamp: u32,
        clock_rate: u32,
        payload_len: usize,
    ) -> bool {
        if !self.update_seq(seq) {
            return false;
        }
        self.bytes += payload_len as u64;
        self.update_jitter(now, rtp_timestamp, clock_rate);
        true
    }

    /// Appendix A.1, transcribed: probation, dropouts, misordering and sequence wrap.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
        } else if udelta <= (RTP_SEQ_MOD - u32::from(MAX_MISORDER)) as u16 {
            // A very large jump: accept it only if the next packet confirms it (a restart).
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        } else {
            // Duplicate or reordered packet: counted, not a new maximum.
        }
        self.received += 1;
        true
    }

    /// Appendix A.8: J += (|D| - J) / 16 with D the change in transit time.
    fn update_jitter(&mut self, now: Instant, rtp_timestamp: u32, clock_rate: u32) {
        if clock_rate == 0 {
            return;
        }
        if clock_rate != self.clock_rate {
            // A payload type with another clock: transit times are not comparable.
            self.clock_rate = clock_rate;
            self.transit = None;
        }
        let arrival = to_rtp_units(
            now.saturating_duration_since(self.arrival_anchor),
            clock_rate,
        ) as u32;
        let transit = arrival.wrapping_sub(rtp_timestamp);
        if let Some(prev) = self.transit {
            // D in modular arithmetic, so the wrap of either clock does not look like a jump.
            let d = u64::from(
                (transit.wrapping_sub(prev) as i32)
                    .unsigned_abs()
                    .min(u32::MAX >> 4),
            );
            let j = u64::from(self.jitter_q4);
            self.jitter_q4 = (j + d)
                .saturating_sub((j + 8) >> 4)
                .min(u64::from(u32::MAX)) as u32;
        }
        self.transit = Some(transit);
    }

    /// Remembers a sender report from this source for LSR/DLSR (section 6.4.1).
    pub fn record_sender_report(&mut self, now: Instant, ntp_timestamp: u64) {
        self.last_sr_middle = ntp_middle_32(ntp_timestamp);
        self.last_sr_at = Some(now);
    }

    /// Valid packets received.
    pub fn packets(&self) -> u64 {
        self.received
    }

    /// Payload bytes of valid packets.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Extended highest sequence number (cycles + max).
    pub fn extended_highest_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Cumulative packets lost: expected minus received (appendix A.3); negative with
    /// duplicates.
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    fn expected(&self) -> u64 {
        if self.received == 0 {
            return 0;
        }
        u64::from(self.extended_highest_seq()).saturating_sub(u64::from(self.base_seq)) + 1
    }

    /// Interarrival jitter in timestamp units (appendix A.8).
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// The RTP clock rate of the last packet, 0 before any.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Builds the report block for this source and starts a new reporting interval
    /// (appendix A.3 for the loss fields, section 6.4.1 for LSR/DLSR).
    pub fn report_block(&mut self, now: Instant) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let delay_since_last_sr = self.last_sr_at.map_or(0, |at| {
            let d = now.saturating_duration_since(at);
            u32::try_from((d.as_nanos() << 16) / 1_000_000_000).unwrap_or(u32::MAX)
        });
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_seq: self.extended_highest_seq(),
            jitter: self.jitter(),
            last_sr: self.last_sr_middle,
            delay_since_last_sr,
        }
    }
}

/// What we sent on one stream, for the sender info of our SR (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Default)]
pub struct SendStats {
    packets: u64,
    payload_bytes: u64,
    last_rtp_timestamp: u32,
    last_sent_at: Option<Instant>,
    clock_rate: u32,
}

impl SendStats {
    /// Accounts one sent packet.
    pub fn record(
        &mut self,
        now: Instant,
        rtp_timestamp: u32,
        clock_rate: u32,
        payload_len: usize,
    ) {
        self.packets += 1;
        self.payload_bytes += payload_len as u64;
        self.last_rtp_timestamp = rtp_timestamp;
        self.last_sent_at = Some(now);
        self.clock_rate = clock_rate;
    }

    /// Packets sent.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Payload bytes sent.
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Whether we count as a sender for a report: RFC 3550 section 6.4 sends an SR only if
    /// RTP went out since the report before the previous one (`since`; `None` before two
    /// reports were sent, when having sent anything at all counts).
    pub fn is_sender(&self, since: Option<Instant>) -> bool {
        match (self.last_sent_at, since) {
            (Some(sent), Some(since)) => sent > since,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The sender info for an SR sent at `now`: the RTP timestamp is extrapolated from the
    /// last packet so it names the same instant as the NTP timestamp (section 6.4.1). The
    /// counts wrap at 32 bits as the field does.
    pub fn sender_info(&self, now: Instant, clock: &NtpClock) -> SenderInfo {
        let elapsed = self
            .last_sent_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        SenderInfo {
            ntp_timestamp: clock.ntp(now),
            rtp_timestamp: self
                .last_rtp_timestamp
                .wrapping_add(to_rtp_units(elapsed, self.clock_rate) as u32),
            packet_count: self.packets as u32,
            octet_count: self.payload_bytes as u32,
        }
    }
}
