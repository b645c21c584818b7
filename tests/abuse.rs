//! Abuse tests (issue 16 item 5): floods and broken clients against the real binary on
//! 127.0.0.1, each bounded in bytes, count and time, run one after the other **while a
//! legitimate WebRTC call carries audio** (aiortc through the gateway to SIPp's RTP echo) and
//! **a legitimate client pings** (a sylkRTC `ping` every 20 ms).
//!
//! For every attack: the gateway's RSS growth stays under 32 MB, the pinging client's
//! ping->ack p99 under 50 ms, the log grows by a bounded number of lines, and the gateway
//! still serves; at the end the call's inbound RTP loss is under 0.1 %. The table of figures
//! is printed (run with `--nocapture`) and kept in `docs/hardening.md`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::client::run_sylkrtc_client;
use common::peers::{free_udp_range, Sipp};
use common::*;
use serde_json::json;
use tungstenite::Message;

/// Each attack stops after this long even if it has not sent everything.
const ATTACK_TIME: Duration = Duration::from_secs(3);
const MAX_RSS_GROWTH_KB: u64 = 32 * 1024;
const MAX_PING_P99: Duration = Duration::from_millis(50);
const MAX_CONNECTIONS: usize = 200;

/// Resident memory of `pid` in KiB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of `pid`, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// A sylkRTC client that pings every 20 ms and records each round trip.
struct Pinger {
    samples: Arc<Mutex<Vec<(Instant, Duration)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pinger {
    fn start(gw: &Gateway) -> Pinger {
        let mut ws = connect_v2(gw);
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&samples), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !st.load(Ordering::Relaxed) {
                n += 1;
                let sent = Instant::now();
                let reply = call(
                    &mut ws,
                    json!({"sylkrtc":"ping","transaction":format!("p{n}")}),
                );
                assert_eq!(reply["sylkrtc"], "ack", "{reply}");
                s.lock().unwrap().push((sent, sent.elapsed()));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Pinger {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// p99 and count of the round trips that started at or after `since`.
    fn p99_since(&self, since: Instant) -> (Duration, usize) {
        let mut rtts: Vec<Duration> = self
            .samples
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, d)| *d)
            .collect();
        rtts.sort();
        let n = rtts.len();
        let p99 = rtts
            .get((n * 99).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or_default();
        (p99, n)
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the pinging client failed");
        }
    }
}

/// What one attack did and cost.
struct Row {
    attack: &'static str,
    sent: String,
    seconds: f64,
    cpu_s: f64,
    rss_before_mb: f64,
    rss_peak_growth_mb: f64,
    rss_after_mb: f64,
    p99_ms: f64,
    pings: usize,
    log_lines: u64,
}

/// Runs `attack` while sampling the gateway's RSS; returns the figures.
fn measure(
    gw: &Gateway,
    pinger: &Pinger,
    allowed_p99: Duration,
    name: &'static str,
    attack: impl FnOnce() -> String + Send,
) -> Row {
    let pid = gw.pid();
    let before = rss_kb(pid);
    let cpu0 = cpu_ticks(pid);
    let logs0 = gw.log_count.load(Ordering::Relaxed);
    let start = Instant::now();
    let done = AtomicBool::new(false);
    let mut peak = before;
    let sent = std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            let sent = attack();
            done.store(true, Ordering::Relaxed);
            sent
        });
        while !done.load(Ordering::Relaxed) {
            peak = peak.max(rss_kb(pid));
            std::thread::sleep(Duration::from_millis(10));
        }
        handle.join().expect("attack thread")
    });
    let seconds = start.elapsed().as_secs_f64();
    // Let the gateway work off what it accepted, then look again.
    std::thread::sleep(Duration::from_millis(300));
    peak = peak.max(rss_kb(pid));
    let after = rss_kb(pid);
    let (p99, pings) = pinger.p99_since(start);
    let row = Row {
        attack: name,
        sent,
        seconds,
        cpu_s: (cpu_ticks(pid) - cpu0) as f64 / 100.0,
        rss_before_mb: before as f64 / 1024.0,
        rss_peak_growth_mb: peak.saturating_sub(before) as f64 / 1024.0,
        rss_after_mb: after as f64 / 1024.0,
        p99_ms: p99.as_secs_f64() * 1000.0,
        pings,
        log_lines: gw.log_count.load(Ordering::Relaxed) - logs0,
    };
    eprintln!(
        "| {} | {} | {:.1} s | {:.2} s | {:.1} MB | +{:.1} MB | {:.1} MB | {:.1} ms ({} pings) | {} |",
        row.attack,
        row.sent,
        row.seconds,
        row.cpu_s,
        row.rss_before_mb,
        row.rss_peak_growth_mb,
        row.rss_after_mb,
        row.p99_ms,
        row.pings,
        row.log_lines
    );
    assert!(
        peak.saturating_sub(before) < MAX_RSS_GROWTH_KB,
        "{name}: RSS grew by {} KiB",
        peak - before
    );
    assert!(
        p99 < allowed_p99,
        "{name}: ping p99 {p99:?} over {pings} pings (allowed {allowed_p99:?})"
    );
    assert!(
        pings >= 10,
        "{name}: the pinging client got only {pings} answers"
    );
    row
}

