//! Chat (MSRP) load tool (issue 14 item 5). Not a timed test: it measures and prints, and
//! asserts only that every session came up and every message arrived.
//!
//! What runs, all on 127.0.0.1:
//! - the **real gateway binary** on port 0 (message store in memory, limits raised out of
//!   the way), killed by pid at the end;
//! - one sylkRTC-2 WebSocket client (this thread) with one account, registered through the
//!   gateway's outbound proxy, opening `CHATS` chat-only sessions (`media: ["chat"]`);
//! - a **SIP peer** (a std UDP socket in a thread of this process): 200 to REGISTER, and to
//!   every INVITE 200 with an `m=message` answer saying `a=setup:passive` and a path on
//! - an **MSRP peer** (a std TCP listener; one thread per connection the gateway opens): 200
//!   to every SEND, a success REPORT when asked for, and in phase 3 the sender of SENDs.
//!
//! Figures:
//! 1. memory per idle chat session: the gateway's RSS (`/proc/<pid>/status` VmRSS) before
//!    the sessions and `IDLE` seconds after all `CHATS` are established (40 with `--bench`:
//!    the INVITE transactions linger 32 s after their 2xx, RFC 6026 Timer M), divided by
//!    `CHATS`;
//! 2. WebSocket -> MSRP: `MESSAGES` `session-message`s spread over the sessions with
//!    `WINDOW` outstanding; done when its `disposition-notification delivered` (the peer's
//!    REPORT) arrives. Messages/s and gateway CPU per message (`/proc/<pid>/task/*/schedstat`);
//! 3. MSRP -> WebSocket: the MSRP peer sends `MESSAGES` CPIM SENDs spread over the sessions
//!    with `WINDOW` outstanding (counted by the gateway's 200s); done when the client got
//!    every `message`. Messages/s and gateway CPU per message.
//! 4. memory given back: RSS at the start, its peak (`VmHWM`), after the load, and `IDLE`
//!    seconds after the client left (every session ended).
//!
//! `HEAP=1` runs the gateway under valgrind's massif (about 50x slower: use a few hundred
//! sessions and `MESSAGES=0`) and asks it for a detailed heap snapshot where figure 1 reads
//! RSS: the heap per idle chat session, and who holds it (each allocation charged to the
//! nearest frame of the gateway, `msrp`, `sip` or `engine`); the snapshots stay in
//! `$TMPDIR/sylk-call-load-valgrind-<pid>/` for `ms_print`. `GATEWAY_WRAPPER` runs the
//! gateway under any command (split on whitespace).
//!
//! ```text
//! cargo bench --bench chat_load
//! CHATS=1000 MESSAGES=50000 WINDOW=128 cargo bench --bench chat_load
//! HEAP=1 CHATS=200 MESSAGES=0 cargo bench --bench chat_load
//! ```
//! Without `--bench` (`cargo test --all-targets`) it is a 10-session, 200-message smoke run.

#[path = "common/gateway_process.rs"]
#[allow(dead_code)] // each bench uses part of it
mod gateway_process;
#[path = "common/sylkrtc_client.rs"]
mod sylkrtc_client;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sylkrtc_client::{send, Ws};
use tungstenite::Message;

#[path = "call_load/valgrind.rs"]
#[allow(dead_code)] // shared with call_load, which uses callgrind too
mod valgrind;

/// Where HEAP=1 charges allocations: the crates a chat session lives in.
const HEAP_OWNERS: &[&str] = &["sylk_gateway::", "msrp::", "sip::", "engine::", "im::"];

