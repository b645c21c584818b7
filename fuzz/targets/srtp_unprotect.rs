// Arbitrary datagrams through media::srtp's unprotect_rtp/unprotect_rtcp for every profile
// (nothing may panic), and the same bytes protected then unprotected (must round-trip).
// Run: `cd fuzz && cargo +nightly fuzz run srtp_unprotect`
//
// The body of fuzz target `srtp_unprotect`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/srtp_unprotect.rs`) and the stable harness (`tests/fuzz_stable.rs`).

use media::srtp::{SrtpContext, SrtpProfile};

fn context(profile: SrtpProfile) -> SrtpContext {
    let key = [0x42u8; 32];
    let salt = [0x24u8; 14];
    SrtpContext::new(
        profile,
        &key[..profile.master_key_len()],
        &salt[..profile.master_salt_len()],
    )
    .expect("keys")
}

/// One input: must not panic.
pub fn run(data: &[u8]) {
    for profile in SrtpProfile::ALL {
        // Hostile input: several datagrams on one context, so replay and ROC state is
        // exercised, RTP and RTCP alike.
        let mut rx = context(profile);
        for _ in 0..2 {
            let _ = rx.unprotect_rtp(&mut data.to_vec());
            let _ = rx.unprotect_rtcp(&mut data.to_vec());
            if let Some(rest) = data.get(1..) {
                let _ = rx.unprotect_rtp(&mut rest.to_vec());
                let _ = rx.unprotect_rtcp(&mut rest.to_vec());
            }
        }

        // The input as a plain packet: whatever protect accepts, unprotect restores.
        let mut tx = context(profile);
        let mut rx = context(profile);
        let mut buf = data.to_vec();
        buf.resize(data.len() + profile.rtp_overhead(), 0);
        if let Ok(n) = tx.protect_rtp(&mut buf, data.len()) {
            assert_eq!(n, data.len() + profile.rtp_overhead());
            let plain = rx
                .unprotect_rtp(&mut buf[..n])
                .expect("own SRTP unprotects");
            assert_eq!(&buf[..plain], data);
        }
        let mut buf = data.to_vec();
        buf.resize(data.len() + profile.rtcp_overhead(), 0);
        if let Ok(n) = tx.protect_rtcp(&mut buf, data.len()) {
            assert_eq!(n, data.len() + profile.rtcp_overhead());
            let plain = rx
                .unprotect_rtcp(&mut buf[..n])
                .expect("own SRTCP unprotects");
            assert_eq!(&buf[..plain], data);
        }
        // A length past the buffer is an error, not a panic.
        let _ = tx.protect_rtp(&mut data.to_vec(), data.len() + 1);
        let _ = tx.protect_rtcp(&mut data.to_vec(), usize::MAX);
    }
}
