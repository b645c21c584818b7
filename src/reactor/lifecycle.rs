//! Running, draining, stopping; and the signals that move between them (SIGTERM/SIGINT,
//! `POST /admin/drain`) or reload the configuration in place (SIGHUP).
//!
//! - **Running.** The first SIGTERM (or the drain endpoint) starts draining; with
//!   `shutdown.drain_timeout = 0` it stops at once.
//! - **Draining** until `drain_timeout`: `/ready` answers 503, WebSocket upgrades get 503
//!   with `Retry-After`, `session-create` an error and new INVITEs 503 with `Retry-After`;
//!   connections without a call are closed at once (1001, their accounts un-REGISTER), the
//!   others when their last call ends. The process exits as soon as no WebSocket and no SIP
//!   work (registration, call) is left, so it is quick when nothing was in progress. The
//!   listeners stay open meanwhile so health checks still get their 503.
//! - **Stopping**, at the drain deadline or on the second SIGTERM: every call still up ends
//!   (BYE or CANCEL, `terminated` to its client), accounts un-REGISTER, WebSockets close
//!   with 1001 and the listeners close; the process exits once that is done or after
//!   [`SHUTDOWN_GRACE`]. A third signal exits at once.

use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tungstenite::protocol::frame::coding::CloseCode;

use super::Reactor;
use crate::config::Config;
use crate::gateway::DRAIN_RETRY_AFTER;

/// How long the final stop waits for close handshakes, BYEs and un-REGISTERs.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Reads the configuration again (SIGHUP): the same file, with the same command-line
/// overrides.
pub type Reload = Box<dyn FnMut() -> Result<Config, String>>;

/// Where the process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Serving.
    Running,
    /// No new work; calls in progress may finish until `deadline`.
    Draining {
        /// When the rest is ended.
        deadline: Instant,
    },
    /// Ending everything; exit at `deadline` at the latest.
    Stopping {
        /// When the process exits whatever is left.
        deadline: Instant,
    },
}

impl Lifecycle {
    /// The instant the loop must wake up for, if any.
    pub fn deadline(self) -> Option<Instant> {
        match self {
            Lifecycle::Running => None,
            Lifecycle::Draining { deadline } | Lifecycle::Stopping { deadline } => Some(deadline),
        }
    }
}

/// What the loop should do after [`Reactor::advance_lifecycle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Go on.
    Continue,
    /// Return from `run`.
    Exit,
}

impl Reactor {
    /// Moves the lifecycle on at `now`: a finished drain or stop exits, an expired drain
    /// stops.
    pub(super) fn advance_lifecycle(&mut self, now: Instant) -> Next {
        match self.lifecycle {
            Lifecycle::Running => Next::Continue,
            Lifecycle::Draining { deadline } => {
                if self.nothing_in_progress() {
                    log::info!("drained: nothing left in progress");
                    self.stats.log_iterations();
                    self.phases.log();
                    Next::Exit
                } else if now >= deadline {
                    self.stop(now, "drain timeout");
                    Next::Continue
                } else {
                    Next::Continue
                }
            }
            Lifecycle::Stopping { deadline } => {
                if self.nothing_in_progress() || now >= deadline {
                    // warn: benchmarks run the gateway at that level and read this line.
                    log::warn!(
                        "shutdown complete ({} WebSocket connections dropped, longest iteration {} us)",
                        self.websocket_count(),
                        self.stats.longest().as_micros()
                    );
                    self.stats.log_iterations();
                    self.phases.log();
                    Next::Exit
                } else {
                    Next::Continue
                }
            }
        }
    }

    /// A signal arrived. Returns [`Next::Exit`] for the third termination signal.
    pub(super) fn handle_signal(&mut self, now: Instant, signal: i32) -> Next {
        match signal {
            SIGHUP => {
                self.reload();
                Next::Continue
            }
            SIGTERM | SIGINT => {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                match self.lifecycle {
                    Lifecycle::Running => self.begin_drain(now, name),
                    Lifecycle::Draining { .. } => self.stop(now, name),
                    Lifecycle::Stopping { .. } => {
                        log::warn!("{name} while stopping: exiting at once");
                        return Next::Exit;
                    }
                }
                Next::Continue
            }
            _ => Next::Continue,
        }
    }

