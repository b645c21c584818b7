//! Real SIP peers for integration tests: Kamailio (registrar + proxy), SIPp (scenario-driven
//! UAS/UAC with RTP echo) and baresip (a registered, auto-answering phone), all on 127.0.0.1.
//!
//! Every peer gets its own run directory (configs, DB, logs, SIPp message traces) and ports
//! chosen free at start, so tests run in parallel without sharing state. Each peer is one child
//! process of the test; `Drop` signals exactly that pid (SIGTERM, then SIGKILL after a grace
//! period) and reaps it. The children are started through `setpriv --pdeathsig TERM`, so they
//! also stop when the test process dies without unwinding (aborted or killed run). Caveat of
//! that kernel feature: the signal fires when the *thread* that spawned the peer exits, so
//! start a peer on the thread that uses it (the test's own thread), not in a helper thread.
//!
//! Every wait is bounded and fails the test with the tail of the peer's log. When a test
//! panics, the run directories of its peers are kept (their paths are printed) for debugging;
//! otherwise they are removed.
//!
//! A missing peer binary fails the test with a hint to run `tests/run-all.sh`, which installs
//! the Debian packages of `tests/peers/requirements.deb`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// SIP domain (= digest realm) of every Kamailio started here.
pub const DOMAIN: &str = "example.test";

/// The accounts of `tests/peers/kamailio/users.txt` (user, password). Kamailio stores only
/// their HA1; SIPp and baresip need the plain password.
pub const USERS: &[(&str, &str)] = &[
    ("alice", "alicepass"),
    ("bob", "bobpass"),
    ("carol", "carolpass"),
];

/// The password of a test account of [`USERS`].
pub fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no test account {user:?} (see tests/peers/kamailio/users.txt)"))
}

/// `tests/peers` of this checkout.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

// ---------------------------------------------------------------------------------------------
// Free ports

/// Ports handed out by this process: a port is never handed out twice, even after the peer
/// that got it has released it (a later test might otherwise race with a lingering socket).
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// Candidates below the kernel's ephemeral range, so no `bind(port 0)` (the gateway under
/// test, SIPp's UAC, libre's DNS socket, other engineers' tests) can be handed the same port
/// between our probe and the peer's bind. The probe binds 127.0.0.1:port to check it is free.
fn port_candidates() -> impl Iterator<Item = u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (start, end) = if low > 12000 {
        (10000u32, low)
    } else {
        (low + 1000, 60000) // unusual range: fall back to ports above its low end
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut x = (u64::from(nanos) << 16) ^ u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    (0..2000).map(move |_| {
        // xorshift64: cheap, and different per process and call
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (start + (x % u64::from(end - start)) as u32) as u16
    })
}

/// Finds a block of `len` consecutive ports starting at a multiple of `align` for which
/// `free(port)` holds, and records them as handed out.
fn find_ports(len: u16, align: u16, free: impl Fn(u16) -> bool) -> u16 {
    let mut taken = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for cand in port_candidates() {
        let base = cand - cand % align;
        let Some(last) = base.checked_add(len - 1) else {
            continue;
        };
        let ports = base..=last;
        if ports.clone().any(|p| taken.contains(&p)) || !ports.clone().all(&free) {
            continue;
        }
        taken.extend(ports);
        return base;
    }
    panic!("no free block of {len} ports on 127.0.0.1");
}

fn udp_free(p: u16) -> bool {
    UdpSocket::bind(localhost(p)).is_ok()
}

fn tcp_free(p: u16) -> bool {
    TcpListener::bind(localhost(p)).is_ok()
}

/// A UDP port free on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    find_ports(1, 1, udp_free)
}

/// A TCP port free on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    find_ports(1, 1, tcp_free)
}

/// A port free on 127.0.0.1 for both UDP and TCP (a SIP listener).
pub fn free_port_pair() -> u16 {
    find_ports(1, 1, |p| udp_free(p) && tcp_free(p))
}

/// The first of `len` consecutive UDP ports free on 127.0.0.1, starting at an even port (RTP
/// ranges; RTP on the even port, RTCP and SIPp's second echo socket above it).
pub fn free_udp_range(len: u16) -> u16 {
    find_ports(len, 2, udp_free)
}

// ---------------------------------------------------------------------------------------------
// Processes, run directories, requirements

/// Fails the test unless `program` is on PATH.
pub fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed: run tests/run-all.sh, which installs the test peers \
         listed in tests/peers/requirements.deb"
    );
}

/// A per-peer temporary directory: removed on drop, kept (and its path printed) when the test
/// is panicking so the logs can be read.
pub struct RunDir(PathBuf);

