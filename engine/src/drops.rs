//! Peer-caused drops: counted per kind, logged at most once per interval per kind.
//!
//! Anything a peer can make us refuse or discard at will (junk frames, malformed SIP, floods)
//! must not turn into one log line each: a million junk frames once wrote a million INFO lines
//! (140 MB). [`record`] counts the event under its [`DropKind`] and logs it at INFO only when
//! the kind's last INFO line is older than [`LOG_INTERVAL`], with how many were counted
//! since; the others go to DEBUG. [`count`] and [`snapshot`] read the counters (for tests
//! and the metrics endpoint).
//!
//! The counters are process-wide atomics rather than a value threaded through every engine:
//! drops happen in the reactor, the WebSocket engine, the gateway and the SIP stack alike,
//! and a counter is not I/O. Engines pass their `now` in, so no clock is read here.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// At most one INFO line per kind per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

macro_rules! drop_kinds {
    ($($(#[$doc:meta])* $name:ident = $label:literal,)*) => {
        /// What a peer sent or did that was dropped, refused or cut off.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DropKind {
            $($(#[$doc])* $name,)*
        }

        impl DropKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [DropKind] = &[$(DropKind::$name,)*];

            /// A stable snake_case name (log lines, metric labels).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(DropKind::$name => $label,)*
                }
            }
        }
    };
}

drop_kinds! {
    /// A WebSocket upgrade refused (bad request, path, protocol or Origin).
    WsUpgradeRefused = "ws_upgrade_refused",
    /// A WebSocket connection refused at `max_connections` or during shutdown.
    WsConnectionLimit = "ws_connection_limit",
    /// A WebSocket closed for a protocol error or an oversized message.
    WsProtocolError = "ws_protocol_error",
    /// A binary WebSocket frame (sylkRTC is text only).
    WsBinaryFrame = "ws_binary_frame",
    /// A WebSocket closed because the client does not read its output.
    WsOutputOverflow = "ws_output_overflow",
    /// A message that arrived after we started closing the connection.
    WsAfterClose = "ws_after_close",
    /// A sylkRTC message that is not JSON or not a request (dropped without answer).
    SylkrtcDropped = "sylkrtc_dropped",
    /// A sylkRTC request refused with an error (unknown, malformed, bad fields).
    SylkrtcRefused = "sylkrtc_refused",
    /// A SIP message that does not parse and cannot be answered.
    SipMalformed = "sip_malformed",
    /// A SIP request answered statelessly with 400/416/505.
    SipRejected = "sip_rejected",
    /// A SIP response that matches no transaction (RFC 3261 section 17.1.3, 18.1.2).
    SipStrayResponse = "sip_stray_response",
    /// A SIP stream whose framing broke or that exceeded its limits.
    SipStreamClosed = "sip_stream_closed",
    /// A SIP TCP/TLS connection refused at the connection limit.
    SipConnectionLimit = "sip_connection_limit",
    /// RFC 5626 keep-alive pongs not queued because one is already pending.
    SipPongCoalesced = "sip_pong_coalesced",
    /// A media datagram (RTP, STUN) from an address that is not the call's peer, or a STUN
    /// message the ICE agent discarded.
    MediaUnknownSource = "media_unknown_source",
    /// An MSRP frame that does not parse (answered 400, or its connection closed).
    MsrpMalformed = "msrp_malformed",
    /// An MSRP request refused with a 4xx/5xx (too large, media type, wrong session, method).
    MsrpRefused = "msrp_refused",
    /// An MSRP connection cut off for broken framing, a limit breached, a flood or a stall.
    MsrpStreamClosed = "msrp_stream_closed",
}

const KINDS: usize = DropKind::ALL.len();

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static COUNTS: [AtomicU64; KINDS] = [ZERO; KINDS];
/// Per kind: the count when the last INFO line was written.
static LOGGED: [AtomicU64; KINDS] = [ZERO; KINDS];
/// Per kind: nanoseconds since [`EPOCH`] of the next allowed INFO line (0: at once).
static NEXT_INFO: [AtomicU64; KINDS] = [ZERO; KINDS];
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn index(kind: DropKind) -> usize {
    DropKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()
}

/// Counts one `kind` event at `now`; logs `detail` at INFO once per [`LOG_INTERVAL`] per
/// kind (with the number counted since the previous INFO line), at DEBUG otherwise.
pub fn record(now: Instant, kind: DropKind, detail: fmt::Arguments<'_>) {
    let i = index(kind);
    let total = COUNTS[i].fetch_add(1, Ordering::Relaxed) + 1;
    let epoch = *EPOCH.get_or_init(|| now);
    let at = u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
    let next = NEXT_INFO[i].load(Ordering::Relaxed);
    let due = at >= next
        && NEXT_INFO[i]
            .compare_exchange(
                next,
                at.saturating_add(LOG_INTERVAL.as_nanos() as u64).max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok();
    if due {
        let since = total - LOGGED[i].swap(total, Ordering::Relaxed);
        if since > 1 {
            log::info!(
                "{}: {detail} ({since} since the last report)",
                kind.as_str()
            );
        } else {
            log::info!("{}: {detail}", kind.as_str());
        }
    } else {
        log::debug!("{}: {detail}", kind.as_str());
    }
}

/// Counts one `kind` event and logs `detail` at DEBUG only: for refusals that are routine
/// (a wrong path, a missing subprotocol) and were never louder than DEBUG.
pub fn record_quiet(kind: DropKind, detail: fmt::Arguments<'_>) {
    COUNTS[index(kind)].fetch_add(1, Ordering::Relaxed);
    log::debug!("{}: {detail}", kind.as_str());
}

/// How many `kind` events were counted since the process started.
pub fn count(kind: DropKind) -> u64 {
    COUNTS[index(kind)].load(Ordering::Relaxed)
}

/// Every kind with its count.
pub fn snapshot() -> Vec<(DropKind, u64)> {
    DropKind::ALL.iter().map(|&k| (k, count(k))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_every_time_logged_once_per_interval() {
        // Other tests of this process may count the same kind: compare differences.
        let kind = DropKind::MediaUnknownSource;
        let i = index(kind);
        let before = count(kind);
        let now = Instant::now();
        let next_before = NEXT_INFO[i].load(Ordering::Relaxed);
        for _ in 0..1000 {
            record(now, kind, format_args!("junk"));
        }
        assert_eq!(count(kind) - before, 1000);
        let next = NEXT_INFO[i].load(Ordering::Relaxed);
        assert!(
            next > next_before,
            "an INFO line was due and scheduled the next"
        );
        // Within the interval nothing is due; after it, the next INFO line is.
        record(now + LOG_INTERVAL / 2, kind, format_args!("junk"));
        assert_eq!(NEXT_INFO[i].load(Ordering::Relaxed), next);
        record(now + LOG_INTERVAL * 2, kind, format_args!("junk"));
        assert!(NEXT_INFO[i].load(Ordering::Relaxed) > next);
        assert!(snapshot().iter().any(|&(k, n)| k == kind && n >= 1002));
        assert_eq!(DropKind::ALL.len(), KINDS);
        assert_eq!(kind.as_str(), "media_unknown_source");
    }
}
