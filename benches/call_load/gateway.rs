//! The gateway binary as a child process for the load tools (call_load, soak): a generated
//! config on free ports (started by `benches/common/gateway_process.rs`), SIGTERM (its own
//! pid only) on drop.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::gateway_process::{spawn, stop, Spawned};

/// The gateway child process; killed (by its own pid only) on drop.
pub struct Gateway {
    child: Child,
    pub ws: SocketAddr,
    pub sip: SocketAddr,
    /// Its media port range.
    pub ports: std::ops::Range<u16>,
    _dir: TempDir,
    /// Log lines that contained [`Gateway::start_keeping`]'s needle.
    #[allow(dead_code)] // soak reads it, call_load does not
    pub kept: Arc<Mutex<Vec<String>>>,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Gateway {
    /// `wrapper`: a command line the gateway runs under (split on whitespace).
    pub fn start(calls: usize, wrapper: &str) -> Gateway {
        Self::start_keeping(calls, wrapper, None)
    }

    #[allow(dead_code)]
    /// [`Gateway::start`], keeping the log lines that contain `keep` in [`Gateway::kept`].
    pub fn start_keeping(calls: usize, wrapper: &str, keep: Option<&'static str>) -> Gateway {
        // Two even/odd pairs per call (WebRTC leg + SIP audio), plus slack.
        let ports = u16::try_from(4 * calls + 64).expect("CALLS too large for one port range");
        let base = free_udp_block(ports);
        let dir = std::env::temp_dir().join(format!("sylk-call-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("gateway.toml");
        let level = std::env::var("GATEWAY_LOG").unwrap_or_else(|_| "warn".into());
        std::fs::write(
            &config,
            format!(
                "[log]\nlevel = \"{level}\"\n\
                 [websocket]\nmax_connections = {}\nping_interval = 0\n\
                 [media]\nrtp_ports = \"{base}-{}\"\nmax_calls = {}\nmax_calls_per_connection = 10\n",
                calls + 100,
                base + ports - 1,
                calls + 100
            ),
        )
        .unwrap();
        // Calls only: no message database on disk.
        let Spawned { mut child, ws, sip } = spawn(
            &config,
            wrapper,
            &["--database", ":memory:"],
            Stdio::piped(),
        );
        let stderr = child.stderr.take().unwrap();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&kept);
        std::thread::spawn(move || {
            let show = std::env::var_os("SYLK_TEST_LOG").is_some();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if show {
                    eprintln!("[gateway] {line}");
                }
                if keep.is_some_and(|k| line.contains(k)) {
                    sink.lock().unwrap().push(line);
                }
            }
        });
        Gateway {
            child,
            ws,
            sip,
            ports: base..base + ports,
            _dir: TempDir(dir),
            kept,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(5));
    }
}

/// A block of `len` UDP ports free on 127.0.0.1, below the ephemeral range (where the
/// browsers' and peers' port-0 sockets land), starting at an even port.
pub fn free_udp_block(len: u16) -> u16 {
    let mut base = 10_000u16 + (std::process::id() % 64) as u16 * 16;
    while base as u32 + len as u32 <= 32_768 {
        if let Some(busy) = (base..base + len).find(|p| UdpSocket::bind(("127.0.0.1", *p)).is_err())
        {
            base = (busy + 2) & !1;
            continue;
        }
        return base;
    }
    panic!("no free block of {len} UDP ports below 32768 on 127.0.0.1");
}
