//! The operational endpoints' answers (`/metrics`, `/health`, `/ready`, `POST
//! /admin/drain`) and the reactor's own counters. The WebSocket engine recognises the
//! requests ([`crate::ws::http::handle_request`]); the answers are built here because only
//! the reactor sees every engine, the listeners and the lifecycle.

use std::time::{Duration, Instant};

use engine::histogram::{Histogram, FAST_BOUNDS_US};

use super::lifecycle::Lifecycle;
use super::Reactor;
use crate::metrics::process::ProcessStats;
use crate::metrics::{Collect, Exposition};
use crate::sylkrtc::Dialect;
use crate::ws::http::response;
use crate::ws::Endpoint;

/// Prometheus text exposition format 0.0.4.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Why a connection was refused at accept time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `websocket.max_connections` reached.
    ConnectionLimit,
    /// Shutting down (listeners about to close).
    Stopping,
}

/// The reactor's counters: loop timing and connections.
#[derive(Debug, Clone)]
pub struct ReactorStats {
    /// Time from the end of a poll to the end of the iteration's work.
    iterations: Histogram,
    /// The longest such time since start.
    longest: Duration,
    /// Iterations that took more than 2 ms (every socket waited that long).
    over_2ms: u64,
    /// WebSocket sessions opened, by [dialect v1, v2] x [ws, wss].
    sessions_opened: [[u64; 2]; 2],
    /// Connections refused at accept, by [`Refusal`].
    refused: [u64; 2],
    /// Endpoint requests answered, by [metrics, health, ready, drain].
    endpoint_requests: [u64; 4],
}

impl Default for ReactorStats {
    fn default() -> Self {
        ReactorStats {
            iterations: Histogram::new(FAST_BOUNDS_US),
            longest: Duration::ZERO,
            over_2ms: 0,
            sessions_opened: [[0; 2]; 2],
            refused: [0; 2],
            endpoint_requests: [0; 4],
        }
    }
}

fn dialect_index(d: Dialect) -> usize {
    match d {
        Dialect::V1 => 0,
        Dialect::V2 => 1,
    }
}

const DIALECTS: [(Dialect, &str); 2] = [(Dialect::V1, "sylkRTC-1"), (Dialect::V2, "sylkRTC-2")];
const TRANSPORTS: [&str; 2] = ["ws", "wss"];
const ENDPOINTS: [(Endpoint, &str); 4] = [
    (Endpoint::Metrics, "metrics"),
    (Endpoint::Health, "health"),
    (Endpoint::Ready, "ready"),
    (Endpoint::Drain, "drain"),
];

impl ReactorStats {
    /// The longest iteration so far.
    pub fn longest(&self) -> Duration {
        self.longest
    }

    /// One loop iteration's work took `d`.
    pub fn iteration(&mut self, d: Duration) {
        self.iterations.observe(d);
        self.longest = self.longest.max(d);
        if d > Duration::from_millis(2) {
            self.over_2ms += 1;
        }
    }

    /// Logs the iteration figures (at exit; the soak reads the line).
    pub fn log_iterations(&self) {
        log::info!(
            "reactor: {} iterations, longest {} us, {} over 2 ms",
            self.iterations.count(),
            self.longest.as_micros(),
            self.over_2ms
        );
    }

    /// A WebSocket handshake completed.
    pub fn session_opened(&mut self, dialect: Dialect, tls: bool) {
        self.sessions_opened[dialect_index(dialect)][usize::from(tls)] += 1;
    }

    /// A connection was refused at accept.
    pub fn refused(&mut self, why: Refusal) {
        self.refused[why as usize] += 1;
    }

    fn endpoint(&mut self, e: Endpoint) {
        if let Some(i) = ENDPOINTS.iter().position(|(x, _)| *x == e) {
            self.endpoint_requests[i] += 1;
        }
    }
}

