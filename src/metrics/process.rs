//! The standard `process_*` metrics of Prometheus client libraries, read from `/proc/self`
//! at scrape time (Linux; absent elsewhere), and `sylk_build_info`.

use std::time::SystemTime;

use super::{Collect, Exposition};

/// The process as the kernel accounts it.
#[derive(Debug, Clone, Copy)]
pub struct ProcessStats {
    /// When the process started (the reactor's own reading at start-up).
    pub start: SystemTime,
}

impl Collect for ProcessStats {
    fn collect(&self, out: &mut Exposition) {
        out.gauge(
            "sylk_build_info",
            "Always 1; the version is a label.",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        if let Ok(since) = self.start.duration_since(SystemTime::UNIX_EPOCH) {
            out.gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                &[],
                since.as_secs_f64(),
            );
        }
        // schedstat's first field: nanoseconds on the CPU (user + system) of the main
        // thread, which is where all the work is.
        let cpu_ns = std::fs::read_to_string("/proc/self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(ns) = cpu_ns {
            out.counter_f64(
                "sylk_reactor_cpu_seconds_total",
                "CPU time (user and system) of the event loop thread, in seconds.",
                ns as f64 / 1e9,
            );
        }
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            });
        if let Some(kib) = rss_kib {
            out.gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &[],
                (kib * 1024) as f64,
            );
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            out.gauge(
                "process_open_fds",
                "Number of open file descriptors.",
                &[],
                dir.count() as f64,
            );
        }
    }
}
