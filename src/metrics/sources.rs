//! What each engine reports: one [`Collect`] impl per engine, reading the counters it keeps
//! (see the module docs of [`crate::metrics`] for how to add one).

use media::bridge::{LegStats, MediaLeg};
use sip::registration::RegState;
use sip::stack::SipStack;

use super::{Collect, Exposition};
use crate::gateway::{CallDirection, CallState, Gateway};
use crate::switchboard::{Bridges, Msrps, Switchboard};

impl Collect for Switchboard {
    fn collect(&self, out: &mut Exposition) {
        self.gateway().collect(out);
        self.sip().collect(out);
        self.bridges.collect(out);
        self.msrps().collect(out);
    }
}

impl Collect for Gateway {
    fn collect(&self, out: &mut Exposition) {
        out.gauge(
            "sylk_clients",
            "sylkRTC clients (WebSocket connections past the handshake).",
            &[],
            self.client_count() as f64,
        );
        out.gauge(
            "sylk_accounts",
            "Accounts added by clients (one per connection that added it).",
            &[],
            self.account_count() as f64,
        );
        let gauges = self.call_gauges();
        for (d, direction) in CallDirection::ALL.iter().enumerate() {
            for (s, state) in CallState::ALL.iter().enumerate() {
                out.gauge(
                    "sylk_calls",
                    "Calls in progress by direction and state.",
                    &[("direction", direction.as_str()), ("state", state.as_str())],
                    gauges[d][s] as f64,
                );
            }
        }
        let stats = self.stats();
        for d in CallDirection::ALL {
            out.counter(
                "sylk_calls_started_total",
                "Calls started (session-create, or an INVITE offered to a browser).",
                &[("direction", d.as_str())],
                stats.started(d),
            );
        }
        for d in CallDirection::ALL {
            out.counter(
                "sylk_calls_answered_total",
                "Calls answered (2xx received, or session-answer).",
                &[("direction", d.as_str())],
                stats.answered(d),
            );
        }
        const ENDED: &str = "Calls ended, by direction, cause and whether they had been \
                             answered (answered=\"false\": setup failures).";
        out.counter_family("sylk_calls_ended_total", ENDED);
        for (direction, cause, answered, n) in stats.ended() {
            out.counter(
                "sylk_calls_ended_total",
                ENDED,
                &[
                    ("direction", direction),
                    ("cause", cause),
                    ("answered", if answered { "true" } else { "false" }),
                ],
                n,
            );
        }
        const REFUSED: &str = "sylkRTC requests answered with an error, by kind.";
        out.counter_family("sylk_requests_refused_total", REFUSED);
        for (kind, n) in stats.refusals() {
            out.counter(
                "sylk_requests_refused_total",
                REFUSED,
                &[("error", kind)],
                n,
            );
        }
        for d in CallDirection::ALL {
            out.histogram(
                "sylk_call_setup_seconds",
                "From call start (session-create, INVITE arrival) to media up (DTLS with \
                 the browser); includes ringing.",
                &[("direction", d.as_str())],
                stats.setup_latency(d),
            );
        }
        for d in CallDirection::ALL {
            out.histogram(
                "sylk_call_media_setup_seconds",
                "From the answer to media up: the browser leg's ICE and DTLS.",
                &[("direction", d.as_str())],
                stats.media_setup_latency(d),
            );
        }
        out.histogram(
            "sylk_call_post_dial_delay_seconds",
            "Outgoing calls: from session-create to the first provisional response.",
            &[],
            stats.post_dial_delay(),
        );
        let chat = self.chat_stats();
        for (i, d) in CallDirection::ALL.iter().enumerate() {
            out.counter(
                "sylk_chat_sessions_started_total",
                "Sessions with chat (MSRP) started, by direction.",
                &[("direction", d.as_str())],
                chat.started[i],
            );
        }
        out.gauge(
            "sylk_chat_sessions",
            "Sessions with a chat (MSRP) in progress.",
            &[],
            self.chat_count() as f64,
        );
        out.counter(
            "sylk_chat_failures_total",
            "Chats whose MSRP connection failed (lost, timed out, relay refused, cut off).",
            &[],
            chat.failed,
        );
        for (state, n) in [
            ("delivered", chat.delivered),
            ("failed", chat.delivery_failures),
        ] {
            out.counter(
                "sylk_chat_deliveries_total",
                "Outgoing chat messages settled, by outcome (delivered: a success REPORT).",
                &[("state", state)],
                n,
            );
        }
        out.gauge(
            "sylk_draining",
            "1 while the gateway drains before shutting down.",
            &[],
            if self.is_draining() { 1.0 } else { 0.0 },
        );
    }
}

