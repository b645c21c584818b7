//! Messaging load tool (issue 11 item 8). Not a timed test: it measures and prints, and
//! asserts only that every message arrived.
//!
//! What runs, all on 127.0.0.1:
//! - the **real gateway binary** on port 0 with its SQLite store in a temporary directory
//!   (rate limits raised out of the way), stopped with SIGTERM at the end;
//! - `CONNECTIONS` sylkRTC-2 WebSocket clients (one thread each), each with its own account,
//!   registered through the gateway's outbound proxy;
//! - a **SIP peer** in one thread of this process (a std UDP socket) that plays registrar and
//!   recipient: 200 to every REGISTER and MESSAGE (what a SIPp UAS would answer), and in
//!   phase 2 the sender of CPIM MESSAGEs to the gateway.
//!
//! Phases and figures:
//! 1. WebSocket -> SIP: every client sends its share of `MESSAGES` `account-message`s with
//!    `WINDOW` outstanding; a message is done when its `disposition-notification accepted`
//!    (the peer's 200) arrives. Messages/s, gateway CPU per message (reactor thread and store
//!    thread separately, from `/proc/<pid>/task/*/schedstat`).
//! 2. SIP -> WebSocket: the peer sends `MESSAGES` CPIM MESSAGEs for client 0's account with
//!    `WINDOW` outstanding; done when the 200 comes back and client 0 got every `message`.
//! 3. store alone: `SqliteStore` batches of 512 inserts in this process: writes/s.
//! 4. the gateway's longest reactor iteration over the whole run (it logs it at shutdown).
//!
//! ```text
//! cargo bench --bench messaging_load
//! MESSAGES=50000 CONNECTIONS=8 WINDOW=128 cargo bench --bench messaging_load
//! ```
//! Without `--bench` (`cargo test --all-targets`) it is a 200-message smoke run.

#[path = "common/gateway_process.rs"]
#[allow(dead_code)] // each bench uses part of it
mod gateway_process;
#[path = "common/sylkrtc_client.rs"]
mod sylkrtc_client;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sylkrtc_client::{send, Ws};
use tungstenite::Message;

const HA1: &str = "0123456789abcdef0123456789abcdef";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Scheduler runtime (ns) of each thread of `pid` by thread name.
fn thread_cpu(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in dir.flatten() {
        let p = t.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        out.push((name.trim().to_owned(), ns));
    }
    out
}

/// (reactor ns, store ns) of the gateway.
fn gateway_cpu(pid: u32) -> (u64, u64) {
    let mut reactor = 0;
    let mut store = 0;
    for (name, ns) in thread_cpu(pid) {
        if name == "store" {
            store += ns;
        } else {
            reactor += ns;
        }
    }
    (reactor, store)
}

/// The SIP peer's reply to a request: 200 with the request's Via/From/To(+tag)/Call-ID/
/// CSeq, and for REGISTER its Contact with an expiry.
fn reply_200(request: &str) -> Option<String> {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    let mut contact = None;
    for line in request.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("via:")
            || lower.starts_with("from:")
            || lower.starts_with("call-id:")
            || lower.starts_with("cseq:")
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
        out.push_str(&format!("Contact: {};expires=600\r\n", contact?));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out)
}

struct Peer {
    sock: UdpSocket,
    answered: AtomicU64,
    responses: AtomicU64,
    stop: AtomicBool,
}

/// Answers requests; counts 2xx responses to what it sent.
fn run_peer(peer: Arc<Peer>) {
    let mut buf = vec![0u8; 65536];
    peer.sock
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while !peer.stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = peer.sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("SIP/2.0 2") {
            peer.responses.fetch_add(1, Ordering::Relaxed);
        } else if text.starts_with("REGISTER") || text.starts_with("MESSAGE") {
            if let Some(r) = reply_200(&text) {
                let _ = peer.sock.send_to(r.as_bytes(), from);
                peer.answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn start_gateway(
    peer: SocketAddr,
    dir: &std::path::Path,
) -> (
    Child,
    SocketAddr,
    SocketAddr,
    std::sync::mpsc::Receiver<String>,
) {
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\noutbound_proxy = \"sip:{peer};transport=udp\"\n\
             [messaging]\nsend_rate = 1000000\nincoming_rate = 1000000\nstore_queue = 65536\n\
             [log]\nlevel = \"warn\"\n"
        ),
    )
    .unwrap();
    let db = dir.join("messages.sqlite");
    let db = db.to_str().expect("a UTF-8 temp dir");
    let gateway_process::Spawned { mut child, ws, sip } =
        gateway_process::spawn(&config, "", &["--database", db], Stdio::piped());
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, ws, sip, rx)
}