impl RunDir {
    pub fn new(tag: &str) -> RunDir {
        static SEQ: Mutex<u32> = Mutex::new(0);
        let seq = {
            let mut s = SEQ.lock().unwrap_or_else(|e| e.into_inner());
            *s += 1;
            *s
        };
        let p = std::env::temp_dir().join(format!(
            "sylk-peer-{tag}-{}-{seq}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        RunDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("peer run dir kept: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The last `n` lines of a file (for failure messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// One child process with stdout+stderr in `log`; stopped (TERM, then KILL) and reaped on
/// drop. Only this pid is ever signalled.
struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// The write end of the peer's stdin: a pipe that stays open and silent (baresip's
    /// stdio UI needs a pollable stdin; /dev/null is not).
    _stdin: Option<std::process::ChildStdin>,
}

impl Proc {
    /// Spawns `program args` in `cwd` under `setpriv --pdeathsig TERM` (same pid: setpriv
    /// execs the program).
    fn spawn(name: &str, program: &str, args: &[String], cwd: &Path, log: PathBuf) -> Proc {
        require("setpriv");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "TERM", "--", program])
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({program}): {e}"));
        let mut child = child;
        Proc {
            name: name.to_owned(),
            _stdin: child.stdin.take(),
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The exit code if the process has exited (-signal if killed by a signal).
    fn exited(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let status = self.child.as_mut()?.try_wait().unwrap()?;
        Some(
            status
                .code()
                .unwrap_or_else(|| -status.signal().unwrap_or(0)),
        )
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{}: {what}\n--- last lines of {} ---\n{}",
            self.name,
            self.log.display(),
            tail(&self.log, 40)
        )
    }

    /// Waits for the exit; fails the test after `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(code) = self.exited() {
                return code;
            }
            if Instant::now() > deadline {
                self.fail(&format!("did not exit within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM to our pid, SIGKILL after `grace`, then reap.
    fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Polls `check` every 10 ms until it returns `Some`, or `timeout`.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Kamailio

/// Options of [`Kamailio::start`].
#[derive(Clone, Debug, Default)]
pub struct KamailioOpts {
    /// Challenge INVITE/MESSAGE/SUBSCRIBE/PUBLISH from local users with 407.
    pub proxy_auth: bool,
    /// Route to the real source address of clients whose Via does not match it.
    pub nat: bool,
    /// Also listen for XCAP over HTTP (TCP) on a free port.
    pub xcap: bool,
    /// Enforce the presentities' pres-rules (presence_xml `force_active` 0): a watcher no
    /// rule allows stays pending, `block` refuses it.
    pub pres_rules: bool,
    /// Load the resource list server (rls, pua): list SUBSCRIBEs to a service of the
    /// watcher's `rls-services` document get RLMI NOTIFYs.
    pub rls: bool,
    /// Keep the Path of REGISTERs and route through it (RFC 3327; scale-out).
    pub path: bool,
    /// Gateway instances (SIP addresses) taking MESSAGEs for users with no live binding
    /// into their shared store (the dispatcher module; scale-out).
    pub message_store: Vec<SocketAddr>,
    /// UDP worker processes (default: the cfg's 2). One keeps the order in which a peer's
    /// datagrams arrive: two workers may forward a response and a request that followed it
    /// in the other order.
    pub udp_workers: Option<u32>,
    /// Where Kamailio keeps its tables (subscribers, presence, XCAP documents, RLS state).
    pub database: KamailioDb,
}

/// Kamailio's database in the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KamailioDb {
    /// A SQLite file in the run dir (no server to start).
    #[default]
    Sqlite,
    /// A throwaway PostgreSQL cluster ([`Postgres`]) started with Kamailio and stopped
    /// after it (`db_postgres`; the tables made again at every start).
    Postgres,
}

/// A running Kamailio: registrar with digest auth against HA1 (users of [`USERS`], domain
/// [`DOMAIN`]), proxy with location lookup and record-route, presence; UDP and TCP on the same
/// free port of 127.0.0.1.
pub struct Kamailio {
    proc: Proc,
    port: u16,
    xcap_port: Option<u16>,
    ha1: Vec<(String, String)>,
    dir: RunDir,
    opts: KamailioOpts,
    /// With [`KamailioDb::Postgres`]: its server (dropped after `proc`, so Kamailio stops
    /// first) and URL.
    pg: Option<(Postgres, String)>,
}

impl Kamailio {
    /// Starts Kamailio with a fresh DB in its own run dir and waits (10 s at most) until it
    /// answers OPTIONS over UDP and accepts TCP connections.
    pub fn start(opts: KamailioOpts) -> Kamailio {
        require("kamailio");
        require("sqlite3");
        // A port can still be taken by someone else between our probe and Kamailio's bind
        // (other test processes on this machine): retry with new ports in that case.
        let mut pg = (opts.database == KamailioDb::Postgres).then(|| {
            let pg = Postgres::start();
            let url = pg.url();
            (pg, url)
        });
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start(&opts, pg.as_ref().map(|(_, url)| url.as_str())) {
                Ok(mut k) => {
                    k.pg = pg.take();
                    return k;
                }
                Err(log) => last_log = log,
            }
        }
        panic!("kamailio could not bind its ports 3 times; last log:\n{last_log}")
    }

    /// `Err(log tail)` when a port was taken meanwhile; other failures fail the test.
    fn try_start(opts: &KamailioOpts, pg_url: Option<&str>) -> Result<Kamailio, String> {
        let dir = RunDir::new("kamailio");
        let port = free_port_pair();
        let xcap_port = opts.xcap.then(free_tcp_port);
        let proc = Self::spawn_proc(opts, dir.path(), port, xcap_port, pg_url);
        let mut k = Kamailio {
            proc,
            port,
            xcap_port,
            ha1: Vec::new(),
            dir,
            opts: opts.clone(),
            pg: None,
        };
        k.wait_ready()?;
        let users = read_lossy(&k.dir.path().join("users.ha1"));
        k.ha1 = users
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(u, h)| (u.to_owned(), h.to_owned()))
            .collect();
        Ok(k)
    }

    fn spawn_proc(
        opts: &KamailioOpts,
        dir: &Path,
        port: u16,
        xcap_port: Option<u16>,
        pg_url: Option<&str>,
    ) -> Proc {
        let script = peers_dir().join("kamailio/run.sh");
        let mut cmd_env = vec![
            ("KAM_RUN", dir.display().to_string()),
            ("KAM_PORT", port.to_string()),
            ("KAM_DOMAIN", DOMAIN.to_owned()),
        ];
        if let Some(x) = xcap_port {
            cmd_env.push(("XCAP_PORT", x.to_string()));
        }
        if opts.proxy_auth {
            cmd_env.push(("KAM_PROXY_AUTH", "1".into()));
        }
        if opts.nat {
            cmd_env.push(("KAM_NAT", "1".into()));
        }
        if opts.pres_rules {
            cmd_env.push(("KAM_PRES_RULES", "1".into()));
        }
        if opts.rls {
            cmd_env.push(("KAM_RLS", "1".into()));
        }
        if opts.path {
            cmd_env.push(("KAM_PATH", "1".into()));
        }
        if let Some(n) = opts.udp_workers {
            cmd_env.push(("KAM_CHILDREN", n.to_string()));
        }
        if let Some(url) = pg_url {
            cmd_env.push(("KAM_PG_URL", url.to_owned()));
        }
        if !opts.message_store.is_empty() {
            let list = dir.join("dispatcher.list");
            let lines: String = opts
                .message_store
                .iter()
                .map(|a| format!("1 sip:{a}\n"))
                .collect();
            std::fs::write(&list, lines).unwrap();
            cmd_env.push(("KAM_DISPATCHER", list.display().to_string()));
        }
        // run.sh reads its settings from the environment; pass them through `env` so the
        // process tree stays setpriv -> env -> bash -> (exec) kamailio, one pid.
        let mut args: Vec<String> = cmd_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.push(script.display().to_string());
        Proc::spawn("kamailio", "env", &args, dir, dir.join("kamailio.log"))
    }

    /// Waits (10 s at most) until it answers OPTIONS over UDP and accepts TCP connections;
    /// `Err(log tail)` when a port was taken meanwhile.
    fn wait_ready(&mut self) -> Result<(), String> {
        let ready = poll(Duration::from_secs(10), || {
            if self.proc.exited().is_some() {
                return Some(false);
            }
            (sip_options_ok(self.sip_addr()) && TcpStream::connect(self.sip_addr()).is_ok())
                .then_some(true)
        });
        match ready {
            Some(true) => Ok(()),
            Some(false) if read_lossy(&self.proc.log).contains("Address already in use") => {
                Err(tail(&self.proc.log, 20))
            }
            Some(false) => self.proc.fail("exited during start"),
            None => self.proc.fail("did not answer OPTIONS within 10 s"),
        }
    }

    /// Starts Kamailio again after [`Kamailio::stop`] on the same ports, domain and users (a
    /// registrar back after an outage; its location table starts empty), and waits until it
    /// answers.
    pub fn restart(&mut self) {
        self.proc.stop(Duration::from_secs(5));
        let pg_url = self.pg.as_ref().map(|(_, url)| url.as_str());
        self.proc = Self::spawn_proc(
            &self.opts,
            self.dir.path(),
            self.port,
            self.xcap_port,
            pg_url,
        );
        if let Err(log) = self.wait_ready() {
            panic!("kamailio could not bind its ports again:\n{log}");
        }
    }

    /// UDP and TCP SIP address.
    pub fn sip_addr(&self) -> SocketAddr {
        localhost(self.port)
    }

    /// XCAP HTTP address (with [`KamailioOpts::xcap`]).
    pub fn xcap_addr(&self) -> Option<SocketAddr> {
        self.xcap_port.map(localhost)
    }

    /// SIP domain and digest realm.
    pub fn domain(&self) -> &str {
        DOMAIN
    }

    /// HA1 = MD5(user:realm:password) of a test account, as stored in Kamailio's DB.
    pub fn ha1(&self, user: &str) -> String {
        self.ha1
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| panic!("no HA1 for {user:?} in {}", self.dir.path().display()))
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kamailio's log so far (stderr, `-E`).
    pub fn log(&self) -> String {
        read_lossy(&self.proc.log)
    }

    /// Sends OPTIONS for `user@DOMAIN` through Kamailio over UDP and returns the final
    /// status and the Server header of the answer: 200 from the gateway while the AOR has its
    /// binding, 404/480 from Kamailio otherwise.
    pub fn options_to(&self, user: &str) -> (u16, String) {
        let sock = UdpSocket::bind(localhost(0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let local = sock.local_addr().unwrap();
        let branch = format!("z9hG4bK{}", local.port());
        let msg = format!(
            "OPTIONS sip:{user}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             From: <sip:probe@{DOMAIN}>;tag=p1\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
             Call-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        sock.send_to(msg.as_bytes(), self.sip_addr()).unwrap();
        let mut buf = [0u8; 8192];
        loop {
            let (n, _) = sock.recv_from(&mut buf).expect("an answer to OPTIONS");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let status: u16 = text.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
            if status >= 200 {
                let server = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Server: "))
                    .unwrap_or("")
                    .to_owned();
                return (status, server);
            }
        }
    }

    /// Stops Kamailio now (SIGTERM, SIGKILL after 5 s), e.g. to test a proxy going away. The
    /// run dir stays until drop.
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Kamailio as MSRP relay

/// Kamailio's `msrp` module as an RFC 4976 relay (`tests/peers/kamailio-msrp/`): AUTH with
/// digest against the HA1 of [`USERS`] (realm [`DOMAIN`]), Use-Path, SEND/REPORT relayed;
/// plain TCP (or TLS, [`KamailioMsrp::start_tls`]) on a free port of 127.0.0.1.
pub struct KamailioMsrp {
    proc: Proc,
    port: u16,
    dir: RunDir,
    tls: bool,
}

impl KamailioMsrp {
    /// Starts the relay with a fresh DB and waits (10 s at most) until it accepts TCP.
    pub fn start() -> KamailioMsrp {
        Self::start_with(false)
    }

    /// Starts the relay listening with TLS (`msrps`, the repo's dev certificate for
    /// `localhost`/127.0.0.1; Kamailio's tls module, package kamailio-tls-modules).
    pub fn start_tls() -> KamailioMsrp {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> KamailioMsrp {
        require("kamailio");
        require("sqlite3");
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = RunDir::new("kamailio-msrp");
            let port = free_tcp_port();
            let script = peers_dir().join("kamailio-msrp/run.sh");
            let mut args = vec![
                format!("KAM_RUN={}", dir.path().display()),
                format!("MSRP_PORT={port}"),
                format!("KAM_DOMAIN={DOMAIN}"),
            ];
            if tls {
                let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/certs");
                args.push("MSRP_TLS=1".to_owned());
                args.push(format!("TLS_CERT={certs}/localhost.crt"));
                args.push(format!("TLS_KEY={certs}/localhost.key"));
            }
            args.push(script.display().to_string());
            let log = dir.path().join("kamailio-msrp.log");
            let proc = Proc::spawn("kamailio-msrp", "env", &args, dir.path(), log);
            let mut k = KamailioMsrp {
                proc,
                port,
                dir,
                tls,
            };
            let ready = poll(Duration::from_secs(10), || {
                if k.proc.exited().is_some() {
                    return Some(false);
                }
                TcpStream::connect(localhost(k.port))
                    .is_ok()
                    .then_some(true)
            });
            match ready {
                Some(true) => return k,
                Some(false) if read_lossy(&k.proc.log).contains("Address already in use") => {
                    last_log = tail(&k.proc.log, 20);
                }
                Some(false) => k.proc.fail("exited during start"),
                None => k.proc.fail("did not accept TCP within 10 s"),
            }
        }
        panic!("the MSRP relay could not bind its port 3 times; last log:\n{last_log}")
    }

    /// The relay's URI, as `msrp.relay` takes it (`msrps://` when it listens with TLS).
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "msrps" } else { "msrp" };
        format!("{scheme}://127.0.0.1:{};tcp", self.port)
    }

    /// Its TCP address.
    pub fn addr(&self) -> SocketAddr {
        localhost(self.port)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its log so far (stderr, `-E`): one `msrp AUTH ok for <user>` line per accepted AUTH.
    pub fn log(&self) -> String {
        read_lossy(&self.proc.log)
    }
    /// Stops the relay now (SIGTERM, SIGKILL after 5 s): every MSRP connection through it
    /// closes, as when a relay goes away mid-session. The run dir stays until drop.
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }
}

/// Sends `OPTIONS sip:ADDR` over UDP; true if a 200 comes back within 200 ms (Kamailio's
/// config answers keepalive OPTIONS itself).
fn sip_options_ok(addr: SocketAddr) -> bool {
    let Ok(sock) = UdpSocket::bind(localhost(0)) else {
        return false;
    };
    let local = sock.local_addr().unwrap();
    let req = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=probe\r\n\
         To: <sip:{addr}>\r\n\
         Call-ID: probe-{}@{local}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    );
    if sock.send_to(req.as_bytes(), addr).is_err() {
        return false;
    }
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2048];
    matches!(sock.recv_from(&mut buf), Ok((n, _)) if buf[..n].starts_with(b"SIP/2.0 200"))
}

// ---------------------------------------------------------------------------------------------
// SIPp

/// SIP transport of a peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

/// Options of [`Sipp::uas`] / [`Sipp::uac`]. `Default` is UDP, no `-m`, no `-d`, domain
/// [`DOMAIN`].
#[derive(Clone, Debug)]
pub struct SippOpts {
    pub transport: Transport,
    /// `-rtp_echo`: echo RTP received on the media port (and port + 2) to its sender.
    pub rtp_echo: bool,
    /// `-m`: exit after this many calls (UACs: default 1; UASs: default unlimited).
    pub calls: Option<u32>,
    /// `-d`: the scenarios' `<pause/>` (call length, early-media phase, delay before BYE...).
    pub pause: Option<Duration>,
    /// `-s`: user part of the Request-URI (the callee of a UAC).
    pub service: Option<String>,
    /// `-key from_user`: the caller of the UAC scenarios.
    pub from_user: Option<String>,
    /// `-au`/`-ap`: credentials for 401/407 challenges.
    pub auth: Option<(String, String)>,
    /// `-key domain`: domain of the URIs in the scenarios.
    pub domain: String,
    /// More `-key NAME VALUE` pairs.
    pub keys: Vec<(String, String)>,
    /// Any other sipp arguments.
    pub extra_args: Vec<String>,
}

impl Default for SippOpts {
    fn default() -> Self {
        SippOpts {
            transport: Transport::Udp,
            rtp_echo: false,
            calls: None,
            pause: None,
            service: None,
            from_user: None,
            auth: None,
            domain: DOMAIN.to_owned(),
            keys: Vec::new(),
            extra_args: Vec::new(),
        }
    }
}

impl SippOpts {
    /// A UAC calling `callee` as `caller` (test account: answers challenges with its password).
    pub fn call(caller: &str, callee: &str) -> SippOpts {
        SippOpts {
            service: Some(callee.to_owned()),
            from_user: Some(caller.to_owned()),
            auth: Some((caller.to_owned(), password(caller).to_owned())),
            ..SippOpts::default()
        }
    }
}

/// A running SIPp: scenario from `tests/peers/sipp/` (or a path), SIP on a free port of
/// 127.0.0.1, media (`-mp`) on a free even port with 4 free ports reserved, messages traced to
/// `messages.log` in its run dir.
///
/// Exit codes of [`Sipp::wait_exit`]: 0 = every call succeeded, 1 = at least one call failed,
/// 97 = exit on internal command, 99 = normal exit without calls, 255/254 = fatal error.
pub struct Sipp {
    proc: Proc,
    transport: Transport,
    port: u16,
    rtp_port: u16,
    dir: RunDir,
}

impl Sipp {
    /// Starts a UAS running `scenario` and waits until its SIP port is bound (5 s at most).
    pub fn uas(scenario: &str, opts: SippOpts) -> Sipp {
        let mut s = Self::spawn(scenario, None, &opts);
        let (transport, port) = (opts.transport, s.port);
        // Bound means our own probe bind fails (neither sipp nor the probe use SO_REUSEPORT).
        let bound = poll(Duration::from_secs(5), || {
            if s.proc.exited().is_some() {
                return Some(false);
            }
            let free = match transport {
                Transport::Udp => udp_free(port),
                Transport::Tcp => tcp_free(port),
            };
            (!free).then_some(true)
        });
        if bound != Some(true) {
            s.proc.fail("did not bind its SIP port within 5 s");
        }
        s
    }

    /// Starts a UAS running `scenario` that echoes the RTP it receives (SIPp `-rtp_echo`),
    /// with the other options at their defaults: the media check of most call tests.
    pub fn echo_uas(scenario: &str) -> Sipp {
        Self::uas(
            scenario,
            SippOpts {
                rtp_echo: true,
                ..SippOpts::default()
            },
        )
    }

    /// Starts a UAC running `scenario` against `target` (one call unless `opts.calls`).
    /// For the scenarios that stream RTP (`uac_call.xml`), `tone.ulaw` (5 s of 440 Hz PCMU)
    /// is generated into the run dir first.
    pub fn uac(scenario: &str, target: SocketAddr, opts: SippOpts) -> Sipp {
        Self::spawn(scenario, Some(target), &opts)
    }

    fn spawn(scenario: &str, target: Option<SocketAddr>, opts: &SippOpts) -> Sipp {
        require("sipp");
        let dir = RunDir::new("sipp");
        let sf = if scenario.contains('/') {
            PathBuf::from(scenario)
        } else {
            peers_dir().join("sipp").join(scenario)
        };
        assert!(sf.is_file(), "no SIPp scenario {}", sf.display());
        if target.is_some() && read_lossy(&sf).contains("rtp_stream=\"tone.ulaw") {
            make_tone(dir.path(), 5.0);
        }
        let port = match opts.transport {
            Transport::Udp => free_udp_port(),
            Transport::Tcp => free_port_pair(),
        };
        let rtp_port = free_udp_range(4);
        let ctrl_port = free_udp_port();
        let p = |x: &Path| x.display().to_string();
        let mut args: Vec<String> = vec!["-sf".into(), p(&sf)];
        if let Some(t) = target {
            args.push(t.to_string());
        }
        let t = match opts.transport {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        };
        #[rustfmt::skip]
        args.extend([
            "-t", t,
            "-i", "127.0.0.1", "-p", &port.to_string(),
            "-mi", "127.0.0.1", "-mp", &rtp_port.to_string(),
            // control socket: loopback and our own port, not the default 0.0.0.0:8888
            "-ci", "127.0.0.1", "-cp", &ctrl_port.to_string(),
            "-nostdin",
            "-trace_msg", "-message_file", &p(&dir.path().join("messages.log")),
            "-trace_err", "-error_file", &p(&dir.path().join("errors.log")),
            "-key", "domain", &opts.domain,
            // SIPp takes [media_port] and [media_port+2] only on m= lines; these name the
            // audio and video echo ports anywhere (e.g. in a=rtcp).
            "-key", "media_port_audio", &rtp_port.to_string(),
            "-key", "media_port_video", &(rtp_port + 2).to_string(),
        ].map(String::from));
        if opts.rtp_echo {
            args.push("-rtp_echo".into());
        }
        let calls = opts.calls.or(target.map(|_| 1));
        if let Some(m) = calls {
            args.extend(["-m".into(), m.to_string()]);
        }
        if let Some(d) = opts.pause {
            args.extend(["-d".into(), d.as_millis().to_string()]);
        }
        if let Some(s) = &opts.service {
            args.extend(["-s".into(), s.clone()]);
        }
        if let Some(u) = &opts.from_user {
            args.extend(["-key".into(), "from_user".into(), u.clone()]);
        }
        if let Some((u, pw)) = &opts.auth {
            args.extend(["-au".into(), u.clone(), "-ap".into(), pw.clone()]);
        }
        for (k, v) in &opts.keys {
            args.extend(["-key".into(), k.clone(), v.clone()]);
        }
        args.extend(opts.extra_args.iter().cloned());
        let name = format!(
            "sipp {} {}",
            if target.is_some() { "uac" } else { "uas" },
            sf.file_name().unwrap().to_string_lossy()
        );
        let log = dir.path().join("sipp.log");
        let proc = Proc::spawn(&name, "sipp", &args, dir.path(), log);
        Sipp {
            proc,
            transport: opts.transport,
            port,
            rtp_port,
            dir,
        }
    }

    /// Registers this SIPp (a UAS) at `kam` as the test account `user`: a REGISTER with digest
    /// auth whose Contact is this SIPp's address, so calls to `user` reach it. Fails the test
    /// unless Kamailio answers 200 within 10 s. Other contacts of `user` stay registered
    /// (Kamailio forks to all of them): see [`Sipp::unregister_at`].
    pub fn register_at(&self, kam: &Kamailio, user: &str) {
        self.register_contact(kam, user, 3600);
    }

    /// Removes this SIPp's contact for `user` at `kam` (REGISTER with Expires 0).
    pub fn unregister_at(&self, kam: &Kamailio, user: &str) {
        self.register_contact(kam, user, 0);
    }

    fn register_contact(&self, kam: &Kamailio, user: &str, expires: u32) {
        let mut reg = Sipp::uac(
            "register.xml",
            kam.sip_addr(),
            SippOpts {
                service: Some(user.to_owned()),
                auth: Some((user.to_owned(), password(user).to_owned())),
                keys: vec![
                    ("contact_port".into(), self.port.to_string()),
                    ("expires".into(), expires.to_string()),
                ],
                // the Contact's transport is the REGISTER's: the UAS's own
                transport: self.transport,
                ..SippOpts::default()
            },
        );
        let code = reg.wait_exit(Duration::from_secs(10));
        assert_eq!(
            code,
            0,
            "REGISTER of {user} at {} failed:\n{}\n--- kamailio ---\n{}",
            kam.sip_addr(),
            reg.messages(),
            tail(&kam.proc.log, 20)
        );
    }

    /// SIP address (UDP or TCP as started).
    pub fn sip_addr(&self) -> SocketAddr {
        localhost(self.port)
    }

    /// Media address (`-mp`): the RTP echo port, and the port in the scenarios' SDP.
    pub fn rtp_addr(&self) -> SocketAddr {
        localhost(self.rtp_port)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until sipp exits and returns its exit code; fails the test after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        self.proc.wait_exit(timeout)
    }

    /// Whether sipp is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.exited().is_none()
    }

    /// Every SIP message sipp sent and received so far (`-trace_msg`).
    pub fn messages(&self) -> String {
        read_lossy(&self.dir.path().join("messages.log"))
    }

    /// Errors sipp reported (`-trace_err`), e.g. unexpected messages.
    pub fn errors(&self) -> String {
        read_lossy(&self.dir.path().join("errors.log"))
    }

    /// sipp's screen output.
    pub fn log(&self) -> String {
        read_lossy(&self.proc.log)
    }

    /// Stops sipp now (SIGTERM, SIGKILL after 5 s); the traces stay readable until drop.
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }

    /// Waits until the message trace contains `needle` (e.g. `"SIP/2.0 200 OK"`), and returns
    /// the trace; fails the test after `timeout` with the trace and the errors.
    pub fn wait_for_message(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_sequence(&[needle], timeout)
    }

    /// Waits until the message trace contains `needles` in this order (e.g.
    /// `["BYE sip:", "SIP/2.0 200 OK"]`: a BYE and a 200 after it), and returns the trace;
    /// fails the test after `timeout` with the trace and the errors.
    pub fn wait_for_sequence(&self, needles: &[&str], timeout: Duration) -> String {
        let in_order = |m: &str| {
            let mut rest = m;
            needles.iter().all(|n| match rest.find(n) {
                Some(i) => {
                    rest = &rest[i + n.len()..];
                    true
                }
                None => false,
            })
        };
        poll(timeout, || {
            let m = self.messages();
            in_order(&m).then_some(m)
        })
        .unwrap_or_else(|| {
            self.proc.fail(&format!(
                "no {needles:?} within {timeout:?}\n--- messages ---\n{}\n--- errors ---\n{}",
                self.messages(),
                self.errors()
            ))
        })
    }
}

/// Writes `tone.ulaw` (raw PCMU) and `tone.wav` of a 440 Hz tone into `dir` with
/// `tests/peers/sipp/gen_tone.py`.
pub fn make_tone(dir: &Path, seconds: f32) {
    require("python3");
    let gen = peers_dir().join("sipp/gen_tone.py");
    let out = Command::new("python3")
        .arg(&gen)
        .arg(dir.join("tone.ulaw"))
        .arg(seconds.to_string())
        .arg("440")
        .output()
        .expect("run gen_tone.py");
    assert!(
        out.status.success(),
        "gen_tone.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// baresip

/// Options of [`Baresip::start`].
#[derive(Clone, Debug)]
pub struct BaresipOpts {
    /// Test account (password from [`USERS`]).
    pub user: String,
    pub transport: Transport,
    /// Audio source: a generated 440 Hz WAV (`aufile`) instead of `ausine`.
    pub wav_audio: bool,
    /// Record sent/received audio as WAV files into the run dir (`sndfile`).
    pub record_audio: bool,
    /// The account's `mediaenc` (e.g. `srtp-mand`: RTP/SAVP with SDES, RFC 4568, and
    /// nothing else); loads baresip's `srtp` module. `None`: plain RTP.
    pub mediaenc: Option<String>,
    /// Video too: VP8 (`vp8` module) at 320x240, 15 fps, from `fakevideo` (static
    /// red/green/blue bars; its display discards). See [`Baresip::video_stats`].
    pub video: bool,
    /// The account's `answermode`: `auto` (answer at once), `manual` (ring until the
    /// `accept` command) or `early` (183 with SDP and media, then ring until `accept`).
    pub answermode: &'static str,
    /// Frequency of the `ausine` source (when not `wav_audio`).
    pub sine_hz: u16,
    /// SIP URIs for baresip's contacts file (loads the `contact` module: `contact_next`
    /// selects the first, `message TEXT` sends it a plain MESSAGE).
    pub contacts: Vec<String>,
    /// Loads the `presence` module and PUBLISHes the account's state (`pubint`);
    /// `presence_online` / `presence_offline` change it.
    pub presence: bool,
}

impl Default for BaresipOpts {
    fn default() -> Self {
        BaresipOpts {
            user: "bob".into(),
            transport: Transport::Udp,
            wav_audio: false,
            record_audio: false,
            mediaenc: None,
            video: false,
            answermode: "auto",
            sine_hz: 440,
            contacts: Vec::new(),
            presence: false,
        }
    }
}

/// A running baresip: one account registering at a [`Kamailio`] (outbound proxy), answering
/// calls as [`BaresipOpts::answermode`] says, controlled over `ctrl_tcp` (netstring JSON) on a free port.
/// On SIGTERM baresip unregisters first: drop it before its Kamailio (declare the Kamailio
/// first), or stopping it takes the 5 s grace period.
pub struct Baresip {
    proc: Proc,
    user: String,
    domain: String,
    port: u16,
    ctrl_port: u16,
    rtp_ports: (u16, u16),
    dir: RunDir,
}

impl Baresip {
    /// Starts baresip for `opts.user` at `kam` and waits (10 s at most) until its control
    /// socket accepts connections. Registration runs in the background: see
    /// [`Baresip::wait_for_registration`].
    pub fn start(kam: &Kamailio, opts: BaresipOpts) -> Baresip {
        let pass = password(&opts.user);
        Baresip::start_at(kam.sip_addr(), kam.domain(), pass, opts)
    }

    /// Starts baresip for `opts.user` of `domain` with `pass`, registering at (and sending
    /// everything through) the registrar and proxy at `registrar` on 127.0.0.1: a Kamailio,
    /// or a standalone gateway serving `domain` itself.
    pub fn start_at(registrar: SocketAddr, domain: &str, pass: &str, opts: BaresipOpts) -> Baresip {
        require("baresip");
        let dir = RunDir::new("baresip");
        let port = free_port_pair();
        let ctrl_port = free_tcp_port();
        let rtp_low = free_udp_range(20);
        let rtp_ports = (rtp_low, rtp_low + 19);
        let env = [
            ("BS_RUN", dir.path().display().to_string()),
            ("BS_SIP_PORT", port.to_string()),
            ("BS_CTRL_PORT", ctrl_port.to_string()),
            ("BS_RTP_PORTS", format!("{}-{}", rtp_ports.0, rtp_ports.1)),
            ("KAM_PORT", registrar.port().to_string()),
            ("KAM_DOMAIN", domain.to_owned()),
            ("BS_USER", opts.user.clone()),
            ("BS_PASS", pass.to_owned()),
            (
                "BS_TRANSPORT",
                match opts.transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                }
                .to_owned(),
            ),
            (
                "BS_AUDIO",
                if opts.wav_audio { "wav" } else { "sine" }.into(),
            ),
            (
                "BS_SNDFILE",
                if opts.record_audio { "1" } else { "0" }.into(),
            ),
            ("BS_MEDIAENC", opts.mediaenc.clone().unwrap_or_default()),
            ("BS_VIDEO", if opts.video { "1" } else { "0" }.into()),
            ("BS_ANSWERMODE", opts.answermode.to_owned()),
            ("BS_SINE_HZ", opts.sine_hz.to_string()),
            ("BS_CONTACTS", opts.contacts.join(" ")),
            ("BS_PRESENCE", if opts.presence { "1" } else { "0" }.into()),
        ];
        let mut args: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.push(peers_dir().join("baresip/run.sh").display().to_string());
        let log = dir.path().join("baresip.log");
        let proc = Proc::spawn("baresip", "env", &args, dir.path(), log);
        let mut b = Baresip {
            proc,
            user: opts.user,
            domain: domain.to_owned(),
            port,
            ctrl_port,
            rtp_ports,
            dir,
        };
        let ready = poll(Duration::from_secs(10), || {
            if b.proc.exited().is_some() {
                return Some(false);
            }
            TcpStream::connect(b.ctrl_addr()).is_ok().then_some(true)
        });
        if ready != Some(true) {
            b.proc.fail("control socket not up within 10 s");
        }
        b
    }

    /// Waits until the account's REGISTER got 200 OK; fails the test after `timeout`.
    pub fn wait_for_registration(&mut self, timeout: Duration) {
        let needle = format!("{}@{}: {{0/", self.user, self.domain);
        self.wait_for_log_line(timeout, |l| l.contains(&needle) && l.contains("} 200 OK"));
    }

    /// Waits until the log contains `needle` (e.g. `"Call established"`); fails the test
    /// after `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        self.wait_for_log_line(timeout, |l| l.contains(needle));
    }

    fn wait_for_log_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) {
        let found = poll(timeout, || {
            if self.proc.exited().is_some() {
                return Some(false);
            }
            self.log().lines().any(&pred).then_some(true)
        });
        match found {
            Some(true) => {}
            Some(false) => self.proc.fail("exited"),
            None => self
                .proc
                .fail(&format!("expected log line not seen within {timeout:?}")),
        }
    }

