//! The gateway binary as a benchmark's child process, the one start-up every bench shares:
//! run under an optional wrapper command (`GATEWAY_WRAPPER`: `nice -n -15`, `heaptrack ...`),
//! with the bench's config file, WebSocket and SIP on free ports of 127.0.0.1, the addresses
//! read from the `listening ...` lines it prints; stopped by SIGTERM to its own pid only.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started gateway.
pub struct Spawned {
    /// The process (stderr as asked; stdout drained by a thread).
    pub child: Child,
    /// The WebSocket listener.
    pub ws: SocketAddr,
    /// The SIP listener (UDP and TCP).
    pub sip: SocketAddr,
}

/// Where the gateway's log goes when the bench does not read it: the bench's stderr with
/// `SYLK_TEST_LOG` set, else nowhere.
pub fn log_stdio() -> Stdio {
    if std::env::var_os("SYLK_TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// Starts the binary with `--config config`, WebSocket and SIP on port 0 of 127.0.0.1 (no
/// WSS) and `args`, under `wrapper` (a command line split on whitespace; empty for none),
/// and waits until it listens. Panics, with its stderr when piped, if it exits first.
pub fn spawn(config: &Path, wrapper: &str, args: &[&str], stderr: Stdio) -> Spawned {
    let mut words = wrapper.split_whitespace();
    let bin = env!("CARGO_BIN_EXE_sylk-gateway");
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .arg("--config")
        .arg(config)
        .args(["--ws-listen", "127.0.0.1:0", "--wss-listen", "off"])
        .args(["--sip-listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start sylk-gateway");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut ws, mut sip) = (None, None);
    while ws.is_none() || sip.is_none() {
        let Some(Ok(line)) = lines.next() else {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("gateway exited before listening: {err}");
        };
        ws = ws.or_else(|| {
            line.strip_prefix("listening ws://")?
                .strip_suffix("/webrtcgateway/ws")?
                .parse()
                .ok()
        });
        sip = sip.or_else(|| line.strip_prefix("listening sip udp+tcp ")?.parse().ok());
    }
    std::thread::spawn(move || for _ in lines {});
    Spawned {
        child,
        ws: ws.unwrap(),
        sip: sip.unwrap(),
    }
}

/// SIGTERM to `child`'s own pid (its drain runs).
pub fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// SIGTERM, then waits up to `grace` for the exit before SIGKILL.
pub fn stop(child: &mut Child, grace: Duration) {
    sigterm(child);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
