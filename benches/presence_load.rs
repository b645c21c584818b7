//! Presence load tool (issue 13 item 7). Not a timed test: it measures and prints, and
//! asserts only that every subscription became active and every NOTIFY arrived.
//!
//! What runs, all on 127.0.0.1:
//! - a **real Kamailio** (`tests/peers/kamailio/run.sh`: registrar and presence server,
//!   `KAM_SHM_MB` raised) with `ACCOUNTS` extra users (`user0`...) in its subscriber table;
//! - the **real gateway binary**, three times on the same message database (each killed by
//!   pid): a setup run (`presence.enabled = false`) that registers every account and gives
//!   each `CONTACTS` contacts (the next accounts in a ring, `presence.subscribe: true`);
//!   run A, the baseline (presence off; accounts registered, addressbooks loaded); run B
//!   (presence on), where registering makes every subscription;
//! - sylkRTC-2 WebSocket clients, `PER_CONN` accounts per connection, one thread each.
//!
//! Figures (run B against run A):
//! 1. time to all-active: from the first `account-register` until the gateway's
//!    `sylk_sip_subscriptions{phase="active"}` counts every subscription (SUBSCRIBE through
//!    Kamailio, its 200 and first NOTIFY);
//! 2. gateway CPU per NOTIFY: every account PUBLISHes (`account-publish-presence online`,
//!    then `away`), Kamailio NOTIFYs each of its watchers; gateway CPU (utime + stime of
//!    `/proc/<pid>/stat`, all threads) over the phase divided by the NOTIFYs it took
//!    (`sylk_presence_notifies_total`). The phase also carries the PUBLISHes and the
//!    `presence` events to the WebSocket clients, which belong to a NOTIFY's cost;
//! 3. memory per subscription: (RSS of run B - RSS of run A) / subscriptions, both taken
//!    `SETTLE` seconds (35 with `--bench`: a NOTIFY's server transaction lingers 32 s,
//!    RFC 3261 Timer J) after the last activity;
//! 4. idle CPU from refreshes: subscriptions ask for `EXPIRES` seconds (600 with
//!    `--bench`, refreshed 450-540 s after they were made: keep it well beyond the time to
//!    all-active, or refreshes mix into the other phases); the gateway's CPU over the
//!    window in which every one is refreshed (SUBSCRIBE in the dialog, 200, the NOTIFY
//!    each refresh brings) gives CPU per refresh, and from it the idle CPU at the default
//!    `presence.subscribe_expires` (3600 s: refreshed every 2,700-3,540 s).
//!
//! ```text
//! cargo bench --bench presence_load
//! ACCOUNTS=200 CONTACTS=50 cargo bench --bench presence_load
//! GATEWAY_WRAPPER="heaptrack -o /tmp/presence" ACCOUNTS=100 REFRESH=0 cargo bench --bench presence_load
//! ```
//! Other knobs: `PER_CONN` accounts per WebSocket (100), `SETTLE`, `EXPIRES`, `REFRESH=0`
//! (skip figure 4), `LIMIT` (seconds any phase may take, 600), `KAM_SHM_MB`, `KAM_CHILDREN`
//! (Kamailio's UDP workers, 1: with more its sqlite presence tables answer concurrent
//! SUBSCRIBEs 500, "database is locked").
//! Without `--bench` (`cargo test --all-targets`) it is a 6-account, 3-contact smoke run
//! without the settle and refresh waits.

#[path = "common/gateway_process.rs"]
#[allow(dead_code)] // each bench uses part of it
mod gateway_process;
#[path = "common/sylkrtc_client.rs"]
mod sylkrtc_client;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::Digest;
use serde_json::{json, Value};
use sylkrtc_client::{send, Ws};
use tungstenite::Message;

const DOMAIN: &str = "example.test";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ha1(user: &str) -> String {
    let d = md5::Md5::digest(format!("{user}:{DOMAIN}:pw-{user}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// utime + stime of `pid` (all its threads), in ms.
fn cpu_ms(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime, stime are fields 14 and 15 (1-based); after ')' field 3 is index 0.
    (ticks(11) + ticks(12)) * 1000 / clock_ticks()
}

/// USER_HZ (100 on Linux everywhere this runs; `getconf` says so).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

/// CPU of Kamailio: its main process and every child.
fn tree_cpu_ms(root: u32) -> u64 {
    let mut total = cpu_ms(root);
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(root) {
            total += cpu_ms(pid);
        }
    }
    total
}

/// The resident set of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn stop_pid(child: &mut Child) {
    gateway_process::stop(child, Duration::from_secs(20));
}

// ------------------------------------------------------------------------------ Kamailio

fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn options_ok(addr: SocketAddr) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let local = sock.local_addr().unwrap();
    let req = format!(
        "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=probe\r\nTo: <sip:{addr}>\r\n\
         Call-ID: probe@{local}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    let _ = sock.send_to(req.as_bytes(), addr);
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2048];
    matches!(sock.recv_from(&mut buf), Ok((n, _)) if buf[..n].starts_with(b"SIP/2.0 200"))
}

