//! Fault tests (issue 16 item 6) with real peers: the SIP peer killed mid-call, a browser
//! that vanishes without closing, a DNS server that never answers, a SIP TCP connection
//! reset mid-dialog, the registrar going away and coming back, and loss and jitter from `tc netem` in a network namespace the test
//! creates and removes itself. Every test ends by checking, from the gateway's census at
//! SIGTERM, that nothing of the call was left behind.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use common::client::run_sylkrtc_client;
use common::peers::{free_udp_range, poll, Kamailio, KamailioOpts, Sipp, SippOpts, Transport};
use common::*;
use serde_json::{json, Value};

const CHROME_OFFER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/media/tests/fixtures/sdp/chrome_offer.sdp"
));

fn gateway(extra: &str) -> Gateway {
    let base = free_udp_range(20);
    Gateway::start(
        &format!(
            "{extra}\n[media]\nrtp_ports = \"{base}-{}\"\ninactivity_timeout = 2\n",
            base + 19
        ),
        &[],
    )
}

/// Closes the client's connection and waits until the gateway has handled it: the census
/// is taken as SIGTERM arrives, and a close still unread then (a loaded machine) would be
/// counted as held.
fn hang_up(gw: &Gateway, ws: Client) {
    drop(ws);
    gw.wait_for_log("websocket closed", Duration::from_secs(10));
}

fn client(gw: &Gateway) -> Client {
    let mut ws = connect_v2(gw);
    let add = json!({"sylkrtc":"account-add","transaction":"a","account":"alice@example.test","password":HA1});
    assert_eq!(call(&mut ws, add)["sylkrtc"], "ack");
    ws
}

fn create(ws: &mut Client, session: &str, uri: &str) {
    let reply = call(
        ws,
        json!({"sylkrtc":"session-create","transaction":"c","account":"alice@example.test",
               "session":session,"uri":uri,"sdp":CHROME_OFFER}),
    );
    assert_eq!(reply["sylkrtc"], "ack", "{reply}");
}

/// Session states until one of `until`.
fn states_until(ws: &mut Client, until: &[&str]) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let e = recv_json(ws);
        if e["sylkrtc"] != "session-event" {
            continue;
        }
        let done = until.iter().any(|u| e["state"] == *u);
        got.push(e);
        if done {
            return got;
        }
    }
}