/// Writes `chunk` repeatedly until `total` bytes went or the attack time is over (the
/// gateway may stop reading: that is the point), never reading anything back.
fn push_without_reading(stream: &mut TcpStream, chunk: &[u8], total: usize) -> usize {
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut sent = 0;
    // Resume mid-chunk after a short write, so frames stay whole.
    let mut offset = 0;
    while sent < total && start.elapsed() < ATTACK_TIME {
        match stream.write(&chunk[offset..]) {
            Ok(n) => {
                sent += n;
                offset = (offset + n) % chunk.len();
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break, // closed on us
        }
    }
    sent
}

/// A client WebSocket frame (masked, RFC 6455 section 5.3) carrying `payload` as text.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A raw ws:// connection that completed the upgrade.
fn raw_websocket(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET /webrtcgateway/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sylkRTC-2\r\n\r\n",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

/// Datagram floods are sent at this rate: the sender shares the 2 cores with the gateway,
/// the call's peers and the pinging client, so an unpaced loop would measure the scheduler.
const FLOOD_RATE: u32 = 10_000;

/// Sleeps as needed to keep `sent` datagrams since `start` at [`FLOOD_RATE`].
fn pace(sent: u32, start: Instant) {
    if sent % 100 == 0 {
        let due = start + Duration::from_secs_f64(f64::from(sent) / f64::from(FLOOD_RATE));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

fn mb(n: usize) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

#[test]
fn attacks_leave_a_live_call_and_a_pinging_client_unharmed() {
    let base = free_udp_range(20);
    let gw = Gateway::start(
        &format!(
            "[websocket]\nmax_connections = {MAX_CONNECTIONS}\n[media]\nrtp_ports = \"{base}-{}\"\n",
            base + 19
        ),
        &[],
    );
    let uas = Sipp::echo_uas("uas_echo.xml");
    // The legitimate call: 440 Hz from aiortc, echoed by SIPp, for the whole run.
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
            "28",
        ])
    });
    uas.wait_for_message("ACK sip:", Duration::from_secs(20));
    let pinger = Pinger::start(&gw);
    // The quiet baseline: on a machine shared with other work the round trip already has
    // scheduling delays that no attack causes; the allowance is 50 ms on top of them (on
    // CI's otherwise idle machine the baseline p99 is a few ms).
    let quiet = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let (baseline, _) = pinger.p99_since(quiet);
    let allowed = MAX_PING_P99 + baseline;
    eprintln!("quiet ping p99: {baseline:?}; allowed under attack: {allowed:?}");
    eprintln!("| attack | sent | time | gateway CPU | RSS before | RSS peak growth | RSS after | ping p99 | log lines |");
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();

    // Issue 16 problem 2 (and 3): 100-byte junk frames pipelined, never reading.
    rows.push(measure(
        &gw,
        &pinger,
        allowed,
        "WebSocket junk frames, no reads",
        || {
            let mut s = raw_websocket(gw.ws);
            let frame = masked_text_frame(&[b'x'; 100]);
            let chunk: Vec<u8> = frame
                .iter()
                .copied()
                .cycle()
                .take(frame.len() * 640)
                .collect();
            mb(push_without_reading(&mut s, &chunk, 40_000_000))
        },
    ));
    // Valid requests (each answered) pipelined by a client that never reads the answers.
    rows.push(measure(
        &gw,
        &pinger,
        allowed,
        "WebSocket pings, answers unread",
        || {
            let mut s = raw_websocket(gw.ws);
            let frame = masked_text_frame(br#"{"sylkrtc":"ping","transaction":"flood"}"#);
            let chunk: Vec<u8> = frame
                .iter()
                .copied()
                .cycle()
                .take(frame.len() * 1000)
                .collect();
            mb(push_without_reading(&mut s, &chunk, 40_000_000))
        },
    ));
    // Issue 16 problem 1: RFC 5626 keep-alive pings on SIP TCP, never reading the pongs.
    rows.push(measure(
        &gw,
        &pinger,
        allowed,
        "SIP TCP keep-alive pings, no reads",
        || {
            let mut s = TcpStream::connect(gw.sip).unwrap();
            mb(push_without_reading(
                &mut s,
                &b"\r\n\r\n".repeat(16_384),
                40_000_000,
            ))
        },
    ));
    rows.push(measure(&gw, &pinger, allowed, "SIP UDP junk and broken requests", || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let broken = format!(
            "OPTIONS sip:x@{0} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nCSeq: abc\r\n\r\n",
            gw.sip
        );
        let start = Instant::now();
        let mut n = 0u32;
        while n < 30_000 && start.elapsed() < ATTACK_TIME {
            let junk: &[u8] = if n % 2 == 0 { b"\x00\x01junk junk" } else { broken.as_bytes() };
            let _ = sock.send_to(junk, gw.sip);
            n += 1;
            pace(n, start);
        }
        format!("{n} datagrams, {FLOOD_RATE}/s")
    }));
    rows.push(measure(
        &gw,
        &pinger,
        allowed,
        "RTP/STUN from unknown sources to media ports",
        || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut rtp = vec![0x80, 0x00, 0, 1, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef];
            rtp.extend_from_slice(&[0xff; 160]);
            // A STUN binding request (RFC 8489 section 5) with a random transaction id.
            let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
            stun.extend_from_slice(&[7; 12]);
            let start = Instant::now();
            let mut n = 0;
            while n < 100_000 && start.elapsed() < ATTACK_TIME {
                let port = base + (n % 20) as u16;
                let packet = if n % 3 == 0 { &stun } else { &rtp };
                let _ = sock.send_to(packet, ("127.0.0.1", port));
                n += 1;
            }
            format!("{n} datagrams")
        },
    ));
    rows.push(measure(
        &gw,
        &pinger,
        allowed,
        "connections beyond max_connections",
        || {
            let mut held = Vec::new();
            let start = Instant::now();
            while held.len() < MAX_CONNECTIONS + 300 && start.elapsed() < ATTACK_TIME {
                match TcpStream::connect(gw.ws) {
                    Ok(s) => held.push(s),
                    Err(_) => break,
                }
            }
            // The ones past the limit were answered 503 and closed.
            let mut refused = 0;
            for s in held.iter_mut().skip(MAX_CONNECTIONS + 50) {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut b = [0u8; 12];
                if s.read_exact(&mut b).is_ok() && b.starts_with(b"HTTP/1.1 503") {
                    refused += 1;
                }
            }
            assert!(refused > 0, "no connection refused past the limit");
            format!("{} connections, {refused} checked 503", held.len())
        },
    ));
    // Junk as many small WebSocket messages the gateway does read: counted, rate-limited logs.
    rows.push(measure(
        &gw,
        &pinger,
        allowed,
        "sylkRTC junk messages (read)",
        || {
            let (mut ws, _) = connect(&gw, "sylkRTC-2");
            let start = Instant::now();
            let mut n = 0;
            while n < 20_000 && start.elapsed() < ATTACK_TIME {
                ws.write(Message::Text("not json".into())).unwrap();
                n += 1;
                if n % 100 == 0 {
                    ws.flush().unwrap();
                }
            }
            ws.flush().unwrap();
            format!("{n} messages")
        },
    ));
    let junk = rows.last().unwrap();
    assert!(
        junk.log_lines < 100,
        "junk wrote {} log lines (rate limiting)",
        junk.log_lines
    );
    pinger.stop();
    // Still serving.
    let mut ws = connect_v2(&gw);
    assert_eq!(
        call(&mut ws, json!({"sylkrtc":"ping","transaction":"end"}))["sylkrtc"],
        "ack"
    );
    let (events, result) = caller.join().expect("caller");
    let received = result["rtp_in"]["received"].as_u64().unwrap_or(0);
    let lost = result["rtp_in"]["lost"].as_u64().unwrap_or(0);
    let loss = lost as f64 / (received + lost).max(1) as f64;
    eprintln!(
        "call: {received} RTP packets received, {lost} lost ({:.3} %)",
        loss * 100.0
    );
    assert!(
        received > 1000,
        "the call carried no audio: {result} {events:?}"
    );
    assert!(
        loss < 0.001,
        "call loss {:.3} % during the attacks",
        loss * 100.0
    );
}
