//! In-place SRTP and SRTCP (RFC 3711, RFC 7714) that allocates nothing per packet.
//!
//! An [`SrtpContext`] holds one direction of one master key: the session keys derived from
//! it (RFC 3711 section 4.3), and per SSRC the rollover counter, the replay list and the
//! SRTCP index. [`SrtpSession`] pairs an outbound and an inbound context, keyed from DTLS
//! (RFC 5764 section 4.2) or from two SDES keys (RFC 4568).
//!
//! Protection appends the tag (and for SRTCP the E flag and index) behind the packet in the
//! caller's buffer; unprotection authenticates, checks for replays and decrypts in place and
//! returns the shorter plain length. All crypto state is keyed once in [`SrtpContext::new`],
//! and per-SSRC state lives in fixed tables of [`MAX_SSRCS`] entries inside the context, so
//! nothing is allocated after construction (`tests/srtp_no_alloc.rs`).
//!
//! SSRC table policy when all [`MAX_SSRCS`] entries are taken:
//! - protecting for a new SSRC fails with [`SrtpError::TooManySsrcs`]: evicting a sending
//!   stream would reset its ROC and SRTCP index and so reuse keystream (for GCM, nonces);
//! - unprotecting for a new SSRC evicts the entry used longest ago. Entries are only made for
//!   authenticated packets, so only the keyed peer can cause that; an evicted stream that
//!   comes back restarts at ROC 0 with an empty replay list.
//!
//! Malformed input is an error, never a panic: headers (CSRC count, extension length,
//! padding) are checked against the packet before anything is read through them.

mod cipher;
pub mod kdf;
mod replay;

use cipher::{tags_equal, CmTransform, GcmTransform, Transform, CM_AUTH_KEY_LEN, GCM_TAG_LEN};
use kdf::Prf;
use replay::{estimate_index, ReplayWindow, SsrcTable, MAX_SRTCP_INDEX, MAX_SRTP_INDEX};

pub use replay::MAX_SSRCS;

/// An SRTP protection profile (RFC 5764 section 4.1.2, RFC 7714 section 14.2), which is also
/// an SDES crypto suite (RFC 4568 section 6.2, RFC 7714 section 14.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpProfile {
    /// AES-128 counter mode with an 80-bit HMAC-SHA1 tag.
    Aes128CmHmacSha1_80,
    /// AES-128 counter mode with a 32-bit HMAC-SHA1 tag on SRTP (SRTCP keeps 80 bits,
    /// RFC 5764 section 4.1.2).
    Aes128CmHmacSha1_32,
    /// AEAD AES-128-GCM with a 16-octet tag (RFC 7714).
    AeadAes128Gcm,
    /// AEAD AES-256-GCM with a 16-octet tag (RFC 7714).
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Every profile, in our order of preference for negotiation.
    pub const ALL: [SrtpProfile; 4] = [
        Self::AeadAes128Gcm,
        Self::AeadAes256Gcm,
        Self::Aes128CmHmacSha1_80,
        Self::Aes128CmHmacSha1_32,
    ];

    /// Master key length in bytes.
    pub fn master_key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes: 14 for AES-CM (RFC 3711 section 8.2), 12 for GCM
    /// (RFC 7714 section 12).
    pub fn master_salt_len(self) -> usize {
        match self {
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
            _ => 14,
        }
    }

    /// Bytes SRTP adds to an RTP packet: the authentication tag (no MKI).
    pub fn rtp_overhead(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 10,
            Self::Aes128CmHmacSha1_32 => 4,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => GCM_TAG_LEN,
        }
    }

    /// Bytes SRTCP adds to an RTCP packet: the tag plus the 4-byte E flag and SRTCP index.
    pub fn rtcp_overhead(self) -> usize {
        self.rtcp_tag_len() + 4
    }

    fn rtcp_tag_len(self) -> usize {
        match self {
            // RFC 5764 section 4.1.2: SRTCP uses an 80-bit tag with both CM profiles.
            Self::Aes128CmHmacSha1_80 | Self::Aes128CmHmacSha1_32 => 10,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => GCM_TAG_LEN,
        }
    }

    fn is_aead(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }

    /// The profile with DTLS-SRTP id `id` (RFC 5764 section 4.1.2, RFC 7714 section 14.2).
    pub fn from_dtls_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.dtls_id() == id)
    }

    /// The DTLS-SRTP protection profile id.
    pub fn dtls_id(self) -> u16 {
        match self {
            Self::Aes128CmHmacSha1_80 => 0x0001,
            Self::Aes128CmHmacSha1_32 => 0x0002,
            Self::AeadAes128Gcm => 0x0007,
            Self::AeadAes256Gcm => 0x0008,
        }
    }

    /// Name as in the IANA registry of DTLS-SRTP protection profiles, e.g.
    /// "SRTP_AEAD_AES_128_GCM".
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
            Self::Aes128CmHmacSha1_32 => "SRTP_AES128_CM_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }
}

