//! Shared harness for tests that run the real `sylk-gateway` binary on 127.0.0.1.
//!
//! The gateway is started on port 0 and reports the addresses it bound on stdout, so tests
//! never race for ports. Only the process a test started is stopped, by its pid.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

pub mod client;
pub mod conn;
pub mod peers;

/// A running gateway.
pub struct Gateway {
    child: Option<Child>,
    pub ws: SocketAddr,
    pub wss: Option<SocketAddr>,
    /// SIP UDP+TCP address.
    pub sip: SocketAddr,
    /// The separate metrics listener, when the configuration or the flags ask for one.
    pub metrics: Option<SocketAddr>,
    /// Every line the gateway wrote on stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
    pub dir: tempdir::TempDir,
    /// Lines the gateway wrote to stderr so far (its log).
    pub log_count: Arc<std::sync::atomic::AtomicU64>,
    /// The census line it logs when a shutdown starts (what it still holds).
    census: Arc<std::sync::Mutex<Option<String>>>,
}

pub mod tempdir {
    //! A tiny temporary directory (removed on drop) so tests need no extra crate.
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let p = std::env::temp_dir().join(format!(
                "sylk-gateway-test-{tag}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Gateway {
    /// Starts the binary with `config` (TOML) plus `args`, on 127.0.0.1 port 0 for ws and wss.
    pub fn start(config: &str, args: &[&str]) -> Gateway {
        Gateway::start_with_env(config, args, &[])
    }

    /// [`Gateway::start`] with `env` added to the gateway's environment.
    pub fn start_with_env(config: &str, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let dir = tempdir::TempDir::new("gw");
        let config_path = dir.path().join("gateway.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sylk-gateway"))
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&config_path)
            .args(["--ws-listen", "127.0.0.1:0", "--wss-listen", "127.0.0.1:0"])
            .args(["--sip-listen", "127.0.0.1:0"])
            .args(if args.contains(&"--database") {
                Vec::new()
            } else {
                // Each gateway its own message database, removed with its directory.
                vec![
                    "--database".to_owned(),
                    dir.path().join("messages.sqlite").display().to_string(),
                ]
            })
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sylk-gateway");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut ws, mut wss, mut sip, mut metrics) = (None, None, None, None);
        let wants_metrics =
            config.contains("[metrics]") || args.iter().any(|a| a.starts_with("--metrics-listen"));
        while ws.is_none() || wss.is_none() || sip.is_none() || (wants_metrics && metrics.is_none())
        {
            let line = lines
                .next()
                .expect("gateway exited before listening")
                .unwrap();
            let addr = |l: &str, scheme: &str| -> Option<SocketAddr> {
                l.strip_prefix(&format!("listening {scheme}://"))?
                    .strip_suffix("/webrtcgateway/ws")?
                    .parse()
                    .ok()
            };
            ws = ws.or_else(|| addr(&line, "ws"));
            wss = wss.or_else(|| addr(&line, "wss"));
            sip = sip.or_else(|| line.strip_prefix("listening sip udp+tcp ")?.parse().ok());
            metrics = metrics.or_else(|| {
                line.strip_prefix("listening metrics http://")?
                    .strip_suffix("/metrics")?
                    .parse()
                    .ok()
            });
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let stderr = child.stderr.take().unwrap();
        let log_count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = Arc::clone(&log_count);
        let census = Arc::new(std::sync::Mutex::new(None));
        let census_sink = Arc::clone(&census);
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some((_, c)) = line.split_once("reactor: census ") {
                    *census_sink.lock().unwrap() = Some(c.to_owned());
                }
                if std::env::var_os("SYLK_TEST_LOG").is_some() {
                    eprintln!("[gateway] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        Gateway {
            child: Some(child),
            ws: ws.unwrap(),
            wss,
            sip: sip.unwrap(),
            metrics,
            log,
            dir,
            log_count,
            census,
        }
    }

    /// The stderr lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle` (panics after `timeout`).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log_lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {timeout:?}:\n{}",
                self.log_lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (e.g. "TERM", "HUP") to our child.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid} failed");
    }

    /// Waits up to `timeout` for our child to exit; `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("already stopped");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM to our child and waits (bounded) for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("already stopped");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("gateway did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERMs the gateway and returns what its census said it still held, as the
    /// `name=count` pairs that are not zero (empty: nothing leaked).
    pub fn held_at_shutdown(&mut self) -> Vec<String> {
        let status = self.terminate();
        assert!(status.success(), "gateway exit: {status}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(c) = self.census.lock().unwrap().clone() {
                return c
                    .split_whitespace()
                    .filter(|kv| !kv.ends_with("=0"))
                    .map(str::to_owned)
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "no census line in the gateway's log"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/webrtcgateway/ws", self.ws)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub type Client = WebSocket<TcpStream>;

/// Connects over ws:// offering `protocols`; returns the socket and the chosen subprotocol.
pub fn connect(gw: &Gateway, protocols: &str) -> (Client, Option<String>) {
    let mut req = gw.ws_url().into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(protocols).unwrap(),
    );
    let stream = TcpStream::connect(gw.ws).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (ws, resp) = tungstenite::client(req, stream).expect("handshake");
    let proto = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    (ws, proto)
}

/// Connects with sylkRTC-2 and consumes the ready event.
pub fn connect_v2(gw: &Gateway) -> Client {
    let (mut ws, _) = connect(gw, "sylkRTC-2");
    assert_eq!(
        recv_json(&mut ws),
        serde_json::json!({"sylkrtc":"ready-event"})
    );
    ws
}

/// The next text message as JSON (fails after the read timeout).
pub fn recv_json<S: Read + Write>(ws: &mut WebSocket<S>) -> Value {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(&t).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

pub fn send_json<S: Read + Write>(ws: &mut WebSocket<S>, v: &Value) {
    ws.send(Message::Text(v.to_string().into())).unwrap();
}

/// Sends a request and returns its reply (asserting the transaction matches).
pub fn call<S: Read + Write>(ws: &mut WebSocket<S>, v: Value) -> Value {
    let tx = v["transaction"].as_str().unwrap().to_owned();
    send_json(ws, &v);
    let reply = recv_json(ws);
    assert_eq!(reply["transaction"], tx, "reply out of order: {reply}");
    reply
}

/// A raw HTTP exchange: sends `request`, returns everything until the server closes.
pub fn raw_http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A plain HTTP/1.1 request to `addr`: `(status, head, body)`.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let text = raw_http(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    );
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, head.to_owned(), body.to_owned())
}

/// The value of the sample `name{labels}` (labels exactly as rendered, e.g.
/// `direction="outgoing",state="established"`; empty for none) in a Prometheus exposition.
pub fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A rustls client config trusting only the repo's dev certificate.
pub fn dev_tls_client() -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/certs/localhost.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub const HA1: &str = "0123456789abcdef0123456789abcdef";