    /// Starts draining (see the module docs).
    pub(super) fn begin_drain(&mut self, now: Instant, why: &str) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        self.log_census();
        if let Some(n) = &self.notify {
            n.stopping(why);
        }
        if self.drain_timeout.is_zero() {
            self.stop(now, why);
            return;
        }
        log::info!(
            "{why}: draining for at most {} s ({} WebSocket connections, {} calls)",
            self.drain_timeout.as_secs(),
            self.websocket_count(),
            self.board.gateway().call_count()
        );
        self.lifecycle = Lifecycle::Draining {
            deadline: now + self.drain_timeout,
        };
        for (key, s) in self.streams.iter_mut() {
            // Upgrades not decided yet get the 503 too.
            s.ws.set_draining(DRAIN_RETRY_AFTER);
            self.touched.push(key);
        }
        self.board.handle_drain(now);
    }

    /// Ends everything still up and closes the listeners (see the module docs).
    pub(super) fn stop(&mut self, now: Instant, why: &str) {
        if matches!(self.lifecycle, Lifecycle::Stopping { .. }) {
            return;
        }
        if let Some(n) = &self.notify {
            n.stopping(why);
        }
        log::info!(
            "{why}: stopping, closing {} WebSocket connections and {} calls",
            self.websocket_count(),
            self.board.gateway().call_count()
        );
        self.lifecycle = Lifecycle::Stopping {
            deadline: now + SHUTDOWN_GRACE,
        };
        // Calls end and accounts unregister now; the BYEs and un-REGISTERs go out with the
        // next settle.
        self.board.handle_shutdown(now);
        // Their `terminated` events are queued on the WebSockets before the close frames:
        // all of them, whatever this turn's budget.
        self.run_all_commands(now);
        for l in &mut self.listeners {
            let _ = self.poll.registry().deregister(&mut l.socket);
        }
        let keys: Vec<usize> = self.streams.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(s) = self.streams.get_mut(key) {
                if s.ws.is_open() {
                    s.ws.close(now, CloseCode::Away, "server shutting down");
                    self.touched.push(key);
                } else if s.dialect.is_none() {
                    self.reap(now, key);
                }
            }
        }
    }

    /// Closes one client's WebSocket with 1001 (the gateway let it go while draining).
    pub(super) fn close_client(&mut self, now: Instant, key: usize) {
        if let Some(s) = self.streams.get_mut(key) {
            s.ws.close(now, CloseCode::Away, "server shutting down");
            self.touched.push(key);
        }
    }

    /// No WebSocket session and no SIP work (registrations, calls) is left.
    fn nothing_in_progress(&self) -> bool {
        // Commands carried over for want of time (a last BYE or un-REGISTER) go out first.
        self.websocket_count() == 0 && self.board.is_idle() && !self.board.has_output()
    }

    /// WebSocket sessions still open or closing (endpoint requests and handshakes do not
    /// count: they hold nothing).
    fn websocket_count(&self) -> usize {
        self.streams
            .iter()
            .filter(|(_, s)| s.dialect.is_some())
            .count()
    }

    /// SIGHUP: reloads the TLS certificate (new connections get it; established ones keep
    /// theirs) and the log level. Other keys need a restart; a configuration that does not
    /// load changes nothing.
    fn reload(&mut self) {
        let Some(reload) = self.reload.as_mut() else {
            return;
        };
        let config = match reload() {
            Ok(config) => config,
            Err(e) => {
                log::error!("SIGHUP: configuration not reloaded: {e}");
                return;
            }
        };
        crate::logging::set_level(config.log.level);
        let uses_tls = self.listeners.iter().any(|l| l.tls.is_some())
            || self.sip.has_tls()
            || self.msrp.addresses().tls.is_some();
        let mut certificate = "unchanged (no TLS listener)".to_owned();
        if uses_tls {
            match super::tls::server_config(&config.websocket.tls) {
                Ok(tls) => {
                    for l in self.listeners.iter_mut().filter(|l| l.tls.is_some()) {
                        l.tls = Some(tls.clone());
                    }
                    self.sip.set_tls_server(tls.clone());
                    self.msrp.set_tls_server(tls);
                    certificate = "reloaded".to_owned();
                }
                Err(e) => {
                    log::error!("SIGHUP: TLS certificate not reloaded: {e}");
                    certificate = "kept".to_owned();
                }
            }
        }
        log::info!(
            "SIGHUP: log level {}, TLS certificate {certificate}",
            config.log.level
        );
    }
}