/// Why a key could not be used or a packet could not be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrtpError {
    /// A master key (or keying material) of the wrong length for the profile.
    BadKeyLength,
    /// A master salt of the wrong length for the profile.
    BadSaltLength,
    /// The packet is shorter than its headers, declared CSRCs or extension, or the tag.
    TooShort,
    /// Not RTP/RTCP version 2 (RFC 3550 section 5.1).
    BadVersion,
    /// The RTP padding count is 0 or larger than the payload (RFC 3550 section 5.1).
    BadPadding,
    /// The buffer has no room behind the packet for the tag (see
    /// [`SrtpProfile::rtp_overhead`] and [`SrtpProfile::rtcp_overhead`]), or `len` exceeds it.
    BufferTooSmall,
    /// The authentication tag does not match (RFC 3711 section 3.3 step 5).
    AuthFailed,
    /// The packet index was already received (RFC 3711 section 3.3.2), or, when
    /// protecting, already used: sending it again would reuse keystream.
    Replayed,
    /// The packet index is behind the replay window, so it cannot be told from a replay.
    TooOld,
    /// All [`MAX_SSRCS`] entries are used by other sending SSRCs.
    TooManySsrcs,
    /// The master key has protected 2^48 SRTP or 2^31 SRTCP packets for this SSRC and must
    /// be replaced (RFC 3711 section 9.2).
    KeyExhausted,
    /// The crypto provider failed or lacks an algorithm.
    Crypto,
}

impl std::fmt::Display for SrtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::BadKeyLength => "SRTP master key of the wrong length",
            Self::BadSaltLength => "SRTP master salt of the wrong length",
            Self::TooShort => "packet too short",
            Self::BadVersion => "not RTP/RTCP version 2",
            Self::BadPadding => "bad RTP padding",
            Self::BufferTooSmall => "no room for the SRTP trailer",
            Self::AuthFailed => "SRTP authentication failed",
            Self::Replayed => "SRTP packet index replayed",
            Self::TooOld => "SRTP packet index behind the replay window",
            Self::TooManySsrcs => "too many SSRCs in one SRTP context",
            Self::KeyExhausted => "SRTP master key exhausted",
            Self::Crypto => "crypto provider failure",
        })
    }
}

impl std::error::Error for SrtpError {}

/// Replay window of inbound SRTP in packets (RFC 3711 section 3.3.2 asks for at least 64;
/// 1024 like the previous `rtc::srtp` wrapper, enough for reordered high-rate video). The
/// same window on outbound streams refuses to protect an index twice.
const SRTP_WINDOW_WORDS: usize = 16;
/// Replay window of inbound SRTCP in packets: 128.
const SRTCP_WINDOW_WORDS: usize = 2;

type SrtpWindow = ReplayWindow<SRTP_WINDOW_WORDS>;
type SrtcpWindow = ReplayWindow<SRTCP_WINDOW_WORDS>;

/// Per-SSRC SRTCP state: the next index to send, or the replay list of received ones.
#[derive(Clone, Copy)]
struct SrtcpStream {
    next_index: u32,
    window: SrtcpWindow,
}

/// The E flag of the SRTCP trailer word (RFC 3711 section 3.4).
const SRTCP_E_FLAG: u32 = 0x8000_0000;
/// Fixed RTCP header in the clear: V/P/RC, PT, length and sender SSRC (RFC 3711 section 3.4).
const RTCP_HEADER_LEN: usize = 8;
/// Fixed RTP header (RFC 3550 section 5.1).
const RTP_HEADER_LEN: usize = 12;

