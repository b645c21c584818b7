//! The reactor: the one thread's `mio` loop and the only code that touches sockets or reads
//! the clock.
//!
//! Each iteration: wait for readiness or the earliest engine deadline; read every ready
//! socket until `WouldBlock` and hand the bytes to its engine; run due timers; drain every
//! engine's events and route them (WebSocket -> gateway -> WebSocket); write what the engines
//! produced; recompute interest from what is still queued.
//!
//! Its sockets are bound at start-up in `bind.rs`, its lifecycle (drain, stop, reload) is in
//! `lifecycle.rs`, the operational endpoints and its own counters in `endpoints.rs`.

mod bind;
mod budget;
mod endpoints;
mod lifecycle;
mod media_sockets;
mod msrp_sockets;
mod notify;
mod phases;
mod settle;
mod sip_sockets;
mod stream;
mod stream_set;
mod tcp;
mod tls;
pub mod token;
mod ws_client;
mod xcap_sockets;

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use engine::drops::{self, DropKind};
use engine::Deadlines;

use crate::switchboard::Switchboard;
use crate::ws::{WsConnection, WsLimits};
use bind::Listener;
pub use bind::{BoundAddresses, BoundSockets};
use budget::{TurnBudget, Work};
pub use endpoints::ReactorStats;
use endpoints::Refusal;
use lifecycle::{Lifecycle, Next};
pub use lifecycle::{Reload, SHUTDOWN_GRACE};
pub use media_sockets::BindProbe;
use media_sockets::MediaSockets;
pub use msrp_sockets::MsrpAddresses;
use msrp_sockets::MsrpSockets;
use notify::Notifier;
use phases::{Phase, PhaseTimes};
use sip_sockets::SipSockets;
use stream::ReadStatus;
pub use tcp::SocketError;
use token::{Generations, TokenKind};
use ws_client::ClientStream;
use xcap_sockets::XcapSockets;

/// Size of the shared read buffer.
const SCRATCH_SIZE: usize = 64 * 1024;
/// Timer wake-ups are rounded up to this grid, so the deadlines of many calls that fall in
/// the same window are run by one wake-up instead of one each. Every established call has
/// several timers a second (the ICE agent's 200 ms tick, RTCP, inactivity); with hundreds of
/// calls they otherwise wake the thread more often than the media does. No timer here needs
/// millisecond precision (the finest are ICE pacing and SIP T1, 50 and 500 ms); media
/// packets are never delayed by it, and a deadline already due is run at once.
const TIMER_GRID: Duration = Duration::from_millis(2);

/// The event loop and everything it drives.
pub struct Reactor {
    poll: Poll,
    listeners: Vec<Listener>,
    streams: Slab<ClientStream>,
    generations: Generations,
    /// Min-heap of (deadline, token); entries are checked against the stream's armed
    /// deadline when popped, so outdated ones are skipped instead of searched for.
    /// WebSocket engine deadlines by stream key (cancelled when a stream is reaped, so a
    /// reused key never inherits one).
    timers: Deadlines<usize>,
    board: Switchboard,
    sip: SipSockets,
    media: MediaSockets,
    msrp: MsrpSockets,
    xcap: XcapSockets,
    limits: WsLimits,
    max_connections: usize,
    next_log_id: u64,
    signals: Signals,
    lifecycle: Lifecycle,
    /// `shutdown.drain_timeout`.
    drain_timeout: Duration,
    /// SIGHUP's configuration source.
    reload: Option<Reload>,
    /// Loop timing and connection counters (metrics).
    stats: ReactorStats,
    /// Where long iterations spend their time (debugging; `SYLK_REACTOR_PHASES=1`).
    phases: PhaseTimes,
    /// When the reactor was built (metrics).
    started: SystemTime,
    scratch: Vec<u8>,
    /// Streams touched in this iteration, to flush and re-arm once.
    touched: Vec<usize>,
    /// Sockets whose read budget ran out (or whose reads resume): read again next turn, in
    /// order, each once per turn (round-robin; readiness is edge-triggered, so nothing
    /// else would wake us for them).
    more_reads: Vec<Token>,
    /// Sockets the last turn had no time left to serve: served first on the next turn,
    /// ahead of `more_reads`, so that a socket that always has more (a flooding peer) cannot
    /// take every turn's budget before them.
    deferred: Vec<Token>,
    /// The turn's copy of `deferred` and `more_reads` being served.
    serving: Vec<Token>,
    /// What this turn may still start (see `budget.rs`).
    budget: TurnBudget,
    /// systemd's notifications, when started with `Type=notify`.
    notify: Option<Notifier>,
    /// WebSocket streams with requests not routed yet for want of budget: routed first on
    /// the next turn.
    ws_backlog: Vec<usize>,
    /// Touched streams not flushed yet for want of budget: flushed first on the next turn.
    flush_backlog: Vec<usize>,
    /// This turn runs the engines' timers before the WebSocket ones (alternates).
    engine_timers_first: bool,
    /// Origin of the timer grid.
    epoch: Instant,
    /// The store's worker has results not collected yet.
    store_backlog: bool,
}

