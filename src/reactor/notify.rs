//! systemd's service notifications (sd_notify(3), `Type=notify`): `READY=1` once the
//! reactor runs (every socket bound), `STOPPING=1` when a drain or stop begins, and
//! `WATCHDOG=1` every half `WatchdogSec` from the reactor's own loop, so a reactor that hangs
//! stops them and systemd restarts the service.
//!
//! The protocol is one datagram per notification, `KEY=VALUE` lines, to the Unix datagram
//! socket named by `NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`);
//! a few lines over std's `UnixDatagram`, so no library for it. The socket is non-blocking:
//! a notification that cannot be sent at once is dropped (logged), never waited for.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// Where notifications go, and the watchdog's pace.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
    /// Half of `WATCHDOG_USEC`, when the watchdog is on for this process.
    watchdog: Option<Duration>,
    next_ping: Option<Instant>,
}

impl Notifier {
    /// From the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`);
    /// `None` when not started by systemd with `Type=notify` (or the socket is unusable).
    pub fn from_env() -> Option<Notifier> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let name = var("NOTIFY_SOCKET")?;
        let to = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
            None => SocketAddr::from_pathname(&name),
        };
        let (to, socket) = match (to, UnixDatagram::unbound()) {
            (Ok(to), Ok(socket)) if socket.set_nonblocking(true).is_ok() => (to, socket),
            _ => {
                log::warn!("systemd: cannot use NOTIFY_SOCKET={name}");
                return None;
            }
        };
        // sd_watchdog_enabled(3): the watchdog is ours unless WATCHDOG_PID names another
        // process.
        let ours = var("WATCHDOG_PID").is_none_or(|pid| pid == std::process::id().to_string());
        let watchdog = var("WATCHDOG_USEC")
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|&usec| usec > 0 && ours)
            .map(|usec| Duration::from_micros(usec) / 2);
        Some(Notifier {
            socket,
            to,
            watchdog,
            next_ping: None,
        })
    }

    fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.to) {
            log::warn!("systemd: cannot notify {state:?}: {e}");
        }
    }

    /// Every socket is bound and the reactor runs.
    pub fn ready(&mut self, now: Instant) {
        self.send("READY=1\nSTATUS=running");
        self.next_ping = self.watchdog.map(|every| now + every);
    }

    /// A drain or stop began (`why`: its cause, shown by `systemctl status`).
    pub fn stopping(&self, why: &str) {
        self.send(&format!("STOPPING=1\nSTATUS=stopping: {why}"));
    }

    /// When the next watchdog ping is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Sends the watchdog ping when it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let (Some(due), Some(every)) = (self.next_ping, self.watchdog) {
            if due <= now {
                self.send("WATCHDOG=1");
                self.next_ping = Some(now + every);
            }
        }
    }
}
