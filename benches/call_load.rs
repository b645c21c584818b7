//! Call load tool (issue 5 item 8). Not a timed test: it measures and prints, it asserts only
//! that the run was sane.
//!
//! What runs, all on 127.0.0.1:
//! - the **real gateway binary** (`sylk-gateway`, built in the bench profile), started on port 0
//!   with a generated config (wide `[media] rtp_ports`, raised `max_calls`), killed by its pid at
//!   the end;
//! - **N browsers**: `rtc` (webrtc-rs, sans-IO) peer connections multiplexed on one mio loop in
//!   this process's main thread, each with its own UDP socket and its own sylkRTC-2 WebSocket;
//!   they add an account, send `session-create` with rtc's offer, trickle their host candidate
//!   and end-of-candidates, apply the `accepted` answer, wait for `established`, then send
//!   20 ms PCMU (160-byte payloads, 50 pps) and count the echo by sequence gaps per SSRC;
//! - a **SIP RTP-echo UAS** in three threads of this process (std UDP sockets): 200 OK with a
//!   PCMU SDP toward one shared echo socket (4 MiB receive buffer), ACK/BYE handling, an echo
//!   loop, and an RTCP sink. (The gateway is the one that must stay single-threaded.)
//!
//! Browser behaviour worth knowing when reading the figures: the gateway's DTLS ClientHello
//! often overtakes its STUN success response, and rtc drops DTLS before its own ICE is
//! connected (the peer then retransmits after 1 s), so the browsers hold such records and
//! replay them, as Chrome does; rtc's 1 s peer-reflexive acceptance wait is set to 0; and
//! rtc as the controlling agent sometimes nominates only on its next 200 ms ICE tick, which
//! shows up as a p99 setup latency of ~200 ms at low rates (`LOAD_DEBUG` shows it).
//!
//! Phases and figures:
//! 1. setup: start N calls as fast as allowed (`SETUP_RATE`, `INFLIGHT`); setups/s from the
//!    first session-create to the last `established`, setup latency p50/p99, gateway CPU per
//!    setup;
//! 2. steady state: hold the calls `SECONDS` s with media; gateway CPU per forwarded packet
//!    (packets the echo received + packets the browsers received) and per call-second, total
//!    pps, loss, and calls per core extrapolated from CPU per call-second;
//! 3. teardown: `session-terminate` all, check every call got `terminated` (and the UAS a BYE);
//! 4. floor: the same number of flows at 50 pps each way through a bare single-threaded mio UDP
//!    forwarder (two sockets per call, `recv_from`/`send_to`) and the same echo, for the ratio
//!    gateway CPU per packet / floor CPU per packet (`FLOOR=0` skips it; `FLOOR=2` runs it
//!    once more as a separate process, the gateway's situation, see `call_load/floor.rs`).
//!
//! CPU is read from /proc: the gateway's utime+stime (`/proc/<pid>/stat`, 10 ms ticks) and its
//! scheduler runtime (`/proc/<pid>/schedstat`, ns; the gateway is single-threaded); the
//! generator's own CPU (browsers thread, SIP peer threads) is reported next to it, because it
//! shares the same 2 cores and, being built on rtc with SRTP per packet, is no cheaper than the
//! gateway: at high N the generator saturates first.
//!
//! Every phase has a deadline (setup `SETUP_TIMEOUT`, steady `SECONDS` + 1.5 s, teardown 15 s,
//! floor `SECONDS` + 1 s). Run (default N=50, T=10 s: about 30 s wall):
//! ```text
//! cargo bench --bench call_load
//! CALLS=500 SECONDS=20 cargo bench --bench call_load
//! ```
//! Without `--bench` (`cargo test --all-targets`) it is a 2-call, 1 s smoke run.
//! Env: `CALLS` (50), `SECONDS` (10; 0 = setup and teardown only, no media), `IDLE` (s with
//! the calls up before media starts, measured on their own: 1), `FLOOR` (1), `SETUP_RATE` (calls/s offered, 0 = as fast as possible),
//! `INFLIGHT` (most calls between session-create and established, 200), `SETUP_TIMEOUT` (s, 30),
//! `GATEWAY_LOG` (gateway log level, warn; its stderr is shown when `SYLK_TEST_LOG` is set),
//! `HEAP` (`1`: run the gateway under valgrind's massif and report its heap per idle
//! connection and per call, by owner, from snapshots taken with `vgdb`), `CALLGRIND` (`1`:
//! run it under callgrind and report the instructions it executes per forwarded packet in
//! the steady-state window; use ~30 calls, valgrind is ~50x slower; both in
//! `call_load/valgrind.rs`), `GATEWAY_WRAPPER` (a command the gateway runs under, split on
//! whitespace, e.g. `perf record -g -o /tmp/gw.perf`),
//! `LOAD_DEBUG` (`1`: trace browser 0's pc events and datagrams with their time since
//! session-create, and list setups slower than 100 ms; `all`: trace every browser).