impl Reactor {
    /// The loop over `sockets`, driving `board`.
    pub fn new(
        sockets: BoundSockets,
        board: Switchboard,
        limits: WsLimits,
        max_connections: usize,
    ) -> Reactor {
        let BoundSockets {
            poll,
            listeners,
            sip,
            msrp,
            xcap,
            signals,
        } = sockets;
        Reactor {
            poll,
            listeners,
            streams: Slab::new(),
            generations: Generations::default(),
            timers: Deadlines::new(),
            board,
            sip,
            media: MediaSockets::default(),
            msrp,
            xcap,
            limits,
            max_connections,
            next_log_id: 0,
            signals,
            lifecycle: Lifecycle::Running,
            drain_timeout: Duration::from_secs(300),
            reload: None,
            stats: ReactorStats::default(),
            phases: PhaseTimes::from_env(),
            started: SystemTime::now(),
            scratch: vec![0; SCRATCH_SIZE],
            touched: Vec::new(),
            more_reads: Vec::new(),
            deferred: Vec::new(),
            serving: Vec::new(),
            budget: TurnBudget::new(Instant::now()),
            ws_backlog: Vec::new(),
            flush_backlog: Vec::new(),
            engine_timers_first: false,
            notify: Notifier::from_env(),
            epoch: Instant::now(),
            store_backlog: false,
        }
    }

    /// How long calls may go on after SIGTERM (`shutdown.drain_timeout`; 300 s unless set).
    pub fn set_drain_timeout(&mut self, timeout: Duration) {
        self.drain_timeout = timeout;
    }

    /// Where SIGHUP reads the configuration again (nothing is reloaded unless set).
    pub fn set_reload(&mut self, reload: Reload) {
        self.reload = Some(reload);
    }

    /// Runs until SIGTERM/SIGINT (or `POST /admin/drain`) and the drain that follows, then
    /// returns (see [`lifecycle`]).
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut now = Instant::now();
        if let Some(n) = &mut self.notify {
            n.ready(now);
        }
        loop {
            if self.advance_lifecycle(now) == Next::Exit {
                return Ok(());
            }
            // Asked once per iteration: it is not free (the SIP stack's parts each have
            // their own). Input handled before the timers below can only make it earlier
            // than this reading if it makes a timer due at once, which the next iteration
            // then runs without sleeping.
            let engines_deadline = self.board.poll_timeout();
            let timeout = if self.store_backlog
                || !self.more_reads.is_empty()
                || !self.deferred.is_empty()
                || !self.ws_backlog.is_empty()
                || !self.flush_backlog.is_empty()
                || self.board.has_output()
            {
                // Store results are waiting (their waker fired already), sockets have unread
                // input, requests wait to be routed, commands to be carried out or streams
                // to be flushed: look for new events without sleeping. (Timers not run for
                // want of time stay due, which makes the deadline below `now`.)
                Some(Duration::ZERO)
            } else {
                self.next_deadline(engines_deadline)
                    .map(|d| coalesce(self.epoch, now, d).saturating_duration_since(now))
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let woke = Instant::now();
            self.phases.start(woke);
            self.budget.start(woke);
            self.board.set_wall_clock(SystemTime::now());
            // Last turn's unfinished reads first, then the new events: each socket gets at
            // most a budget per turn in each, so no peer can starve the others, and the turn
            // serves sockets only while its time lasts (`budget.rs`): the others are carried.
            let mut serving = std::mem::take(&mut self.serving);
            serving.append(&mut self.deferred);
            let deferred = serving.len();
            for token in self.more_reads.drain(..) {
                if !serving[..deferred].contains(&token) {
                    serving.push(token);
                }
            }
            for &token in &serving {
                if !self.budget.may(Work::Serve) {
                    self.defer(token);
                } else if self.dispatch(woke, token, false) == Next::Exit {
                    return Ok(());
                }
            }
            serving.clear();
            self.serving = serving;
            self.phases.lap(Phase::Carried);
            for event in events.iter() {
                if !self.budget.may(Work::Serve) {
                    // Readiness is edge-triggered: a socket not served now is served first
                    // on the next turn, reads and writes alike.
                    self.defer(event.token());
                    continue;
                }
                if self.dispatch(woke, event.token(), event.is_writable()) == Next::Exit {
                    return Ok(());
                }
                self.phases.lap(phase_of(event.token()));
            }
            if self.store_backlog {
                self.store_backlog = self.board.handle_store_ready(woke);
            }
            self.phases.lap(Phase::Other);
            self.run_timers(woke, engines_deadline);
            self.phases.lap(Phase::Timers);
            self.settle(woke);
            self.phases.lap(Phase::Settle);
            // The one extra clock read per iteration; it is also the next iteration's `now`.
            now = Instant::now();
            let took = now.saturating_duration_since(woke);
            self.stats.iteration(took);
            self.phases.end(took);
        }
    }

