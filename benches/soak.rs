//! Soak (issue 16 item 7): call cycles in waves through the real gateway binary, with the
//! call_load tool's rtc browsers and in-process SIP RTP-echo UAS (`call_load/*.rs`), all on
//! 127.0.0.1. Each wave: `WAVE` browsers connect and add an account, set up a call each,
//! carry `MEDIA` s of 20 ms PCMU both ways, hang up, and disconnect. After every wave the
//! gateway's RSS and open file descriptors are read from /proc.
//!
//! It fails unless every call of every wave was established and terminated, the RSS after
//! the last wave is within 1 % (plus 1 MiB for the allocator's granularity) of the RSS after
//! the first quarter of the waves (the allocator's arenas grow during warm-up: +9 % over the
//! first 40 waves of 20 calls, flat after), the fd count is back to its value after the first wave, and,
//! at SIGTERM once all is done, the gateway's census shows nothing held (no WebSocket, call,
//! account, media socket, SIP call or bridge); the reactor's longest iteration and the number
//! over 2 ms are printed.
//!
//! ```text
//! cargo bench --bench soak                                   # 5 minutes: CI's form
//! CYCLES=100000 WAVE=100 MINUTES=0 cargo bench --bench soak  # the 100,000-cycle form
//! ```
//! Env: `CYCLES` (calls in all; default 1,000,000 with `--bench`, bounded by `MINUTES`),
//! `WAVE` (calls per wave, 50), `MEDIA` (seconds of media per wave, 2), `MINUTES` (stop
//! starting waves after this long, 5; 0 = no limit), `GATEWAY_WRAPPER` (a command the
//! gateway runs under, e.g. `nice -n -15`). Without `--bench` (`cargo test`) it is
//! a 3-wave smoke run of 4 calls.

#[path = "call_load/browser.rs"]
#[allow(dead_code)] // shared with call_load, which reads more of it
mod browser;
#[path = "call_load/cpu.rs"]
#[allow(dead_code)]
mod cpu;
#[path = "call_load/gateway.rs"]
#[allow(dead_code)]
mod gateway;
#[path = "common/gateway_process.rs"]
#[allow(dead_code)] // each bench uses part of it
mod gateway_process;
#[path = "call_load/peer.rs"]
#[allow(dead_code)]
mod peer;

use std::time::{Duration, Instant};

use browser::{Browsers, CallState};
use cpu::rss_kib;
use gateway::Gateway;
use peer::SipPeer;

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// One wave; returns (established, terminated).
fn wave(ws_url: &str, uri: &str, calls: usize, media: f64) -> (usize, usize) {
    let mut br = Browsers::connect(calls, ws_url, uri.to_owned());
    let setup_deadline = Instant::now() + Duration::from_secs(30);
    br.drive(
        setup_deadline,
        |br, now| {
            for _ in 0..16 {
                if br.started >= br.b.len() {
                    break;
                }
                br.start_next(now);
            }
        },
        |br| {
            br.started == br.b.len()
                && br
                    .b
                    .iter()
                    .all(|b| !matches!(b.state, CallState::Offered | CallState::Accepted))
        },
    );
    let established = br.count(CallState::Established);
    if media > 0.0 {
        br.start_media();
        br.drive(
            Instant::now() + Duration::from_secs_f64(media),
            |_, _| {},
            |_| false,
        );
        br.media_on = false;
    }
    for i in 0..br.b.len() {
        br.terminate(i);
    }
    br.drive(
        Instant::now() + Duration::from_secs(15),
        |_, _| {},
        |br| br.count(CallState::Terminating) == 0,
    );
    (established, br.count(CallState::Terminated))
}