fn kill9(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// The SIP peer dies (SIGKILL) while the call carries audio: no BYE ever comes, the RTP
/// stops, and the call ends with `Media timeout (SIP)` after `media.inactivity_timeout`.
#[test]
fn sip_peer_killed_mid_call_ends_it_with_a_clear_reason() {
    let mut gw = gateway("");
    let mut uas = Sipp::echo_uas("uas_echo.xml");
    let ws_url = gw.ws_url();
    let target = format!("echo@{}", uas.sip_addr());
    let caller = std::thread::spawn(move || {
        run_sylkrtc_client(&[
            "call",
            "--ws",
            &ws_url,
            "--account",
            "alice@example.test",
            "--ha1",
            HA1,
            "--to",
            &target,
            "--seconds",
            "20",
        ])
    });
    uas.wait_for_message("ACK sip:", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    kill9(uas.pid());
    let (events, result) = caller.join().expect("caller");
    let ended = killed.elapsed();
    let terminated = events
        .iter()
        .find(|e| e["state"] == "terminated")
        .unwrap_or_else(|| panic!("not terminated: {result}"));
    assert_eq!(terminated["reason"], "Media timeout (SIP)", "{terminated}");
    assert!(
        ended < Duration::from_secs(10),
        "ended {ended:?} after the kill, not by the client's own hang-up"
    );
    uas.stop();
    assert_eq!(gw.held_at_shutdown(), Vec::<String>::new());
}

/// A browser that vanishes without a close (it stops reading and answering pings, as a
/// laptop closed mid-call does): the ping times out, its call is torn down with a BYE.
#[test]
fn vanished_browser_is_timed_out_and_its_call_torn_down() {
    let mut gw = gateway("[websocket]\nping_interval = 2\n");
    let uas = Sipp::uas("uas_echo.xml", SippOpts::default());
    let mut ws = client(&gw);
    create(&mut ws, "v1", &format!("bob@{}", uas.sip_addr()));
    states_until(&mut ws, &["accepted"]);
    // From now on nothing is read (so no pong is sent) and nothing is written.
    let vanished = Instant::now();
    uas.wait_for_sequence(&["BYE sip:", "SIP/2.0 200"], Duration::from_secs(10));
    assert!(
        vanished.elapsed() < Duration::from_secs(8),
        "torn down only after {:?}",
        vanished.elapsed()
    );
    hang_up(&gw, ws);
    assert_eq!(gw.held_at_shutdown(), Vec::<String>::new());
}

/// The DNS server never answers: a call to a domain ends with a clear reason once the
/// resolver gave up (RFC 3263 needs an answer), and nothing is left behind.
#[test]
fn silent_dns_server_fails_the_call_clearly() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut gw = gateway(&format!(
        "[sip]\nnameservers = [\"{}\"]\n",
        silent.local_addr().unwrap()
    ));
    let mut ws = client(&gw);
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    create(&mut ws, "d1", "bob@nowhere.example");
    // The gateway did ask.
    let mut query = [0u8; 512];
    let (n, _) = silent.recv_from(&mut query).expect("a DNS query");
    assert!(n > 12);
    let events = states_until(&mut ws, &["terminated"]);
    let reason = events.last().unwrap()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    eprintln!("silent DNS: {reason}");
    assert!(
        reason.starts_with("408") || reason.starts_with("503") || reason.contains("DNS"),
        "{reason}"
    );
    hang_up(&gw, ws);
    assert_eq!(gw.held_at_shutdown(), Vec::<String>::new());
}

/// The SIP peer's TCP connection is reset mid-dialog (the process is killed): the hang-up
/// that follows cannot reach it, yet the client gets `terminated` and nothing leaks.
#[test]
fn sip_tcp_reset_mid_dialog_still_ends_cleanly() {
    let mut gw = gateway("[sip]\ntransports = [\"tcp\"]\n");
    let mut uas = Sipp::uas(
        "uas_echo.xml",
        SippOpts {
            transport: Transport::Tcp,
            ..SippOpts::default()
        },
    );
    let mut ws = client(&gw);
    create(&mut ws, "t1", &format!("bob@{}", uas.sip_addr()));
    states_until(&mut ws, &["accepted"]);
    kill9(uas.pid());
    uas.stop();
    std::thread::sleep(Duration::from_millis(200));
    let reply = call(
        &mut ws,
        json!({"sylkrtc":"session-terminate","transaction":"x","session":"t1"}),
    );
    assert_eq!(reply["sylkrtc"], "ack", "{reply}");
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let events = states_until(&mut ws, &["terminated"]);
    eprintln!("after the reset: {}", events.last().unwrap());
    hang_up(&gw, ws);
    assert_eq!(gw.held_at_shutdown(), Vec::<String>::new());
}

/// The registrar goes away while an account is registered, then comes back: the refresh
/// fails and is reported (`failed` with a reason), the gateway retries with back-off (10 s,
/// then doubling: a dead registrar is not hammered) and the account is `registered` again
/// once the registrar answers, without anything from the client.
#[test]
fn registrar_unreachable_then_back_recovers_the_registration() {
    let mut kam = Kamailio::start(KamailioOpts::default());
    let proxy = kam.sip_addr();
    // TCP: a stopped registrar refuses at once, so the refresh fails without waiting for
    // Timer F; the shortest lifetime allowed makes the refresh come after 30 s.
    let mut gw = gateway(&format!(
        "[sip]\noutbound_proxy = \"sip:{proxy};transport=tcp\"\nregister_expires = 60\n"
    ));
    let mut ws = connect_v2(&gw);
    let aor = format!("alice@{}", kam.domain());
    let add = json!({"sylkrtc":"account-add","transaction":"a","account":aor,"password":kam.ha1("alice")});
    assert_eq!(call(&mut ws, add)["sylkrtc"], "ack");
    let reg = json!({"sylkrtc":"account-register","transaction":"r","account":aor});
    assert_eq!(call(&mut ws, reg)["sylkrtc"], "ack");
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(90)))
        .unwrap();
    let next_state = |ws: &mut Client| loop {
        let e = recv_json(ws);
        if e["event"] == "registration-state" {
            return e;
        }
    };
    assert_eq!(next_state(&mut ws)["state"], "registering");
    assert_eq!(next_state(&mut ws)["state"], "registered");

    kam.stop();
    let down = Instant::now();
    let failed = loop {
        let e = next_state(&mut ws);
        if e["state"] == "failed" {
            break e;
        }
    };
    assert!(
        failed["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{failed}"
    );
    let failed_after = down.elapsed();
    assert!(failed_after < Duration::from_secs(45), "{failed_after:?}");

    kam.restart();
    let back = Instant::now();
    loop {
        let e = next_state(&mut ws);
        if e["state"] == "registered" {
            break;
        }
        assert_ne!(e["state"], "unregistered", "{e}");
    }
    // Retries wait 10 s, 20 s, 40 s...: back within the back-off in force when it returned.
    assert!(
        back.elapsed() < Duration::from_secs(50),
        "{:?}",
        back.elapsed()
    );
    // The restarted registrar (its location table started empty) routes to the gateway.
    assert_eq!(kam.options_to("alice").0, 200);
    let unreg = json!({"sylkrtc":"account-unregister","transaction":"u","account":aor});
    assert_eq!(call(&mut ws, unreg)["sylkrtc"], "ack");
    let gone = poll(Duration::from_secs(5), || {
        (kam.options_to("alice").0 != 200).then_some(())
    });
    assert!(
        gone.is_some(),
        "binding still present after account-unregister"
    );
    hang_up(&gw, ws);
    // Nothing of the account is left; the TCP connections with the live registrar (ours to
    // it, its own to our listener for the OPTIONS) stay open for reuse, as they should.
    let held: Vec<String> = gw
        .held_at_shutdown()
        .into_iter()
        .filter(|kv| !kv.starts_with("sip_flows=") && !kv.starts_with("sip_connections="))
        .collect();
    assert_eq!(held, Vec::<String>::new());
}

