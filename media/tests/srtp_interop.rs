//! Interop of `media::srtp` with `rtc::srtp::context::Context` (rtc 0.21.1) for every
//! profile: ours protects -> rtc unprotects, rtc protects -> ours unprotects, RTP and RTCP,
//! across a sequence number wrap (ROC 0 -> 1), with CSRCs, a header extension and padding,
//! and two interleaved SSRCs. Also the replay, tamper, reorder and malformed-input behaviour
//! of our unprotect, and a randomized garbage loop.

use rtc::srtp::context::Context;
use rtc::srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc::srtp::protection_profile::ProtectionProfile;

use media::srtp::{SrtpContext, SrtpError, SrtpProfile, MAX_SSRCS};

mod srtp_util;
use srtp_util::*;

fn rtc_profile(profile: SrtpProfile) -> ProtectionProfile {
    match profile {
        SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    }
}

/// Deterministic key material per profile and seed.
fn keys(profile: SrtpProfile, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let key = (0..profile.master_key_len() as u8)
        .map(|b| b.wrapping_mul(seed).wrapping_add(17))
        .collect();
    let salt = (0..profile.master_salt_len() as u8)
        .map(|b| b.wrapping_mul(seed ^ 0x5a).wrapping_add(3))
        .collect();
    (key, salt)
}

fn rtc_context(profile: SrtpProfile, seed: u8, inbound: bool) -> Context {
    let (key, salt) = keys(profile, seed);
    let provider = rtc::crypto::default_provider().expect("provider");
    let (srtp, srtcp) = if inbound {
        (
            Some(srtp_replay_protection(1024)),
            Some(srtcp_replay_protection(1024)),
        )
    } else {
        (None, None)
    };
    Context::new(
        &key,
        &salt,
        rtc_profile(profile),
        srtp,
        srtcp,
        provider.crypto(),
    )
    .expect("rtc context")
}

fn our_context(profile: SrtpProfile, seed: u8) -> SrtpContext {
    let (key, salt) = keys(profile, seed);
    SrtpContext::new(profile, &key, &salt).expect("our context")
}

/// An RTP packet whose shape varies with `variant`: CSRCs, a one-byte header extension
/// (RFC 8285), padding, payload length.
fn rtp_packet(seq: u16, ssrc: u32, variant: usize) -> Vec<u8> {
    let csrcs = [0, 2, 0, 1][variant % 4];
    let extension = variant % 3 == 1;
    let padding = variant % 5 == 4;
    let mut p = vec![
        0x80 | csrcs as u8,
        96 | if variant % 7 == 0 { 0x80 } else { 0 },
    ];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq).wrapping_mul(960)).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..csrcs {
        p.extend_from_slice(&(0x0c5c_0000 + c as u32).to_be_bytes());
    }
    if extension {
        p[0] |= 0x10;
        // Profile 0xBEDE, one word: element id 1 (audio level, 1 byte), id 2 (2 bytes).
        p.extend_from_slice(&[0xbe, 0xde, 0, 2, 0x10, 0x7f, 0x21, 0xaa, 0xbb, 0, 0, 0]);
    }
    let payload_len = 20 + (variant * 37) % 200;
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    if padding {
        p[0] |= 0x20;
        p.extend_from_slice(&[0, 0, 0, 4]);
    }
    p
}

/// A compound RTCP packet: RR with one report block, then SDES CNAME.
fn rtcp_packet(ssrc: u32, n: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1]);
    p.extend_from_slice(&n.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 4, b'g', b'w', b'0', b'1', 0, 0]);
    p
}

