//! The SIP side of the load: a minimal UAS on a std UDP socket that answers every INVITE with
//! 200 OK and a PCMU SDP pointing at one shared RTP echo socket, handles ACK and BYE, and an
//! echo thread that sends every RTP datagram back to where it came from (symmetric RTP, as
//! `sipp -rtp_echo` does). RTCP to the echo port + 1 is read and dropped.
//!
//! Each thread publishes its own CPU time (from /proc/thread-self/schedstat) so the report can
//! say what the peer cost, separately from the browsers.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cpu::thread_cpu_ns;

/// Counters shared with the main thread.
#[derive(Default)]
pub struct PeerStats {
    pub invites: AtomicU64,
    pub acks: AtomicU64,
    pub byes: AtomicU64,
    pub retransmitted_200: AtomicU64,
    pub other: AtomicU64,
    pub rtp_echoed: AtomicU64,
    pub rtcp_in: AtomicU64,
    pub echo_send_errors: AtomicU64,
    pub sip_cpu_ns: AtomicU64,
    pub echo_cpu_ns: AtomicU64,
    pub rtcp_cpu_ns: AtomicU64,
}

pub struct SipPeer {
    pub sip: SocketAddr,
    /// The shared RTP echo port (RTCP on the next one).
    pub echo_port: u16,
    pub stats: Arc<PeerStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl SipPeer {
    pub fn start() -> SipPeer {
        let sip_sock = UdpSocket::bind("127.0.0.1:0").expect("bind SIP UDP");
        let sip = sip_sock.local_addr().unwrap();
        let (rtp, rtcp) = bind_rtp_pair();
        let echo_port = rtp.local_addr().unwrap().port();
        let stats = Arc::new(PeerStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        {
            let (stats, stop) = (stats.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                uas_loop(sip_sock, echo_port, &stats, &stop)
            }));
        }
        {
            let (stats, stop) = (stats.clone(), stop.clone());
            threads.push(std::thread::spawn(move || echo_loop(rtp, &stats, &stop)));
        }
        {
            let (stats, stop) = (stats.clone(), stop.clone());
            threads.push(std::thread::spawn(move || rtcp_loop(rtcp, &stats, &stop)));
        }
        SipPeer {
            sip,
            echo_port,
            stats,
            stop,
            threads,
        }
    }

    /// CPU of the three peer threads so far, ns.
    pub fn cpu_ns(&self) -> u64 {
        self.stats.sip_cpu_ns.load(Ordering::Relaxed)
            + self.stats.echo_cpu_ns.load(Ordering::Relaxed)
            + self.stats.rtcp_cpu_ns.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// An even RTP port with RTCP on the next one, both on 127.0.0.1.
fn bind_rtp_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..200 {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let p = a.local_addr().unwrap().port();
        let (even, odd) = if p % 2 == 0 { (p, p + 1) } else { (p - 1, p) };
        let pair = if p == even {
            UdpSocket::bind(("127.0.0.1", odd)).map(|b| (a, b))
        } else {
            UdpSocket::bind(("127.0.0.1", even)).map(|b| (b, a))
        };
        if let Ok(pair) = pair {
            return pair;
        }
    }
    panic!("no free RTP/RTCP port pair on 127.0.0.1");
}

const TICK: Duration = Duration::from_millis(50);

/// Receive buffer of the generator's sockets: the echo thread shares 2 busy cores with
/// everything else, and a 208 KiB default overflows within a few ms at 50 kpps.
pub const RCVBUF: usize = 4 << 20;

fn echo_loop(sock: UdpSocket, stats: &PeerStats, stop: &AtomicBool) {
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(RCVBUF);
    sock.set_read_timeout(Some(TICK)).unwrap();
    let mut buf = [0u8; 2048];
    let mut last_cpu = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            if sock.send_to(&buf[..n], from).is_err() {
                stats.echo_send_errors.fetch_add(1, Ordering::Relaxed);
            }
            stats.rtp_echoed.fetch_add(1, Ordering::Relaxed);
        }
        if last_cpu.elapsed() >= TICK {
            last_cpu = Instant::now();
            stats.echo_cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
        }
    }
    stats.echo_cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
}

fn rtcp_loop(sock: UdpSocket, stats: &PeerStats, stop: &AtomicBool) {
    sock.set_read_timeout(Some(TICK)).unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if sock.recv_from(&mut buf).is_ok() {
            stats.rtcp_in.fetch_add(1, Ordering::Relaxed);
        }
        stats.rtcp_cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
    }
}

