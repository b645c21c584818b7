//! Invariant checks of the response reader, shared by the fuzz target body
//! (`fuzz/targets/xcap_response.rs`) and the deterministic mutation test. They panic, by
//! design, only on a broken invariant: bad input must come back as an error, buffers stay
//! within the limits, and reading byte by byte gives what reading at once gives.

use crate::response::{ResponseParser, MAX_CHUNK_LINE, MAX_HEAD};

const LIMIT: usize = 4096;

/// Bytes from a server: never a panic, bounded output, split-invariant.
pub fn response(data: &[u8]) {
    let whole = read(data, data.len().max(1));
    let split = read(data, 7);
    assert_eq!(whole, split, "reading in pieces differs");
}

/// Every response read (status and body) and how it ended, `data` fed `step` bytes at a
/// time, then the end of the connection.
fn read(data: &[u8], step: usize) -> (Vec<(u16, Vec<u8>)>, bool) {
    let mut p = ResponseParser::new(LIMIT);
    let mut out = Vec::new();
    for piece in data.chunks(step) {
        let mut input = piece;
        loop {
            match p.push(input) {
                Ok(Some(r)) => {
                    assert!(r.body.len() <= LIMIT);
                    out.push((r.status, r.body));
                    input = &[];
                }
                Ok(None) => break,
                Err(_) => return (out, false),
            }
        }
        assert!(p.buffered() <= LIMIT + MAX_HEAD + MAX_CHUNK_LINE + step);
    }
    match p.finish() {
        Ok(Some(r)) => {
            out.push((r.status, r.body));
            (out, true)
        }
        Ok(None) => (out, true),
        Err(_) => (out, false),
    }
}
