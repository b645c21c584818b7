//! Deterministic mutations of valid responses through the response reader (the fuzz
//! target's job in the normal suite): every truncation, every byte replaced by a few
//! interesting values, insertions at every position ([`crate::exercise`]).

use crate::exercise;

fn for_each_mutation(seed: &[u8], mut check: impl FnMut(&[u8])) {
    const REPLACEMENTS: &[u8] = &[0, b'\r', b'\n', b':', b' ', b'0', b'f', b';', 0xff];
    const INSERTIONS: &[&[u8]] = &[b"\r\n", b"\r\n\r\n", b"ffffffff", b"0\r\n\r\n", b":", b","];
    for len in 0..=seed.len() {
        check(&seed[..len]);
    }
    for i in 0..seed.len() {
        let mut m = seed.to_vec();
        for &r in REPLACEMENTS {
            m[i] = r;
            check(&m);
        }
        for ins in INSERTIONS {
            let mut m = seed.to_vec();
            m.splice(i..i, ins.iter().copied());
            check(&m);
        }
    }
}

#[test]
fn mutated_length_responses_never_panic() {
    for_each_mutation(
        b"HTTP/1.1 200 OK\r\nETag: \"a\"\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 412 P\r\nContent-Length: 0\r\n\r\n",
        exercise::response,
    );
}

#[test]
fn mutated_chunked_and_close_delimited_responses_never_panic() {
    for_each_mutation(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n",
        exercise::response,
    );
    for_each_mutation(
        b"HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\nnone",
        exercise::response,
    );
}