/// One direction of SRTP and SRTCP under one master key (RFC 3711 section 3.2.1), with the
/// session keys derived at construction (section 4.3).
///
/// Use a context either only to protect or only to unprotect, as RFC 3711 section 3.2
/// intends; [`SrtpSession`] holds one of each.
pub struct SrtpContext {
    profile: SrtpProfile,
    rtp: Transform,
    rtcp: Transform,
    rtp_streams: SsrcTable<SrtpWindow>,
    rtcp_streams: SsrcTable<SrtcpStream>,
    /// Counts packets handled, to order SSRC entries by last use.
    tick: u64,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No key material.
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Keys a context from a master key and salt of `profile`'s lengths, deriving the six
    /// session keys of RFC 3711 section 4.3.2 (key derivation rate 0).
    pub fn new(
        profile: SrtpProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        if master_key.len() != profile.master_key_len() {
            return Err(SrtpError::BadKeyLength);
        }
        if master_salt.len() != profile.master_salt_len() {
            return Err(SrtpError::BadSaltLength);
        }
        let provider = rtc::crypto::default_provider().map_err(|_| SrtpError::Crypto)?;
        let crypto = provider.crypto();
        let mut prf = Prf::new(crypto, master_key, master_salt)?;
        let mut transform = |labels: [u8; 3]| -> Result<Transform, SrtpError> {
            let [encryption_label, auth_label, salt_label] = labels;
            let mut key = [0u8; 32];
            let mut salt = [0u8; 14];
            let mut auth = [0u8; CM_AUTH_KEY_LEN];
            let key = &mut key[..profile.master_key_len()];
            let salt = &mut salt[..profile.master_salt_len()];
            prf.derive(encryption_label, key)?;
            prf.derive(salt_label, salt)?;
            let result = if profile.is_aead() {
                GcmTransform::new(key, salt).map(Transform::Gcm)
            } else {
                prf.derive(auth_label, &mut auth)?;
                CmTransform::new(crypto, key, salt, &auth).map(Transform::Cm)
            };
            key.fill(0);
            auth.fill(0);
            result
        };
        let rtp = transform([
            kdf::LABEL_SRTP_ENCRYPTION,
            kdf::LABEL_SRTP_AUTHENTICATION,
            kdf::LABEL_SRTP_SALT,
        ])?;
        let rtcp = transform([
            kdf::LABEL_SRTCP_ENCRYPTION,
            kdf::LABEL_SRTCP_AUTHENTICATION,
            kdf::LABEL_SRTCP_SALT,
        ])?;
        Ok(Self::with_transforms(profile, rtp, rtcp))
    }

    /// A context keyed directly with session keys, the same for SRTP and SRTCP, skipping the
    /// key derivation: only for known-answer tests such as RFC 7714 sections 16 and 17,
    /// whose vectors start from session keys. `auth_key` is ignored by the AEAD profiles.
    #[doc(hidden)]
    pub fn from_session_keys(
        profile: SrtpProfile,
        encryption_key: &[u8],
        salt: &[u8],
        auth_key: &[u8],
    ) -> Result<Self, SrtpError> {
        let provider = rtc::crypto::default_provider().map_err(|_| SrtpError::Crypto)?;
        let transform = || -> Result<Transform, SrtpError> {
            if profile.is_aead() {
                GcmTransform::new(encryption_key, salt).map(Transform::Gcm)
            } else {
                CmTransform::new(provider.crypto(), encryption_key, salt, auth_key)
                    .map(Transform::Cm)
            }
        };
        Ok(Self::with_transforms(profile, transform()?, transform()?))
    }

    fn with_transforms(profile: SrtpProfile, rtp: Transform, rtcp: Transform) -> Self {
        Self {
            profile,
            rtp,
            rtcp,
            rtp_streams: SsrcTable::new(),
            rtcp_streams: SsrcTable::new(),
            tick: 0,
        }
    }