    fn next_deadline(&mut self, engines: Option<Instant>) -> Option<Instant> {
        let timer = self.timers.earliest();
        [
            timer,
            engines,
            self.lifecycle.deadline(),
            self.msrp.poll_timeout(),
            self.notify.as_ref().and_then(Notifier::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn dispatch(&mut self, now: Instant, token: Token, writable: bool) -> Next {
        let Some(parts) = token::decode(token) else {
            return Next::Continue;
        };
        match parts.kind {
            TokenKind::Listener => self.accept(now, parts.key),
            TokenKind::Signals => {
                let caught: Vec<i32> = self.signals.pending().collect();
                for signal in caught {
                    if self.handle_signal(now, signal) == Next::Exit {
                        return Next::Exit;
                    }
                }
            }
            TokenKind::Media => {
                self.media.read_ready(
                    parts.key,
                    parts.generation,
                    now,
                    &mut self.board,
                    &mut self.scratch,
                );
            }
            // Collected below, a bounded number per iteration.
            TokenKind::Store => self.store_backlog = true,
            TokenKind::SipUdp => {
                let until = self.budget.until(Work::Serve);
                let status = self
                    .sip
                    .read_udp(now, until, &mut self.board, &mut self.scratch);
                if status == ReadStatus::More {
                    self.read_again(token);
                }
            }
            TokenKind::Dns => self
                .sip
                .read_dns(parts.key, now, &mut self.board, &mut self.scratch),
            TokenKind::SipListener => self.sip.accept(
                parts.key,
                now,
                self.poll.registry(),
                &mut self.generations,
                &mut self.board,
            ),
            TokenKind::MsrpListener => {
                self.msrp
                    .accept(parts.key, now, self.poll.registry(), &mut self.generations)
            }
            TokenKind::SipStream | TokenKind::MsrpStream | TokenKind::XcapStream => {
                let conn = (parts.key, parts.generation);
                let (registry, board) = (self.poll.registry(), &mut self.board);
                let buf = &mut self.scratch[..];
                let status = match parts.kind {
                    TokenKind::SipStream => {
                        stream_set::handle_ready(&mut self.sip, conn, now, registry, board, buf)
                    }
                    TokenKind::MsrpStream => {
                        stream_set::handle_ready(&mut self.msrp, conn, now, registry, board, buf)
                    }
                    _ => stream_set::handle_ready(&mut self.xcap, conn, now, registry, board, buf),
                };
                if status == ReadStatus::More {
                    self.read_again(token);
                }
            }
            TokenKind::WsConn => {
                let Some(s) = self.streams.get_mut(parts.key) else {
                    return Next::Continue;
                };
                if s.generation != parts.generation {
                    return Next::Continue; // stale event for a connection whose key was reused
                }
                if s.backlog {
                    // Its requests wait to be routed: more input waits behind them.
                    self.read_again(token);
                    return Next::Continue;
                }
                // Read on every event: errors and hang-ups are reported as readable too.
                let status = s.read_ready(now, &mut self.scratch);
                if writable {
                    s.write_ready(now);
                }
                self.touched.push(parts.key);
                if status == ReadStatus::More {
                    self.read_again(token);
                }
            }
        }
        Next::Continue
    }

    /// Queues `token`, not served for want of time, first for the next turn (once).
    fn defer(&mut self, token: Token) {
        if !self.deferred.contains(&token) {
            self.deferred.push(token);
        }
    }

    /// Queues `token` for a read on the next turn (once).
    fn read_again(&mut self, token: Token) {
        if !self.more_reads.contains(&token) {
            self.more_reads.push(token);
        }
    }

    fn accept(&mut self, now: Instant, index: usize) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (mut socket, peer) = match listener.socket.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: leave the rest in the backlog for the next event.
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let stopping = matches!(self.lifecycle, Lifecycle::Stopping { .. });
            // The metrics listener is not held to the WebSocket limit: a full gateway must
            // still answer its health checks.
            let full = listener.service.web && self.streams.len() >= self.max_connections;
            if full || stopping {
                let why = if stopping {
                    Refusal::Stopping
                } else {
                    Refusal::ConnectionLimit
                };
                self.stats.refused(why);
                drops::record(
                    now,
                    DropKind::WsConnectionLimit,
                    format_args!("refusing connection from {peer}: {why:?}"),
                );
                if listener.tls.is_none() {
                    let _ = socket.write(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
                continue;
            }
            let tls = match &listener.tls {
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(c) => Some(Box::new(rustls::Connection::Server(c))),
                    Err(e) => {
                        log::warn!("tls setup failed for {peer}: {e}");
                        continue;
                    }
                },
                None => None,
            };
            let mut service = listener.service;
            if matches!(self.lifecycle, Lifecycle::Draining { .. }) {
                service.draining = Some(crate::gateway::DRAIN_RETRY_AFTER);
            }
            let _ = socket.set_nodelay(true);
            self.next_log_id += 1;
            let log_id = self.next_log_id;
            let generation = self.generations.advance();
            let entry = self.streams.vacant_entry();
            let key = entry.key();
            let token = token::encode(TokenKind::WsConn, key, generation);
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut socket, token, Interest::READABLE)
            {
                log::warn!("cannot register connection from {peer}: {e}");
                continue;
            }
            // DEBUG: anyone can open connections; the WebSocket open below is the INFO line.
            log::debug!(
                "conn={log_id} accepted from {peer} ({})",
                if tls.is_some() { "wss" } else { "ws" }
            );
            entry.insert(ClientStream {
                generation,
                log_id,
                peer,
                socket,
                tls,
                ws: {
                    let mut ws = WsConnection::new(now, self.limits.clone());
                    ws.set_service(service);
                    ws
                },
                client: None,
                dialect: None,
                interest: Interest::READABLE,
                armed_timeout: None,
                dead: false,
                read_paused: false,
                backlog: false,
            });
            self.touched.push(key);
        }
    }

    /// Logs what is held at this moment, for leak checks from outside (the soak and fault
    /// tests read it at SIGTERM).
    fn log_census(&self) {
        log::info!(
            "reactor: census websockets={} calls={} accounts={} media_sockets={} sip_flows={} sip_connections={} sip_calls={} bridges={}",
            self.streams.len(),
            self.board.gateway().call_count(),
            self.board.gateway().account_count(),
            self.media.call_count(),
            self.board.sip().stream_count(),
            self.sip.connection_count(),
            self.board.sip().call_count(),
            self.board.bridges.len(),
        );
    }
}

/// The phase a readiness event's work is charged to.
fn phase_of(token: Token) -> Phase {
    match token::decode(token).map(|p| p.kind) {
        Some(TokenKind::Listener | TokenKind::WsConn) => Phase::Ws,
        Some(TokenKind::Media) => Phase::Media,
        Some(
            TokenKind::SipUdp | TokenKind::SipListener | TokenKind::SipStream | TokenKind::Dns,
        ) => Phase::Sip,
        Some(TokenKind::MsrpListener | TokenKind::MsrpStream) => Phase::Msrp,
        Some(TokenKind::Signals | TokenKind::Store | TokenKind::XcapStream) | None => Phase::Other,
    }
}

/// When to wake up for `deadline`: at once if it is due, else at the next point of the
/// [`TIMER_GRID`] counted from `epoch`.
fn coalesce(epoch: Instant, now: Instant, deadline: Instant) -> Instant {
    if deadline <= now {
        return deadline;
    }
    // In u64 nanoseconds (584 years) rather than Duration's u128: once per iteration.
    let grid = TIMER_GRID.as_nanos() as u64;
    let since = deadline.saturating_duration_since(epoch).as_nanos() as u64;
    epoch + Duration::from_nanos(since.div_ceil(grid).saturating_mul(grid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_wakeups_round_up_to_the_grid_but_due_ones_run_at_once() {
        let epoch = Instant::now();
        let ms = |n: u64| epoch + Duration::from_millis(n);
        let now = ms(10);
        // Due or past: at once.
        assert_eq!(coalesce(epoch, now, ms(3)), ms(3));
        assert_eq!(coalesce(epoch, now, now), now);
        // Future: the next grid point, never earlier than the deadline.
        assert_eq!(coalesce(epoch, now, ms(12)), ms(12));
        let d = ms(12) + Duration::from_micros(1);
        assert_eq!(coalesce(epoch, now, d), ms(14));
        assert_eq!(coalesce(epoch, now, ms(13)), ms(14));
        // Deadlines in one window share one wake-up.
        assert_eq!(
            coalesce(epoch, now, ms(20) + Duration::from_micros(300)),
            coalesce(epoch, now, ms(21) + Duration::from_micros(900))
        );
    }
}
