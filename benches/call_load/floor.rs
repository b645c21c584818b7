//! The floor, measured in the same run (shared/design/performance.md: "re-measure the floor in
//! the same run and report the ratio"): a bare single-threaded mio UDP forwarder with two
//! sockets per call, carrying the same traffic shape through the same SIP echo socket, with
//! plain UDP senders instead of browsers. It forwards datagram by datagram with `recv_from` +
//! `send_to`, like the gateway does today (not the `recvmmsg` floor of P2).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::cpu::thread_cpu_ns;

/// Size of the gateway's SRTP packets seen by the browsers (12 + 160 + 16).
const DATAGRAM: usize = 188;

pub struct FloorResult {
    pub calls: usize,
    pub window: f64,
    pub forwarded: u64,
    pub forwarder_cpu_ms: f64,
    pub sent: u64,
    pub received: u64,
}

/// Runs `calls` flows for `seconds` (after 1 s warm-up) through a forwarder thread to `echo`.
pub fn run(calls: usize, seconds: f64, echo: SocketAddr) -> FloorResult {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // Client side sockets (this thread) and forwarder sockets (the forwarder thread).
    let mut clients: Vec<UdpSocket> = (0..calls)
        .map(|_| UdpSocket::bind(any).expect("bind"))
        .collect();
    let mut fwd: Vec<(UdpSocket, UdpSocket, SocketAddr)> = clients
        .iter()
        .map(|c| {
            (
                UdpSocket::bind(any).expect("bind"),
                UdpSocket::bind(any).expect("bind"),
                c.local_addr().unwrap(),
            )
        })
        .collect();
    let targets: Vec<SocketAddr> = fwd.iter().map(|f| f.0.local_addr().unwrap()).collect();
    for c in &clients {
        let _ = socket2::SockRef::from(c).set_recv_buffer_size(1 << 20);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let cpu = Arc::new(AtomicU64::new(0));
    let forwarder = {
        let (stop, count, cpu) = (stop.clone(), count.clone(), cpu.clone());
        std::thread::spawn(move || {
            let mut poll = Poll::new().unwrap();
            for (k, (a, b, _)) in fwd.iter_mut().enumerate() {
                poll.registry()
                    .register(a, Token(2 * k), Interest::READABLE)
                    .unwrap();
                poll.registry()
                    .register(b, Token(2 * k + 1), Interest::READABLE)
                    .unwrap();
            }
            let mut events = Events::with_capacity(1024);
            let mut buf = [0u8; 2048];
            let mut n = 0u64;
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let _ = poll.poll(&mut events, Some(Duration::from_millis(5)));
                for ev in events.iter() {
                    let k = ev.token().0 / 2;
                    let (a, b, client) = &fwd[k];
                    let (from, to, dest) = if ev.token().0 % 2 == 0 {
                        (a, b, echo)
                    } else {
                        (b, a, *client)
                    };
                    loop {
                        match from.recv_from(&mut buf) {
                            Ok((len, _)) => {
                                let _ = to.send_to(&buf[..len], dest);
                                n += 1;
                            }
                            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                            Err(_) => break,
                        }
                    }
                }
                if last.elapsed() >= Duration::from_millis(10) {
                    last = Instant::now();
                    count.store(n, Ordering::Relaxed);
                    cpu.store(thread_cpu_ns(), Ordering::Relaxed);
                }
            }
        })
    };

    // Senders: 50 pps per flow in 20 one-ms slots, like the browsers.
    let mut poll = Poll::new().unwrap();
    for (k, c) in clients.iter_mut().enumerate() {
        poll.registry()
            .register(c, Token(k), Interest::READABLE)
            .unwrap();
    }
    let mut events = Events::with_capacity(1024);
    let payload = [0x80u8; DATAGRAM];
    let mut buf = [0u8; 2048];
    let (mut sent, mut received) = (0u64, 0u64);
    let start = Instant::now();
    let t_window = start + Duration::from_secs(1);
    let t_end = t_window + Duration::from_secs_f64(seconds);
    let mut next_tick = start;
    let mut slot = 0usize;
    let mut marks: Option<(u64, u64, Instant)> = None;
    let result;
    loop {
        let now = Instant::now();
        if marks.is_none() && now >= t_window {
            std::thread::sleep(Duration::from_millis(12)); // let the forwarder publish
            marks = Some((
                count.load(Ordering::Relaxed),
                cpu.load(Ordering::Relaxed),
                Instant::now(),
            ));
        }
        if now >= t_end {
            std::thread::sleep(Duration::from_millis(12));
            let (c0, cpu0, t0) = marks.unwrap();
            result = (
                count.load(Ordering::Relaxed) - c0,
                cpu.load(Ordering::Relaxed) - cpu0,
                t0.elapsed().as_secs_f64(),
            );
            break;
        }
        if now >= next_tick {
            let mut k = slot % 20;
            while k < calls {
                if clients[k].send_to(&payload, targets[k]).is_ok() {
                    sent += 1;
                }
                k += 20;
            }
            slot += 1;
            next_tick += Duration::from_millis(1);
            if next_tick + Duration::from_millis(20) < now {
                next_tick = now + Duration::from_millis(1);
            }
        }
        let timeout = next_tick.saturating_duration_since(Instant::now());
        let _ = poll.poll(&mut events, Some(timeout));
        for ev in events.iter() {
            let c = &clients[ev.token().0];
            while c.recv_from(&mut buf).is_ok() {
                received += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = forwarder.join();
    let (forwarded, cpu_ns, window) = result;
    FloorResult {
        calls,
        window,
        forwarded,
        forwarder_cpu_ms: cpu_ns as f64 / 1e6,
        sent,
        received,
    }
}