/// Kamailio on a free port, with `accounts` users `user<i>` (password `pw-user<i>`).
fn start_kamailio(dir: &Path, accounts: u64, shm_mb: u64) -> (Child, SocketAddr) {
    let run = dir.join("kamailio");
    std::fs::create_dir_all(&run).unwrap();
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/kamailio/run.sh");
    let log = std::fs::File::create(run.join("kamailio.log")).unwrap();
    let mut child = Command::new("env")
        .arg(format!("KAM_RUN={}", run.display()))
        .arg(format!("KAM_PORT={port}"))
        .arg(format!("KAM_DOMAIN={DOMAIN}"))
        .arg(format!("KAM_SHM_MB={shm_mb}"))
        .arg(format!("KAM_CHILDREN={}", env_or("KAM_CHILDREN", 1)))
        .arg(&script)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start kamailio (tests/run-all.sh installs it)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !options_ok(addr) {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("kamailio exited ({s}); see {}", run.display());
        }
        assert!(Instant::now() < deadline, "kamailio did not answer");
    }
    let mut sql = String::from("BEGIN;\n");
    for i in 0..accounts {
        let u = format!("user{i}");
        sql.push_str(&format!(
            "INSERT INTO subscriber (username, domain, password, ha1, ha1b) \
             VALUES ('{u}', '{DOMAIN}', '', '{}', '');\n",
            ha1(&u)
        ));
    }
    sql.push_str("COMMIT;\n");
    let mut sqlite = Command::new("sqlite3")
        .arg(run.join("kamailio.sqlite"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sqlite3");
    sqlite
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    assert!(sqlite.wait().unwrap().success(), "users not added");
    (child, addr)
}

// ------------------------------------------------------------------------------ gateway

struct Gateway {
    child: Child,
    ws: SocketAddr,
}

fn start_gateway(
    dir: &Path,
    kam: SocketAddr,
    presence: bool,
    expires: u64,
    per_conn: u64,
) -> Gateway {
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\noutbound_proxy = \"sip:{kam};transport=udp\"\n\
             [sylkrtc]\nmax_accounts_per_connection = {per_conn}\n\
             [websocket]\nmax_queued_output = 67108864\n\
             [messaging]\ndatabase = \"{}\"\n\
             [presence]\nenabled = {presence}\nsubscribe_expires = {expires}\n\
             [log]\nlevel = \"warn\"\n",
            dir.join("gateway.sqlite").display()
        ),
    )
    .unwrap();
    // GATEWAY_WRAPPER (e.g. `heaptrack -o /tmp/presence`) runs the presence-on gateway under
    // a profiler (its figures of pid-based CPU and RSS are then the wrapper's).
    let wrapper = std::env::var("GATEWAY_WRAPPER").ok().filter(|_| presence);
    let wrapper = wrapper.unwrap_or_default();
    let gw = gateway_process::spawn(&config, &wrapper, &[], gateway_process::log_stdio());
    Gateway {
        child: gw.child,
        ws: gw.ws,
    }
}

