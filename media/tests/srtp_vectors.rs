//! Known-answer tests of `media::srtp`: RFC 3711 Appendix B.2 (AES-CM keystream) and B.3
//! (key derivation), RFC 6188 section 7.2 (AES-256 PRF), RFC 7714 sections 16 (AEAD SRTP)
//! and 17 (AEAD SRTCP, with and without encryption), and libsrtp's `srtp_validate`
//! AES_CM_128_HMAC_SHA1_80 packets (RFC 3711 has no packet vectors).

use media::srtp::kdf::{self, derive_session_key};
use media::srtp::{SrtpContext, SrtpError, SrtpProfile, SrtpSession};

mod srtp_util;
use srtp_util::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => panic!("not hex: {b}"),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd hex length");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

// ---- RFC 3711 Appendix B ------------------------------------------------------------------

/// B.2: AES-CM keystream with session key 2B7E...3C, salt F0F1...FD, SSRC 0 and index 0, so
/// the IV is F0F1...FCFD0000 and the ciphertext of a zero payload is the keystream itself.
#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
    let salt = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD");
    let mut ctx =
        SrtpContext::from_session_keys(SrtpProfile::Aes128CmHmacSha1_80, &key, &salt, &[0; 20])
            .expect("keys");
    // SSRC 0, sequence number 0, ROC 0; enough payload for keystream block 0xFF01.
    let blocks = 0xFF02;
    let mut packet = vec![0u8; 12 + blocks * 16];
    packet[0] = 0x80;
    let wire = protect_rtp(&mut ctx, &packet);
    let keystream = &wire[12..12 + blocks * 16];
    let block = |i: usize| &keystream[i * 16..(i + 1) * 16];
    assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xFEFF), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xFF00), hex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xFF01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

