//! The floor, measured in the same run (shared/design/performance.md: "re-measure the floor in
//! the same run and report the ratio"): a bare single-threaded mio UDP forwarder with two
//! sockets per call, carrying the same traffic shape through the same SIP echo socket, with
//! plain UDP senders instead of browsers. It forwards datagram by datagram with `recv_from` +
//! `send_to`, like the gateway does today (not the `recvmmsg` floor of P2). It runs as a
//! thread of the bench process and, with `FLOOR=2`, also as a process of its own, which is
//! the gateway's situation: on 2 shared cores the forwarder keeps switching with the senders
//! and the echo, and those switches are cheaper inside one address space.

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
    /// The forwarder's voluntary context switches (wake-ups) in the window.
    pub wakeups: u64,
    pub sent: u64,
    pub received: u64,
}

/// Where the forwarder runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placement {
    /// A thread of this process (which also runs the senders and the echo): its context
    /// switches to and from them stay inside one address space.
    Thread,
    /// A process of its own, like the gateway: every switch to and from the senders and the
    /// echo changes address space, as the gateway's do. CPU from `/proc/<pid>/schedstat`,
    /// packets counted at the senders (sent + received in the window), as for the gateway.
    Process,
}

/// Forwards until `stop`: datagrams on the first socket of a pair go to `echo` from the
/// second, datagrams on the second go back to the pair's client from the first.
fn forward(
    mut fwd: Vec<(UdpSocket, UdpSocket, SocketAddr)>,
    echo: SocketAddr,
    stop: &AtomicBool,
    count: &AtomicU64,
    cpu: &AtomicU64,
    wakeups: &AtomicU64,
) {
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
            wakeups.store(voluntary_switches("thread-self"), Ordering::Relaxed);
        }
    }
}

/// Voluntary context switches of `/proc/<who>` (`thread-self` or a pid).
fn voluntary_switches(who: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{who}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Binds the forwarder's two sockets per client.
fn bind_pairs(clients: &[SocketAddr]) -> Vec<(UdpSocket, UdpSocket, SocketAddr)> {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    clients
        .iter()
        .map(|&c| {
            (
                UdpSocket::bind(any).expect("bind"),
                UdpSocket::bind(any).expect("bind"),
                c,
            )
        })
        .collect()
}

/// The argument that makes the bench binary a floor forwarder process.
pub const CHILD_ARG: &str = "--floor-forwarder";

/// Entry point of the forwarder process: reads the echo address and one client address per
/// line from stdin (then an empty line), prints the port of each client's forwarder socket,
/// then forwards until stdin closes.
pub fn child_main() -> ! {
    use std::io::{BufRead, Write};
    let mut lines = std::io::BufReader::new(std::io::stdin())
        .lines()
        .map_while(Result::ok);
    let echo: SocketAddr = lines.next().expect("echo address").parse().unwrap();
    let clients: Vec<SocketAddr> = lines
        .by_ref()
        .take_while(|l| !l.is_empty())
        .map(|l| l.parse().unwrap())
        .collect();
    let fwd = bind_pairs(&clients);
    let mut out = std::io::stdout().lock();
    for (a, _, _) in &fwd {
        writeln!(out, "{}", a.local_addr().unwrap().port()).unwrap();
    }
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    drop(out);
    std::thread::spawn(move || {
        for _ in lines {}
        std::process::exit(0);
    });
    let (stop, count) = (AtomicBool::new(false), AtomicU64::new(0));
    let (cpu, wakeups) = (AtomicU64::new(0), AtomicU64::new(0));
    forward(fwd, echo, &stop, &count, &cpu, &wakeups);
    std::process::exit(0)
}

/// Runs `calls` flows for `seconds` (after 1 s warm-up) through a forwarder to `echo`.
pub fn run(calls: usize, seconds: f64, echo: SocketAddr, placement: Placement) -> FloorResult {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // Client side sockets (this thread) and forwarder sockets (the forwarder).
    let mut clients: Vec<UdpSocket> = (0..calls)
        .map(|_| UdpSocket::bind(any).expect("bind"))
        .collect();
    for c in &clients {
        let _ = socket2::SockRef::from(c).set_recv_buffer_size(1 << 20);
    }
    let client_addrs: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let cpu = Arc::new(AtomicU64::new(0));
    let wakeups = Arc::new(AtomicU64::new(0));
    let mut child = None;
    let mut forwarder = None;
    let targets: Vec<SocketAddr> = match placement {
        Placement::Thread => {
            let fwd = bind_pairs(&client_addrs);
            let targets = fwd.iter().map(|f| f.0.local_addr().unwrap()).collect();
            let (stop, count) = (stop.clone(), count.clone());
            let (cpu, wakeups) = (cpu.clone(), wakeups.clone());
            forwarder = Some(std::thread::spawn(move || {
                forward(fwd, echo, &stop, &count, &cpu, &wakeups)
            }));
            targets
        }
        Placement::Process => {
            use std::io::{BufRead, Write};
            let mut c = std::process::Command::new(std::env::current_exe().unwrap())
                .arg(CHILD_ARG)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("start the floor forwarder process");
            let mut input = c.stdin.take().unwrap();
            writeln!(input, "{echo}").unwrap();
            for a in &client_addrs {
                writeln!(input, "{a}").unwrap();
            }
            writeln!(input).unwrap();
            input.flush().unwrap();
            let out = std::io::BufReader::new(c.stdout.take().unwrap());
            let targets = out
                .lines()
                .map_while(Result::ok)
                .take_while(|l| l != "ready")
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p.parse::<u16>().unwrap())))
                .collect::<Vec<_>>();
            assert_eq!(
                targets.len(),
                calls,
                "floor forwarder process did not start"
            );
            child = Some((c, input));
            targets
        }
    };
    let child_pid = child.as_ref().map(|(c, _)| c.id());
    // Forwarded packets, forwarder CPU (ns) and wake-ups so far.
    let mark = |sent: u64, received: u64| match child_pid {
        None => (
            count.load(Ordering::Relaxed),
            cpu.load(Ordering::Relaxed),
            wakeups.load(Ordering::Relaxed),
        ),
        Some(pid) => (
            sent + received,
            super::cpu::schedstat_ns(&format!("/proc/{pid}/schedstat")),
            voluntary_switches(&pid.to_string()),
        ),
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
    let mut marks: Option<(u64, u64, u64, Instant)> = None;
    let result;
    loop {
        let now = Instant::now();
        if marks.is_none() && now >= t_window {
            std::thread::sleep(Duration::from_millis(12)); // let the forwarder publish
            let (c, t, w) = mark(sent, received);
            marks = Some((c, t, w, Instant::now()));
        }
        if now >= t_end {
            std::thread::sleep(Duration::from_millis(12));
            let (c0, cpu0, w0, t0) = marks.unwrap();
            let (c1, cpu1, w1) = mark(sent, received);
            result = (c1 - c0, cpu1 - cpu0, w1 - w0, t0.elapsed().as_secs_f64());
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
    if let Some(f) = forwarder {
        let _ = f.join();
    }
    if let Some((mut c, input)) = child {
        drop(input); // the child exits when its stdin closes
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    let (forwarded, cpu_ns, wakeups, window) = result;
    FloorResult {
        calls,
        window,
        forwarded,
        forwarder_cpu_ms: cpu_ns as f64 / 1e6,
        wakeups,
        sent,
        received,
    }
}