    /// Sets the next SRTCP index this context sends for `ssrc`: only for known-answer tests
    /// (RFC 7714 section 17 starts at index 0x5d4). Reusing an index reuses keystream.
    #[doc(hidden)]
    pub fn set_next_srtcp_index(&mut self, ssrc: u32, index: u32) -> Result<(), SrtpError> {
        match self.rtcp_streams.find(ssrc) {
            Some(slot) => slot.state.next_index = index,
            None => self.rtcp_streams.insert(
                ssrc,
                SrtcpStream {
                    next_index: index,
                    window: SrtcpWindow::new(0),
                },
                self.tick,
                false,
            )?,
        }
        Ok(())
    }

    /// The profile this context was keyed for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Protects the plain RTP packet `buf[..len]` in place (RFC 3711 section 3.3): encrypts
    /// the payload and appends the tag. `buf.len()` must be at least
    /// `len + profile.rtp_overhead()`. Returns the SRTP length.
    ///
    /// The packet index comes from the sequence number and this SSRC's rollover counter
    /// (section 3.3.1); an index already protected (or behind the 1024-packet window) is
    /// refused with [`SrtpError::Replayed`] / [`SrtpError::TooOld`] rather than encrypted
    /// with the same keystream twice.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_overhead();
        let srtp_len = len.checked_add(tag_len).ok_or(SrtpError::BufferTooSmall)?;
        if srtp_len > buf.len() {
            return Err(SrtpError::BufferTooSmall);
        }
        let (packet, trailer) = buf.split_at_mut(len);
        let header_len = rtp_header_len(packet)?;
        check_padding(packet, header_len)?;
        let (ssrc, seq) = rtp_ssrc_seq(packet)?;

        // RFC 3711 section 3.3.1: the sender estimates the index like the receiver. The
        // index is recorded before encrypting (or the table refuses a new SSRC first).
        let tick = self.next_tick();
        let index = match self.rtp_streams.find(ssrc) {
            Some(slot) => {
                let index = estimate_index(slot.state.highest(), seq).ok_or(SrtpError::TooOld)?;
                if index > MAX_SRTP_INDEX {
                    return Err(SrtpError::KeyExhausted);
                }
                slot.state.check(index)?;
                slot.state.accept(index);
                slot.last_used = tick;
                index
            }
            None => {
                let index = u64::from(seq);
                self.rtp_streams
                    .insert(ssrc, SrtpWindow::new(index), tick, false)?;
                index
            }
        };

