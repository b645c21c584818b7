//! CPU time from /proc, no unsafe and no libc: the gateway's utime+stime (`/proc/<pid>/stat`,
//! clock ticks) plus its scheduler runtime in ns (`/proc/<pid>/schedstat`, the thread-group
//! leader; the gateway is single-threaded, so that is all of it), and this process's own.

use std::sync::OnceLock;

/// Clock ticks per second for /proc/<pid>/stat (`getconf CLK_TCK`, 100 when unknown).
fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// utime+stime of a process (all its threads), in ms.
pub fn stat_cpu_ms(path: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 * 1000.0 / clk_tck() as f64
}

/// Scheduler runtime of a thread (ns), from a schedstat file.
pub fn schedstat_ns(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of the calling thread, ns.
pub fn thread_cpu_ns() -> u64 {
    schedstat_ns("/proc/thread-self/schedstat")
}

/// Resident set size of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Voluntary and involuntary context switches of a process's main thread
/// (`/proc/<pid>/status`). Voluntary ones are the times it blocked, for the gateway the
/// times it slept in epoll_wait: its wake-ups.
pub fn context_switches(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |key: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        get("voluntary_ctxt_switches:"),
        get("nonvoluntary_ctxt_switches:"),
    )
}

/// One reading of every CPU figure the report uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snap {
    /// Gateway utime+stime, ms (tick resolution).
    pub gw_stat_ms: f64,
    /// Gateway scheduler runtime, ms (ns resolution).
    pub gw_sched_ms: f64,
    /// This bench process, all threads, utime+stime, ms.
    pub gen_stat_ms: f64,
    /// The browsers' thread (this bench's main thread), ms.
    pub browsers_ms: f64,
    /// The SIP UAS + RTP echo threads, ms.
    pub peer_ms: f64,
}

impl Snap {
    pub fn take(gw_pid: u32, peer_cpu_ns: u64) -> Snap {
        Snap {
            gw_stat_ms: stat_cpu_ms(&format!("/proc/{gw_pid}/stat")),
            gw_sched_ms: schedstat_ns(&format!("/proc/{gw_pid}/schedstat")) as f64 / 1e6,
            gen_stat_ms: stat_cpu_ms("/proc/self/stat"),
            browsers_ms: thread_cpu_ns() as f64 / 1e6,
            peer_ms: peer_cpu_ns as f64 / 1e6,
        }
    }

    pub fn since(&self, before: &Snap) -> Snap {
        Snap {
            gw_stat_ms: self.gw_stat_ms - before.gw_stat_ms,
            gw_sched_ms: self.gw_sched_ms - before.gw_sched_ms,
            gen_stat_ms: self.gen_stat_ms - before.gen_stat_ms,
            browsers_ms: self.browsers_ms - before.browsers_ms,
            peer_ms: self.peer_ms - before.peer_ms,
        }
    }
}

/// System-wide UDP counters (`/proc/net/snmp`): RcvbufErrors and SndbufErrors. They count
/// every process on the machine, so they are a hint of where loss happened, not a proof.
pub fn udp_buf_errors() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = s.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return (0, 0);
    };
    let get = |name: &str| {
        names
            .split_whitespace()
            .position(|n| n == name)
            .and_then(|i| values.split_whitespace().nth(i)?.parse().ok())
            .unwrap_or(0)
    };
    (get("RcvbufErrors"), get("SndbufErrors"))
}

/// Busy and total jiffies of the whole machine (`/proc/stat` first line): how loaded the
/// shared cores were, by everyone, during a window.
pub fn machine_jiffies() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Receive-buffer drops per local UDP port on 127.0.0.1 (`/proc/net/udp`, last column): the
/// socket that overflowed is the one whose owner did not read in time.
pub fn udp_drops_by_port() -> std::collections::HashMap<u16, u64> {
    let s = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let mut m = std::collections::HashMap::new();
    for l in s.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let Some((ip, port)) = f.get(1).and_then(|a| a.split_once(':')) else {
            continue;
        };
        if ip != "0100007F" {
            continue;
        }
        let (Ok(port), Some(Ok(drops))) = (
            u16::from_str_radix(port, 16),
            f.last().map(|d| d.parse::<u64>()),
        ) else {
            continue;
        };
        *m.entry(port).or_insert(0) += drops;
    }
    m
}
