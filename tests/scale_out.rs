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

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::client::{parse_client_output, SYLKRTC_CLIENT};
use common::conn::{is_message, Conn};
use common::peers::{free_udp_range, Haproxy, Kamailio, KamailioOpts, Postgres};
use common::*;

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

fn register(c: &mut Conn, kam: &Kamailio, user: &str) {
    c.register_as(&format!("{user}@example.test"), &kam.ha1(user));
}

fn send(c: &mut Conn, from: &str, to: &str, id: &str) {
    c.send_message(
        &format!("{from}@example.test"),
        &format!("{to}@example.test"),
        id,
    );
}

fn sync_ids(c: &mut Conn, user: &str) -> Vec<String> {
    c.sync_ids(&format!("{user}@example.test"))
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
    register(&mut alice, kam, "alice");
    register(&mut bob, kam, "bob");
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
    send(&mut alice, "alice", "bob", "m1");
    let m = bob.event(Duration::from_secs(15), is_message("m1"));
    assert_eq!(m["content"], "text of m1");
    assert_eq!(m["sender"]["uri"], "alice@example.test");
    assert_eq!(alice.disposition("m1")["state"], "accepted");

    // Bob's second device, on the third instance, finds m1 in the shared store...
    register(&mut bob2, kam, "bob");
    assert_eq!(sync_ids(&mut bob2, "bob"), ["m1"]);
    // ...and both of bob's devices get the next message live (Kamailio forks it to both
    // instances; the second to store it still shows it to its own connection).
    send(&mut alice, "alice", "bob", "m2");
    for dev in [&mut bob, &mut bob2] {
        dev.event(Duration::from_secs(15), is_message("m2"));
    }
    assert_eq!(alice.disposition("m2")["state"], "accepted");
    // Alice's journal (outgoing, stored by her instance) is readable from bob2's instance.
    let mut alice2 = Conn::open(cluster.gateways[b2].ws);
    register(&mut alice2, kam, "alice");
    assert_eq!(sync_ids(&mut alice2, "alice"), ["m1", "m2"]);
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
        // Longer than the caller's 3 s: the caller hangs up (both ending at once races
        // their BYEs against their session-terminates).
        .args(["--seconds", "10", "--hz", "660"])
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
    register(&mut carol, kam, "carol");
    let y = (x + 1) % HOSTS.len();
    let mut alice = Conn::open(cluster.gateways[y].ws);
    register(&mut alice, kam, "alice");
    let ids = |r: std::ops::Range<u32>| r.map(|i| format!("d{i}")).collect::<Vec<_>>();
    let mut seen: BTreeSet<String> = BTreeSet::new();

    // Before: live.
    for id in ids(0..5) {
        send(&mut alice, "alice", "carol", &id);
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
        send(&mut alice, "alice", "carol", &id);
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
    register(&mut carol, kam, "carol");
    for id in sync_ids(&mut carol, "carol") {
        seen.insert(id);
    }
    for id in ids(10..15) {
        send(&mut alice, "alice", "carol", &id);
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