fn connect(addr: SocketAddr) -> Ws {
    sylkrtc_client::connect(addr, Duration::from_secs(30))
}

fn recv(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            _ => continue,
        }
    }
}

/// Connects, adds and registers `user@example.test`.
fn client(addr: SocketAddr, user: &str) -> Ws {
    let mut ws = connect(addr);
    assert_eq!(recv(&mut ws)["sylkrtc"], "ready-event");
    let aor = format!("{user}@example.test");
    send(
        &mut ws,
        &json!({"sylkrtc":"account-add","transaction":"a","account":aor,"password":HA1}),
    );
    send(
        &mut ws,
        &json!({"sylkrtc":"account-register","transaction":"r","account":aor}),
    );
    loop {
        let v = recv(&mut ws);
        if v["event"] == "registration-state" && v["state"] == "registered" {
            return ws;
        }
        assert_ne!(v["sylkrtc"], "error", "{v}");
    }
}

/// Sends `count` messages with `window` outstanding; returns when all are accepted.
fn send_messages(ws: &mut Ws, user: &str, count: u64, window: u64) {
    let aor = format!("{user}@example.test");
    let (mut sent, mut done) = (0u64, 0u64);
    while done < count {
        while sent < count && sent - done < window {
            send(
                ws,
                &json!({"sylkrtc":"account-message","transaction":format!("m{sent}"),"account":aor,
                        "uri":"peer@example.test","message_id":format!("{user}-{sent}"),
                        "content":"Hello, this is a benchmark message \u{1f600}","content_type":"text/plain",
                        "timestamp":"2024-05-06T07:08:09.123Z"}),
            );
            sent += 1;
        }
        let v = recv(ws);
        if v["event"] == "disposition-notification" {
            assert_eq!(v["state"], "accepted", "{v}");
            done += 1;
        } else {
            assert_ne!(v["sylkrtc"], "error", "{v}");
        }
    }
}

