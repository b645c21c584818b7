//! The aiortc sylkRTC client (`tests/clients/sylkrtc_peer.py`) as the end-to-end tests run
//! it: to completion (`call`, `read-frame`), or in `answer` mode in the background once it has
//! registered. It prints `EVENT <json>` per sylkRTC message and one `RESULT <json>`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::Gateway;

/// Path of the client script.
pub const SYLKRTC_CLIENT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sylkrtc_peer.py");

/// Runs the client to the end; returns its events and its RESULT.
pub fn run_sylkrtc_client<S: AsRef<OsStr>>(args: &[S]) -> (Vec<Value>, Value) {
    let out = Command::new("python3")
        .arg(SYLKRTC_CLIENT)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("python3 (run tests/run-all.sh to install the peers)");
    parse_client_output(&String::from_utf8_lossy(&out.stdout), &out.stderr)
}

/// The EVENT lines and the RESULT of the client's output; panics (with the output) when it
/// printed no RESULT.
pub fn parse_client_output(stdout: &str, stderr: &[u8]) -> (Vec<Value>, Value) {
    let events = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("EVENT "))
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| {
            panic!(
                "client gave no RESULT\nstdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(stderr)
            )
        });
    (events, result)
}

/// A client answering calls for alice@example.test, returned once it has registered.
pub struct AnsweringClient {
    child: Child,
    output: JoinHandle<String>,
}

impl AnsweringClient {
    /// Starts it against `gw` with the account's `ha1` and `extra` arguments.
    pub fn start(gw: &Gateway, ha1: &str, extra: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(SYLKRTC_CLIENT)
            .args(["answer", "--ws", &gw.ws_url(), "--account"])
            .args(["alice@example.test", "--ha1", ha1])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 (run tests/run-all.sh to install the peers)");
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let output = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "REGISTERED" {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = child.kill();
            panic!("client never registered: {:?}", output.join());
        }
        Self { child, output }
    }

    /// Waits for it to finish; asserts it exited cleanly and returns its RESULT.
    pub fn result(mut self) -> Value {
        let status = self.child.wait().expect("wait for the client");
        let out = self.output.join().expect("client output");
        assert!(status.success(), "{out}");
        let (_, result) = parse_client_output(&out, b"");
        eprintln!("client result: {result}");
        result
    }

    /// Stops it early (the test failed elsewhere).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }
}
