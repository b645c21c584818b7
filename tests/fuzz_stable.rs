//! Fuzzing on the stable toolchain (issue 16 item 8): every cargo-fuzz target's body
//! (`fuzz/targets/*.rs`, the very functions the libFuzzer binaries in `fuzz/fuzz_targets/`
//! call) runs over its corpus kept in the repo (`fuzz/corpus/<target>/`), then over a fixed
//! budget of fresh mutations of it: bit flips, byte changes, insertions, deletions, repeats
//! and splices, from a seeded generator, so a run is repeatable and a failure reproducible.
//!
//! A panic fails the test and the input is written to `target/fuzz-crashes/<target>-<n>`;
//! replay it with `cargo +nightly fuzz run <target> <file>` or by adding it to the corpus.
//!
//! `SYLK_FUZZ_MUTATIONS` sets the mutations per target (default 20,000, within a time budget
//! of `SYLK_FUZZ_SECONDS` per target, default 20); `SYLK_FUZZ_SEED` the seed. The long
//! campaign is coverage-guided libFuzzer on nightly:
//! `cd fuzz && cargo +nightly fuzz run <target> corpus/<target> -- -max_total_time=3600`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../fuzz/targets/call_fields.rs"]
mod call_fields;
#[path = "../fuzz/targets/cpim.rs"]
mod cpim;
#[path = "../fuzz/targets/dns_message.rs"]
mod dns_message;
#[path = "../fuzz/targets/imdn.rs"]
mod imdn;
#[path = "../fuzz/targets/msrp_frame.rs"]
mod msrp_frame;
#[path = "../fuzz/targets/pidf.rs"]
mod pidf;
#[path = "../fuzz/targets/pres_rules.rs"]
mod pres_rules;
#[path = "../fuzz/targets/resource_lists.rs"]
mod resource_lists;
#[path = "../fuzz/targets/rlmi.rs"]
mod rlmi;
#[path = "../fuzz/targets/rtp_demux.rs"]
mod rtp_demux;
#[path = "../fuzz/targets/sdp_translate.rs"]
mod sdp_translate;
#[path = "../fuzz/targets/sip_msg.rs"]
mod sip_msg;
#[path = "../fuzz/targets/srtp_unprotect.rs"]
mod srtp_unprotect;
#[path = "../fuzz/targets/sylkrtc_request.rs"]
mod sylkrtc_request;
#[path = "../fuzz/targets/webrtc_description.rs"]
mod webrtc_description;
#[path = "../fuzz/targets/ws_frames.rs"]
mod ws_frames;
#[path = "../fuzz/targets/ws_upgrade.rs"]
mod ws_upgrade;
#[path = "../fuzz/targets/xcap_response.rs"]
mod xcap_response;

/// Largest mutated input (libFuzzer's default `-max_len` is 4096).
const MAX_LEN: usize = 8192;