/// B.3: key derivation with master key E1F9...39 and master salt 0EC6...E6.
#[test]
fn rfc3711_b3_key_derivation() {
    let key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
    let mut cipher_key = [0u8; 16];
    derive_session_key(&key, &salt, kdf::LABEL_SRTP_ENCRYPTION, &mut cipher_key).unwrap();
    assert_eq!(cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut cipher_salt = [0u8; 14];
    derive_session_key(&key, &salt, kdf::LABEL_SRTP_SALT, &mut cipher_salt).unwrap();
    assert_eq!(cipher_salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    // The appendix derives 94 bytes of authentication key (several keystream blocks).
    let mut auth_key = [0u8; 94];
    derive_session_key(&key, &salt, kdf::LABEL_SRTP_AUTHENTICATION, &mut auth_key).unwrap();
    assert_eq!(
        auth_key.to_vec(),
        hex(
            "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"
        )
    );
}

/// RFC 6188 section 7.2: the AES_256_CM_PRF that AEAD_AES_256_GCM uses (RFC 7714 section 11).
#[test]
fn rfc6188_aes_256_prf() {
    let key = hex("F0F04914B513F2763A1B1FA130F10E2998F6F6E43E4309D1E622A0E332B9F1B6");
    let salt = hex("3B04803DE51EE7C96423AB5B78D2");
    let mut cipher_key = [0u8; 32];
    derive_session_key(&key, &salt, kdf::LABEL_SRTP_ENCRYPTION, &mut cipher_key).unwrap();
    assert_eq!(
        cipher_key.to_vec(),
        hex("5BA1064E30EC51613CAD926C5A28EF731EC7FB397F70A960653CAF06554CD8C4")
    );
    let mut cipher_salt = [0u8; 14];
    derive_session_key(&key, &salt, kdf::LABEL_SRTP_SALT, &mut cipher_salt).unwrap();
    assert_eq!(cipher_salt.to_vec(), hex("FA31791685CA444A9E07C6C64E93"));
}

// ---- libsrtp srtp_validate: whole AES_CM_128_HMAC_SHA1_80 packets through the KDF ---------

const CM_MASTER_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
const CM_MASTER_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";

fn cm_context() -> SrtpContext {
    SrtpContext::new(
        SrtpProfile::Aes128CmHmacSha1_80,
        &hex(CM_MASTER_KEY),
        &hex(CM_MASTER_SALT),
    )
    .expect("keys")
}

#[test]
fn aes_cm_hmac_sha1_80_srtp_packet() {
    let plain = hex("800f1234 decafbad cafebabe abababab abababab abababab abababab");
    let wire = hex(
        "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 b78d6acc
         99ea179b 8dbb",
    );
    assert_eq!(protect_rtp(&mut cm_context(), &plain), wire);
    let mut rx = cm_context();
    assert_eq!(unprotect_rtp(&mut rx, &wire), Ok(plain));
    assert_eq!(unprotect_rtp(&mut rx, &wire), Err(SrtpError::Replayed));
}

#[test]
fn aes_cm_hmac_sha1_80_srtcp_packet() {
    // libsrtp numbers its first SRTCP packet 1.
    let plain = hex("81c8000b cafebabe abababab abababab abababab abababab");
    let wire = hex(
        "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 993e08cd
         54d6c123 0798",
    );
    let mut tx = cm_context();
    tx.set_next_srtcp_index(0xcafebabe, 1).unwrap();
    assert_eq!(protect_rtcp(&mut tx, &plain), wire);
    let mut rx = cm_context();
    assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(plain));
    assert_eq!(unprotect_rtcp(&mut rx, &wire), Err(SrtpError::Replayed));
}

// ---- RFC 7714 sections 16 and 17 -----------------------------------------------------------

/// Section 16: "The 16-octet (128-bit) key is 00 01 02 ... 0f, and the 32-octet (256-bit) key
/// is 00 01 02 ... 1f", the salt is "Quid pro quo"; the vectors start from session keys.
fn rfc7714_context(profile: SrtpProfile) -> SrtpContext {
    let key: Vec<u8> = (0..profile.master_key_len() as u8).collect();
    SrtpContext::from_session_keys(profile, &key, b"Quid pro quo", &[]).expect("keys")
}

/// The RTP packet of every section 16 vector: SSRC 0x5501a0b2, SEQ 0xf17b, ROC 0, payload
/// "Gallia est omnis divisa in partes tres".
const RFC7714_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                           20646976 69736120 696e2070 61727465 73207472 6573";

/// The RTCP packet of every section 17 vector (SSRC "Mars", SRTCP index 0x5d4).
const RFC7714_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                            4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";

#[test]
fn rfc7714_16_1_aead_aes_128_gcm_srtp() {
    let wire = hex(
        "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
         0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
    );
    let profile = SrtpProfile::AeadAes128Gcm;
    // 16.1.1 encryption, 16.1.2 decryption.
    assert_eq!(
        protect_rtp(&mut rfc7714_context(profile), &hex(RFC7714_RTP)),
        wire
    );
    let mut rx = rfc7714_context(profile);
    assert_eq!(unprotect_rtp(&mut rx, &wire), Ok(hex(RFC7714_RTP)));
    assert_eq!(unprotect_rtp(&mut rx, &wire), Err(SrtpError::Replayed));
}

#[test]
fn rfc7714_16_2_aead_aes_256_gcm_srtp() {
    let wire = hex(
        "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238
         9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13",
    );
    let profile = SrtpProfile::AeadAes256Gcm;
    assert_eq!(
        protect_rtp(&mut rfc7714_context(profile), &hex(RFC7714_RTP)),
        wire
    );
    assert_eq!(
        unprotect_rtp(&mut rfc7714_context(profile), &wire),
        Ok(hex(RFC7714_RTP))
    );
}

#[test]
fn rfc7714_17_1_aead_aes_128_gcm_srtcp() {
    let wire = hex(
        "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
         c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872
         45d9eade 800005d4",
    );
    let profile = SrtpProfile::AeadAes128Gcm;
    let mut tx = rfc7714_context(profile);
    tx.set_next_srtcp_index(0x4d61_7273, 0x5d4).unwrap();
    assert_eq!(protect_rtcp(&mut tx, &hex(RFC7714_RTCP)), wire);
    let mut rx = rfc7714_context(profile);
    assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(hex(RFC7714_RTCP)));
    assert_eq!(unprotect_rtcp(&mut rx, &wire), Err(SrtpError::Replayed));
}

#[test]
fn rfc7714_17_1_aead_aes_128_gcm_srtcp_without_encryption() {
    // E flag clear: the whole packet is authenticated only.
    let wire = hex(
        "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
         deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790
         125f62b3 000005d4",
    );
    let mut rx = rfc7714_context(SrtpProfile::AeadAes128Gcm);
    assert_eq!(unprotect_rtcp(&mut rx, &wire), Ok(hex(RFC7714_RTCP)));
    let mut tampered = wire.clone();
    tampered[20] ^= 1;
    let mut rx = rfc7714_context(SrtpProfile::AeadAes128Gcm);
    assert_eq!(
        unprotect_rtcp(&mut rx, &tampered),
        Err(SrtpError::AuthFailed)
    );
}