        let tag_out = trailer
            .get_mut(..tag_len)
            .ok_or(SrtpError::BufferTooSmall)?;
        match &mut self.rtp {
            Transform::Cm(cm) => {
                let payload = packet.get_mut(header_len..).ok_or(SrtpError::TooShort)?;
                cm.apply_keystream(ssrc, index, payload)?;
                // RFC 3711 section 4.2: the tag covers the packet and the 32-bit ROC.
                let roc = rollover_counter(index);
                let tag = cm.tag(&[packet, &roc.to_be_bytes()])?;
                tag_out.copy_from_slice(tag.get(..tag_len).ok_or(SrtpError::Crypto)?);
            }
            Transform::Gcm(gcm) => {
                // RFC 7714 section 8.2: the header, CSRCs and extension are the AAD.
                let (header, payload) = packet.split_at_mut(header_len);
                let tag = gcm.seal(ssrc, index, header, payload)?;
                tag_out.copy_from_slice(&tag);
            }
        }
        Ok(srtp_len)
    }

    /// Unprotects the SRTP packet `buf` in place (RFC 3711 section 3.3): estimates the
    /// index, rejects replays, authenticates, then decrypts. Returns the plain RTP length;
    /// the tag bytes behind it are left as they were.
    ///
    /// Per-SSRC state (ROC, replay list) changes only once the packet authenticated. On
    /// error the payload may have been overwritten (GCM zeroes it on a bad tag); drop the
    /// packet.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_overhead();
        let plain_len = buf.len().checked_sub(tag_len).ok_or(SrtpError::TooShort)?;
        let (packet, tag) = buf.split_at_mut(plain_len);
        let header_len = rtp_header_len(packet)?;
        let (ssrc, seq) = rtp_ssrc_seq(packet)?;

        // Steps 2 and 5 of RFC 3711 section 3.3: index estimate, then the replay check
        // (read only: the list changes after authentication).
        let tick = self.next_tick();
        let mut slot = self.rtp_streams.find(ssrc);
        let index = match slot.as_deref_mut() {
            Some(slot) => {
                let index = estimate_index(slot.state.highest(), seq).ok_or(SrtpError::TooOld)?;
                slot.state.check(index)?;
                index
            }
            // A new stream starts at ROC 0.
            None => u64::from(seq),
        };
        if index > MAX_SRTP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }

        match &mut self.rtp {
            Transform::Cm(cm) => {
                let roc = rollover_counter(index);
                let expected = cm.tag(&[packet, &roc.to_be_bytes()])?;
                let expected = expected.get(..tag_len).ok_or(SrtpError::Crypto)?;
                if !tags_equal(expected, tag) {
                    return Err(SrtpError::AuthFailed);
                }
                let payload = packet.get_mut(header_len..).ok_or(SrtpError::TooShort)?;
                cm.apply_keystream(ssrc, index, payload)?;
            }
            Transform::Gcm(gcm) => {
                let tag: [u8; GCM_TAG_LEN] = (&*tag).try_into().map_err(|_| SrtpError::TooShort)?;
                let (header, payload) = packet.split_at_mut(header_len);
                gcm.open(ssrc, index, header, payload, tag)?;
            }
        }

        // Authenticated: update the ROC / highest index and the replay list (section 3.3.1).
        match slot {
            Some(slot) => {
                slot.state.accept(index);
                slot.last_used = tick;
            }
            None => self
                .rtp_streams
                .insert(ssrc, SrtpWindow::new(index), tick, true)?,
        }
        check_padding(packet, header_len)?;
        Ok(plain_len)
    }

    /// Protects the plain RTCP (compound) packet `buf[..len]` in place (RFC 3711 section
    /// 3.4): encrypts everything behind the first 8 bytes and appends the E flag with this
    /// SSRC's next SRTCP index, and the tag. `buf.len()` must be at least
    /// `len + profile.rtcp_overhead()`. Returns the SRTCP length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let overhead = self.profile.rtcp_overhead();
        let srtcp_len = len.checked_add(overhead).ok_or(SrtpError::BufferTooSmall)?;
        if srtcp_len > buf.len() {
            return Err(SrtpError::BufferTooSmall);
        }
        let (packet, trailer) = buf.split_at_mut(len);
        let ssrc = rtcp_ssrc(packet)?;

        let tick = self.next_tick();
        let index = match self.rtcp_streams.find(ssrc) {
            Some(slot) => {
                slot.last_used = tick;
                slot.state.next_index
            }
            None => {
                // RFC 3711 section 3.4: the index starts at 0.
                self.rtcp_streams.insert(
                    ssrc,
                    SrtcpStream {
                        next_index: 0,
                        window: SrtcpWindow::new(0),
                    },
                    tick,
                    false,
                )?;
                0
            }
        };
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        let word = (SRTCP_E_FLAG | index).to_be_bytes();
        let trailer = trailer
            .get_mut(..overhead)
            .ok_or(SrtpError::BufferTooSmall)?;
        let (header, body) = packet.split_at_mut(RTCP_HEADER_LEN);
        match &mut self.rtcp {
            Transform::Cm(cm) => {
                cm.apply_keystream(ssrc, u64::from(index), body)?;
                // Layout: packet || E|index || tag; the tag covers all before it.
                let (word_out, tag_out) = trailer.split_at_mut(4);
                word_out.copy_from_slice(&word);
                let tag = cm.tag(&[header, body, &word])?;
                let tag_len = tag_out.len();
                tag_out.copy_from_slice(tag.get(..tag_len).ok_or(SrtpError::Crypto)?);
            }
            Transform::Gcm(gcm) => {
                // RFC 7714 section 9.2: AAD = first 8 bytes || E|index; layout: header ||
                // ciphertext || tag || E|index.
                let aad = srtcp_aad(header, word)?;
                let tag = gcm.seal(ssrc, u64::from(index), &aad, body)?;
                let (tag_out, word_out) = trailer.split_at_mut(GCM_TAG_LEN);
                tag_out.copy_from_slice(&tag);
                word_out.copy_from_slice(&word);
            }
        }
        if let Some(slot) = self.rtcp_streams.find(ssrc) {
            slot.state.next_index = index + 1;
        }
        Ok(srtcp_len)
    }

    /// Unprotects the SRTCP packet `buf` in place (RFC 3711 section 3.4): replay check on
    /// the SRTCP index, authentication, then decryption when the E flag is set (an
    /// authenticated packet with E clear is accepted as sent in the clear). Returns the
    /// plain RTCP length. On error the packet may have been overwritten; drop it.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let overhead = self.profile.rtcp_overhead();
        let len = buf.len();
        let plain_len = len
            .checked_sub(overhead)
            .filter(|&l| l >= RTCP_HEADER_LEN)
            .ok_or(SrtpError::TooShort)?;
        let ssrc = rtcp_ssrc(buf)?;
        let word_at = if self.profile.is_aead() {
            len - 4
        } else {
            plain_len
        };
        let word = read_u32(buf, word_at)?;
        let encrypted = word & SRTCP_E_FLAG != 0;
        let index = word & !SRTCP_E_FLAG;

        let tick = self.next_tick();
        let mut slot = self.rtcp_streams.find(ssrc);
        if let Some(slot) = slot.as_deref_mut() {
            slot.state.window.check(u64::from(index))?;
        }

        match &mut self.rtcp {
            Transform::Cm(cm) => {
                // packet || E|index || tag
                let (covered, tag) = buf.split_at_mut(plain_len + 4);
                let expected = cm.tag(&[covered])?;
                let expected = expected.get(..tag.len()).ok_or(SrtpError::Crypto)?;
                if !tags_equal(expected, tag) {
                    return Err(SrtpError::AuthFailed);
                }
                if encrypted {
                    let body = covered
                        .get_mut(RTCP_HEADER_LEN..plain_len)
                        .ok_or(SrtpError::TooShort)?;
                    cm.apply_keystream(ssrc, u64::from(index), body)?;
                }
            }
            Transform::Gcm(gcm) => {
                // packet || tag || E|index
                let tag: [u8; GCM_TAG_LEN] = buf
                    .get(plain_len..plain_len + GCM_TAG_LEN)
                    .and_then(|t| t.try_into().ok())
                    .ok_or(SrtpError::TooShort)?;
                if encrypted {
                    let (header, body) = buf
                        .get_mut(..plain_len)
                        .ok_or(SrtpError::TooShort)?
                        .split_at_mut(RTCP_HEADER_LEN);
                    let aad = srtcp_aad(header, word.to_be_bytes())?;
                    gcm.open(ssrc, u64::from(index), &aad, body, tag)?;
                } else {
                    // RFC 7714 section 9.3: without encryption the whole packet and the
                    // E|index word are the AAD. Move the word next to the packet (over the
                    // tag, which we hold) so the AAD is one slice.
                    let moved = buf
                        .get_mut(plain_len..plain_len + 4)
                        .ok_or(SrtpError::TooShort)?;
                    moved.copy_from_slice(&word.to_be_bytes());
                    let aad = buf.get(..plain_len + 4).ok_or(SrtpError::TooShort)?;
                    gcm.open(ssrc, u64::from(index), aad, &mut [], tag)?;
                }
            }
        }

        match slot {
            Some(slot) => {
                slot.state.window.accept(u64::from(index));
                slot.last_used = tick;
            }
            None => self.rtcp_streams.insert(
                ssrc,
                SrtcpStream {
                    next_index: 0,
                    window: SrtcpWindow::new(u64::from(index)),
                },
                tick,
                true,
            )?,
        }
        Ok(plain_len)
    }

    fn next_tick(&mut self) -> u64 {
        self.tick = self.tick.wrapping_add(1);
        self.tick
    }
}