impl Collect for SipStack {
    fn collect(&self, out: &mut Exposition) {
        let states = self.registration_states();
        for (state, n) in RegState::ALL.iter().zip(states) {
            out.gauge(
                "sylk_registrations",
                "SIP registrations by state.",
                &[("state", state.as_str())],
                n as f64,
            );
        }
        const TRANSACTIONS: &str = "Completed SIP transactions by role, method and final \
                                    status (408/503 when none came: timeout, transport error).";
        out.counter_family("sylk_sip_transactions_total", TRANSACTIONS);
        let mut code = String::with_capacity(3);
        for (role, method, status, n) in self.transaction_stats().iter() {
            code.clear();
            use std::fmt::Write as _;
            let _ = write!(code, "{status}");
            out.counter(
                "sylk_sip_transactions_total",
                TRANSACTIONS,
                &[("role", role.as_str()), ("method", method), ("code", &code)],
                n,
            );
        }
    }
}

impl Collect for Bridges {
    fn collect(&self, out: &mut Exposition) {
        let totals = self.totals();
        let legs = [("webrtc", &totals.webrtc), ("sip", &totals.sip)];
        type Figures = fn(&LegStats) -> (u64, u64);
        let directions: [(&str, Figures); 2] = [
            ("in", |l| (l.packets_received, l.bytes_received)),
            ("out", |l| (l.packets_sent, l.bytes_sent)),
        ];
        for (leg, stats) in legs {
            for (direction, get) in directions {
                out.counter(
                    "sylk_media_packets_total",
                    "RTP packets by leg (webrtc: toward the browser; sip) and direction.",
                    &[("leg", leg), ("direction", direction)],
                    get(stats).0,
                );
            }
        }
        for (leg, stats) in legs {
            for (direction, get) in directions {
                out.counter(
                    "sylk_media_bytes_total",
                    "RTP bytes by leg and direction (whole packets on the SIP leg, payload on \
                     the WebRTC leg).",
                    &[("leg", leg), ("direction", direction)],
                    get(stats).1,
                );
            }
        }
        for (leg, stats) in legs {
            out.counter(
                "sylk_media_packets_lost_total",
                "RTP packets lost on the way in (RFC 3550 A.3), by leg.",
                &[("leg", leg)],
                stats.packets_lost.max(0) as u64,
            );
        }
        out.counter(
            "sylk_media_packets_dropped_total",
            "Media packets the bridges dropped (unmapped payload type, no destination yet, \
             queue full, undecryptable).",
            &[],
            totals.dropped,
        );
        let counters = self.counters();
        for (label, leg) in [("webrtc", MediaLeg::Webrtc), ("sip", MediaLeg::Sip)] {
            out.counter(
                "sylk_srtp_auth_failures_total",
                "SRTP/SRTCP packets refused by authentication or replay checks, by leg.",
                &[("leg", label)],
                counters.srtp_auth_failures(leg),
            );
        }
        out.counter(
            "sylk_ice_failures_total",
            "Calls whose ICE connectivity with the browser failed.",
            &[],
            counters.ice_failures,
        );
        out.counter(
            "sylk_dtls_failures_total",
            "Calls whose DTLS handshake with the browser failed.",
            &[],
            counters.dtls_failures,
        );
    }
}

impl Collect for Msrps {
    fn collect(&self, out: &mut Exposition) {
        let c = self.counters();
        for (direction, n) in [("in", c.stats.messages_in), ("out", c.stats.messages_out)] {
            out.counter(
                "sylk_msrp_messages_total",
                "Complete MSRP messages, by direction (in: reassembled from the peer; out: \
                 last chunk sent).",
                &[("direction", direction)],
                n,
            );
        }
        for (direction, n) in [("in", c.stats.bytes_in), ("out", c.stats.bytes_out)] {
            out.counter(
                "sylk_msrp_bytes_total",
                "MSRP message body bytes, by direction.",
                &[("direction", direction)],
                n,
            );
        }
        for (kind, n) in [
            ("refused", c.stats.refused),
            ("malformed", c.stats.malformed),
            ("cut_off", c.cut_off),
        ] {
            out.counter(
                "sylk_msrp_errors_total",
                "MSRP peer errors: requests refused (4xx/5xx), malformed frames, connections \
                 cut off (framing, flood, stall).",
                &[("kind", kind)],
                n,
            );
        }
        out.counter(
            "sylk_msrp_connections_total",
            "MSRP connections opened (ours) or bound to a session (accepted).",
            &[],
            c.connections,
        );
    }
}