#[test]
fn rfc7714_17_2_aead_aes_256_gcm_srtcp() {
    let wire = hex(
        "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50
         a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c
         b26ac3be 800005d4",
    );
    let profile = SrtpProfile::AeadAes256Gcm;
    let mut tx = rfc7714_context(profile);
    tx.set_next_srtcp_index(0x4d61_7273, 0x5d4).unwrap();
    assert_eq!(protect_rtcp(&mut tx, &hex(RFC7714_RTCP)), wire);
    assert_eq!(
        unprotect_rtcp(&mut rfc7714_context(profile), &wire),
        Ok(hex(RFC7714_RTCP))
    );
}

#[test]
fn rfc7714_17_2_aead_aes_256_gcm_srtcp_without_encryption() {
    let wire = hex(
        "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
         deadbeef deadbeef deadbeef deadbeef deadbeef 91db4afb feee5a97 8fab4393
         ed2615fe 000005d4",
    );
    assert_eq!(
        unprotect_rtcp(&mut rfc7714_context(SrtpProfile::AeadAes256Gcm), &wire),
        Ok(hex(RFC7714_RTCP))
    );
}

// ---- Profile table and DTLS keying material ------------------------------------------------

#[test]
fn profile_parameters_match_rfc5764_and_rfc7714() {
    use SrtpProfile::*;
    let table = [
        // profile, DTLS id, IANA name, key, salt, SRTP overhead, SRTCP overhead
        (
            Aes128CmHmacSha1_80,
            0x0001,
            "SRTP_AES128_CM_HMAC_SHA1_80",
            16,
            14,
            10,
            14,
        ),
        (
            Aes128CmHmacSha1_32,
            0x0002,
            "SRTP_AES128_CM_HMAC_SHA1_32",
            16,
            14,
            4,
            14,
        ),
        (
            AeadAes128Gcm,
            0x0007,
            "SRTP_AEAD_AES_128_GCM",
            16,
            12,
            16,
            20,
        ),
        (
            AeadAes256Gcm,
            0x0008,
            "SRTP_AEAD_AES_256_GCM",
            32,
            12,
            16,
            20,
        ),
    ];
    for (p, id, name, key, salt, rtp, rtcp) in table {
        assert_eq!(p.dtls_id(), id);
        assert_eq!(SrtpProfile::from_dtls_id(id), Some(p));
        assert_eq!(p.name(), name);
        assert_eq!(p.master_key_len(), key);
        assert_eq!(p.master_salt_len(), salt);
        assert_eq!(p.rtp_overhead(), rtp);
        assert_eq!(p.rtcp_overhead(), rtcp);
        assert_eq!(SrtpSession::dtls_keying_material_len(p), 2 * (key + salt));
    }
    for id in [0, 3, 4, 5, 6, 9, 0xffff] {
        assert_eq!(SrtpProfile::from_dtls_id(id), None);
    }
}

#[test]
fn dtls_keying_material_splits_client_and_server_halves() {
    for profile in SrtpProfile::ALL {
        let len = SrtpSession::dtls_keying_material_len(profile);
        let material: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(29)).collect();
        let mut client = SrtpSession::from_dtls_keying_material(profile, &material, true).unwrap();
        let mut server = SrtpSession::from_dtls_keying_material(profile, &material, false).unwrap();
        let (k, s) = (profile.master_key_len(), profile.master_salt_len());
        // The client sends with client_write_key/salt (the first key and the first salt).
        let mut by_hand = SrtpContext::new(profile, &material[..k], &material[2 * k..2 * k + s])
            .expect("client keys");
        let plain = hex("80600001 00000001 00000042 01020304");
        let wire = protect_rtp(&mut client.outbound, &plain);
        assert_eq!(protect_rtp(&mut by_hand, &plain), wire, "{profile:?}");
        assert_eq!(unprotect_rtp(&mut server.inbound, &wire), Ok(plain.clone()));
        let wire = protect_rtp(&mut server.outbound, &plain);
        assert_eq!(unprotect_rtp(&mut client.inbound, &wire), Ok(plain));
        assert_eq!(
            SrtpSession::from_dtls_keying_material(profile, &material[1..], true).err(),
            Some(SrtpError::BadKeyLength)
        );
        assert_eq!(
            SrtpContext::new(profile, &material[..k + 1], &material[..s]).err(),
            Some(SrtpError::BadKeyLength)
        );
        assert_eq!(
            SrtpContext::new(profile, &material[..k], &material[..s + 1]).err(),
            Some(SrtpError::BadSaltLength)
        );
    }
}

#[test]
fn contexts_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<SrtpContext>();
    assert_send::<SrtpSession>();
}
