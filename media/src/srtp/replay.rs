//! Per-SSRC state of an SRTP context: the packet index estimate of RFC 3711 section 3.3.1
//! (Appendix A), the replay list of section 3.3.2, and the fixed-capacity SSRC table that
//! holds them without allocating.

use super::SrtpError;

/// Largest SRTP packet index: 32-bit ROC and 16-bit sequence number (RFC 3711 section 3.3.1).
/// After 2^48 packets the master key must be replaced (section 9.2).
pub(crate) const MAX_SRTP_INDEX: u64 = (1 << 48) - 1;

/// Largest SRTCP index: 31 bits (RFC 3711 section 3.4); section 9.2 asks for a new master key
/// before it would wrap.
pub(crate) const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// SSRCs one context tracks at once, per table (SRTP and SRTCP).
pub const MAX_SSRCS: usize = 16;

/// The index of a packet with sequence number `seq`, given the highest index seen so far
/// (ROC || s_l), per RFC 3711 section 3.3.1 and the pseudo-code of Appendix A. `None` when
/// the guess would be ROC - 1 with ROC already 0: a packet from before the stream began.
pub(crate) fn estimate_index(highest: u64, seq: u16) -> Option<u64> {
    let roc = highest >> 16;
    let s_l = (highest & 0xffff) as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if seq < s_l - 0x8000 {
        roc + 1
    } else {
        roc
    };
    Some((v << 16) | u64::from(seq))
}

/// The replay list of RFC 3711 section 3.3.2 as a sliding bitmap of `WORDS * 64` indices
/// ending at the highest accepted index, stored as a ring (bit `index % SIZE`).
#[derive(Clone, Copy)]
pub(crate) struct ReplayWindow<const WORDS: usize> {
    highest: u64,
    bits: [u64; WORDS],
}

impl<const WORDS: usize> ReplayWindow<WORDS> {
    /// Indices the window covers behind (and including) the highest one.
    pub(crate) const SIZE: u64 = WORDS as u64 * 64;

    /// A window whose first accepted index is `first`.
    pub(crate) fn new(first: u64) -> Self {
        let mut window = Self {
            highest: first,
            bits: [0; WORDS],
        };
        window.set(first);
        window
    }

    /// The highest index accepted so far.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `index` may still be accepted: ahead of the window, or inside it and unseen.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        if self.highest - index >= Self::SIZE {
            return Err(SrtpError::TooOld);
        }
        if self.is_set(index) {
            Err(SrtpError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `index` (already checked, and authenticated), sliding the window forward when
    /// it is the new highest.
    #[inline]
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.highest {
            if index - self.highest >= Self::SIZE {
                self.bits = [0; WORDS];
            } else {
                // Forget the indices the window slides over; whole words at a time when
                // the jump allows it.
                let mut i = self.highest + 1;
                while i <= index {
                    if i % 64 == 0 && index - i >= 63 {
                        if let Some(word) = self.bits.get_mut(Self::word_of(i)) {
                            *word = 0;
                        }
                        i += 64;
                    } else {
                        self.clear(i);
                        i += 1;
                    }
                }
            }
            self.highest = index;
        }
        self.set(index);
    }

    fn word_of(index: u64) -> usize {
        // Below WORDS by construction: (index % SIZE) / 64 < WORDS.
        ((index % Self::SIZE) / 64) as usize
    }

    fn mask_of(index: u64) -> u64 {
        1 << (index % 64)
    }

    fn is_set(&self, index: u64) -> bool {
        self.bits
            .get(Self::word_of(index))
            .is_some_and(|w| w & Self::mask_of(index) != 0)
    }

    fn set(&mut self, index: u64) {
        if let Some(word) = self.bits.get_mut(Self::word_of(index)) {
            *word |= Self::mask_of(index);
        }
    }

    fn clear(&mut self, index: u64) {
        if let Some(word) = self.bits.get_mut(Self::word_of(index)) {
            *word &= !Self::mask_of(index);
        }
    }
}

/// One tracked SSRC.
#[derive(Clone, Copy)]
pub(crate) struct Slot<S> {
    ssrc: u32,
    /// When the entry was last used, for eviction order.
    pub(crate) last_used: u64,
    /// The per-SSRC state.
    pub(crate) state: S,
}

/// At most [`MAX_SSRCS`] per-SSRC states, inline, found by a bounded linear scan.
pub(crate) struct SsrcTable<S: Copy> {
    slots: [Option<Slot<S>>; MAX_SSRCS],
}

impl<S: Copy> SsrcTable<S> {
    pub(crate) fn new() -> Self {
        Self {
            slots: [None; MAX_SSRCS],
        }
    }

