//! Sequence number and timestamp continuity across a change of source (RFC 3550 sec. 5.1).
//!
//! Each direction of each stream has one output SSRC the bridge owns. When the input SSRC
//! changes (the browser replaced its track, the SIP side moved from early media to the final
//! answer, a re-INVITE), the receiver must not see a jump: the output sequence number goes on
//! by one and the timestamp by the wall-clock time elapsed, so jitter buffers keep going.

use std::time::Instant;

/// Rewrites (SSRC, sequence number, timestamp) of one stream direction. No allocation.
#[derive(Debug, Clone)]
pub(crate) struct StreamRewriter {
    out_ssrc: u32,
    clock_rate: u32,
    /// Input SSRC the offsets were computed for.
    source: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    /// Highest output sequence number and its timestamp and arrival, to re-base from.
    last_seq: u16,
    last_ts: u32,
    last_arrival: Option<Instant>,
    /// Initial offsets for the first source: random per RFC 3550 sec. 5.1 (known-plaintext).
    initial_seq_offset: u16,
    initial_ts_offset: u32,
}

impl StreamRewriter {
    pub(crate) fn new(out_ssrc: u32, clock_rate: u32, random: u64) -> Self {
        Self {
            out_ssrc,
            clock_rate: clock_rate.max(1),
            source: None,
            seq_offset: 0,
            ts_offset: 0,
            last_seq: 0,
            last_ts: 0,
            last_arrival: None,
            initial_seq_offset: random as u16,
            initial_ts_offset: (random >> 32) as u32,
        }
    }

    /// The SSRC every rewritten packet carries.
    pub(crate) fn out_ssrc(&self) -> u32 {
        self.out_ssrc
    }

    /// Map one packet; returns (sequence number, timestamp) to send.
    pub(crate) fn rewrite(&mut self, ssrc: u32, seq: u16, ts: u32, arrival: Instant) -> (u16, u32) {
        if self.source != Some(ssrc) {
            match self.last_arrival {
                None => {
                    self.seq_offset = self.initial_seq_offset;
                    self.ts_offset = self.initial_ts_offset;
                }
                Some(last) => {
                    // Continue right after the last packet sent, advanced by elapsed time (at
                    // least one tick so two packets never share a timestamp by accident).
                    let elapsed = arrival.saturating_duration_since(last);
                    let ticks = (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000)
                        .max(1) as u32;
                    let next_seq = self.last_seq.wrapping_add(1);
                    let next_ts = self.last_ts.wrapping_add(ticks);
                    self.seq_offset = next_seq.wrapping_sub(seq);
                    self.ts_offset = next_ts.wrapping_sub(ts);
                }
            }
            self.source = Some(ssrc);
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        // Track the newest packet (RFC 1982 serial arithmetic); a reordered older packet must
        // not move the re-base point backwards.
        if self.last_arrival.is_none() || (out_seq.wrapping_sub(self.last_seq) as i16) > 0 {
            self.last_seq = out_seq;
            self.last_ts = out_ts;
            self.last_arrival = Some(arrival);
        }
        (out_seq, out_ts)
    }

    /// The RTP timestamp that corresponds to `now`, for an RTCP SR (RFC 3550 sec. 6.4.1);
    /// `None` before anything was sent.
    pub(crate) fn timestamp_at(&self, now: Instant) -> Option<u32> {
        let last = self.last_arrival?;
        let elapsed = now.saturating_duration_since(last);
        let ticks = (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        Some(self.last_ts.wrapping_add(ticks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn source_change_keeps_sequence_and_timestamp_continuous() {
        let t0 = Instant::now();
        let mut r = StreamRewriter::new(7, 8000, 0x0000_1000_0000_0010);
        let (s1, ts1) = r.rewrite(100, 5, 800, t0);
        let (s2, ts2) = r.rewrite(100, 6, 960, t0 + Duration::from_millis(20));
        assert_eq!(s2, s1.wrapping_add(1));
        assert_eq!(ts2, ts1.wrapping_add(160));
        // New source with unrelated numbers 40 ms later.
        let (s3, ts3) = r.rewrite(200, 60000, 123_456, t0 + Duration::from_millis(60));
        assert_eq!(s3, s2.wrapping_add(1));
        assert_eq!(ts3, ts2.wrapping_add(320));
        let (s4, ts4) = r.rewrite(200, 60001, 123_616, t0 + Duration::from_millis(80));
        assert_eq!(s4, s3.wrapping_add(1));
        assert_eq!(ts4, ts3.wrapping_add(160));
        assert_eq!(r.out_ssrc(), 7);
    }

    #[test]
    fn reordered_packet_does_not_move_rebase_point() {
        let t0 = Instant::now();
        let mut r = StreamRewriter::new(1, 8000, 0);
        r.rewrite(9, 10, 0, t0);
        r.rewrite(9, 12, 320, t0 + Duration::from_millis(40));
        let (late, _) = r.rewrite(9, 11, 160, t0 + Duration::from_millis(45));
        assert_eq!(late, 11);
        let (next, ts) = r.rewrite(10, 500, 9, t0 + Duration::from_millis(60));
        assert_eq!(next, 13);
        assert_eq!(ts, 320 + 160);
    }
}
