// Fuzzes MSRP input (RFC 4975): the frame reader on arbitrary bytes split at an arbitrary
// point (the first byte picks it), and a passive session engine fed the same bytes. No input
// may panic, the reader may not invent body bytes, and every frame the engine answers with
// must parse cleanly.
//
// The body of fuzz target `msrp_frame`, shared by the libFuzzer binary
// (`fuzz/fuzz_targets/msrp_frame.rs`) and the stable harness (`tests/fuzz_stable.rs`).

use std::time::Instant;

use engine::{Output, Rng};
use msrp::frame::{FrameReader, Parsed};
use msrp::{MsrpConfig, MsrpConnection, MsrpTransmit, MsrpUri, Role};

/// One input: must not panic.
pub fn run(data: &[u8]) {
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut r = FrameReader::new(Default::default());
    let mut body = 0;
    for piece in [&data[..split], &data[split..]] {
        r.push(piece);
        while let Ok(Some(p)) = r.read() {
            if let Parsed::Body(b) = p {
                body += b.len();
            }
        }
    }
    assert!(body <= data.len());

    let now = Instant::now();
    let local = MsrpUri::parse("msrp://127.0.0.1:2000/bob12345;tcp").unwrap();
    let peer = MsrpUri::parse("msrp://127.0.0.1:1000/alice1234;tcp").unwrap();
    let mut c = MsrpConnection::new(MsrpConfig::default(), local, Rng::seed_from_u64(1));
    let _ = c.start(now, Role::Passive, vec![peer]);
    c.handle_connected(now);
    c.handle_data(now, &data[..split]);
    c.handle_data(now, &data[split..]);
    loop {
        match c.poll_output() {
            Output::Transmit(MsrpTransmit::Data(frame)) => {
                let mut r = FrameReader::new(Default::default());
                r.push(&frame);
                while let Some(p) = r.read().expect("our own frames parse") {
                    assert!(!matches!(p, Parsed::BadHead(_)));
                }
            }
            Output::Timeout(_) => break,
            _ => {}
        }
    }
}