    /// Sends one ctrl_tcp command, e.g. `"dial sip:alice@example.test"`, `"hangup"`,
    /// `"reginfo"`, `"listcalls"`; returns the response text, or `Err` with it when baresip
    /// answered `ok: false`. Fails the test if no response arrives within 5 s.
    pub fn command(&self, line: &str) -> Result<String, String> {
        let (cmd, params) = line.split_once(' ').unwrap_or((line, ""));
        let msg = serde_json::json!({"command": cmd, "params": params, "token": "t1"}).to_string();
        let mut s = TcpStream::connect(self.ctrl_addr())
            .unwrap_or_else(|e| self.proc.fail(&format!("ctrl_tcp connect: {e}")));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(format!("{}:{msg},", msg.len()).as_bytes())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = Vec::new();
        loop {
            // netstrings "LEN:JSON," ; skip events until the response to our token
            while let Some(colon) = buf.iter().position(|&b| b == b':') {
                let len: usize = std::str::from_utf8(&buf[..colon])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| self.proc.fail("bad netstring from ctrl_tcp"));
                if buf.len() < colon + 1 + len + 1 {
                    break;
                }
                let obj: serde_json::Value =
                    serde_json::from_slice(&buf[colon + 1..colon + 1 + len]).unwrap_or_default();
                buf.drain(..colon + 1 + len + 1);
                if obj["response"] == true {
                    let data = obj["data"].as_str().unwrap_or_default().trim().to_owned();
                    return if obj["ok"] == true {
                        Ok(data)
                    } else {
                        Err(data)
                    };
                }
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) => self
                    .proc
                    .fail(&format!("ctrl_tcp closed before answering {line:?}")),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => self.proc.fail(&format!("no answer to {line:?}: {e}")),
            }
            if Instant::now() > deadline {
                self.proc.fail(&format!("no answer to {line:?} within 5 s"));
            }
        }
    }

    /// SIP address (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        localhost(self.port)
    }

    /// ctrl_tcp address.
    pub fn ctrl_addr(&self) -> SocketAddr {
        localhost(self.ctrl_port)
    }

    /// RTP port range (inclusive) baresip allocates media ports from.
    pub fn rtp_ports(&self) -> (u16, u16) {
        self.rtp_ports
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// baresip's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        read_lossy(&self.proc.log)
    }

    /// The video counters of the current call (baresip's `video_debug` command), `None`
    /// when there is no call with video.
    pub fn video_stats(&self) -> Option<BaresipVideo> {
        let text = self.command("video_debug").ok()?;
        let field = |line: &str, key: &str| -> Option<u64> {
            let at = line.find(key)? + key.len();
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        };
        let mut v = BaresipVideo::default();
        let mut seen = false;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("source: ") {
                v.source_frames = field(rest, "frames=")?;
            } else if let Some(rest) = line.strip_prefix("vidisp: ") {
                // "vidisp: fakevideo 320 x 240 frames=133"
                let mut words = rest.split_whitespace().skip(1);
                v.width = words.next()?.parse().ok()?;
                v.height = words.nth(1)?.parse().ok()?;
                v.displayed_frames = field(rest, "frames=")?;
                seen = true;
            } else if line.starts_with("n_keyframes=") {
                v.keyframes = field(line, "n_keyframes=")?;
                v.picture_updates = field(line, "n_picup=")?;
            }
        }
        seen.then_some(v)
    }

    /// Stops baresip now (SIGTERM, SIGKILL after 5 s); the log stays readable until drop.
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }
}

