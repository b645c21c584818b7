//! Deterministic mutation test: a few hundred thousand mutants of the RFC 4475 fixtures go
//! through every parser (the same checks as the cargo-fuzz target); none may panic and every
//! accepted message must print to something that parses again. Runs in CI, where the fuzzer
//! does not.

use crate::exercise::exercise_parsers;

/// xorshift64*: tiny, seedable, good enough to pick mutation sites.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        // n is never 0 at the call sites; `max(1)` keeps the modulo defined anyway.
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\r\n:;,<>\"[]%\\ \t\x00\xff=@?*/0123456789-";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = m.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                m[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                let b = INTERESTING[rng.below(INTERESTING.len())];
                m.insert(i, b);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = (1 + rng.below(8)).min(len - i);
                m.drain(i..i + n);
            }
            3 => {
                let n = rng.below(len + 1);
                m.truncate(n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = (1 + rng.below(32)).min(len - i);
                let chunk = m[i..i + n].to_vec();
                let at = rng.below(m.len() + 1);
                m.splice(at..at, chunk);
            }
            _ if len > 0 => {
                let i = rng.below(len);
                m[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            _ => {}
        }
    }
    m
}

/// REGISTERs for the local registrar's paths (`exercise` serves `example.com`): digest
/// credentials, RFC 5626 instance ids, `Contact: *`, several Contacts with expires.
const REGISTERS: &[&str] = &[
    "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5100;branch=z9hG4bKr1\r\n\
     Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=f1\r\nTo: <sip:alice@example.com>\r\n\
     Call-ID: reg-1@phone\r\nCSeq: 2 REGISTER\r\n\
     Contact: <sip:alice@127.0.0.1:5100;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-000000000001>\";reg-id=1;expires=600\r\n\
     Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"6f1ed002ab5595859014ebf0951522d9\", uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, cnonce=\"c1\", qop=auth, nc=00000001\r\n\
     Content-Length: 0\r\n\r\n",
    "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5100;branch=z9hG4bKr2\r\n\
     Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=f2\r\nTo: <sip:bob@example.com>\r\n\
     Call-ID: reg-2@phone\r\nCSeq: 7 REGISTER\r\nContact: *\r\nExpires: 0\r\n\
     Content-Length: 0\r\n\r\n",
    "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5100;branch=z9hG4bKr3\r\n\
     Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=f3\r\nTo: <sip:alice@example.com>\r\n\
     Call-ID: reg-3@phone\r\nCSeq: 1 REGISTER\r\n\
     Contact: <sip:a@10.0.0.1>;expires=30, <sip:a@10.0.0.2:5062>;q=0.5\r\nExpires: 120\r\n\
     Content-Length: 0\r\n\r\n",
];

#[test]
fn mutated_torture_messages_never_panic() {
    let mut seeds: Vec<Vec<u8>> = super::torture::cases()
        .into_iter()
        .map(|(_, b, _)| b)
        .collect();
    for r in REGISTERS {
        let parsed = super::parse(r.as_bytes(), super::Framing::Datagram);
        assert!(matches!(parsed, Ok(super::SipMessage::Request(_))), "{r}");
    }
    seeds.extend(REGISTERS.iter().map(|r| r.as_bytes().to_vec()));
    let mut rng = Rng(0x5EED_0F51_B0AA_u64);
    // Debug builds are ~10x slower; `cargo test --release` runs the full few hundred thousand.
    let rounds = if cfg!(debug_assertions) {
        50_000
    } else {
        400_000
    };
    for round in 0..rounds {
        let seed = &seeds[round % seeds.len()];
        let mutant = mutate(&mut rng, seed);
        exercise_parsers(&mutant);
    }
}