fn scrape(ws: SocketAddr) -> String {
    let mut s = TcpStream::connect(ws).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// The SUBSCRIBE, NOTIFY and PUBLISH transactions by outcome (retries show here).
fn outcomes(ws: SocketAddr) -> String {
    scrape(ws)
        .lines()
        .filter(|l| {
            l.starts_with("sylk_sip_transactions_total")
                && (l.contains("SUBSCRIBE") || l.contains("NOTIFY") || l.contains("PUBLISH"))
        })
        .map(|l| {
            l.trim_start_matches("sylk_sip_transactions_total")
                .replace("role=", "")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sum of the samples of `name` whose labels contain `labels`, from `/metrics`.
fn metric(ws: SocketAddr, name: &str, labels: &str) -> f64 {
    scrape(ws)
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
                && l.contains(labels)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ------------------------------------------------------------------------------ clients

/// What the main thread asks every connection to do (in order).
const ADD_REGISTER: u32 = 1;
const POPULATE: u32 = 2;
const PUBLISH_ONLINE: u32 = 3;
const PUBLISH_AWAY: u32 = 4;

#[derive(Default)]
struct Counts {
    registered: AtomicU64,
    updated: AtomicU64,
    acks: AtomicU64,
    presence_events: AtomicU64,
    errors: AtomicU64,
}

struct Ctl {
    phase: AtomicU32,
    stop: AtomicBool,
    counts: Counts,
}

fn connect(addr: SocketAddr) -> Ws {
    sylkrtc_client::connect(addr, Duration::from_millis(20))
}

/// The contacts of account `i`: the next `contacts` accounts in the ring.
fn contacts_of(i: u64, accounts: u64, contacts: u64) -> impl Iterator<Item = u64> {
    (1..=contacts).map(move |k| (i + k) % accounts)
}

/// One connection with the accounts `first..first+n`, doing the phase it is told once.
fn run_connection(
    ws_addr: SocketAddr,
    first: u64,
    n: u64,
    accounts: u64,
    contacts: u64,
    ctl: Arc<Ctl>,
) {
    let mut ws = connect(ws_addr);
    let mut done = 0;
    let mut tx = 0u64;
    let mut next_tx = || {
        tx += 1;
        format!("t{tx}")
    };
    let aor = |i: u64| format!("user{i}@{DOMAIN}");
    while !ctl.stop.load(Ordering::Relaxed) {
        let phase = ctl.phase.load(Ordering::Acquire);
        // Only the phase asked for now (a later run does not repeat the setup's).
        if done < phase {
            done = phase;
            for i in first..first + n {
                match done {
                    ADD_REGISTER => {
                        send(
                            &mut ws,
                            &json!({"sylkrtc":"account-add","transaction":next_tx(),
                                              "account":aor(i),"password":ha1(&format!("user{i}"))}),
                        );
                        send(
                            &mut ws,
                            &json!({"sylkrtc":"account-register","transaction":next_tx(),
                                              "account":aor(i)}),
                        );
                    }
                    POPULATE => {
                        for c in contacts_of(i, accounts, contacts) {
                            let data = json!({"id":format!("c{c}"),"name":format!("User {c}"),
                                "uris":[{"id":"u1","uri":format!("sip:user{c}@{DOMAIN}"),"type":"sip"}],
                                "presence":{"policy":"allow","subscribe":true}});
                            send(
                                &mut ws,
                                &json!({"sylkrtc":"account-update-addressbook",
                                "transaction":next_tx(),"account":aor(i),"action":"add",
                                "type":"contact","data":data}),
                            );
                        }
                    }
                    PUBLISH_ONLINE | PUBLISH_AWAY => {
                        let state = if done == PUBLISH_ONLINE {
                            "online"
                        } else {
                            "away"
                        };
                        send(
                            &mut ws,
                            &json!({"sylkrtc":"account-publish-presence",
                            "transaction":next_tx(),"account":aor(i),"state":state}),
                        );
                    }
                    _ => {}
                }
            }
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                let c = &ctl.counts;
                match (v["sylkrtc"].as_str(), v["event"].as_str()) {
                    (Some("ack"), _) => c.acks.fetch_add(1, Ordering::Relaxed),
                    (Some("error"), _) => {
                        eprintln!("error: {v}");
                        c.errors.fetch_add(1, Ordering::Relaxed)
                    }
                    (_, Some("registration-state")) if v["state"] == "registered" => {
                        c.registered.fetch_add(1, Ordering::Relaxed)
                    }
                    (_, Some("registration-state")) if v["state"] == "failed" => {
                        eprintln!("registration failed: {v}");
                        c.errors.fetch_add(1, Ordering::Relaxed)
                    }
                    (_, Some("addressbook-updated")) => c.updated.fetch_add(1, Ordering::Relaxed),
                    (_, Some("addressbook-update-failed")) => {
                        eprintln!("update failed: {v}");
                        c.errors.fetch_add(1, Ordering::Relaxed)
                    }
                    (_, Some("presence")) => c.presence_events.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                if !ctl.stop.load(Ordering::Relaxed) {
                    panic!("connection {first}: {e}");
                }
                return;
            }
        }
    }
}

/// The client side of one gateway run.
struct Clients {
    ctl: Arc<Ctl>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn open(ws: SocketAddr, accounts: u64, contacts: u64, per_conn: u64) -> Clients {
        let ctl = Arc::new(Ctl {
            phase: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            counts: Counts::default(),
        });
        let threads = (0..accounts)
            .step_by(per_conn as usize)
            .map(|first| {
                let n = per_conn.min(accounts - first);
                let ctl = Arc::clone(&ctl);
                std::thread::spawn(move || run_connection(ws, first, n, accounts, contacts, ctl))
            })
            .collect();
        Clients { ctl, threads }
    }

    fn phase(&self, p: u32) {
        self.ctl.phase.store(p, Ordering::Release);
    }

    fn count(&self, f: impl Fn(&Counts) -> &AtomicU64) -> u64 {
        f(&self.ctl.counts).load(Ordering::Relaxed)
    }

    /// Waits (at most `limit`) until `done()`; false on timeout.
    fn wait(&self, limit: Duration, done: impl Fn(&Clients) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert_eq!(self.count(|c| &c.errors), 0, "errors (see above)");
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn close(self) {
        self.ctl.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let accounts = env_or("ACCOUNTS", if bench { 1000 } else { 6 }).max(2);
    let contacts = env_or("CONTACTS", if bench { 50 } else { 3 }).min(accounts - 1);
    let per_conn = env_or("PER_CONN", 100).clamp(1, 1000);
    let settle = env_or("SETTLE", if bench { 35 } else { 0 });
    let expires = env_or("EXPIRES", if bench { 600 } else { 3600 }).clamp(10, 86_400);
    let refresh = bench && env_or("REFRESH", 1) == 1;
    let shm = env_or("KAM_SHM_MB", (64 + accounts * contacts / 200).min(2048));
    let limit = Duration::from_secs(env_or("LIMIT", 600));
    let subs = accounts * contacts;
    let dir: PathBuf =
        std::env::temp_dir().join(format!("sylk-bench-presence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "presence_load: {accounts} accounts x {contacts} contacts = {subs} subscriptions, \
         {per_conn} accounts per connection, subscribe_expires {expires} s, Kamailio -m {shm}"
    );
    let (mut kam, kam_addr) = start_kamailio(&dir, accounts, shm);
    let kam_pid = kam.id();

    // Setup: every account registered once, with its contacts in the store.
    let mut gw = start_gateway(&dir, kam_addr, false, expires, per_conn);
    let clients = Clients::open(gw.ws, accounts, contacts, per_conn);
    clients.phase(ADD_REGISTER);
    assert!(clients.wait(limit, |c| c.count(|c| &c.registered) == accounts));
    let t = Instant::now();
    clients.phase(POPULATE);
    assert!(clients.wait(limit, |c| c.count(|c| &c.updated) == subs));
    println!(
        "  setup: {subs} contacts stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    clients.close();
    stop_pid(&mut gw.child);

    // Run A: the same accounts and addressbooks, presence off.
    let mut gw = start_gateway(&dir, kam_addr, false, expires, per_conn);
    let clients = Clients::open(gw.ws, accounts, contacts, per_conn);
    clients.phase(ADD_REGISTER);
    assert!(clients.wait(limit, |c| c.count(|c| &c.registered) == accounts));
    std::thread::sleep(Duration::from_secs(settle));
    let rss_a = rss_kib(gw.child.id());
    clients.close();
    stop_pid(&mut gw.child);

    // Run B: presence on.
    let gw = start_gateway(&dir, kam_addr, true, expires, per_conn);
    let pid = gw.child.id();
    let clients = Clients::open(gw.ws, accounts, contacts, per_conn);
    let active = || metric(gw.ws, "sylk_sip_subscriptions", "phase=\"active\"") as u64;
    let notifies = || metric(gw.ws, "sylk_presence_notifies_total", "result=\"ok\"") as u64;
    let retried = || metric(gw.ws, "sylk_sip_subscriptions", "phase=\"retrying\"") as u64;
    let (cpu0, kcpu0) = (cpu_ms(pid), tree_cpu_ms(kam_pid));
    let t = Instant::now();
    clients.phase(ADD_REGISTER);
    let mut most_retrying = 0;
    let deadline = Instant::now() + limit;
    let mut now_active = 0;
    while now_active < subs && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now_active = active();
        most_retrying = most_retrying.max(retried());
    }
    let to_active = t.elapsed().as_secs_f64();
    let (cpu1, kcpu1) = (cpu_ms(pid), tree_cpu_ms(kam_pid));
    println!("  transactions so far: {}", outcomes(gw.ws));
    assert_eq!(
        now_active, subs,
        "only {now_active} of {subs} subscriptions active after {limit:?}"
    );
    let registered = clients.count(|c| &c.registered);
    println!(
        "  all {subs} subscriptions active {to_active:.1} s after the first account-register \
         ({accounts} registrations on the way; most retrying at once: {most_retrying}); \
         gateway CPU {:.0} ms ({:.1} us per subscription), Kamailio CPU {:.0} ms",
        (cpu1 - cpu0) as f64,
        (cpu1 - cpu0) as f64 * 1000.0 / subs as f64,
        (kcpu1 - kcpu0) as f64
    );
    assert_eq!(registered, accounts);
    let rss_active = rss_kib(pid);

    // NOTIFYs: every account publishes, each watcher of it is notified.
    let mut per_notify = Vec::new();
    for (phase, name) in [(PUBLISH_ONLINE, "online"), (PUBLISH_AWAY, "away")] {
        let n0 = notifies();
        let (cpu0, kcpu0) = (cpu_ms(pid), tree_cpu_ms(kam_pid));
        let t = Instant::now();
        clients.phase(phase);
        let deadline = Instant::now() + limit;
        let mut got = 0;
        while got < subs && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            got = notifies() - n0;
        }
        let secs = t.elapsed().as_secs_f64();
        let (cpu1, kcpu1) = (cpu_ms(pid), tree_cpu_ms(kam_pid));
        assert!(
            got >= subs,
            "only {got} of {subs} NOTIFYs after publishing {name}"
        );
        let us = (cpu1 - cpu0) as f64 * 1000.0 / got as f64;
        per_notify.push(us);
        println!(
            "  publish {name}: {got} NOTIFYs in {secs:.1} s ({:.0}/s); gateway CPU per NOTIFY \
             {us:.1} us (with the {accounts} PUBLISHes and the presence events); Kamailio CPU \
             per NOTIFY {:.1} us",
            got as f64 / secs,
            (kcpu1 - kcpu0) as f64 * 1000.0 / got as f64
        );
    }
    println!("  transactions so far: {}", outcomes(gw.ws));
    std::thread::sleep(Duration::from_secs(settle));
    let rss_b = rss_kib(pid);
    println!(
        "  memory per subscription: {:.2} KiB (RSS {} KiB with presence, {} KiB without, \
         {settle} s after the last activity; {:.2} KiB when all had just become active)",
        rss_b.saturating_sub(rss_a) as f64 / subs as f64,
        rss_b,
        rss_a,
        rss_active.saturating_sub(rss_a) as f64 / subs as f64,
    );

    if refresh {
        // Quiet first (nothing due), then the window in which every subscription refreshes.
        let refreshes = || {
            metric(
                gw.ws,
                "sylk_sip_transactions_total",
                "role=\"client\",method=\"SUBSCRIBE\",code=\"200\"",
            ) as u64
        };
        let made_at = t + Duration::from_secs_f64(to_active);
        let first_refresh = made_at + Duration::from_secs(expires * 3 / 4);
        let quiet = first_refresh
            .saturating_duration_since(Instant::now())
            .saturating_sub(Duration::from_secs(5))
            .min(Duration::from_secs(60));
        let c0 = cpu_ms(pid);
        std::thread::sleep(quiet);
        let idle_ms = cpu_ms(pid) - c0;
        println!(
            "  idle without refreshes: {:.2} % of a core over {:.0} s",
            idle_ms as f64 / quiet.as_secs_f64() / 10.0,
            quiet.as_secs_f64()
        );
        let r0 = refreshes();
        let (cpu0, kcpu0) = (cpu_ms(pid), tree_cpu_ms(kam_pid));
        let t = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(expires) + limit;
        while refreshes() - r0 < subs && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
        }
        let secs = t.elapsed().as_secs_f64();
        let (cpu1, kcpu1) = (cpu_ms(pid), tree_cpu_ms(kam_pid));
        let n = refreshes() - r0;
        let per_refresh = (cpu1 - cpu0) as f64 * 1000.0 / n.max(1) as f64;
        // At the default 3600 s a subscription refreshes every 2,700-3,540 s (3,120 s mean).
        let idle_default = per_refresh * subs as f64 / 3120.0 / 1e6 * 100.0;
        println!(
            "  refreshes: {n} in {secs:.0} s, gateway CPU {:.0} ms = {per_refresh:.1} us per \
             refresh (SUBSCRIBE, 200, NOTIFY, 200), Kamailio {:.1} us per refresh; at the default \
             subscribe_expires 3600: {:.3} % of a core for {subs} subscriptions",
            (cpu1 - cpu0) as f64,
            (kcpu1 - kcpu0) as f64 * 1000.0 / n.max(1) as f64,
            idle_default
        );
    }
    clients.close();
    let mut gw = gw;
    stop_pid(&mut gw.child);
    stop_pid(&mut kam);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = per_notify;
}