/// xorshift64*: a few lines, no dependency, and the same sequence on every machine.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One to four edits of `input`, sometimes spliced with `other`.
    fn mutate(&mut self, input: &[u8], other: &[u8]) -> Vec<u8> {
        const INTERESTING: [u8; 10] = [0, 1, 0x7f, 0x80, 0xff, b'\r', b'\n', b' ', b':', b';'];
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let len = out.len();
            match self.below(8) {
                0 if len > 0 => {
                    let i = self.below(len);
                    out[i] ^= 1 << self.below(8);
                }
                1 if len > 0 => {
                    let i = self.below(len);
                    out[i] = INTERESTING[self.below(INTERESTING.len())];
                }
                2 => {
                    let i = self.below(len + 1);
                    out.insert(i, self.next() as u8);
                }
                3 if len > 0 => {
                    let i = self.below(len);
                    let n = self.below((len - i).min(64)) + 1;
                    out.drain(i..i + n);
                }
                4 if len > 0 => {
                    // Repeat a chunk (lengths, nesting, pipelining).
                    let i = self.below(len);
                    let n = self.below((len - i).min(64)) + 1;
                    let chunk: Vec<u8> = out[i..i + n].to_vec();
                    for _ in 0..=self.below(8) {
                        out.splice(i..i, chunk.iter().copied());
                    }
                }
                5 if !other.is_empty() => {
                    // Splice: our head, the other input's tail.
                    let cut = self.below(len + 1);
                    let from = self.below(other.len());
                    out.truncate(cut);
                    out.extend_from_slice(&other[from..]);
                }
                6 if len > 0 => {
                    // Overwrite with a decimal number (Content-Length, CSeq, ports).
                    let i = self.below(len);
                    let digits = [
                        b"0".as_ref(),
                        b"4294967296",
                        b"65536",
                        b"-1",
                        b"99999999999",
                    ];
                    let d = digits[self.below(digits.len())];
                    let end = (i + d.len()).min(len);
                    out.splice(i..end, d.iter().copied());
                }
                _ if len > 0 => out.truncate(self.below(len)),
                _ => out.push(self.next() as u8),
            }
        }
        out.truncate(MAX_LEN);
        out
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    assert!(!inputs.is_empty(), "empty corpus {}", dir.display());
    inputs
}

/// Runs `run` over `target`'s corpus and its mutations; panics name the saved input.
fn fuzz(target: &str, run: fn(&[u8])) {
    let mutations: usize = env_or("SYLK_FUZZ_MUTATIONS", 20_000);
    let budget = Duration::from_secs(env_or("SYLK_FUZZ_SECONDS", 20));
    let seed: u64 = env_or("SYLK_FUZZ_SEED", 0x5eed_1605);
    let inputs = corpus(target);
    let crash = |input: &[u8], n: usize| -> ! {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{target}-{n}"));
        let _ = std::fs::write(&file, input);
        panic!("{target}: input {n} panicked; saved to {}", file.display());
    };
    for (n, input) in inputs.iter().enumerate() {
        if catch_unwind(AssertUnwindSafe(|| run(input))).is_err() {
            crash(input, n);
        }
    }
    // Distinct targets get distinct streams from one seed.
    let salt = target
        .bytes()
        .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let mut m = Mutator((seed ^ salt) | 1);
    let start = Instant::now();
    let mut done = 0;
    while done < mutations && start.elapsed() < budget {
        let input = &inputs[m.below(inputs.len())];
        let other = &inputs[m.below(inputs.len())];
        let mutated = m.mutate(input, other);
        if catch_unwind(AssertUnwindSafe(|| run(&mutated))).is_err() {
            crash(&mutated, inputs.len() + done);
        }
        done += 1;
    }
    eprintln!(
        "fuzz {target}: {} corpus inputs + {done} mutations in {:.1} s, 0 crashes",
        inputs.len(),
        start.elapsed().as_secs_f64()
    );
}

/// The harness itself: an input that panics is found, reported and saved.
#[test]
fn a_panicking_target_fails_the_run() {
    fn fragile(data: &[u8]) {
        assert!(!data.windows(2).any(|w| w == b"\r\r"), "found it");
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(|| fuzz("ws_upgrade", fragile));
    std::panic::set_hook(hook);
    let message = outcome.expect_err("the harness must fail on a panicking input");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("panicked; saved to"), "{text}");
}

#[test]
fn fuzz_dns_message() {
    fuzz("dns_message", dns_message::run);
}

#[test]
fn fuzz_rtp_demux() {
    fuzz("rtp_demux", rtp_demux::run);
}

#[test]
fn fuzz_sdp_translate() {
    fuzz("sdp_translate", sdp_translate::run);
}

#[test]
fn fuzz_sip_msg() {
    fuzz("sip_msg", sip_msg::run);
}

#[test]
fn fuzz_srtp_unprotect() {
    fuzz("srtp_unprotect", srtp_unprotect::run);
}

