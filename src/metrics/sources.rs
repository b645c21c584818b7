//! What each engine reports: one [`Collect`] impl per engine, reading the counters it keeps
//! (see the module docs of [`crate::metrics`] for how to add one).

use media::bridge::{LegStats, MediaLeg};
use sip::registration::RegState;
use sip::stack::SipStack;
use sip::subscription::SubPhase;

use super::{Collect, Exposition};
use crate::gateway::{CallDirection, CallState, Gateway, NotifyResult};
use crate::switchboard::{Bridges, Msrps, Store, StoreHealth, Switchboard};

/// Peer-caused drops ([`engine::drops`]): process-wide counters, since drops happen in the
/// reactor, the WebSocket engine, the gateway and the SIP stack alike.
pub struct Drops;

impl Collect for Drops {
    fn collect(&self, out: &mut Exposition) {
        const HELP: &str = "Inputs from peers dropped, refused or cut off, by kind.";
        for (kind, n) in engine::drops::snapshot() {
            out.counter(
                "sylk_dropped_inputs_total",
                HELP,
                &[("kind", kind.as_str())],
                n,
            );
        }
    }
}

impl Collect for Switchboard {
    fn collect(&self, out: &mut Exposition) {
        self.gateway().collect(out);
        self.sip().collect(out);
        self.bridges.collect(out);
        self.msrps().collect(out);
        self.store().collect(out);
    }
}

impl Collect for Store {
    fn collect(&self, out: &mut Exposition) {
        out.gauge(
            "sylk_store_queue_depth",
            "Message store requests submitted and not answered yet.",
            &[],
            self.outstanding() as f64,
        );
        out.gauge(
            "sylk_store_up",
            "1 while the message store takes requests (worker alive and answering, database \
             writable).",
            &[],
            match self.health() {
                StoreHealth::Ready | StoreHealth::Busy => 1.0,
                StoreHealth::Down | StoreHealth::Failing | StoreHealth::Stalled => 0.0,
            },
        );
        out.counter(
            "sylk_store_stalls_total",
            "Times the watchdog found the storage thread not answering for 30 s.",
            &[],
            self.stats().stalls,
        );
        let stats = self.stats();
        out.histogram(
            "sylk_store_request_seconds",
            "Message store requests from submission to result, queue wait included.",
            &[],
            &stats.latency,
        );
        const REQUESTS: &str = "Message store requests by result (busy: queue full; \
                                unavailable: the storage thread is gone).";
        for (result, n) in [
            ("ok", stats.ok),
            ("failed", stats.failed),
            ("busy", stats.busy),
            ("unavailable", stats.unavailable),
        ] {
            out.counter(
                "sylk_store_requests_total",
                REQUESTS,
                &[("result", result)],
                n,
            );
        }
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
        let m = self.messaging_stats();
        const OUT: &str = "Messages sent (account-message, session-message) by SIP result.";
        out.counter(
            "sylk_messages_out_total",
            OUT,
            &[("result", "accepted")],
            m.out_accepted,
        );
        out.counter(
            "sylk_messages_out_total",
            OUT,
            &[("result", "failed")],
            m.out_failed,
        );
        const IN: &str = "SIP MESSAGEs received, by answer (delivered: 200, a connection got \
                          it; stored: 202; refused: 4xx/5xx).";
        out.counter(
            "sylk_messages_in_total",
            IN,
            &[("result", "delivered")],
            m.in_delivered,
        );
        out.counter(
            "sylk_messages_in_total",
            IN,
            &[("result", "stored")],
            m.in_stored,
        );
        out.counter(
            "sylk_messages_in_total",
            IN,
            &[("result", "refused")],
            m.in_refused,
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
        let contacts = self.contacts_stats();
        for r in NotifyResult::ALL {
            out.counter(
                "sylk_presence_notifies_total",
                "Presence NOTIFYs received, by result (bad bodies answered 400).",
                &[("result", r.as_str())],
                contacts.notifies(r),
            );
        }
        out.counter(
            "sylk_presence_events_total",
            "presence account events sent to clients.",
            &[],
            contacts.presence_events(),
        );
        let (published, refused) = contacts.publishes();
        const PUBLISHES: &str = "PUBLISHes of the users' presence, by outcome.";
        out.counter(
            "sylk_presence_publishes_total",
            PUBLISHES,
            &[("outcome", "ok")],
            published,
        );
        out.counter(
            "sylk_presence_publishes_total",
            PUBLISHES,
            &[("outcome", "failed")],
            refused,
        );
        out.counter(
            "sylk_presence_subscriptions_refused_total",
            "Contact URIs not watched: over presence.max_subscriptions_per_account or refused.",
            &[],
            contacts.subscriptions_refused(),
        );
        out.counter(
            "sylk_addressbook_updates_failed_total",
            "addressbook-update-failed events sent.",
            &[],
            contacts.updates_failed(),
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
        let phases = self.subscription_phases();
        for (phase, n) in SubPhase::ALL.iter().zip(phases) {
            out.gauge(
                "sylk_sip_subscriptions",
                "SIP subscriptions (presence on the users' behalf) by phase.",
                &[("phase", phase.as_str())],
                n as f64,
            );
        }
        out.gauge(
            "sylk_local_bindings",
            "Bindings held by the registrar of local.domain (standalone mode).",
            &[],
            self.local_binding_count() as f64,
        );
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
