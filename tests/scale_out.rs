//! Scale-out on standard components (issue 15 item 7), all on this machine: three gateway
//! instances on 127.0.0.2, 127.0.0.3 and 127.0.0.4 (loopback aliases: Linux routes all of
//! 127/8 to `lo`), HAProxy in front of their WebSocket listeners with `/ready` checks,
//! Kamailio as registrar and proxy keeping each instance's `Path` (RFC 3327) and the
//! registrations' RFC 5626 instance ids, and one PostgreSQL message store shared by the
//! instances. The configuration the instances get here is the README's "Scaling out" example.
//!
//! - Users on different instances message each other; a second device on a third instance
//!   finds the history in the shared store and gets the next message live (Kamailio forks
//!   it to both instances); calls between users on different instances carry audio both
//!   ways.
//! - One instance drains and stops while its client reconnects through HAProxy to another
//!   and registers again; every message sent meanwhile reaches the client (live, or from the
//!   shared store when it syncs): none is lost.

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::client::{parse_client_output, SYLKRTC_CLIENT};
use common::peers::{free_udp_range, Haproxy, Kamailio, KamailioOpts, Postgres};
use common::*;
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::Message;

/// The instances' addresses.
const HOSTS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// A UDP and TCP port free on `host` (the instance's SIP port must be known before it
/// starts: Kamailio's dispatcher list names it).
fn free_sip_port(host: &str) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((host, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind((host, port)).is_ok() {
            return port;
        }
    }
    panic!("no free SIP port on {host}");
}

/// The whole topology.
struct Cluster {
    gateways: Vec<Gateway>,
    haproxy: Haproxy,
    kamailio: Kamailio,
    /// Kept running for the cluster's lifetime.
    _postgres: Postgres,
}

impl Cluster {
    fn start() -> Cluster {
        let postgres = Postgres::start();
        let sip: Vec<SocketAddr> = HOSTS
            .iter()
            .map(|h| SocketAddr::new(h.parse().unwrap(), free_sip_port(h)))
            .collect();
        let kamailio = Kamailio::start(KamailioOpts {
            path: true,
            message_store: sip.clone(),
            ..KamailioOpts::default()
        });
        let gateways: Vec<Gateway> = HOSTS
            .iter()
            .zip(&sip)
            .map(|(host, sip)| instance(host, *sip, &kamailio, &postgres))
            .collect();
        let backends: Vec<SocketAddr> = gateways.iter().map(|g| g.ws).collect();
        let haproxy = Haproxy::start(&backends);
        // Every instance in rotation before the tests start.
        let c = Cluster {
            gateways,
            haproxy,
            kamailio,
            _postgres: postgres,
        };
        c.wait_in_rotation();
        c
    }