#[test]
fn both_directions_interoperate_with_rtc_srtp_across_a_sequence_wrap() {
    const PACKETS: usize = 1500;
    for profile in SrtpProfile::ALL {
        let mut ours_tx = our_context(profile, 3);
        let mut rtc_rx = rtc_context(profile, 3, true);
        let mut rtc_tx = rtc_context(profile, 5, false);
        let mut ours_rx = our_context(profile, 5);
        // The same key as rtc_tx, to compare output byte for byte.
        let mut ours_twin = our_context(profile, 5);
        for i in 0..PACKETS {
            // Two SSRCs; the first wraps its sequence number after ~1000 packets.
            let (ssrc, seq) = if i % 3 == 2 {
                (0x2222_0002, 100u16.wrapping_add(i as u16))
            } else {
                (0x1111_0001, 64_500u16.wrapping_add(i as u16))
            };
            let plain = rtp_packet(seq, ssrc, i);

            let wire = protect_rtp(&mut ours_tx, &plain);
            assert_eq!(wire.len(), plain.len() + profile.rtp_overhead());
            let got = rtc_rx
                .decrypt_rtp(&wire)
                .unwrap_or_else(|e| panic!("{profile:?} #{i}: rtc rejects ours: {e}"));
            assert_eq!(&got[..], &plain[..], "{profile:?} #{i}");

            let wire = rtc_tx.encrypt_rtp(&plain).expect("rtc encrypts");
            assert_eq!(
                protect_rtp(&mut ours_twin, &plain),
                &wire[..],
                "{profile:?} #{i}: same key, same index, same bytes"
            );
            let got = unprotect_rtp(&mut ours_rx, &wire)
                .unwrap_or_else(|e| panic!("{profile:?} #{i}: we reject rtc's: {e}"));
            assert_eq!(got, plain, "{profile:?} #{i}");

            if i % 10 == 0 {
                let plain = rtcp_packet(ssrc, i as u32);
                let wire = protect_rtcp(&mut ours_tx, &plain);
                assert_eq!(wire.len(), plain.len() + profile.rtcp_overhead());
                let got = rtc_rx
                    .decrypt_rtcp(&wire)
                    .unwrap_or_else(|e| panic!("{profile:?} #{i}: rtc rejects our RTCP: {e}"));
                assert_eq!(&got[..], &plain[..], "{profile:?} #{i}");

                let wire = rtc_tx.encrypt_rtcp(&plain).expect("rtc encrypts RTCP");
                let got = unprotect_rtcp(&mut ours_rx, &wire)
                    .unwrap_or_else(|e| panic!("{profile:?} #{i}: we reject rtc's RTCP: {e}"));
                assert_eq!(got, plain, "{profile:?} #{i}");
            }
        }
    }
}

/// Protected packets of one stream, in sending order.
fn stream(profile: SrtpProfile, first_seq: u16, count: usize) -> Vec<Vec<u8>> {
    let mut tx = our_context(profile, 9);
    (0..count)
        .map(|i| {
            protect_rtp(
                &mut tx,
                &rtp_packet(first_seq.wrapping_add(i as u16), 0xabc, i),
            )
        })
        .collect()
}

#[test]
fn replays_old_packets_and_reordering() {
    for profile in SrtpProfile::ALL {
        let wire = stream(profile, 65_000, 2000);
        let mut rx = our_context(profile, 9);
        // In order, then a duplicate.
        for w in &wire[..10] {
            unprotect_rtp(&mut rx, w).expect("fresh");
        }
        assert_eq!(unprotect_rtp(&mut rx, &wire[9]), Err(SrtpError::Replayed));
        assert_eq!(unprotect_rtp(&mut rx, &wire[3]), Err(SrtpError::Replayed));
        // Out of order within the window (and across the wrap at #536): skip ahead, then fill in.
        unprotect_rtp(&mut rx, &wire[900]).expect("jump ahead");
        for i in (10..900).rev() {
            unprotect_rtp(&mut rx, &wire[i]).unwrap_or_else(|e| panic!("{profile:?} #{i}: {e}"));
        }
        for i in [10, 500, 899, 900] {
            assert_eq!(unprotect_rtp(&mut rx, &wire[i]), Err(SrtpError::Replayed));
        }
        // Move the window on: 1999 - 1024 = 975 is the last index it covers.
        unprotect_rtp(&mut rx, &wire[1999]).expect("jump");
        assert_eq!(unprotect_rtp(&mut rx, &wire[950]), Err(SrtpError::TooOld));
        unprotect_rtp(&mut rx, &wire[1000]).expect("still in the window");
        // SRTCP: replays and the 128-entry window.
        let mut tx = our_context(profile, 9);
        let rtcp: Vec<Vec<u8>> = (0..300)
            .map(|n| protect_rtcp(&mut tx, &rtcp_packet(0xabc, n)))
            .collect();
        let mut rx = our_context(profile, 9);
        unprotect_rtcp(&mut rx, &rtcp[200]).expect("fresh");
        unprotect_rtcp(&mut rx, &rtcp[100]).expect("in the window");
        assert_eq!(
            unprotect_rtcp(&mut rx, &rtcp[100]),
            Err(SrtpError::Replayed)
        );
        assert_eq!(unprotect_rtcp(&mut rx, &rtcp[50]), Err(SrtpError::TooOld));
        unprotect_rtcp(&mut rx, &rtcp[299]).expect("fresh");
    }
}