/// Both directions of one SRTP session.
#[derive(Debug)]
pub struct SrtpSession {
    /// Protects what we send.
    pub outbound: SrtpContext,
    /// Unprotects what the peer sends.
    pub inbound: SrtpContext,
}

impl SrtpSession {
    /// A session from our sending master key/salt and the peer's (SDES, RFC 4568 section
    /// 6.1: each side announces the key it sends with).
    pub fn new(
        profile: SrtpProfile,
        local_key: &[u8],
        local_salt: &[u8],
        remote_key: &[u8],
        remote_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        Ok(Self {
            outbound: SrtpContext::new(profile, local_key, local_salt)?,
            inbound: SrtpContext::new(profile, remote_key, remote_salt)?,
        })
    }

    /// RFC 5764 section 4.2: `material` = client_write_key | server_write_key |
    /// client_write_salt | server_write_salt, exported with the label "EXTRACTOR-dtls_srtp";
    /// the DTLS client sends with the client key and the server with the server key.
    pub fn from_dtls_keying_material(
        profile: SrtpProfile,
        material: &[u8],
        is_dtls_client: bool,
    ) -> Result<Self, SrtpError> {
        if material.len() != Self::dtls_keying_material_len(profile) {
            return Err(SrtpError::BadKeyLength);
        }
        let (keys, salts) = material.split_at(2 * profile.master_key_len());
        let (client_key, server_key) = keys.split_at(profile.master_key_len());
        let (client_salt, server_salt) = salts.split_at(profile.master_salt_len());
        let (client, server) = ((client_key, client_salt), (server_key, server_salt));
        let (local, remote) = if is_dtls_client {
            (client, server)
        } else {
            (server, client)
        };
        Self::new(profile, local.0, local.1, remote.0, remote.1)
    }