/// Removes the namespace on drop, whatever happened.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(cmd: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("{}: {e}", cmd.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// 5 % loss and 50 ms jitter (`tc netem`) on the loopback of a network namespace, with the
/// gateway, SIPp and the aiortc client inside it: the call still sets up (through SIP
/// retransmissions) and carries audio, and the client's RTP counters report the loss.
/// Skips, saying why, only where the kernel refuses network namespaces or netem.
#[test]
fn lossy_jittery_network_in_a_namespace() {
    let ns = format!("sylk{}", std::process::id());
    if let Err(e) = run(&["ip", "netns", "add", &ns]) {
        eprintln!("SKIP lossy_jittery_network_in_a_namespace: cannot create a namespace: {e}");
        return;
    }
    let ns = Netns(ns);
    run(&[
        "ip", "netns", "exec", &ns.0, "ip", "link", "set", "lo", "up",
    ])
    .expect("lo up");
    if let Err(e) = run(&[
        "ip", "netns", "exec", &ns.0, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss",
        "5%", "delay", "25ms", "50ms",
    ]) {
        eprintln!("SKIP lossy_jittery_network_in_a_namespace: the kernel refuses netem: {e}");
        return;
    }
    // Everything below runs inside the namespace: this test binary re-executes itself there
    // with SYLK_IN_NETNS set, so the harness's processes (gateway, SIPp, client) inherit it.
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&exe)
        .args([
            "--exact",
            "inside_lossy_namespace",
            "--nocapture",
            "--ignored",
        ])
        .env("SYLK_IN_NETNS", "1")
        .output()
        .expect("re-exec in the namespace");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(
        out.status.success() && text.contains("1 passed"),
        "inside the namespace failed"
    );
}

/// The body of [`lossy_jittery_network_in_a_namespace`], run inside the namespace.
#[test]
#[ignore = "run by lossy_jittery_network_in_a_namespace inside its namespace"]
fn inside_lossy_namespace() {
    assert!(
        std::env::var_os("SYLK_IN_NETNS").is_some(),
        "only inside the namespace"
    );
    let mut gw = gateway("");
    let uas = Sipp::echo_uas("uas_echo.xml");
    let target = format!("echo@{}", uas.sip_addr());
    let (events, result) = run_sylkrtc_client(&[
        "call",
        "--ws",
        &gw.ws_url(),
        "--account",
        "alice@example.test",
        "--ha1",
        HA1,
        "--to",
        &target,
        "--seconds",
        "6",
    ]);
    eprintln!("lossy call: {result}");
    assert!(
        events.iter().any(|e| e["state"] == "established"),
        "{events:?}"
    );
    let lost = result["rtp_in"]["lost"].as_u64().unwrap_or(0);
    let received = result["rtp_in"]["received"].as_u64().unwrap_or(0);
    assert!(received > 100, "{result}");
    assert!(lost > 0, "5 % loss each way is reported: {result}");
    assert_eq!(gw.held_at_shutdown(), Vec::<String>::new());
}