#[test]
fn tampering_anywhere_fails_authentication_and_leaves_state_alone() {
    for profile in SrtpProfile::ALL {
        let wire = stream(profile, 10, 3);
        let mut rx = our_context(profile, 9);
        // Flip each byte of a packet with CSRCs and an extension: header, payload and tag.
        let target = &wire[1];
        for at in 0..target.len() {
            let mut bad = target.clone();
            bad[at] ^= 0x01;
            let result = unprotect_rtp(&mut rx, &bad);
            assert!(result.is_err(), "{profile:?}: flip at {at} accepted");
        }
        // Neither the replay list nor the ROC moved: the genuine packets still pass.
        for w in &wire {
            unprotect_rtp(&mut rx, w).unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        }
        // The wrong key.
        let mut stranger = our_context(profile, 11);
        assert_eq!(
            unprotect_rtp(&mut stranger, &wire[0]),
            Err(SrtpError::AuthFailed)
        );
        // RTCP.
        let mut tx = our_context(profile, 9);
        let rtcp = protect_rtcp(&mut tx, &rtcp_packet(0xabc, 1));
        let mut rx = our_context(profile, 9);
        for at in 0..rtcp.len() {
            let mut bad = rtcp.clone();
            bad[at] ^= 0x40;
            assert!(
                unprotect_rtcp(&mut rx, &bad).is_err(),
                "{profile:?}: RTCP flip at {at} accepted"
            );
        }
        assert_eq!(
            unprotect_rtcp(&mut rx, &rtcp),
            Ok(rtcp_packet(0xabc, 1)),
            "{profile:?}"
        );
    }
}

#[test]
fn protecting_the_same_index_twice_is_refused() {
    for profile in SrtpProfile::ALL {
        let mut tx = our_context(profile, 9);
        let plain = rtp_packet(7, 0xabc, 0);
        protect_rtp(&mut tx, &plain);
        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtp_overhead(), 0);
        assert_eq!(
            tx.protect_rtp(&mut buf, plain.len()),
            Err(SrtpError::Replayed)
        );
    }
}