/// Polls `f` until it is true or `timeout` passed.
fn settles(timeout: Duration, f: impl Fn() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let timing = std::env::args().any(|a| a == "--bench");
    let per_wave = env_num("WAVE", if timing { 50.0 } else { 4.0 }) as usize;
    let cycles = env_num("CYCLES", if timing { 1e6 } else { 12.0 }) as usize;
    let media = env_num("MEDIA", if timing { 2.0 } else { 0.5 });
    let minutes = env_num("MINUTES", if timing { 5.0 } else { 0.0 });
    let waves = cycles.div_ceil(per_wave.max(1));
    // The gateway logs at info so that its census and iteration figures are printed.
    std::env::set_var("GATEWAY_LOG", "info");
    let peer = SipPeer::start();
    // E.g. `GATEWAY_WRAPPER="nice -n -15"` on a machine shared with other work, so that
    // the reactor's iteration times measure its work rather than the scheduler's queue.
    let wrapper = std::env::var("GATEWAY_WRAPPER").unwrap_or_default();
    let gw = Gateway::start_keeping(per_wave, &wrapper, Some(": reactor: "));
    let pid = gw.pid();
    let ws_url = format!("ws://{}/webrtcgateway/ws", gw.ws);
    let uri = format!("echo@{}", peer.sip);
    let start = Instant::now();
    let mut done_waves = 0;
    let (mut established, mut terminated, mut attempted) = (0, 0, 0);
    let mut baseline: Option<(u64, usize)> = None;
    // RSS after every wave: the allocator's arenas grow for the first waves (warm-up), so the
    // growth is judged from the end of the first quarter of the run to its end.
    let mut rss_by_wave = Vec::new();
    let mut last = (0u64, 0usize);
    let mut peak_rss = 0;
    println!("soak: {waves} waves of {per_wave} calls, {media} s media each (gateway pid {pid})");
    println!("| wave | calls so far | elapsed | RSS KiB | fds |");
    println!("|---|---|---|---|---|");
    while done_waves < waves && (minutes == 0.0 || start.elapsed().as_secs_f64() < minutes * 60.0) {
        let (e, t) = wave(&ws_url, &uri, per_wave, media);
        attempted += per_wave;
        established += e;
        terminated += t;
        done_waves += 1;
        // The browsers' sockets closed: wait for the gateway to release their connections.
        let fds_target = baseline.map(|b| b.1);
        settles(Duration::from_secs(5), || {
            fds_target.is_none_or(|target| fd_count(pid) <= target)
        });
        let rss = rss_kib(pid);
        let fds = fd_count(pid);
        peak_rss = peak_rss.max(rss);
        rss_by_wave.push(rss);
        last = (rss, fds);
        if baseline.is_none() {
            baseline = Some(last);
        }
        if done_waves <= 3 || done_waves % 20 == 0 || done_waves == waves {
            println!(
                "| {done_waves} | {attempted} | {:.0} s | {rss} | {fds} |",
                start.elapsed().as_secs_f64()
            );
        }
    }
    let (rss1, fds0) = baseline.expect("at least one wave");
    let warm = rss_by_wave.len() / 4;
    let rss0 = rss_by_wave[warm];
    // SIGTERM (in the drop) once everything is idle: the census must be all zeros.
    let kept = std::sync::Arc::clone(&gw.kept);
    drop(gw);
    settles(Duration::from_secs(3), || {
        kept.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("iterations"))
    });
    let lines = kept.lock().unwrap().clone();
    for line in &lines {
        println!(
            "gateway: {}",
            line.split_once("reactor: ")
                .map_or(line.as_str(), |(_, l)| l)
        );
    }
    let census = lines
        .iter()
        .find_map(|l| l.split_once("census ").map(|(_, c)| c.to_owned()))
        .expect("the gateway's census line");
    let held: Vec<&str> = census
        .split_whitespace()
        .filter(|kv| !kv.ends_with("=0"))
        .collect();
    println!();
    println!(
        "soak: {attempted} call cycles in {done_waves} waves, {:.0} s; established {established}, terminated {terminated}",
        start.elapsed().as_secs_f64()
    );
    println!(
        "soak: RSS after wave 1 {rss1} KiB, after wave {} (warm) {rss0} KiB, after the last {} KiB ({:+.2} %), peak {peak_rss} KiB; fds {fds0} -> {}",
        warm + 1,
        last.0,
        100.0 * (last.0 as f64 - rss0 as f64) / rss0 as f64,
        last.1
    );
    assert_eq!(established, attempted, "every call established");
    assert_eq!(terminated, attempted, "every call terminated");
    assert!(
        last.0 <= rss0 + rss0 / 100 + 1024,
        "RSS grew from {rss0} to {} KiB",
        last.0
    );
    assert!(last.1 <= fds0, "fds grew from {fds0} to {}", last.1);
    assert!(
        held.is_empty(),
        "still held after every call ended: {held:?}"
    );
}