    /// The entry of `ssrc`, if tracked.
    #[inline]
    pub(crate) fn find(&mut self, ssrc: u32) -> Option<&mut Slot<S>> {
        self.slots
            .iter_mut()
            .flatten()
            .find(|slot| slot.ssrc == ssrc)
    }

    /// Starts tracking `ssrc` (not tracked yet) with `state`. When the table is full, `evict`
    /// replaces the entry used longest ago; otherwise the table refuses with
    /// [`SrtpError::TooManySsrcs`].
    pub(crate) fn insert(
        &mut self,
        ssrc: u32,
        state: S,
        tick: u64,
        evict: bool,
    ) -> Result<(), SrtpError> {
        let slot = Slot {
            ssrc,
            last_used: tick,
            state,
        };
        if let Some(free) = self.slots.iter_mut().find(|s| s.is_none()) {
            *free = Some(slot);
            return Ok(());
        }
        if !evict {
            return Err(SrtpError::TooManySsrcs);
        }
        let stalest = self
            .slots
            .iter_mut()
            .min_by_key(|s| s.as_ref().map_or(0, |s| s.last_used))
            .ok_or(SrtpError::TooManySsrcs)?;
        *stalest = Some(slot);
        Ok(())
    }

    /// SSRCs tracked now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_estimate_follows_rfc3711_appendix_a() {
        // Same ROC, forward and slightly backward.
        assert_eq!(estimate_index(100, 101), Some(101));
        assert_eq!(estimate_index(100, 90), Some(90));
        // Wrap forward: s_l high, seq small -> ROC + 1.
        assert_eq!(estimate_index(65_535, 0), Some(1 << 16));
        assert_eq!(estimate_index((5 << 16) | 65_000, 3), Some((6 << 16) | 3));
        // Late packet from before the wrap: s_l small, seq high -> ROC - 1.
        assert_eq!(
            estimate_index((6 << 16) | 3, 65_000),
            Some((5 << 16) | 65_000)
        );
        // ... which does not exist at ROC 0.
        assert_eq!(estimate_index(3, 65_000), None);
        // Boundaries: exactly 32768 apart stays in the same ROC.
        assert_eq!(estimate_index(0, 32_768), Some(32_768));
        assert_eq!(estimate_index(32_768, 0), Some(0));
        assert_eq!(estimate_index(32_769, 0), Some(1 << 16));
    }

    #[test]
    fn window_accepts_new_and_in_window_rejects_replays_and_old() {
        let mut w = ReplayWindow::<2>::new(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(1001), Ok(()));
        w.accept(1001);
        assert_eq!(w.check(999), Ok(()));
        w.accept(999);
        assert_eq!(w.check(999), Err(SrtpError::Replayed));
        // 128-entry window: highest - 127 is the oldest still covered.
        assert_eq!(w.check(1001 - 127), Ok(()));
        assert_eq!(w.check(1001 - 128), Err(SrtpError::TooOld));
        // A jump clears the slots slid over.
        w.accept(1001 + 200);
        assert_eq!(w.check(1001 + 200 - 127), Ok(()));
        assert_eq!(w.check(1001 + 200), Err(SrtpError::Replayed));
        // Jumps of whole words.
        let mut w = ReplayWindow::<16>::new(5);
        for i in (6..3000).step_by(3) {
            assert_eq!(w.check(i), Ok(()));
            w.accept(i);
        }
        let mut w2 = ReplayWindow::<16>::new(0);
        for jump in [1u64, 63, 64, 65, 130, 700, 1023, 1024, 5000] {
            let next = w2.highest() + jump;
            w2.accept(next);
            for back in 1..ReplayWindow::<16>::SIZE.min(jump) {
                assert_eq!(w2.check(next - back), Ok(()), "jump {jump} back {back}");
            }
            assert_eq!(w2.check(next), Err(SrtpError::Replayed));
        }
    }

    #[test]
    fn table_is_bounded_and_evicts_the_stalest_when_asked() {
        let mut t = SsrcTable::<u8>::new();
        for ssrc in 0..MAX_SSRCS as u32 {
            t.insert(ssrc, 0, u64::from(ssrc) + 10, false)
                .expect("room");
        }
        assert_eq!(t.len(), MAX_SSRCS);
        assert_eq!(t.insert(99, 0, 100, false), Err(SrtpError::TooManySsrcs));
        t.find(0).expect("tracked").last_used = 200;
        t.insert(99, 1, 300, true).expect("evicts");
        assert_eq!(t.len(), MAX_SSRCS);
        assert!(t.find(0).is_some(), "recently used entry kept");
        assert!(t.find(1).is_none(), "stalest entry evicted");
        assert_eq!(t.find(99).map(|s| s.state), Some(1));
    }
}