fn cpim_message(i: u64, gw: SocketAddr, local: SocketAddr) -> Vec<u8> {
    let body = format!(
        "From: <sip:peer@example.test>\r\nTo: <sip:user0@example.test>\r\nDateTime: 2024-05-06T07:08:09Z\r\n\
NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: in-{i}\r\nimdn.Disposition-Notification: positive-delivery\r\n\r\n\
Content-Type: text/plain\r\n\r\nHello from SIP {i}"
    );
    format!(
        "MESSAGE sip:user0@example.test SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKbench{i}\r\n\
From: <sip:peer@example.test>;tag=p{i}\r\nTo: <sip:user0@example.test>\r\nCall-ID: bench-{i}@{gw}\r\n\
CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: message/cpim\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn store_alone(count: u64) -> f64 {
    use store::{Direction, MessageState, MessageStore, StoreRequest, StoredMessage};
    let dir = std::env::temp_dir().join(format!("sylk-bench-store-{}", std::process::id()));
    let path = dir.join("alone.sqlite");
    let mut db = store::sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < count {
        let batch: Vec<StoreRequest> = (i..(i + 512).min(count))
            .map(|n| {
                StoreRequest::AddMessage(StoredMessage {
                    seq: 0,
                    account: "a@example.test".into(),
                    contact: "b@example.test".into(),
                    message_id: format!("m{n}"),
                    direction: Direction::Outgoing,
                    content_type: "text/plain".into(),
                    content: "Hello, this is a benchmark message".into(),
                    timestamp: "2024-05-06T07:08:09.123Z".into(),
                    state: MessageState::Pending,
                    disposition: vec!["positive-delivery".into(), "display".into()],
                    stored_at_ms: 0,
                })
            })
            .collect();
        i += batch.len() as u64;
        assert!(db.execute_batch(batch).iter().all(Result::is_ok));
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let messages = env_or("MESSAGES", if bench { 20_000 } else { 200 });
    let connections = env_or("CONNECTIONS", 4).max(1);
    let window = env_or("WINDOW", 64).max(1);
    let dir = std::env::temp_dir().join(format!("sylk-bench-msg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let peer = Arc::new(Peer {
        sock: UdpSocket::bind("127.0.0.1:0").unwrap(),
        answered: AtomicU64::new(0),
        responses: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let peer_addr = peer.sock.local_addr().unwrap();
    let peer_thread = {
        let p = Arc::clone(&peer);
        std::thread::spawn(move || run_peer(p))
    };
    let (mut child, ws_addr, sip_addr, log) = start_gateway(peer_addr, &dir);
    let pid = child.id();
    let mut clients: Vec<Ws> = (0..connections)
        .map(|i| client(ws_addr, &format!("user{i}")))
        .collect();

    // Phase 1: WebSocket -> SIP.
    let per = messages / connections;
    let total_out = per * connections;
    let cpu0 = gateway_cpu(pid);
    let start = Instant::now();
    let handles: Vec<_> = clients
        .drain(..)
        .enumerate()
        .map(|(i, mut ws)| {
            std::thread::spawn(move || {
                send_messages(&mut ws, &format!("user{i}"), per, window);
                ws
            })
        })
        .collect();
    let mut clients: Vec<Ws> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let out_secs = start.elapsed().as_secs_f64();
    let cpu1 = gateway_cpu(pid);

    // Phase 2: SIP -> WebSocket, to user0.
    let receiver = {
        let mut ws = clients.remove(0);
        let expect = messages;
        std::thread::spawn(move || {
            let mut got = 0;
            while got < expect {
                let v = recv(&mut ws);
                if v["event"] == "message" {
                    got += 1;
                }
            }
            ws
        })
    };
    let local = peer.sock.local_addr().unwrap();
    let before = peer.responses.load(Ordering::Relaxed);
    let start_in = Instant::now();
    let mut sent = 0;
    while sent < messages {
        let done = peer.responses.load(Ordering::Relaxed) - before;
        if sent - done < window {
            peer.sock
                .send_to(&cpim_message(sent, sip_addr, local), sip_addr)
                .unwrap();
            sent += 1;
        } else {
            std::thread::yield_now();
        }
        assert!(
            start_in.elapsed() < Duration::from_secs(300),
            "phase 2 stuck"
        );
    }
    while peer.responses.load(Ordering::Relaxed) - before < messages {
        assert!(
            start_in.elapsed() < Duration::from_secs(300),
            "phase 2 answers missing"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let ws0 = receiver.join().unwrap();
    let in_secs = start_in.elapsed().as_secs_f64();
    let cpu2 = gateway_cpu(pid);
    drop(ws0);
    drop(clients);

    // Shutdown: the gateway logs its longest iteration.
    gateway_process::sigterm(&child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut longest = None;
    while Instant::now() < deadline && longest.is_none() {
        if let Ok(line) = log.recv_timeout(Duration::from_millis(100)) {
            if std::env::var_os("SYLK_TEST_LOG").is_some() {
                eprintln!("[gateway] {line}");
            }
            longest = line
                .split("longest iteration ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok());
        }
    }
    let _ = child.wait();
    peer.stop.store(true, Ordering::Relaxed);
    peer_thread.join().unwrap();
    let db_size = std::fs::metadata(dir.join("messages.sqlite")).map_or(0, |m| m.len())
        + std::fs::metadata(dir.join("messages.sqlite-wal")).map_or(0, |m| m.len());
    let _ = std::fs::remove_dir_all(&dir);
    let alone = store_alone(if bench { 200_000 } else { 2_000 });

    let us = |ns: u64, n: u64| ns as f64 / 1000.0 / n as f64;
    println!(
        "messaging_load: {messages} messages each way, {connections} connections, window {window}"
    );
    println!(
        "  WebSocket -> SIP MESSAGE -> 200: {:.0} messages/s; gateway CPU per message: reactor {:.1} us, store thread {:.1} us",
        total_out as f64 / out_secs,
        us(cpu1.0 - cpu0.0, total_out),
        us(cpu1.1 - cpu0.1, total_out)
    );
    println!(
        "  SIP MESSAGE (CPIM) -> WebSocket: {:.0} messages/s; gateway CPU per message: reactor {:.1} us, store thread {:.1} us",
        messages as f64 / in_secs,
        us(cpu2.0 - cpu1.0, messages),
        us(cpu2.1 - cpu1.1, messages)
    );
    println!(
        "  store writes through the gateway: {:.0}/s (phase 1: each message stored, then its state); store alone (SQLite, WAL, batches of 512): {alone:.0} inserts/s; database {} KiB",
        (2 * total_out) as f64 / out_secs,
        db_size / 1024
    );
    match longest {
        Some(us) => println!("  longest reactor iteration: {us} us"),
        None => println!("  longest reactor iteration: not reported"),
    }
}