const HA1: &str = "0123456789abcdef0123456789abcdef";
const AOR: &str = "user0@example.test";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Scheduler runtime (ns) of every thread of `pid`.
fn gateway_cpu(pid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|t| {
            std::fs::read_to_string(t.path().join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The gateway's resident set, in KiB.
fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS:`, `VmHWM:` the peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ------------------------------------------------------------------------------ SIP peer

/// 200 to `request` (Via/From/To+tag/Call-ID/CSeq copied; REGISTER's Contact with an
/// expiry; INVITE's with our Contact and `sdp`).
fn reply_200(request: &str, local: SocketAddr, sdp: Option<&str>) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    let mut contact = None;
    for line in request.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if ["via:", "from:", "call-id:", "cseq:", "record-route:"]
            .iter()
            .any(|h| lower.starts_with(h))
        {
            out.push_str(line);
            out.push_str("\r\n");
        } else if lower.starts_with("to:") {
            out.push_str(line);
            out.push_str(";tag=peer\r\n");
        } else if lower.starts_with("contact:") {
            contact = Some(line[8..].trim().to_owned());
        }
    }
    if request.starts_with("REGISTER") {
        out.push_str(&format!(
            "Contact: {};expires=600\r\n",
            contact.unwrap_or_default()
        ));
    }
    match sdp {
        Some(sdp) => out.push_str(&format!(
            "Contact: <sip:peer@{local}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out
}

/// The SIP peer: REGISTER, INVITE (answered with a chat line on `msrp`), BYE.
fn run_sip_peer(sock: UdpSocket, msrp: SocketAddr, stop: Arc<AtomicBool>) {
    let local = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 65536];
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut n_session = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        let reply = if text.starts_with("INVITE") {
            n_session += 1;
            let sdp = format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=message {port} TCP/MSRP *\r\na=accept-types:message/cpim\r\n\
                 a=accept-wrapped-types:*\r\na=path:msrp://127.0.0.1:{port}/peer{n_session};tcp\r\n\
                 a=setup:passive\r\n",
                port = msrp.port()
            );
            Some(reply_200(&text, local, Some(&sdp)))
        } else if text.starts_with("REGISTER") || text.starts_with("BYE") {
            Some(reply_200(&text, local, None))
        } else {
            None
        };
        if let Some(r) = reply {
            let _ = sock.send_to(r.as_bytes(), from);
        }
    }
}

// ------------------------------------------------------------------------------ MSRP peer

/// One frame from the gateway, what the peer needs of it.
struct Frame {
    tid: String,
    /// `SEND`/`REPORT`, or the status of a response.
    kind: String,
    from_path: String,
    to_path: String,
    success_report: bool,
    message_id: String,
    body_len: usize,
}

/// Reads one whole frame (RFC 4975 section 7) from `buf`, refilled from `stream`.
fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Frame> {
    loop {
        if let Some((frame, used)) = parse_frame(buf) {
            buf.drain(..used);
            return Some(frame);
        }
        let mut chunk = [0u8; 65536];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let text = std::str::from_utf8(buf).ok().or_else(|| {
        // A chunk may end inside a UTF-8 sequence; the head is ASCII.
        let valid = std::str::from_utf8(buf).unwrap_err().valid_up_to();
        std::str::from_utf8(&buf[..valid]).ok()
    })?;
    let eol = text.find("\r\n")?;
    let mut start = text[..eol].split(' ');
    let (_, tid, kind) = (start.next()?, start.next()?, start.next()?);
    let end_line = format!("-------{tid}");
    let mut frame = Frame {
        tid: tid.to_owned(),
        kind: kind.to_owned(),
        from_path: String::new(),
        to_path: String::new(),
        success_report: false,
        message_id: String::new(),
        body_len: 0,
    };
    let mut pos = eol + 2;
    loop {
        let next = text[pos..].find("\r\n")? + pos;
        let line = &text[pos..next];
        if line.starts_with(&end_line) && line.len() == end_line.len() + 1 {
            return Some((frame, next + 2));
        }
        if line.is_empty() {
            let body_start = next + 2;
            let close = text[body_start..].find(&format!("\r\n{end_line}"))? + body_start;
            let after = close + 2 + end_line.len() + 1;
            text.get(after..after + 2).filter(|t| *t == "\r\n")?;
            frame.body_len = close - body_start;
            return Some((frame, after + 2));
        }
        if let Some((name, value)) = line.split_once(": ") {
            match name {
                "From-Path" => frame.from_path = value.to_owned(),
                "To-Path" => frame.to_path = value.to_owned(),
                "Success-Report" => frame.success_report = value == "yes",
                "Message-ID" => frame.message_id = value.to_owned(),
                _ => {}
            }
        }
        pos = next + 2;
    }
}

/// The peer's side of one connection: its writer and paths, once its first frame came.
struct PeerConn {
    writer: TcpStream,
    /// The gateway's URI (our To-Path).
    gateway: String,
    /// Ours (our From-Path).
    ours: String,
}

struct MsrpPeer {
    conns: Mutex<Vec<PeerConn>>,
    /// 200s the gateway sent to our SENDs.
    answered: AtomicU64,
}

/// Answers one connection's frames: 200 to SEND, and its REPORT when asked.
fn serve_msrp(mut stream: TcpStream, peer: Arc<MsrpPeer>) {
    stream.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let mut n = 0u64;
    let mut registered = false;
    while let Some(f) = read_frame(&mut stream, &mut buf) {
        if f.kind.chars().all(|c| c.is_ascii_digit()) {
            if f.kind == "200" {
                peer.answered.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        if f.kind != "SEND" {
            continue;
        }
        let mut out = format!(
            "MSRP {} 200 OK\r\nTo-Path: {}\r\nFrom-Path: {}\r\n-------{}$\r\n",
            f.tid, f.from_path, f.to_path, f.tid
        );
        if f.success_report && f.body_len > 0 {
            n += 1;
            out.push_str(&format!(
                "MSRP rep{n:08} REPORT\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: {}\r\n\
                 Byte-Range: 1-{len}/{len}\r\nStatus: 000 200 OK\r\n-------rep{n:08}$\r\n",
                f.from_path,
                f.to_path,
                f.message_id,
                len = f.body_len
            ));
        }
        if stream.write_all(out.as_bytes()).is_err() {
            return;
        }
        if !registered {
            registered = true;
            peer.conns.lock().unwrap().push(PeerConn {
                writer: stream.try_clone().unwrap(),
                gateway: f.from_path.clone(),
                ours: f.to_path.clone(),
            });
        }
    }
}

// ------------------------------------------------------------------------------ gateway, client

fn start_gateway(
    sip_peer: SocketAddr,
    dir: &std::path::Path,
    wrapper: &str,
) -> (Child, SocketAddr) {
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\noutbound_proxy = \"sip:{sip_peer};transport=udp\"\n\
             [media]\nmax_calls_per_connection = 100000\nmax_calls = 100000\n\
             [messaging]\ndatabase = \":memory:\"\nsend_rate = 1000000\nincoming_rate = 1000000\n\
             [msrp]\nlisten = \"127.0.0.1:0\"\n\
             [log]\nlevel = \"warn\"\n"
        ),
    )
    .unwrap();
    let gw = gateway_process::spawn(&config, wrapper, &[], gateway_process::log_stdio());
    (gw.child, gw.ws)
}

fn connect(addr: SocketAddr) -> Ws {
    sylkrtc_client::connect(addr, Duration::from_secs(30))
}

fn recv(ws: &mut Ws) -> Value {
    loop {
        if let Message::Text(t) = ws.read().expect("read (the gateway went quiet)") {
            let v: Value = serde_json::from_str(&t).unwrap();
            assert_ne!(v["sylkrtc"], "error", "{v}");
            return v;
        }
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let chats = env_or("CHATS", if bench { 200 } else { 10 }).max(1);
    let messages = env_or("MESSAGES", if bench { 20_000 } else { 200 });
    let window = env_or("WINDOW", 64).max(1);
    let idle = env_or("IDLE", if bench { 40 } else { 0 });
    let dir = std::env::temp_dir().join(format!("sylk-bench-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let msrp_addr = listener.local_addr().unwrap();
    let peer = Arc::new(MsrpPeer {
        conns: Mutex::new(Vec::new()),
        answered: AtomicU64::new(0),
    });
    {
        let peer = Arc::clone(&peer);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let peer = Arc::clone(&peer);
                std::thread::spawn(move || serve_msrp(stream, peer));
            }
        });
    }
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sip_addr = sip.local_addr().unwrap();
    let sip_thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || run_sip_peer(sip, msrp_addr, stop))
    };
    let heap_dir = (env_or("HEAP", 0) != 0).then(valgrind::dir);
    let wrapper = match (&heap_dir, std::env::var("GATEWAY_WRAPPER")) {
        (_, Ok(w)) => w,
        (Some(d), _) => valgrind::massif(&d.join("massif.out")),
        (None, _) => String::new(),
    };
    let (mut child, ws_addr) = start_gateway(sip_addr, &dir, &wrapper);
    let pid = child.id();
    let heap_snap = |name: &str| {
        heap_dir.as_ref().and_then(|d| {
            valgrind::snapshot_owned_by(pid, &d.join(format!("{name}.massif")), HEAP_OWNERS)
        })
    };

    let mut ws = connect(ws_addr);
    assert_eq!(recv(&mut ws)["sylkrtc"], "ready-event");
    send(
        &mut ws,
        &json!({"sylkrtc":"account-add","transaction":"a","account":AOR,"password":HA1,"chat":true}),
    );
    send(
        &mut ws,
        &json!({"sylkrtc":"account-register","transaction":"r","account":AOR}),
    );
    while recv(&mut ws)["state"] != "registered" {}

    // 1. Memory per idle chat session.
    std::thread::sleep(Duration::from_millis(300));
    let rss0 = rss_kib(pid);
    let heap0 = heap_snap("0-registered");
    let start = Instant::now();
    for i in 0..chats {
        send(
            &mut ws,
            &json!({"sylkrtc":"session-create","transaction":format!("c{i}"),"account":AOR,
                    "session":format!("s{i}"),"uri":"peer@example.test","media":["chat"]}),
        );
    }
    let mut established = 0;
    while established < chats {
        let v = recv(&mut ws);
        assert_ne!(v["state"], "terminated", "{v}");
        if v["state"] == "established" {
            established += 1;
        }
    }
    let setup_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let rss_fresh = rss_kib(pid);
    std::thread::sleep(Duration::from_secs(idle));
    let rss1 = rss_kib(pid);
    let heap1 = heap_snap("1-idle-chats");
    assert_eq!(peer.conns.lock().unwrap().len() as u64, chats);

    // 2. WebSocket -> MSRP -> REPORT -> disposition-notification delivered.
    let cpu0 = gateway_cpu(pid);
    let start = Instant::now();
    let (mut sent, mut done) = (0u64, 0u64);
    while done < messages {
        while sent < messages && sent - done < window {
            send(
                &mut ws,
                &json!({"sylkrtc":"session-message","transaction":format!("m{sent}"),
                        "session":format!("s{}", sent % chats),"message_id":format!("out-{sent}"),
                        "content":"Hello, this is a benchmark message \u{1f600}","content_type":"text/plain",
                        "timestamp":"2024-05-06T07:08:09.123Z"}),
            );
            sent += 1;
        }
        let v = recv(&mut ws);
        if v["event"] == "disposition-notification" && v["state"] != "accepted" {
            assert_eq!(v["state"], "delivered", "{v}");
            done += 1;
        }
    }
    let out_secs = start.elapsed().as_secs_f64();
    let cpu1 = gateway_cpu(pid);

    // 3. MSRP SEND (CPIM) -> WebSocket `message`.
    let receiver = std::thread::spawn(move || {
        let mut got = 0;
        while got < messages {
            if recv(&mut ws)["event"] == "message" {
                got += 1;
            }
        }
        ws
    });
    let start = Instant::now();
    let before = peer.answered.load(Ordering::Relaxed);
    let mut conns = std::mem::take(&mut *peer.conns.lock().unwrap());
    let mut sent = 0u64;
    while sent < messages {
        let done = peer.answered.load(Ordering::Relaxed) - before;
        if sent - done >= window {
            std::thread::yield_now();
            assert!(start.elapsed() < Duration::from_secs(300), "phase 3 stuck");
            continue;
        }
        let c = &mut conns[(sent % chats) as usize];
        let body = format!(
            "From: <sip:peer@example.test>\r\nTo: <sip:{AOR}>\r\nDateTime: 2024-05-06T07:08:09Z\r\n\
             NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: in-{sent}\r\n\r\n\
             Content-Type: text/plain\r\n\r\nHello from MSRP {sent}"
        );
        let frame = format!(
            "MSRP snd{sent:08} SEND\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: in-{sent}\r\n\
             Byte-Range: 1-{len}/{len}\r\nContent-Type: message/cpim\r\n\r\n{body}\r\n-------snd{sent:08}$\r\n",
            c.gateway,
            c.ours,
            len = body.len()
        );
        c.writer.write_all(frame.as_bytes()).unwrap();
        sent += 1;
    }
    let ws = receiver.join().unwrap();
    let in_secs = start.elapsed().as_secs_f64();
    let cpu2 = gateway_cpu(pid);

    // 4. Memory given back: the client goes (every session ends: BYE, MSRP closed), and
    // `IDLE` seconds later (the transactions' 32 s linger) RSS is read against the start.
    let rss_loaded = rss_kib(pid);
    drop(ws);
    drop(conns);
    std::thread::sleep(Duration::from_secs(idle));
    let rss_end = rss_kib(pid);
    let rss_peak = status_kib(pid, "VmHWM:");

    let _ = child.kill();
    let _ = child.wait();
    stop.store(true, Ordering::Relaxed);
    sip_thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let us = |ns: u64, n: u64| ns as f64 / 1000.0 / n as f64;
    println!("chat_load: {chats} chat sessions, {messages} messages each way, window {window}");
    println!(
        "  setup: {:.0} chat sessions/s (INVITE/200/ACK, MSRP connect, first SEND); memory per chat session: {:.1} KiB RSS just established, {:.1} KiB after {idle} s idle",
        chats as f64 / setup_secs,
        rss_fresh.saturating_sub(rss0) as f64 / chats as f64,
        rss1.saturating_sub(rss0) as f64 / chats as f64
    );
    if let (Some(before), Some(after)) = (&heap0, &heap1) {
        let per = |a: u64, b: u64| (b as f64 - a as f64) / 1024.0 / chats as f64;
        println!(
            "  heap per idle chat session (massif): {:.1} KiB asked for + {:.1} KiB allocator overhead; by owner:",
            per(before.heap, after.heap),
            per(before.extra, after.extra)
        );
        for (owner, bytes) in valgrind::growth(before, after, chats as usize, 20) {
            println!("    {bytes:>8.0} B  {owner}");
        }
    }
    println!(
        "  WebSocket -> MSRP SEND -> 200 + REPORT -> delivered: {:.0} messages/s; gateway CPU per message: {:.1} us",
        messages as f64 / out_secs,
        us(cpu1 - cpu0, messages)
    );
    println!(
        "  MSRP SEND (CPIM) -> 200 + WebSocket message: {:.0} messages/s; gateway CPU per message: {:.1} us",
        messages as f64 / in_secs,
        us(cpu2 - cpu1, messages)
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "  RSS: {:.1} MiB at the start, {:.1} MiB peak, {:.1} MiB after the load, {:.1} MiB {idle} s after every session ended",
        mib(rss0),
        mib(rss_peak),
        mib(rss_loaded),
        mib(rss_end)
    );
}