    /// Keying material length to request from the DTLS exporter (label
    /// "EXTRACTOR-dtls_srtp", RFC 5764 section 4.2): two master keys and two salts.
    pub fn dtls_keying_material_len(profile: SrtpProfile) -> usize {
        2 * (profile.master_key_len() + profile.master_salt_len())
    }
}

/// The ROC of a 48-bit packet index.
fn rollover_counter(index: u64) -> u32 {
    (index >> 16) as u32
}

fn read_u32(buf: &[u8], at: usize) -> Result<u32, SrtpError> {
    buf.get(at..at.checked_add(4).ok_or(SrtpError::TooShort)?)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(SrtpError::TooShort)
}

/// Length of the RTP header of `packet`: fixed part, CSRCs and header extension (RFC 3550
/// sections 5.1 and 5.3.1), all within the packet.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    let first = *packet.first().ok_or(SrtpError::TooShort)?;
    if first >> 6 != 2 {
        return Err(SrtpError::BadVersion);
    }
    let mut len = RTP_HEADER_LEN + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        // 16-bit profile, 16-bit length in 32-bit words.
        let words = read_u32(packet, len)? & 0xffff;
        len += 4 + 4 * words as usize;
    }
    if len > packet.len() {
        return Err(SrtpError::TooShort);
    }
    Ok(len)
}

fn rtp_ssrc_seq(packet: &[u8]) -> Result<(u32, u16), SrtpError> {
    let ssrc = read_u32(packet, 8)?;
    let seq = read_u32(packet, 0)? as u16;
    Ok((ssrc, seq))
}

/// With the P bit set, the last payload byte counts padding bytes including itself: it must
/// be at least 1 and fit the payload (RFC 3550 section 5.1).
fn check_padding(packet: &[u8], header_len: usize) -> Result<(), SrtpError> {
    let Some(&first) = packet.first() else {
        return Err(SrtpError::TooShort);
    };
    if first & 0x20 == 0 {
        return Ok(());
    }
    let payload_len = packet.len().saturating_sub(header_len);
    let count = packet.last().map_or(0, |&b| usize::from(b));
    if payload_len == 0 || count == 0 || count > payload_len {
        return Err(SrtpError::BadPadding);
    }
    Ok(())
}

/// The sender SSRC of an RTCP packet whose clear 8-byte header is valid version 2.
fn rtcp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    let first = *packet.first().ok_or(SrtpError::TooShort)?;
    if packet.len() < RTCP_HEADER_LEN {
        return Err(SrtpError::TooShort);
    }
    if first >> 6 != 2 {
        return Err(SrtpError::BadVersion);
    }
    read_u32(packet, 4)
}

/// AAD of encrypted AEAD SRTCP (RFC 7714 section 9.2): the first 8 octets, then the
/// E flag and SRTCP index.
fn srtcp_aad(header: &[u8], word: [u8; 4]) -> Result<[u8; 12], SrtpError> {
    let mut aad = [0u8; 12];
    aad.get_mut(..RTCP_HEADER_LEN)
        .filter(|_| header.len() == RTCP_HEADER_LEN)
        .ok_or(SrtpError::TooShort)?
        .copy_from_slice(header);
    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
    Ok(aad)
}