#[test]
fn fuzz_call_fields() {
    fuzz("call_fields", call_fields::run);
}

#[test]
fn fuzz_cpim() {
    fuzz("cpim", cpim::run);
}

#[test]
fn fuzz_imdn() {
    fuzz("imdn", imdn::run);
}

#[test]
fn fuzz_msrp_frame() {
    fuzz("msrp_frame", msrp_frame::run);
}

#[test]
fn fuzz_sylkrtc_request() {
    fuzz("sylkrtc_request", sylkrtc_request::run);
}

#[test]
fn fuzz_webrtc_description() {
    fuzz("webrtc_description", webrtc_description::run);
}

#[test]
fn fuzz_ws_frames() {
    fuzz("ws_frames", ws_frames::run);
}

#[test]
fn fuzz_ws_upgrade() {
    fuzz("ws_upgrade", ws_upgrade::run);
}

#[test]
fn fuzz_xcap_response() {
    fuzz("xcap_response", xcap_response::run);
}

#[test]
fn fuzz_pidf() {
    fuzz("pidf", pidf::run);
}

#[test]
fn fuzz_resource_lists() {
    fuzz("resource_lists", resource_lists::run);
}

#[test]
fn fuzz_pres_rules() {
    fuzz("pres_rules", pres_rules::run);
}

#[test]
fn fuzz_rlmi() {
    fuzz("rlmi", rlmi::run);
}

/// `(name, version)` of every `[[package]]` in a Cargo.lock.
fn locked_packages(lock: &str) -> Vec<(String, String)> {
    let value = |line: &str, key: &str| {
        line.strip_prefix(key)
            .map(|v| v.trim_matches(|c| c == '"' || c == ' ').to_owned())
    };
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = value(line, "name =") {
            name = Some(n);
        } else if let (Some(v), Some(n)) = (value(line, "version ="), name.take()) {
            out.push((n, v));
        }
    }
    out
}

/// `cargo fuzz build` resolves the fuzz workspace on its own (`fuzz/` is a separate
/// workspace, so the main build never compiles libFuzzer): its lockfile is kept in the repo
/// so that it builds the versions the main build tests, and must name every crate of ours
/// that `fuzz/Cargo.toml` depends on (a missing one is resolved afresh, to whatever is
/// newest, on the next fuzz build).
#[test]
fn the_fuzz_lockfile_pins_the_main_builds_versions_and_every_fuzzed_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let main = locked_packages(&read("Cargo.lock"));
    let fuzz = locked_packages(&read("fuzz/Cargo.lock"));
    for (name, version) in &fuzz {
        let same_name: Vec<&String> = main
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        assert!(
            same_name.is_empty() || same_name.contains(&version),
            "fuzz/Cargo.lock has {name} {version}, the main Cargo.lock {same_name:?}: \
             copy Cargo.lock to fuzz/ and run `cargo metadata` there"
        );
    }
    let manifest = read("fuzz/Cargo.toml");
    let ours: Vec<&str> = manifest
        .lines()
        .filter(|l| l.contains("path = \".."))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        ours.len() >= 8,
        "fuzz/Cargo.toml's path dependencies: {ours:?}"
    );
    for krate in ours {
        assert!(
            fuzz.iter().any(|(n, _)| n == krate),
            "fuzz/Cargo.lock lacks {krate}, a dependency of fuzz/Cargo.toml"
        );
    }
    // Every target the libFuzzer build knows has its stable body and corpus here.
    for entry in std::fs::read_dir(root.join("fuzz/fuzz_targets")).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let target = file.trim_end_matches(".rs");
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{file}\"")),
            "fuzz/Cargo.toml has no [[bin]] for {file}"
        );
        assert!(root.join("fuzz/targets").join(&file).exists(), "{target}");
        assert!(root.join("fuzz/corpus").join(target).is_dir(), "{target}");
    }
}