    /// Waits until HAProxy forwards upgrades to every instance (each answers one).
    fn wait_in_rotation(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut seen = BTreeSet::new();
            for _ in 0..6 {
                if let Some(mut c) = Conn::try_open(self.haproxy.addr()) {
                    if let Some(i) = self.instance_of_last_connection() {
                        seen.insert(i);
                    }
                    c.close();
                    self.wait_no_clients();
                }
            }
            if seen.len() == HOSTS.len() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy did not reach every instance: {seen:?}\n{}",
                self.haproxy.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The instance whose `sylk_clients` gauge is non-zero, if exactly one.
    fn instance_of_last_connection(&self) -> Option<usize> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let busy: Vec<usize> = (0..self.gateways.len())
                .filter(|&i| self.clients(i) > 0.0)
                .collect();
            if busy.len() == 1 {
                return Some(busy[0]);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn wait_no_clients(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while (0..self.gateways.len()).any(|i| self.clients(i) > 0.0) {
            assert!(Instant::now() < deadline, "connections did not go");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metrics(&self, i: usize) -> String {
        http(self.gateways[i].metrics.unwrap(), "GET", "/metrics").2
    }

    fn clients(&self, i: usize) -> f64 {
        metric(&self.metrics(i), "sylk_clients", "").unwrap_or(0.0)
    }

    /// Opens a connection through HAProxy and tells which instance took it (connections
    /// already open elsewhere are counted in `before`).
    fn open_via_haproxy(&self, before: &[f64]) -> (Conn, usize) {
        let conn = Conn::open(self.haproxy.addr());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now: Vec<f64> = (0..self.gateways.len()).map(|i| self.clients(i)).collect();
            let grown: Vec<usize> = (0..now.len()).filter(|&i| now[i] > before[i]).collect();
            if grown.len() == 1 {
                return (conn, grown[0]);
            }
            assert!(
                Instant::now() < deadline,
                "which instance? {before:?} -> {now:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn client_counts(&self) -> Vec<f64> {
        (0..self.gateways.len()).map(|i| self.clients(i)).collect()
    }

    /// Kamailio's location table (`kamcmd ul.dump`).
    fn locations(&self) -> String {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!(
                "unix:{}/kamailio_ctl",
                self.kamailio.dir().display()
            ))
            .arg("ul.dump")
            .output()
            .expect("kamcmd");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One instance: its own loopback address for WebSocket, SIP, metrics and media; Kamailio
/// as outbound proxy and registrar, with Path and instance ids; the shared PostgreSQL store.
fn instance(host: &str, sip: SocketAddr, kam: &Kamailio, pg: &Postgres) -> Gateway {
    let rtp = free_udp_range(40);
    let config = format!(
        "[sylkrtc]\nsip_domains = [\"example.test\"]\n\
         [sip]\noutbound_proxy = \"sip:{kam};transport=udp\"\nregister_path = true\n\
         register_instance_id = true\n\
         [media]\naddress = \"{host}\"\nrtp_ports = \"{rtp}-{}\"\n\
         [messaging]\ndatabase = \"{pg}\"\n\
         [shutdown]\ndrain_timeout = 30\n",
        rtp + 39,
        kam = kam.sip_addr(),
        pg = pg.url(),
    );
    let ws = format!("{host}:0");
    let sip = sip.to_string();
    Gateway::start(
        &config,
        &[
            "--ws-listen",
            &ws,
            "--wss-listen",
            &ws,
            "--sip-listen",
            &sip,
            "--metrics-listen",
            &ws,
            "--database",
            &pg.url(),
        ],
    )
}

/// A sylkRTC-2 connection to `addr` that keeps events arriving while it waits for a reply.
struct Conn {
    ws: Client,
    backlog: VecDeque<Value>,
    next_tx: u32,
    closed: bool,
}

impl Conn {
    fn try_open(addr: SocketAddr) -> Option<Conn> {
        let mut req = format!("ws://{addr}/webrtcgateway/ws")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("sylkRTC-2"),
        );
        let stream = TcpStream::connect(addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (ws, _) = tungstenite::client(req, stream).ok()?;
        let mut c = Conn {
            ws,
            backlog: VecDeque::new(),
            next_tx: 0,
            closed: false,
        };
        let ready = c.read(Instant::now() + Duration::from_secs(5))?;
        assert_eq!(ready["sylkrtc"], "ready-event");
        Some(c)
    }

    fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr).unwrap_or_else(|| panic!("no sylkRTC connection through {addr}"))
    }

    fn close(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
        self.closed = true;
    }

    /// The next message, `None` at the deadline or once the server closed.
    fn read(&mut self, deadline: Instant) -> Option<Value> {
        while Instant::now() < deadline && !self.closed {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(Message::Close(_)) => self.closed = true,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => self.closed = true,
            }
        }
        None
    }

    fn request(&mut self, mut request: Value) -> Value {
        self.next_tx += 1;
        let tx = format!("t{}", self.next_tx);
        request["transaction"] = tx.clone().into();
        send_json(&mut self.ws, &request);
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(v) = self.read(deadline) {
            if v["transaction"] == tx.as_str() {
                return v;
            }
            self.backlog.push_back(v);
        }
        panic!("no reply to {request}");
    }

    fn ack(&mut self, request: Value) {
        let reply = self.request(request.clone());
        assert_eq!(reply["sylkrtc"], "ack", "{request} -> {reply}");
    }

    fn event(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = Instant::now() + timeout;
        while let Some(v) = self.read(deadline) {
            if pred(&v) {
                return v;
            }
            self.backlog.push_back(v);
        }
        panic!(
            "no matching event within {timeout:?}; got {:?}",
            self.backlog
        );
    }

    /// Every event kept or arriving until the server closes the connection or `timeout`.
    fn drain_until_closed(&mut self, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        while let Some(v) = self.read(deadline) {
            self.backlog.push_back(v);
        }
        assert!(
            self.closed,
            "the connection was not closed within {timeout:?}"
        );
        self.backlog.drain(..).collect()
    }

    fn register(&mut self, kam: &Kamailio, user: &str) {
        let aor = format!("{user}@example.test");
        self.ack(json!({"sylkrtc":"account-add","account":aor,"password":kam.ha1(user)}));
        self.ack(json!({"sylkrtc":"account-register","account":aor}));
        let state = self.event(Duration::from_secs(15), |v| {
            v["event"] == "registration-state" && v["state"] != "registering"
        });
        assert_eq!(state["state"], "registered", "{state}");
    }

    fn send_message(&mut self, from: &str, to: &str, id: &str) {
        self.ack(
            json!({"sylkrtc":"account-message","account":format!("{from}@example.test"),
            "uri":format!("{to}@example.test"),"message_id":id,"content":format!("text of {id}"),
            "content_type":"text/plain","timestamp":"2026-01-02T03:04:05.000Z"}),
        );
    }

    fn disposition(&mut self, id: &str) -> Value {
        self.event(Duration::from_secs(30), |v| {
            v["event"] == "disposition-notification" && v["message_id"] == id
        })
    }

    /// `account-sync-conversations`: the message ids of the account's journal.
    fn sync_ids(&mut self, user: &str) -> Vec<String> {
        self.ack(json!({"sylkrtc":"account-sync-conversations",
            "account":format!("{user}@example.test")}));
        let sync = self.event(Duration::from_secs(10), |v| {
            v["event"] == "sync-conversations"
        });
        sync["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message_id"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn is_message(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v: &Value| v["event"] == "message" && v["message_id"] == id
}

#[test]
fn users_on_different_instances_message_and_call_each_other() {
    let cluster = Cluster::start();
    let kam = &cluster.kamailio;
    // Through HAProxy (round robin): alice, bob and bob's second device on three instances.
    let (mut alice, a) = cluster.open_via_haproxy(&cluster.client_counts());
    let (mut bob, b) = cluster.open_via_haproxy(&cluster.client_counts());
    let (mut bob2, b2) = cluster.open_via_haproxy(&cluster.client_counts());
    let mut on = BTreeSet::from([a, b, b2]);
    assert_eq!(
        on.len(),
        3,
        "round robin spreads the connections: {a} {b} {b2}"
    );
    alice.register(kam, "alice");
    bob.register(kam, "bob");
    // Kamailio keeps each binding's Path (the instance) and instance id.
    let loc = cluster.locations();
    for host in [HOSTS[a], HOSTS[b]] {
        assert!(
            loc.contains(&format!("Path: <sip:{host}:")),
            "no Path through {host}:\n{loc}"
        );
    }
    assert!(loc.contains("urn:uuid:"), "no instance id:\n{loc}");

    // A message from alice's instance reaches bob on his.
    alice.send_message("alice", "bob", "m1");
    let m = bob.event(Duration::from_secs(15), is_message("m1"));
    assert_eq!(m["content"], "text of m1");
    assert_eq!(m["sender"]["uri"], "alice@example.test");
    assert_eq!(alice.disposition("m1")["state"], "accepted");

    // Bob's second device, on the third instance, finds m1 in the shared store...
    bob2.register(kam, "bob");
    assert_eq!(bob2.sync_ids("bob"), ["m1"]);
    // ...and both of bob's devices get the next message live (Kamailio forks it to both
    // instances; the second to store it still shows it to its own connection).
    alice.send_message("alice", "bob", "m2");
    for dev in [&mut bob, &mut bob2] {
        dev.event(Duration::from_secs(15), is_message("m2"));
    }
    assert_eq!(alice.disposition("m2")["state"], "accepted");
    // Alice's journal (outgoing, stored by her instance) is readable from bob2's instance.
    let mut alice2 = Conn::open(cluster.gateways[b2].ws);
    alice2.register(kam, "alice");
    assert_eq!(alice2.sync_ids("alice"), ["m1", "m2"]);
    for c in [&mut alice, &mut bob, &mut bob2, &mut alice2] {
        c.close();
    }
    cluster.wait_no_clients();

    // A call between users on two instances: carol answers on one, alice calls from
    // another; each hears the other's tone.
    let (caller_i, callee_i) = (on.pop_first().unwrap(), on.pop_first().unwrap());
    let callee = std::process::Command::new("python3")
        .arg(SYLKRTC_CLIENT)
        .args(["answer", "--ws", &cluster.gateways[callee_i].ws_url()])
        .args([
            "--account",
            "carol@example.test",
            "--ha1",
            &kam.ha1("carol"),
        ])
        .args(["--seconds", "3", "--hz", "660"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (tests/run-all.sh installs the peers)");
    let registered = Instant::now() + Duration::from_secs(20);
    while !cluster.locations().contains("AoR: carol") {
        assert!(
            Instant::now() < registered,
            "carol never registered:\n{}",
            cluster.locations()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let caller = std::process::Command::new("python3")
        .arg(SYLKRTC_CLIENT)
        .args(["call", "--ws", &cluster.gateways[caller_i].ws_url()])
        .args([
            "--account",
            "alice@example.test",
            "--ha1",
            &kam.ha1("alice"),
        ])
        .args([
            "--to",
            "carol@example.test",
            "--seconds",
            "3",
            "--hz",
            "440",
        ])
        .output()
        .expect("python3");
    let (_, heard_by_alice) =
        parse_client_output(&String::from_utf8_lossy(&caller.stdout), &caller.stderr);
    let callee = callee.wait_with_output().unwrap();
    let (_, heard_by_carol) =
        parse_client_output(&String::from_utf8_lossy(&callee.stdout), &callee.stderr);
    for (who, result, hz) in [
        ("alice", &heard_by_alice, 660.0),
        ("carol", &heard_by_carol, 440.0),
    ] {
        let freq = result["freq"].as_f64().unwrap_or(0.0);
        assert!(
            (freq - hz).abs() < hz * 0.05,
            "{who} should hear {hz} Hz: {result}"
        );
    }
    // The instances' own counters saw the call on both sides.
    let started = |i: usize, dir: &str| {
        metric(
            &cluster.metrics(i),
            "sylk_calls_started_total",
            &format!("direction=\"{dir}\""),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(started(caller_i, "outgoing"), 1.0);
    assert_eq!(started(callee_i, "incoming"), 1.0);
}

#[test]
fn a_drained_instance_hands_its_clients_over_without_losing_messages() {
    let mut cluster = Cluster::start();
    let kam = &cluster.kamailio;
    let (mut carol, x) = cluster.open_via_haproxy(&cluster.client_counts());
    carol.register(kam, "carol");
    let y = (x + 1) % HOSTS.len();
    let mut alice = Conn::open(cluster.gateways[y].ws);
    alice.register(kam, "alice");
    let ids = |r: std::ops::Range<u32>| r.map(|i| format!("d{i}")).collect::<Vec<_>>();
    let mut seen: BTreeSet<String> = BTreeSet::new();

    // Before: live.
    for id in ids(0..5) {
        alice.send_message("alice", "carol", &id);
    }
    for id in ids(0..5) {
        carol.event(Duration::from_secs(15), is_message(&id));
        seen.insert(id);
    }

    // Carol's instance drains: /ready goes 503, her idle connection is closed (1001) and
    // her binding removed; meanwhile alice goes on writing.
    let metrics = cluster.gateways[x].metrics.unwrap();
    assert_eq!(http(metrics, "POST", "/admin/drain").0, 202);
    for id in ids(5..10) {
        alice.send_message("alice", "carol", &id);
    }
    for v in carol.drain_until_closed(Duration::from_secs(10)) {
        if v["event"] == "message" {
            seen.insert(v["message_id"].as_str().unwrap().to_owned());
        }
    }
    let exit = cluster.gateways[x]
        .wait_exit(Duration::from_secs(20))
        .expect("the drained instance exits once its last client is gone");
    assert!(exit.success(), "{exit:?}");
    // Every message was taken by someone: 2xx for all (the live instance's 200, or a store's
    // 202 while carol had no binding).
    for id in ids(0..10) {
        assert_eq!(alice.disposition(&id)["state"], "accepted", "{id}");
    }

    // Carol reconnects through HAProxy: another instance takes her, she registers and
    // syncs; what arrived while she moved is in the shared store.
    let mut carol = Conn::open(cluster.haproxy.addr());
    carol.register(kam, "carol");
    for id in carol.sync_ids("carol") {
        seen.insert(id);
    }
    for id in ids(10..15) {
        alice.send_message("alice", "carol", &id);
    }
    for id in ids(10..15) {
        carol.event(Duration::from_secs(15), is_message(&id));
        assert_eq!(alice.disposition(&id)["state"], "accepted", "{id}");
        seen.insert(id);
    }
    let want: BTreeSet<String> = ids(0..15).into_iter().collect();
    assert_eq!(seen, want, "messages lost while carol moved");
    // HAProxy took the drained instance out of rotation.
    cluster.haproxy.wait_for_log(
        &format!("gateways/gw{} is DOWN", x + 1),
        1,
        Duration::from_secs(10),
    );
    let _ = cluster.gateways.remove(x);
}
