//! Receive statistics per RFC 3550 appendix A.1 (sequence tracking), A.3 (loss) and A.8
//! (interarrival jitter), plus plain send counters. No allocation.

use std::time::{Duration, Instant};

/// RFC 3550 A.1: a jump larger than this is a restart, not loss.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: packets this far behind are late duplicates, not a wrap.
const MAX_MISORDER: u16 = 100;

/// Receive side of one RTP stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceiveStats {
    started: bool,
    ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    /// `received` when the current sequence base was set; loss counts from there.
    base_received: u64,
    bytes: u64,
    /// Expected/received (since the base) at the last report, for the fraction lost (A.3).
    expected_prior: u64,
    received_prior: u64,
    /// A.8 transit of the previous packet and jitter in timestamp units (scaled by 16).
    transit: Option<i64>,
    jitter_q4: u64,
    clock_rate: u32,
    epoch: Option<Instant>,
    /// Middle 32 bits of the NTP time of the last SR from this source, and when it arrived
    /// (RFC 3550 sec. 6.4.1 LSR/DLSR).
    last_sr: Option<(u32, Instant)>,
}

impl ReceiveStats {
    pub(crate) fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            ..Self::default()
        }
    }

    pub(crate) fn on_packet(
        &mut self,
        ssrc: u32,
        seq: u16,
        ts: u32,
        payload_len: usize,
        arrival: Instant,
    ) {
        if !self.started || ssrc != self.ssrc {
            let clock_rate = self.clock_rate;
            let epoch = self.epoch;
            let (received, bytes) = (self.received, self.bytes);
            *self = Self::new(clock_rate);
            // Counters span sources; sequence state does not.
            self.received = received;
            self.bytes = bytes;
            self.started = true;
            self.ssrc = ssrc;
            self.base_seq = u32::from(seq);
            self.max_seq = seq;
            self.epoch = epoch.or(Some(arrival));
            self.base_received = received;
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta != 0 && delta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(1 << 16);
                }
                self.max_seq = seq;
            } else if delta != 0 && delta <= u16::MAX - MAX_MISORDER {
                // A big jump: the sender restarted its sequence; re-base (A.1 simplified:
                // without the two-packet probation, a single stray packet re-bases too).
                self.base_seq = u32::from(seq);
                self.max_seq = seq;
                self.cycles = 0;
                self.base_received = self.received;
                self.expected_prior = 0;
                self.received_prior = 0;
            }
        }
        self.received += 1;
        self.bytes += payload_len as u64;
        // A.8: transit = arrival (in timestamp units) - RTP timestamp; J += (|D| - J) / 16.
        if let Some(epoch) = self.epoch {
            let arrival_units = (arrival.saturating_duration_since(epoch).as_nanos()
                * u128::from(self.clock_rate)
                / 1_000_000_000) as i64;
            let transit = arrival_units.wrapping_sub(i64::from(ts));
            if let Some(prev) = self.transit {
                let d = (transit - prev).unsigned_abs();
                // Ignore absurd deltas (timestamp jumps of a new talk spurt source).
                if d < u64::from(self.clock_rate) * 10 {
                    let j = self.jitter_q4;
                    self.jitter_q4 = j + d - ((j + 8) >> 4);
                }
            }
            self.transit = Some(transit);
        }
    }

    /// Packets received so far (all sources).
    pub(crate) fn packets(&self) -> u64 {
        self.received
    }

    /// Payload bytes received so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    fn extended_max(&self) -> u64 {
        u64::from(self.cycles) + u64::from(self.max_seq)
    }

    fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        (self.extended_max() + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Cumulative number of packets lost (A.3); negative with duplicates.
    pub(crate) fn lost(&self) -> i64 {
        self.expected() as i64 - (self.received - self.base_received) as i64
    }

    /// Interarrival jitter in timestamp units (A.8).
    pub(crate) fn jitter_units(&self) -> u32 {
        (self.jitter_q4 >> 4) as u32
    }

    /// Interarrival jitter as a duration.
    pub(crate) fn jitter(&self) -> Duration {
        Duration::from_nanos(
            u64::from(self.jitter_units()) * 1_000_000_000 / u64::from(self.clock_rate),
        )
    }

    pub(crate) fn on_sender_report(&mut self, ntp_middle: u32, arrival: Instant) {
        self.last_sr = Some((ntp_middle, arrival));
    }

    /// One RFC 3550 sec. 6.4.1 report block (24 bytes) about this source, written into
    /// `out`; advances the fraction-lost interval. `None` before any packet arrived.
    pub(crate) fn write_report_block(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if !self.started {
            return None;
        }
        let block = out.get_mut(..24)?;
        let expected = self.expected();
        let received = self.received - self.base_received;
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        // 24-bit signed cumulative loss, clamped (sec. 6.4.1).
        let cumulative = self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32 as u32 & 0x00FF_FFFF;
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                let dlsr = (d.as_nanos() * 65_536 / 1_000_000_000).min(u128::from(u32::MAX)) as u32;
                (lsr, dlsr)
            }
            None => (0, 0),
        };
        block[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        block[4..8].copy_from_slice(&((u32::from(fraction) << 24) | cumulative).to_be_bytes());
        block[8..12].copy_from_slice(&((self.extended_max() & 0xFFFF_FFFF) as u32).to_be_bytes());
        block[12..16].copy_from_slice(&self.jitter_units().to_be_bytes());
        block[16..20].copy_from_slice(&lsr.to_be_bytes());
        block[20..24].copy_from_slice(&dlsr.to_be_bytes());
        Some(24)
    }

    /// The SSRC last received, if any.
    pub(crate) fn ssrc(&self) -> Option<u32> {
        self.started.then_some(self.ssrc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_wrap_are_counted() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        let mut seq = 65530u16;
        for i in 0..20u32 {
            if i != 3 && i != 9 {
                s.on_packet(
                    5,
                    seq,
                    i * 160,
                    160,
                    t0 + Duration::from_millis(u64::from(i) * 20),
                );
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(s.packets(), 18);
        assert_eq!(s.lost(), 2);
        assert_eq!(
            s.jitter_units(),
            0,
            "perfectly paced packets have no jitter"
        );
        let mut block = [0u8; 24];
        assert_eq!(s.write_report_block(t0, &mut block), Some(24));
        assert_eq!(u32::from_be_bytes([0, block[5], block[6], block[7]]), 2);
        // fraction = 2/20 * 256 = 25
        assert_eq!(block[4], 25);
        assert_eq!(
            u32::from_be_bytes([block[8], block[9], block[10], block[11]]),
            (1 << 16) + 13
        );
    }

    #[test]
    fn jitter_grows_with_uneven_arrival() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        for i in 0..50u32 {
            let wobble = if i % 2 == 0 { 0 } else { 5 };
            s.on_packet(
                1,
                i as u16,
                i * 160,
                160,
                t0 + Duration::from_millis(u64::from(i) * 20 + wobble),
            );
        }
        assert!(s.jitter_units() > 20, "jitter {}", s.jitter_units());
        assert!(s.jitter() > Duration::from_millis(2));
    }
}