/// What [`Baresip::video_stats`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BaresipVideo {
    /// Frames its video source produced for the encoder.
    pub source_frames: u64,
    /// Frames decoded and handed to the display.
    pub displayed_frames: u64,
    /// Size of the decoded video (0 before the first frame).
    pub width: u32,
    pub height: u32,
    /// Key frames decoded.
    pub keyframes: u64,
    /// Key frame requests baresip sent (it sends one when it cannot decode: a PLI when the
    /// peer's SDP has `a=rtcp-fb ... nack`, else an RFC 2032 FIR, RTCP packet type 192).
    pub picture_updates: u64,
}

// ---------------------------------------------------------------------------------------------
// Media helpers

/// The audio address of the last SDP in `text` (a SIP message or a whole SIPp trace): the
/// session or media `c=` address with the `m=audio` port.
pub fn sdp_audio_addr(text: &str) -> Option<SocketAddr> {
    let start = text.rfind("\nv=0")?;
    let sdp = &text[start..];
    let mut ip = None;
    let mut port = None;
    for line in sdp.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            ip = c
                .split('/')
                .next()
                .and_then(|a| a.trim().parse::<Ipv4Addr>().ok());
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok());
        } else if line.starts_with("----") || line.starts_with("SIP/2.0") {
            break; // end of this message in a SIPp trace
        }
    }
    Some(SocketAddr::from((ip?, port?)))
}

