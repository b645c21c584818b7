//! Deterministic mutations of MSRP frames in the normal suite (the `msrp_frame` fuzz target
//! in `fuzz/` explores further): every truncation, every byte replaced by a few interesting
//! values, insertions of structural bytes at every position. Nothing may panic, the reader
//! may not invent bytes, and whatever the engine answers must itself be well-formed MSRP.

use std::time::Instant;

use engine::{Output, Rng};

use crate::connection::{MsrpConfig, MsrpConnection, MsrpTransmit, Role};
use crate::frame::{FrameReader, Parsed};
use crate::uri::MsrpUri;

fn seeds() -> Vec<Vec<u8>> {
    let path = "To-Path: msrp://127.0.0.1:2000/bob12345;tcp\r\nFrom-Path: msrp://127.0.0.1:2855/r1;tcp msrp://[::1]:1000/alice1234;tcp\r\n";
    vec![
        format!("MSRP a786hjs2 SEND\r\n{path}Message-ID: 87652491\r\nByte-Range: 1-25/50\r\nSuccess-Report: yes\r\nContent-Type: message/cpim\r\n\r\nFrom: <sip:a@x>\r\n\r\nhi\r\n-------a786hjs2+\r\n").into_bytes(),
        format!("MSRP d93kswow 200 OK\r\n{path}-------d93kswow$\r\n").into_bytes(),
        format!("MSRP dkei38sd REPORT\r\n{path}Message-ID: 12339sdqwer\r\nByte-Range: 1-106/106\r\nStatus: 000 200 OK\r\n-------dkei38sd$\r\n").into_bytes(),
        format!("MSRP 49fh AUTH\r\n{path}Authorization: Digest username=\"a\", uri=\"msrp://r;tcp\"\r\nExpires: 600\r\nUse-Path: msrp://r/1;tcp\r\n-------49fh$\r\n").into_bytes(),
    ]
}

fn for_each_mutation(seeds: &[Vec<u8>], mut check: impl FnMut(&[u8])) {
    const REPLACEMENTS: &[u8] = &[0, b'\r', b'\n', b':', b'-', b'$', b'#', b' ', b'/', 0xff];
    const INSERTIONS: &[&[u8]] = &[
        b"\r\n",
        b"\r\n\r\n",
        b"-------",
        b"-------a786hjs2$\r\n",
        b"\xc3",
        b"*",
    ];
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

/// Reads `input` fed in two pieces; returns the body bytes seen.
fn read_all(input: &[u8], split: usize) -> usize {
    let mut r = FrameReader::new(Default::default());
    let mut body = 0;
    for piece in [&input[..split], &input[split..]] {
        r.push(piece);
        loop {
            match r.read() {
                Ok(Some(Parsed::Body(b))) => body += b.len(),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
    body
}

#[test]
fn mutated_frames_never_panic_and_answers_stay_well_formed() {
    let now = Instant::now();
    let mut n = 0;
    for_each_mutation(&seeds(), |input| {
        n += 1;
        let split = input.len() / 3;
        assert!(read_all(input, split) <= input.len());
        let local = MsrpUri::parse("msrp://127.0.0.1:2000/bob12345;tcp").unwrap();
        let peer = MsrpUri::parse("msrp://[::1]:1000/alice1234;tcp").unwrap();
        let mut c = MsrpConnection::new(MsrpConfig::default(), local, Rng::seed_from_u64(n));
        c.start(now, Role::Passive, vec![peer]).unwrap();
        c.handle_connected(now);
        c.handle_data(now, input);
        loop {
            match c.poll_output() {
                Output::Transmit(MsrpTransmit::Data(frame)) => {
                    let mut r = FrameReader::new(Default::default());
                    r.push(&frame);
                    let mut ended = false;
                    while let Some(p) = r.read().expect("our own frame parses") {
                        assert!(
                            !matches!(p, Parsed::BadHead(_)),
                            "{}",
                            String::from_utf8_lossy(&frame)
                        );
                        ended |= matches!(p, Parsed::End(_));
                    }
                    assert!(ended);
                }
                Output::Timeout(_) => break,
                _ => {}
            }
        }
    });
    assert!(n > 10_000, "{n} mutations");
}