impl Reactor {
    /// Answers an endpoint request of connection `key`.
    pub(super) fn answer_endpoint(
        &mut self,
        now: Instant,
        key: usize,
        endpoint: Endpoint,
        head: bool,
    ) {
        self.stats.endpoint(endpoint);
        let text = match endpoint {
            Endpoint::Health => response(200, "OK", TEXT, &[], "ok\n", head),
            Endpoint::Ready => {
                let reasons = self.not_ready();
                if reasons.is_empty() {
                    response(200, "OK", TEXT, &[], "ready\n", head)
                } else {
                    let body = reasons.join("\n") + "\n";
                    response(503, "Service Unavailable", TEXT, &[], &body, head)
                }
            }
            Endpoint::Metrics => {
                let body = self.render_metrics();
                response(200, "OK", METRICS_CONTENT_TYPE, &[], &body, head)
            }
            Endpoint::Drain => {
                self.begin_drain(now, "POST /admin/drain");
                response(202, "Accepted", TEXT, &[], "draining\n", head)
            }
        };
        if let Some(s) = self.streams.get_mut(key) {
            s.ws.respond(text.as_bytes());
        }
        self.touched.push(key);
    }

    /// Why the gateway should not get new work (empty: ready): it is draining or stopping,
    /// a listener or the SIP socket is gone, or an engine says so.
    fn not_ready(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        match self.lifecycle {
            Lifecycle::Running => {}
            Lifecycle::Draining { .. } => out.push("draining"),
            Lifecycle::Stopping { .. } => out.push("stopping"),
        }
        if !self.listeners.iter().any(|l| l.service.web) {
            out.push("no WebSocket listener");
        }
        if self.sip.local_addr().is_none() {
            out.push("SIP socket down");
        }
        self.board.not_ready(&mut out);
        out
    }

    /// The whole exposition.
    pub(super) fn render_metrics(&self) -> String {
        let mut out = Exposition::new();
        ProcessStats {
            start: self.started,
        }
        .collect(&mut out);
        self.collect(&mut out);
        self.board.collect(&mut out);
        crate::metrics::sources::Drops.collect(&mut out);
        out.finish()
    }
}

impl Collect for Reactor {
    fn collect(&self, out: &mut Exposition) {
        let s = &self.stats;
        out.histogram(
            "sylk_reactor_iteration_seconds",
            "Work time of one event loop iteration (from the end of the poll to the end of \
             the iteration).",
            &[],
            &s.iterations,
        );
        out.gauge(
            "sylk_reactor_longest_iteration_seconds",
            "The longest event loop iteration since start.",
            &[],
            s.longest.as_secs_f64(),
        );
        let mut open = [[0u64; 2]; 2];
        for (_, c) in self.streams.iter() {
            if let (Some(d), true) = (c.dialect, c.ws.is_open()) {
                open[dialect_index(d)][usize::from(c.tls.is_some())] += 1;
            }
        }
        for (d, (_, dialect)) in DIALECTS.iter().enumerate() {
            for (t, transport) in TRANSPORTS.iter().enumerate() {
                out.gauge(
                    "sylk_websocket_connections",
                    "Open WebSocket connections by dialect and transport.",
                    &[("dialect", dialect), ("transport", transport)],
                    open[d][t] as f64,
                );
            }
        }
        for (d, (_, dialect)) in DIALECTS.iter().enumerate() {
            for (t, transport) in TRANSPORTS.iter().enumerate() {
                out.counter(
                    "sylk_websocket_connections_opened_total",
                    "WebSocket handshakes completed, by dialect and transport.",
                    &[("dialect", dialect), ("transport", transport)],
                    s.sessions_opened[d][t],
                );
            }
        }
        for (i, reason) in ["limit", "stopping"].iter().enumerate() {
            out.counter(
                "sylk_connections_refused_total",
                "TCP connections refused at accept (max_connections reached, shutting down).",
                &[("reason", reason)],
                s.refused[i],
            );
        }
        out.gauge(
            "sylk_msrp_sockets",
            "Open MSRP connections (chat sessions' own and accepted ones).",
            &[],
            self.msrp.len() as f64,
        );
        out.counter(
            "sylk_msrp_connections_refused_total",
            "Accepted MSRP connections closed before naming a waiting session (unknown \
             session, not MSRP, too slow, too many).",
            &[],
            self.msrp.refused,
        );
        out.gauge(
            "sylk_xcap_sockets",
            "Open connections to XCAP servers (one keep-alive connection per server).",
            &[],
            self.xcap.len() as f64,
        );
        for (i, (_, name)) in ENDPOINTS.iter().enumerate() {
            out.counter(
                "sylk_endpoint_requests_total",
                "Requests to the operational endpoints.",
                &[("endpoint", name)],
                s.endpoint_requests[i],
            );
        }
    }
}
