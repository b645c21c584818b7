//! Deterministic mutations for the parsers' tests in the normal suite (the fuzz targets in
//! `fuzz/` explore further): every truncation, every byte replaced by a few interesting
//! values, and insertions of structural bytes at every position.

/// A valid CPIM message with IMDN headers and a multi-line body.
pub(crate) fn cpim_seed() -> Vec<u8> {
    crate::cpim::CpimBuilder::new(
        crate::cpim::CpimAddress {
            display_name: Some("A".into()),
            uri: "sip:a@x".into(),
        },
        crate::cpim::CpimAddress {
            display_name: None,
            uri: "sip:b@y".into(),
        },
        "message/imdn+xml",
        imdn_seed(),
    )
    .datetime("2024-01-02T03:04:05Z")
    .message_id("m1")
    .disposition_notification(&["positive-delivery"])
    .build()
}

/// A valid IMDN document.
pub(crate) fn imdn_seed() -> Vec<u8> {
    crate::imdn::Imdn {
        message_id: "m1".into(),
        datetime: "2024-01-02T03:04:05Z".into(),
        recipient_uri: Some("sip:b@y".into()),
        original_recipient_uri: None,
        kind: crate::imdn::NotificationKind::Display,
        status: crate::imdn::ImdnStatus::Displayed,
    }
    .to_xml()
    .into_bytes()
}

/// Calls `check` with every mutation of every seed.
pub(crate) fn for_each_mutation(seeds: &[Vec<u8>], mut check: impl FnMut(&[u8])) {
    const REPLACEMENTS: &[u8] = &[0, b'\r', b'\n', b':', b'<', b'>', b'"', b'.', b' ', 0xff];
    const INSERTIONS: &[&[u8]] = &[b"\r\n", b"\r\n\r\n", b"<", b"&amp;", b"NS: ", b"\xc3"];
    for seed in seeds {
        for len in 0..=seed.len() {
            check(&seed[..len]);
        }
        for i in 0..seed.len() {
            let mut m = seed.clone();
            for &r in REPLACEMENTS {
                m[i] = r;
                check(&m);
            }
            for ins in INSERTIONS {
                let mut m = seed.clone();
                m.splice(i..i, ins.iter().copied());
                check(&m);
            }
        }
    }
}