/// Sends `count` 20 ms PCMU RTP packets to `to` from a fresh socket on 127.0.0.1 and returns
/// how many came back unchanged (an RTP echo, e.g. SIPp's `-rtp_echo`) within `timeout`.
pub fn rtp_echo_count(to: SocketAddr, count: u16, timeout: Duration) -> usize {
    let sock = UdpSocket::bind(localhost(0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let packet = |seq: u16| {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x5eed_0001u32.to_be_bytes());
        p.extend(std::iter::repeat_n(0xff, 160)); // PCMU silence
        p
    };
    let mut seen = vec![false; usize::from(count)];
    let deadline = Instant::now() + timeout;
    let mut next = 0u16;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && seen.iter().any(|s| !s) {
        if next < count {
            sock.send_to(&packet(next), to).unwrap();
            next += 1;
        }
        // also paces the sending: one packet per read timeout (20 ms)
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from != to || n < 4 {
                continue;
            }
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            if seq < count && buf[..n] == packet(seq)[..] {
                seen[usize::from(seq)] = true;
            }
        }
    }
    seen.iter().filter(|s| **s).count()
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A throwaway PostgreSQL cluster (fresh `initdb`, `tests/peers/postgresql/run.sh`) on a free
/// port of 127.0.0.1, with one password superuser; the message store shared by several
/// gateway instances in the scale-out tests.
pub struct Postgres {
    proc: Proc,
    port: u16,
    dir: RunDir,
}

impl Postgres {
    /// Starts the cluster and waits (30 s at most: `initdb` takes a few seconds on a loaded
    /// machine) until it accepts connections.
    pub fn start() -> Postgres {
        let dir = RunDir::new("postgres");
        let port = free_tcp_port();
        let script = peers_dir().join("postgresql/run.sh");
        let args = vec![
            format!("PG_RUN={}", dir.path().display()),
            format!("PG_PORT={port}"),
            script.display().to_string(),
        ];
        let log = dir.path().join("postgres.log");
        let proc = Proc::spawn("postgres", "env", &args, dir.path(), log);
        let mut pg = Postgres { proc, port, dir };
        let ready = poll(Duration::from_secs(30), || {
            if pg.proc.exited().is_some() {
                return Some(false);
            }
            // The server logs this once it takes connections on every listener.
            read_lossy(&pg.proc.log)
                .contains("database system is ready to accept connections")
                .then_some(true)
        });
        match ready {
            Some(true) => pg,
            Some(false) => pg.proc.fail("exited during start"),
            None => pg.proc.fail("not ready within 30 s"),
        }
    }

    /// `postgres://sylk:sylkpass@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://sylk:sylkpass@127.0.0.1:{}/postgres", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        localhost(self.port)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        read_lossy(&self.proc.log)
    }

    /// Stops the server now (SIGTERM: a "smart" shutdown that waits for clients, so SIGKILL
    /// after 5 s). The run dir stays until drop.
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

// ---------------------------------------------------------------------------------------------
// HAProxy

/// HAProxy (`tests/peers/haproxy/run.sh`) on a free port of 127.0.0.1, balancing WebSocket
/// connections round robin over gateway instances that it checks on `GET /ready`.
pub struct Haproxy {
    proc: Proc,
    port: u16,
    dir: RunDir,
}

impl Haproxy {
    /// Starts it over `backends` (the instances' `ws://` listen addresses) and waits until
    /// its frontend accepts connections.
    pub fn start(backends: &[SocketAddr]) -> Haproxy {
        Self::spawn(backends, false)
    }

    /// Starts it as a TLS front (the repository's dev certificate for 127.0.0.1) of the
    /// plain TCP server `backend`, and waits until its frontend accepts connections.
    pub fn start_tls_front(backend: SocketAddr) -> Haproxy {
        Self::spawn(&[backend], true)
    }

    fn spawn(backends: &[SocketAddr], tls_front: bool) -> Haproxy {
        require("haproxy");
        let dir = RunDir::new("haproxy");
        let port = free_tcp_port();
        let list: Vec<String> = backends.iter().map(ToString::to_string).collect();
        let mut args = vec![
            format!("HA_RUN={}", dir.path().display()),
            format!("HA_PORT={port}"),
            format!("BACKENDS={}", list.join(" ")),
        ];
        if tls_front {
            let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs");
            let mut pem = std::fs::read(certs.join("localhost.crt")).unwrap();
            pem.extend(std::fs::read(certs.join("localhost.key")).unwrap());
            let path = dir.path().join("front.pem");
            std::fs::write(&path, pem).unwrap();
            args.push(format!("HA_TLS_CRT={}", path.display()));
        }
        args.push(peers_dir().join("haproxy/run.sh").display().to_string());
        let log = dir.path().join("haproxy.log");
        let proc = Proc::spawn("haproxy", "env", &args, dir.path(), log);
        let mut h = Haproxy { proc, port, dir };
        let ready = poll(Duration::from_secs(10), || {
            if h.proc.exited().is_some() {
                return Some(false);
            }
            TcpStream::connect(h.addr()).is_ok().then_some(true)
        });
        match ready {
            Some(true) => h,
            Some(false) => h.proc.fail("exited during start"),
            None => h.proc.fail("frontend not up within 10 s"),
        }
    }

    /// The frontend address (`ws://ADDR/webrtcgateway/ws`).
    pub fn addr(&self) -> SocketAddr {
        localhost(self.port)
    }

    /// HAProxy's log so far (health check transitions, one line per connection).
    pub fn log(&self) -> String {
        read_lossy(&self.proc.log)
    }

    /// Waits until HAProxy's log says a backend went `UP` or `DOWN` `count` times in all
    /// (lines such as `Server gateways/gw1 is UP`).
    pub fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) {
        let found = poll(timeout, || {
            (self.log().matches(needle).count() >= count).then_some(())
        });
        if found.is_none() {
            self.proc.fail(&format!(
                "{needle:?} not logged {count} times within {timeout:?}"
            ));
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