/// A 200 OK waiting for its ACK (RFC 3261 section 13.3.1.4 retransmission, T1 = 500 ms).
struct Pending {
    to: SocketAddr,
    response: Vec<u8>,
    next: Instant,
    interval: Duration,
}

fn uas_loop(sock: UdpSocket, echo_port: u16, stats: &PeerStats, stop: &AtomicBool) {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let local = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 65536];
    // Call-ID -> the 200 OK we sent for its INVITE (answers retransmitted INVITEs too).
    let mut answered: HashMap<String, Pending> = HashMap::new();
    let mut last_cpu = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            handle_sip(&sock, local, echo_port, &text, from, &mut answered, stats);
        }
        let now = Instant::now();
        for p in answered.values_mut() {
            if p.interval > Duration::ZERO && p.next <= now {
                let _ = sock.send_to(&p.response, p.to);
                stats.retransmitted_200.fetch_add(1, Ordering::Relaxed);
                p.interval = (p.interval * 2).min(Duration::from_secs(4));
                p.next = now + p.interval;
            }
        }
        if last_cpu.elapsed() >= TICK {
            last_cpu = now;
            stats.sip_cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
        }
    }
    stats.sip_cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
}

/// Header value by full or compact name (case-insensitive), first occurrence.
fn header<'a>(lines: &[&'a str], full: &str, compact: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case(full) || name.eq_ignore_ascii_case(compact))
            .then(|| value.trim())
    })
}

fn handle_sip(
    sock: &UdpSocket,
    local: SocketAddr,
    echo_port: u16,
    text: &str,
    from: SocketAddr,
    answered: &mut HashMap<String, Pending>,
    stats: &PeerStats,
) {
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let lines: Vec<&str> = head.split("\r\n").collect();
    let Some(method) = lines.first().and_then(|l| l.split(' ').next()) else {
        return;
    };
    if method == "SIP/2.0" {
        return; // a response (we send no requests)
    }
    let call_id = header(&lines, "Call-ID", "i").unwrap_or("").to_owned();
    match method {
        "ACK" => {
            stats.acks.fetch_add(1, Ordering::Relaxed);
            if let Some(p) = answered.get_mut(&call_id) {
                p.interval = Duration::ZERO; // stop retransmitting, keep for INVITE retransmits
            }
            return;
        }
        "INVITE" => {
            if let Some(p) = answered.get(&call_id) {
                let _ = sock.send_to(&p.response, from);
                return;
            }
            stats.invites.fetch_add(1, Ordering::Relaxed);
        }
        "BYE" => {
            stats.byes.fetch_add(1, Ordering::Relaxed);
            answered.remove(&call_id);
        }
        _ => {
            stats.other.fetch_add(1, Ordering::Relaxed);
        }
    }
    let tag = format!("echo{:x}", fnv1a(call_id.as_bytes()));
    let mut r = String::with_capacity(1024);
    r.push_str("SIP/2.0 200 OK\r\n");
    for l in &lines[1..] {
        let name = l.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("Via") || name.eq_ignore_ascii_case("v") {
            r.push_str(l);
            r.push_str("\r\n");
        }
    }
    for (full, compact) in [("From", "f"), ("Call-ID", "i"), ("CSeq", "CSeq")] {
        if let Some(v) = header(&lines, full, compact) {
            r.push_str(&format!("{full}: {v}\r\n"));
        }
    }
    if let Some(to) = header(&lines, "To", "t") {
        if to.contains(";tag=") {
            r.push_str(&format!("To: {to}\r\n"));
        } else {
            r.push_str(&format!("To: {to};tag={tag}\r\n"));
        }
    }
    r.push_str(&format!("Contact: <sip:echo@{local}>\r\n"));
    if method == "INVITE" {
        let sdp = format!(
            "v=0\r\no=echo 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {echo_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        r.push_str("Content-Type: application/sdp\r\n");
        r.push_str(&format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()));
        let response = r.into_bytes();
        let _ = sock.send_to(&response, from);
        let interval = Duration::from_millis(500);
        answered.insert(
            call_id,
            Pending {
                to: from,
                response,
                next: Instant::now() + interval,
                interval,
            },
        );
    } else {
        r.push_str("Content-Length: 0\r\n\r\n");
        let _ = sock.send_to(r.as_bytes(), from);
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}
