//! systemd's notification protocol (`Type=notify` in `packaging/systemd/`), against the real
//! binary: the test listens on its own `NOTIFY_SOCKET` (a path, then an abstract name) as
//! systemd would, and expects `READY=1` once the gateway listens, `WATCHDOG=1` at half the
//! `WATCHDOG_USEC` pace while it runs, and `STOPPING=1` when SIGTERM starts its drain.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use common::*;

/// The notifications that arrive within `timeout`, until one contains `until`.
fn notifications_until(socket: &UnixDatagram, until: &str, timeout: Duration) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = text.contains(until);
            seen.push(text);
            if done {
                break;
            }
        }
    }
    seen
}

/// The notifications up to the first with `line` among its lines (failing without one).
fn expect(socket: &UnixDatagram, line: &str) -> Vec<String> {
    let seen = notifications_until(socket, line, Duration::from_secs(10));
    assert!(
        seen.last().is_some_and(|n| n.lines().any(|l| l == line)),
        "no {line}: {seen:?}"
    );
    seen
}

#[test]
fn ready_watchdog_and_stopping_reach_the_notify_socket() {
    let dir = std::env::temp_dir().join(format!("sylk-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    // 400 ms: a ping every 200 ms.
    let mut gw = Gateway::start_with_env(
        "",
        &[],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    expect(&socket, "READY=1");
    // The gateway is up by then: its WebSocket answers.
    drop(connect_v2(&gw));
    let start = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        let seen = notifications_until(&socket, "WATCHDOG=1", Duration::from_secs(5));
        assert!(
            seen.iter().any(|n| n == "WATCHDOG=1"),
            "no watchdog ping: {seen:?}"
        );
        pings += 1;
    }
    // Three pings at ~200 ms intervals: neither far faster nor far slower than asked.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "3 pings took {took:?}"
    );
    gw.signal("TERM");
    expect(&socket, "STOPPING=1");
    assert!(gw
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_abstract_notify_socket_gets_ready_and_no_watchdog_without_watchdog_usec() {
    let name = format!("sylk-notify-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    let mut gw = Gateway::start_with_env("", &[], &[("NOTIFY_SOCKET", &format!("@{name}"))]);
    let ready = expect(&socket, "READY=1");
    gw.signal("TERM");
    let rest = expect(&socket, "STOPPING=1");
    assert!(
        !ready.iter().chain(&rest).any(|n| n.contains("WATCHDOG=1")),
        "a watchdog ping without WATCHDOG_USEC: {ready:?} {rest:?}"
    );
    assert!(gw
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
}