#[path = "call_load/browser.rs"]
mod browser;
#[path = "call_load/cpu.rs"]
mod cpu;
#[path = "call_load/floor.rs"]
mod floor;
#[path = "call_load/gateway.rs"]
mod gateway;
#[path = "common/gateway_process.rs"]
#[allow(dead_code)] // each bench uses part of it
mod gateway_process;
#[path = "call_load/peer.rs"]
mod peer;
#[path = "call_load/valgrind.rs"]
mod valgrind;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use browser::{Browsers, CallState};
use cpu::{context_switches, machine_jiffies, rss_kib, udp_buf_errors, udp_drops_by_port, Snap};
use gateway::Gateway;
use peer::SipPeer;

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Drops counted for `port` in a `udp_drops_by_port` reading.
fn sip_drops(m: &std::collections::HashMap<u16, u64>, port: u16) -> u64 {
    m.get(&port).copied().unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Totals {
    sent: u64,
    rx: u64,
    echoed: u64,
}

fn totals(br: &Browsers, peer: &SipPeer) -> Totals {
    Totals {
        sent: br.b.iter().map(|b| b.sent).sum(),
        rx: br.b.iter().map(|b| b.rx_total).sum(),
        echoed: peer.stats.rtp_echoed.load(Ordering::Relaxed),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::args().nth(1).as_deref() == Some(floor::CHILD_ARG) {
        floor::child_main();
    }
    // `cargo bench` passes --bench; anything else (`cargo test --benches`/`--all-targets`) is a
    // quick smoke run (2 calls, 1 s, no floor) of a debug build whose figures mean nothing.
    let timing = std::env::args().any(|a| a == "--bench");
    if !timing {
        println!("call_load: smoke run (not `cargo bench`): the figures below mean nothing");
    }
    let calls = env_num("CALLS", if timing { 50.0 } else { 2.0 }) as usize;
    let seconds = env_num("SECONDS", if timing { 10.0 } else { 1.0 });
    // FLOOR: 0 none, 1 the forwarder as a thread of this process, 2 also as a process.
    let floor_mode = env_num("FLOOR", if timing { 1.0 } else { 0.0 }) as u32;
    // HEAP=1 / CALLGRIND=1: the gateway runs under valgrind (about 50x slower: set up calls
    // slowly).
    let heap_on = env_num("HEAP", 0.0) != 0.0;
    let callgrind_on = env_num("CALLGRIND", 0.0) != 0.0;
    assert!(
        !(heap_on && callgrind_on),
        "HEAP and CALLGRIND are exclusive"
    );
    let under_valgrind = heap_on || callgrind_on;
    let setup_rate = env_num("SETUP_RATE", if under_valgrind { 20.0 } else { 0.0 });
    let inflight = env_num("INFLIGHT", 200.0) as usize;
    let setup_timeout = Duration::from_secs_f64(env_num(
        "SETUP_TIMEOUT",
        if under_valgrind { 300.0 } else { 30.0 },
    ));
    assert!(calls >= 1 && seconds >= 0.0);
    let valgrind_dir = under_valgrind.then(valgrind::dir);
    let heap_dir = valgrind_dir.clone().filter(|_| heap_on);
    let wrapper = match (&valgrind_dir, std::env::var("GATEWAY_WRAPPER")) {
        (_, Ok(w)) => w,
        (Some(d), _) if heap_on => valgrind::massif(&d.join("massif.out")),
        (Some(d), _) => valgrind::callgrind(d),
        (None, _) => String::new(),
    };

    let peer = SipPeer::start();
    let gw = Gateway::start(calls, &wrapper);
    let pid = gw.pid();
    let snap = |peer: &SipPeer| Snap::take(pid, peer.cpu_ns());
    let heap_snap = |name: &str| {
        heap_dir
            .as_ref()
            .and_then(|d| valgrind::snapshot(pid, &d.join(format!("{name}.massif"))))
    };
    let rss0 = rss_kib(pid);
    let heap0 = heap_snap("0-start");
    println!(
        "call_load: {calls} calls, {seconds} s steady state; gateway pid {pid} ws {} sip {}; SIP echo UAS {}",
        gw.ws, gw.sip, peer.sip
    );

    // Phase 0: WebSocket connections + account-add (blocking, one by one; not the setup figure).
    let s0 = snap(&peer);
    let t0 = Instant::now();
    let uri = format!("echo@{}", peer.sip);
    let mut br = Browsers::connect(calls, &format!("ws://{}/webrtcgateway/ws", gw.ws), uri);
    let connect_wall = t0.elapsed();
    let s1 = snap(&peer);
    let rss_conns = rss_kib(pid);
    let heap_conns = heap_snap("1-connections");

    // Phase 1: setup.
    let drops_su0 = udp_drops_by_port();
    let t_setup = Instant::now();
    let interval = if setup_rate > 0.0 {
        Duration::from_secs_f64(1.0 / setup_rate)
    } else {
        Duration::ZERO
    };
    let mut next_start = t_setup;
    br.drive(
        t_setup + setup_timeout,
        |br, now| {
            // Start at most 16 per loop turn, so answers keep flowing while we start calls.
            for _ in 0..16 {
                if br.started >= br.b.len() || now < next_start {
                    break;
                }
                let pending =
                    br.b.iter()
                        .take(br.started)
                        .filter(|b| matches!(b.state, CallState::Offered | CallState::Accepted))
                        .count();
                if pending >= inflight {
                    break;
                }
                br.start_next(now);
                next_start += interval;
                if interval.is_zero() {
                    next_start = now;
                }
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
    let s2 = snap(&peer);
    let drops_su1 = udp_drops_by_port();
    let established = br.count(CallState::Established);
    let first_create = br.b.iter().filter_map(|b| b.t_create).min();
    let last_est = br.b.iter().filter_map(|b| b.t_established).max();
    let setup_span = match (first_create, last_est) {
        (Some(a), Some(b)) => b - a,
        _ => t_setup.elapsed(),
    };
    let mut lat: Vec<f64> =
        br.b.iter()
            .filter_map(|b| Some((b.t_established? - b.t_create?).as_secs_f64() * 1e3))
            .collect();
    lat.sort_by(f64::total_cmp);
    // Where the setup time goes: create -> accepted -> browser pc connected -> established.
    let stage = |f: &dyn Fn(&browser::Browser) -> Option<Duration>| {
        let mut v: Vec<f64> =
            br.b.iter()
                .filter_map(|b| f(b).map(|d| d.as_secs_f64() * 1e3))
                .collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    };
    if std::env::var_os("LOAD_DEBUG").is_some() {
        for (i, b) in br.b.iter().enumerate() {
            let (Some(c), Some(e)) = (b.t_create, b.t_established) else {
                continue;
            };
            if e - c > Duration::from_millis(100) {
                let since = |t: Option<Instant>| t.map(|t| (t - c).as_secs_f64() * 1e3);
                eprintln!(
                    "slow setup {i}: accepted {:?} pc connected {:?} established {:.1} ms",
                    since(b.t_accepted),
                    since(b.t_pc_connected),
                    (e - c).as_secs_f64() * 1e3
                );
            }
        }
    }
    let to_accepted = stage(&|b| Some(b.t_accepted? - b.t_create?));
    let to_connected = stage(&|b| b.t_pc_connected?.checked_duration_since(b.t_accepted?));
    let to_established = stage(&|b| {
        b.t_established?
            .checked_duration_since(b.t_pc_connected.or(b.t_accepted)?)
    });
    let setup_failures: Vec<String> = br.b.iter().filter_map(|b| b.error.clone()).collect();
    let rss_calls = rss_kib(pid);
    let heap_calls = heap_snap("2-calls");

    // Phase 1b: the calls are up but carry no media yet (like calls on hold): what their
    // timers alone cost the gateway (ICE ticks, RTCP, inactivity checks).
    let idle_s = env_num("IDLE", if timing && !under_valgrind { 1.0 } else { 0.0 });
    let idle = (idle_s > 0.0 && established > 0).then(|| {
        let (c0, s0) = (context_switches(pid), snap(&peer));
        let t = Instant::now();
        br.drive(t + Duration::from_secs_f64(idle_s), |_, _| {}, |_| false);
        let (c1, s1) = (context_switches(pid), snap(&peer));
        (s1.since(&s0), c1.0 - c0.0, t.elapsed().as_secs_f64())
    });

    // Phase 2: steady state (1 s warm-up, then the measured window, then 0.5 s drain).
    // SECONDS=0: setup and teardown only, no media.
    let media = seconds > 0.0;
    if media {
        br.start_media();
        br.drive(
            Instant::now() + Duration::from_secs(1),
            |_, _| {},
            |_| false,
        );
    }
    let (udp0, mach0, drops0) = (udp_buf_errors(), machine_jiffies(), udp_drops_by_port());
    let callgrind_zeroed = callgrind_on && media && valgrind::callgrind_zero(pid);
    let before = totals(&br, &peer);
    let cs0 = context_switches(pid);
    let s3 = snap(&peer);
    let tw = Instant::now();
    br.drive(tw + Duration::from_secs_f64(seconds), |_, _| {}, |_| false);
    let window = tw.elapsed().as_secs_f64();
    let s4 = snap(&peer);
    let cs1 = context_switches(pid);
    let after = totals(&br, &peer);
    let callgrind = valgrind_dir
        .as_ref()
        .filter(|_| callgrind_zeroed)
        .and_then(|d| valgrind::callgrind_dump(pid, d));
    let (udp1, mach1, drops1) = (udp_buf_errors(), machine_jiffies(), udp_drops_by_port());
    // Where datagrams were dropped for want of a reader: gateway / echo / browsers.
    let browser_ports: std::collections::HashSet<u16> =
        br.b.iter().map(|b| b.local.port()).collect();
    let mut drops = [0u64; 3];
    for (port, d) in &drops1 {
        let d = d.saturating_sub(drops0.get(port).copied().unwrap_or(0));
        if gw.ports.contains(port) {
            drops[0] += d;
        } else if *port == peer.echo_port || *port == peer.echo_port + 1 {
            drops[1] += d;
        } else if browser_ports.contains(port) {
            drops[2] += d;
        }
    }
    let holding = br.count(CallState::Established);
    if media {
        br.media_on = false;
        br.drive(
            Instant::now() + Duration::from_millis(500),
            |_, _| {},
            |_| false,
        );
    }
    let drained = totals(&br, &peer);
    let rss_steady = rss_kib(pid);
    let heap_steady = heap_snap("3-steady");

    // Phase 3: teardown.
    let s5 = snap(&peer);
    let drops_td0 = udp_drops_by_port();
    let tt = Instant::now();
    for i in 0..br.b.len() {
        br.terminate(i);
    }
    let to_end = br.count(CallState::Terminating);
    br.drive(
        tt + Duration::from_secs(15),
        |_, _| {},
        |br| br.count(CallState::Terminating) == 0,
    );
    let teardown_wall = tt.elapsed();
    let s6 = snap(&peer);
    let rss_after = rss_kib(pid);
    let heap_after = heap_snap("4-teardown");
    let terminated = br.count(CallState::Terminated);
    // Give the UAS a moment to see the last BYEs (and retransmissions).
    std::thread::sleep(Duration::from_millis(200));
    let drops_td1 = udp_drops_by_port();
    let td_drops = (
        sip_drops(&drops_td1, gw.sip.port()) - sip_drops(&drops_td0, gw.sip.port()),
        sip_drops(&drops_td1, peer.sip.port()) - sip_drops(&drops_td0, peer.sip.port()),
    );

    // Phase 4: the floor, a bare forwarder with the same traffic through the same echo.
    let echo = SocketAddr::from(([127, 0, 0, 1], peer.echo_port));
    let floor_run = |placement, wanted: bool| {
        (wanted && holding > 0 && media).then(|| floor::run(holding, seconds, echo, placement))
    };
    let floor = floor_run(floor::Placement::Thread, floor_mode >= 1);
    let floor_process = floor_run(floor::Placement::Process, floor_mode >= 2);

    // Figures.
    let connect = s1.since(&s0);
    let setup = s2.since(&s1);
    let steady = s4.since(&s3);
    let teardown = s6.since(&s5);
    let sent_w = after.sent - before.sent;
    let forwarded = (after.echoed - before.echoed) + (after.rx - before.rx);
    let (mut expected, mut received) = (0u64, 0u64);
    for b in &br.b {
        for s in &b.rx {
            expected += s.expected();
            received += s.received;
        }
    }
    let seq_loss = expected.saturating_sub(received);
    let e2e_loss = drained.sent.saturating_sub(drained.rx);
    let us_per_pkt = steady.gw_sched_ms * 1e3 / forwarded.max(1) as f64;
    // A 20 ms audio call makes the gateway forward 100 packets/s (50 each way); normalise on
    // that, not on the calls held, because the generator may send less than 50 pps per call.
    let us_per_call_s = us_per_pkt * 100.0;
    let nominal_pps = holding as f64 * 50.0;
    let machine_busy = 100.0 * (mach1.0 - mach0.0) as f64 / (mach1.1 - mach0.1).max(1) as f64;

    let pct = |a: u64, b: u64| 100.0 * a as f64 / (b as f64).max(1.0);
    println!();
    println!("| phase | figure | value |");
    println!("|---|---|---|");
    println!(
        "| connect | {calls} WebSockets + account-add, wall | {:.0} ms ({:.0} conn/s) |",
        connect_wall.as_secs_f64() * 1e3,
        calls as f64 / connect_wall.as_secs_f64()
    );
    println!(
        "| connect | gateway CPU per connection (schedstat / stat) | {:.0} us / {:.0} us |",
        connect.gw_sched_ms * 1e3 / calls as f64,
        connect.gw_stat_ms * 1e3 / calls as f64
    );
    println!(
        "| setup | established / started | {established} / {} |",
        br.started
    );
    println!(
        "| setup | **setups/s** (first session-create -> last established) | **{:.0}** over {:.0} ms |",
        established as f64 / setup_span.as_secs_f64(),
        setup_span.as_secs_f64() * 1e3
    );
    println!(
        "| setup | latency session-create -> established p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| setup | p50 stages: create -> accepted / -> browser pc connected / -> established | {to_accepted:.1} / {to_connected:.1} / {to_established:.1} ms |"
    );
    println!(
        "| setup | receive-buffer drops on the SIP sockets: gateway / UAS | {} / {} |",
        sip_drops(&drops_su1, gw.sip.port()) - sip_drops(&drops_su0, gw.sip.port()),
        sip_drops(&drops_su1, peer.sip.port()) - sip_drops(&drops_su0, peer.sip.port())
    );
    println!(
        "| setup | **gateway CPU per setup** (schedstat / stat) | **{:.2} ms** / {:.2} ms |",
        setup.gw_sched_ms / established.max(1) as f64,
        setup.gw_stat_ms / established.max(1) as f64
    );
    println!(
        "| setup | generator CPU per setup: browsers / SIP peer | {:.2} ms / {:.2} ms |",
        setup.browsers_ms / established.max(1) as f64,
        setup.peer_ms / established.max(1) as f64
    );
    if let Some((cpu, wakeups, t)) = idle {
        println!(
            "| idle | {established} calls up, no media yet ({t:.1} s): gateway CPU per call-second / wake-ups per second | {:.1} us / {:.0} |",
            cpu.gw_sched_ms * 1e3 / t / established as f64,
            wakeups as f64 / t
        );
    }
    if media {
        println!("| steady | calls held / window | {holding} / {window:.1} s |");
        println!(
        "| steady | browser send rate achieved / nominal (50 pps per call) | {:.0} / {nominal_pps:.0} pps ({:.1} %) |",
        sent_w as f64 / window,
        100.0 * sent_w as f64 / window / nominal_pps.max(1.0)
    );
        println!(
        "| steady | browser packets sent, forwarded by gateway (both ways) | {sent_w}, {forwarded} ({:.0} pps forwarded) |",
        forwarded as f64 / window
    );
        println!(
        "| steady | **gateway CPU per forwarded packet** (schedstat / stat) | **{:.2} us** / {:.2} us |",
        steady.gw_sched_ms * 1e3 / forwarded.max(1) as f64,
        steady.gw_stat_ms * 1e3 / forwarded.max(1) as f64
    );
        if let Some((ir, dump)) = &callgrind {
            println!(
                "| steady | **gateway instructions per forwarded packet** (callgrind, window only) | **{:.0}** ({ir} over {forwarded} packets; {}) |",
                *ir as f64 / forwarded.max(1) as f64,
                dump.display()
            );
        }
        println!(
        "| steady | **gateway CPU per call-second** (per packet x 100 pps) | **{us_per_call_s:.0} us** ({:.1} % of a core measured for {holding} calls) |",
        100.0 * steady.gw_sched_ms / (window * 1e3)
    );
        println!(
            "| steady | **calls per core**, extrapolated (1 s / CPU per call-second) | **{:.0}** |",
            1e6 / us_per_call_s
        );
        for (f, how) in [(&floor, "thread"), (&floor_process, "process")] {
            let Some(f) = f else { continue };
            let floor_us = f.forwarder_cpu_ms * 1e3 / f.forwarded.max(1) as f64;
            println!(
            "| floor | bare mio recv_from/send_to forwarder ({how}), same {} flows, same echo: CPU per forwarded packet | {floor_us:.2} us ({:.0} pps forwarded, loss {:.3} %, {:.0} wake-ups/s) |",
            f.calls,
            f.forwarded as f64 / f.window,
            pct(f.sent.saturating_sub(f.received), f.sent),
            f.wakeups as f64 / f.window
        );
            println!(
                "| floor | **gateway / floor ({how})** CPU per forwarded packet | **{:.2}x** |",
                us_per_pkt / floor_us
            );
        }
        println!(
            "| steady | gateway wake-ups (voluntary context switches) / preemptions per second | {:.0} / {:.0} ({:.1} packets per wake-up) |",
            (cs1.0 - cs0.0) as f64 / window,
            (cs1.1 - cs0.1) as f64 / window,
            forwarded as f64 / (cs1.0 - cs0.0).max(1) as f64
        );
        println!(
        "| steady | **loss** by seq gaps per SSRC (browser side) | **{:.3} %** ({seq_loss} of {expected}) |",
        pct(seq_loss, expected)
    );
        println!(
        "| steady | loss end to end, sent vs echoed back (after 0.5 s drain) | {:.3} % ({e2e_loss} of {}) |",
        pct(e2e_loss, drained.sent),
        drained.sent
    );
        println!(
        "| steady | generator CPU per browser packet sent+received / SIP echo CPU per packet | {:.2} us / {:.2} us |",
        steady.browsers_ms * 1e3 / (sent_w + after.rx - before.rx).max(1) as f64,
        steady.peer_ms * 1e3 / (after.echoed - before.echoed).max(1) as f64
    );
        println!(
        "| steady | CPU share of the window: gateway / browsers / SIP peer / whole bench process | {:.0} % / {:.0} % / {:.0} % / {:.0} % |",
        100.0 * steady.gw_sched_ms / (window * 1e3),
        100.0 * steady.browsers_ms / (window * 1e3),
        100.0 * steady.peer_ms / (window * 1e3),
        100.0 * steady.gen_stat_ms / (window * 1e3)
    );
        println!(
        "| steady | machine busy (all processes, both cores) / UDP RcvbufErrors / SndbufErrors (system-wide) | {machine_busy:.0} % / {} / {} |",
        udp1.0 - udp0.0,
        udp1.1 - udp0.1
    );
        println!(
        "| steady | receive-buffer drops by socket owner: gateway / SIP echo / browsers | {} / {} / {} |",
        drops[0], drops[1], drops[2]
    );
    }
    // Memory (P6): RSS of the gateway process (heap, allocator retention, stacks; kernel
    // socket buffers are not in it). Per connection: a WebSocket with one account, no call.
    // Per call: what establishing the calls added on top of their connections (before media).
    let per = |a: u64, b: u64, n: usize| a.saturating_sub(b) as f64 / n.max(1) as f64;
    println!(
        "| memory | **gateway RSS per idle connection** (WebSocket + account) / **per call** (set up, before media) / both | **{:.1} KiB** / **{:.1} KiB** / {:.1} KiB |",
        per(rss_conns, rss0, calls),
        per(rss_calls, rss_conns, established),
        per(rss_calls, rss0, established)
    );
    println!(
        "| memory | gateway RSS: start / {calls} connections / + {established} calls / after the steady state / after teardown | {rss0} / {rss_conns} / {rss_calls} / {rss_steady} / {rss_after} KiB |"
    );
    if let (Some(h0), Some(h1), Some(h2), Some(h3), Some(h4)) =
        (&heap0, &heap_conns, &heap_calls, &heap_steady, &heap_after)
    {
        let kib = |a: &valgrind::HeapSnap, b: &valgrind::HeapSnap, n: usize| {
            (a.heap as f64 - b.heap as f64) / 1024.0 / n.max(1) as f64
        };
        println!(
            "| memory | **gateway heap per idle connection** / **per call** (massif, live bytes asked for) | **{:.1} KiB** / **{:.1} KiB** |",
            kib(h1, h0, calls),
            kib(h2, h1, established)
        );
        println!(
            "| memory | gateway heap: start / connections / + calls / after the steady state / after teardown (allocator overhead) | {} / {} / {} / {} / {} KiB ({} / {} / {} / {} / {} KiB) |",
            h0.heap / 1024, h1.heap / 1024, h2.heap / 1024, h3.heap / 1024, h4.heap / 1024,
            h0.extra / 1024, h1.extra / 1024, h2.extra / 1024, h3.extra / 1024, h4.extra / 1024
        );
        for (what, before, after, n) in [
            ("idle connection", h0, h1, calls),
            ("call", h1, h2, established),
            ("call after teardown", h1, h4, established),
        ] {
            println!("| heap per {what} | owner (nearest frame of our code) | bytes |");
            for (owner, bytes) in valgrind::growth(before, after, n, 14) {
                println!("| | `{owner}` | {bytes:.0} |");
            }
        }
        if let Some(d) = &heap_dir {
            println!("(massif snapshots in {}: `ms_print <file>`)", d.display());
        }
    }
    println!(
        "| teardown | terminated / session-terminate sent, wall | {terminated} / {to_end}, {:.0} ms |",
        teardown_wall.as_secs_f64() * 1e3
    );
    println!(
        "| teardown | gateway CPU per teardown | {:.2} ms |",
        teardown.gw_sched_ms / to_end.max(1) as f64
    );
    println!(
        "| teardown | receive-buffer drops on the SIP sockets: gateway / UAS | {} / {} |",
        td_drops.0, td_drops.1
    );
    let st = &peer.stats;
    println!(
        "| SIP peer | INVITE / ACK / BYE / other / 200 retransmits / RTCP in | {} / {} / {} / {} / {} / {} |",
        st.invites.load(Ordering::Relaxed),
        st.acks.load(Ordering::Relaxed),
        st.byes.load(Ordering::Relaxed),
        st.other.load(Ordering::Relaxed),
        st.retransmitted_200.load(Ordering::Relaxed),
        st.rtcp_in.load(Ordering::Relaxed)
    );
    println!();
    println!(
        "targets (report only): >= 500 setups/s (P5); >= 2000 concurrent calls per core at < 0.1 % loss (P1)"
    );
    if !setup_failures.is_empty() {
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for f in &setup_failures {
            match kinds.iter_mut().find(|(k, _)| k == f) {
                Some((_, n)) => *n += 1,
                None => kinds.push((f.clone(), 1)),
            }
        }
        println!("failures: {kinds:?}");
    }
    let early: u64 = br.b.iter().map(|b| b.early_dtls_replayed).sum();
    let send_drops: u64 = br.b.iter().map(|b| b.send_drops).sum();
    println!(
        "notes: {early} DTLS records from the gateway arrived before its STUN success response \
         and were held until the browser's ICE connected; {send_drops} browser sends failed"
    );
    if br.ws_errors > 0 {
        println!("WebSocket errors: {}", br.ws_errors);
    }
    drop(br);
    drop(gw);
    peer.stop();
    // Sanity only: a load run that set up no call at all measured nothing.
    if established == 0 {
        eprintln!("call_load: no call was established");
        std::process::exit(1);
    }
    // The smoke run (`cargo test --benches`, part of tests/run-all.sh) doubles as the
    // end-to-end test with a WebRTC client built on `rtc`: every call must be established,
    // carry audio both ways through the echo, and end with `terminated`.
    if !timing && (established != calls || received == 0 || drained.rx == 0 || terminated != calls)
    {
        eprintln!(
            "call_load smoke: established {established}/{calls}, received {received}, \
             echoed back {}, terminated {terminated}",
            drained.rx
        );
        std::process::exit(1);
    }
}