#[test]
fn truncated_and_malformed_packets_are_errors() {
    for profile in SrtpProfile::ALL {
        let wire = stream(profile, 10, 4);
        let mut rx = our_context(profile, 9);
        for w in &wire {
            for cut in 0..w.len() {
                assert!(unprotect_rtp(&mut rx, &w[..cut]).is_err());
                assert!(unprotect_rtcp(&mut rx, &w[..cut]).is_err());
            }
        }
        assert_eq!(unprotect_rtp(&mut rx, &[]), Err(SrtpError::TooShort));
        assert_eq!(unprotect_rtcp(&mut rx, &[]), Err(SrtpError::TooShort));

        let mut tx = our_context(profile, 9);
        let mut buf = [0u8; 256];
        // Version 1.
        buf[..12].copy_from_slice(&[0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(tx.protect_rtp(&mut buf, 12), Err(SrtpError::BadVersion));
        // 15 CSRCs in a 20-byte packet.
        buf[..12].copy_from_slice(&[0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(tx.protect_rtp(&mut buf, 20), Err(SrtpError::TooShort));
        // An extension claiming 255 words.
        buf[..16].copy_from_slice(&[0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 255]);
        assert_eq!(tx.protect_rtp(&mut buf, 40), Err(SrtpError::TooShort));
        // An extension header cut off.
        assert_eq!(tx.protect_rtp(&mut buf, 14), Err(SrtpError::TooShort));
        // Padding: count 0, count beyond the payload, padding bit without payload.
        buf[..12].copy_from_slice(&[0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        buf[12..16].copy_from_slice(&[1, 2, 3, 0]);
        assert_eq!(tx.protect_rtp(&mut buf, 16), Err(SrtpError::BadPadding));
        buf[15] = 5;
        assert_eq!(tx.protect_rtp(&mut buf, 16), Err(SrtpError::BadPadding));
        assert_eq!(tx.protect_rtp(&mut buf, 12), Err(SrtpError::BadPadding));
        // No room for the tag, or len beyond the buffer.
        let plain = rtp_packet(1, 5, 0);
        let mut tight = plain.clone();
        assert_eq!(
            tx.protect_rtp(&mut tight, plain.len()),
            Err(SrtpError::BufferTooSmall)
        );
        assert_eq!(
            tx.protect_rtp(&mut tight, plain.len() + 100),
            Err(SrtpError::BufferTooSmall)
        );
        assert_eq!(
            tx.protect_rtp(&mut tight, usize::MAX),
            Err(SrtpError::BufferTooSmall)
        );
        // RTCP shorter than its 8-byte header, or not version 2.
        buf[..8].copy_from_slice(&[0x80, 200, 0, 1, 0, 0, 0, 1]);
        assert_eq!(tx.protect_rtcp(&mut buf, 7), Err(SrtpError::TooShort));
        buf[0] = 0x00;
        assert_eq!(tx.protect_rtcp(&mut buf, 8), Err(SrtpError::BadVersion));
        assert_eq!(
            tx.protect_rtcp(&mut buf[..20], 8),
            Err(SrtpError::BufferTooSmall)
        );
    }
}

#[test]
fn a_full_table_refuses_new_sending_ssrcs_and_evicts_stale_receiving_ones() {
    for profile in SrtpProfile::ALL {
        let mut tx = our_context(profile, 9);
        let mut rx = our_context(profile, 9);
        let mut first = Vec::new();
        for ssrc in 0..MAX_SSRCS as u32 {
            let w = protect_rtp(&mut tx, &rtp_packet(1, ssrc, 0));
            unprotect_rtp(&mut rx, &w).expect("fresh");
            first.push(w);
        }
        let plain = rtp_packet(1, 0xffff, 0);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 32, 0);
        assert_eq!(
            tx.protect_rtp(&mut buf, plain.len()),
            Err(SrtpError::TooManySsrcs)
        );
        // Known SSRCs keep working.
        protect_rtp(&mut tx, &rtp_packet(2, 3, 0));
        // Inbound: a 17th authenticated SSRC takes the stalest entry (SSRC 0); the others
        // keep their replay lists.
        let mut other = our_context(profile, 9);
        let w = protect_rtp(&mut other, &rtp_packet(1, 0xffff, 0));
        unprotect_rtp(&mut rx, &w).expect("evicts the stalest");
        assert_eq!(unprotect_rtp(&mut rx, &first[5]), Err(SrtpError::Replayed));
        assert_eq!(unprotect_rtp(&mut rx, &w), Err(SrtpError::Replayed));
    }
}

/// xorshift64*: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_garbage_and_mutations_never_panic_or_authenticate() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for profile in SrtpProfile::ALL {
        let wire = stream(profile, 40, 50);
        let mut rx = our_context(profile, 9);
        for round in 0..4000 {
            let mut buf = if round % 2 == 0 {
                let len = (noise.next() % 300) as usize;
                let mut b: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
                // Mostly version 2, so the parsers get past the first byte.
                if let Some(first) = b.first_mut() {
                    *first = (*first & 0x3f) | 0x80;
                }
                b
            } else {
                let mut b = wire[round % wire.len()].clone();
                for _ in 0..1 + noise.next() % 4 {
                    let at = (noise.next() as usize) % b.len();
                    b[at] ^= 1 << (noise.next() % 8);
                }
                if noise.next() % 4 == 0 {
                    b.truncate((noise.next() as usize) % b.len());
                }
                b
            };
            let mut copy = buf.clone();
            assert!(
                rx.unprotect_rtp(&mut buf).is_err(),
                "{profile:?} round {round}"
            );
            assert!(
                rx.unprotect_rtcp(&mut copy).is_err(),
                "{profile:?} round {round}"
            );
        }
        // The genuine stream still decrypts afterwards.
        for w in &wire {
            unprotect_rtp(&mut rx, w).unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        }
    }
}

#[test]
fn authenticated_srtcp_without_encryption_is_accepted() {
    // RFC 3711 section 3.4: E = 0 means the sender did not encrypt. Built by hand for
    // AES-CM with known session keys: packet || 0|index || HMAC-SHA1(packet || 0|index)
    // truncated to 80 bits. (The AEAD case is RFC 7714's vector in srtp_vectors.rs.)
    let auth_key = [7u8; 20];
    for profile in [
        SrtpProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32,
    ] {
        let mut rx =
            SrtpContext::from_session_keys(profile, &[1; 16], &[2; 14], &auth_key).expect("keys");
        let plain = rtcp_packet(0xabc, 3);
        let mut wire = plain.clone();
        wire.extend_from_slice(&5u32.to_be_bytes());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth_key);
        let tag = ring::hmac::sign(&key, &wire);
        wire.extend_from_slice(&tag.as_ref()[..10]);
        assert_eq!(
            unprotect_rtcp(&mut rx, &wire),
            Ok(plain.clone()),
            "{profile:?}"
        );
        assert_eq!(unprotect_rtcp(&mut rx, &wire), Err(SrtpError::Replayed));
        // Setting the E flag on the same bytes breaks the tag (fresh context: the replay
        // check comes first, RFC 3711 section 3.3 step 5).
        let mut rx =
            SrtpContext::from_session_keys(profile, &[1; 16], &[2; 14], &auth_key).expect("keys");
        let at = plain.len();
        wire[at] |= 0x80;
        assert_eq!(
            unprotect_rtcp(&mut rx, &wire),
            Err(SrtpError::AuthFailed),
            "{profile:?}"
        );
    }
}
