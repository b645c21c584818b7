//! RFC 3261 section 17 transactions (with RFC 6026's Accepted states), sans-IO.
//!
//! [`TxnLayer`] owns every transaction, matches incoming messages to them in O(1) by branch
//! (RFC 3261 sections 17.1.3 and 17.2.3), answers retransmitted requests with the last response,
//! retransmits over unreliable transports and reports to the TU through [`TxnEvent`]s.
//!
//! Drive it like every engine here: feed `handle_*(now, ..)`, then drain
//! [`TxnLayer::poll_transmit`] and [`TxnLayer::poll_event`] until both are empty, and wake at
//! [`TxnLayer::poll_timeout`] to call [`TxnLayer::handle_timeout`]. A wake-up with nothing due
//! is a no-op.

mod fsm;
mod stats;
mod timers;

#[cfg(test)]
mod tests;

use engine::drops::{self, DropKind};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use fsm::{Effects, Input, State, Txn};
pub use stats::{method_label, TxnRole, TxnStats};
pub use timers::{Timer, TxnConfig};

use super::msg::{Method, MsgError, NameAddr, RequestBuilder, SipRequest, SipResponse};

/// RFC 3261 section 8.1.1.7: branches of RFC 3261 elements start with this cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies one transaction for its lifetime; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(u64);

/// Where a transaction's messages go: chosen by the transport layer, handed back unchanged with
/// every [`TxnTransmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// Remote address (for responses: per RFC 3261 section 18.2.2 / RFC 3581).
    pub remote: SocketAddr,
    /// The transport's handle for the socket or connection.
    pub flow: u64,
    /// TCP/TLS/WS: no retransmissions, and timers D, I, J, K are zero (RFC 3261 section 17).
    pub reliable: bool,
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTransmit {
    /// The transaction that sends them.
    pub txn: TxnId,
    /// Where to.
    pub target: Destination,
    /// A complete message.
    pub bytes: Vec<u8>,
}

/// What the transaction layer tells the TU.
#[derive(Debug, Clone)]
pub enum TxnEvent {
    /// A new request created server transaction `txn`; answer with [`TxnLayer::send_response`].
    /// Extension methods arrive here too; the UA answers them 501.
    Request {
        /// The new server transaction.
        txn: TxnId,
        /// The request.
        request: SipRequest,
    },
    /// A CANCEL created server transaction `txn` (answer it 200, or 481 when `cancels` is
    /// `None`, RFC 3261 section 9.2); `cancels` is the INVITE server transaction it targets.
    Cancel {
        /// The CANCEL's own server transaction.
        txn: TxnId,
        /// The matching INVITE server transaction.
        cancels: Option<TxnId>,
        /// The CANCEL.
        request: SipRequest,
    },
    /// An ACK that is not absorbed by a transaction: the ACK for a 2xx, which belongs to the
    /// dialog layer (RFC 3261 section 17.2.3). `txn` is set when it still matched an INVITE
    /// server transaction in the Accepted state.
    Ack {
        /// The matching Accepted INVITE server transaction, if any.
        txn: Option<TxnId>,
        /// The ACK.
        request: SipRequest,
    },
    /// A response for client transaction `txn` (provisional or final; 2xx retransmissions
    /// of an INVITE too, RFC 6026).
    Response {
        /// The client transaction.
        txn: TxnId,
        /// The response.
        response: SipResponse,
    },
    /// Timer B or F fired (the TU acts as on a 408, RFC 3261 section 8.1.3.1), or Timer H
    /// fired on a server INVITE transaction (no ACK came).
    Timeout {
        /// The transaction.
        txn: TxnId,
    },
    /// The transport reported a failure ([`TxnLayer::handle_transport_error`]).
    TransportError {
        /// The transaction.
        txn: TxnId,
    },
    /// The transaction is gone; its id is not used again.
    Terminated {
        /// The transaction.
        txn: TxnId,
    },
}

/// Errors of the transaction layer (all caused by the TU, never by the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnError {
    /// No transaction with this id (already terminated?).
    UnknownTransaction,
    /// The transaction cannot send this response now (e.g. a second final).
    InvalidState,
    /// ACK is not sent through a client transaction (RFC 3261 section 17.1.1.3: non-2xx ACKs
    /// are generated here, 2xx ACKs are the dialog's).
    AckIsNotATransaction,
    /// The request's top Via has no RFC 3261 branch.
    MissingBranch,
    /// A client transaction with this branch and method already exists.
    DuplicateBranch,
}

impl fmt::Display for TxnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxnError::UnknownTransaction => "unknown transaction",
            TxnError::InvalidState => "response not allowed in this transaction state",
            TxnError::AckIsNotATransaction => "ACK is not sent through a client transaction",
            TxnError::MissingBranch => "top Via has no z9hG4bK branch",
            TxnError::DuplicateBranch => "duplicate client branch",
        })
    }
}

impl std::error::Error for TxnError {}

/// RFC 3261 section 17.1.3: branch of the top Via plus CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: String,
    method: Method,
}

/// RFC 3261 section 17.2.3: branch, sent-by and method, with ACK matching INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    branch: String,
    sent_by: String,
    method: Method,
}

fn server_key(request: &SipRequest, method: Method) -> Option<ServerKey> {
    let via = request.top_via()?;
    let branch = match via.branch() {
        Some(b) if b.starts_with(MAGIC_COOKIE) => b,
        // RFC 2543 peers: no usable branch; identify by Call-ID, CSeq number and From tag,
        // which an ACK shares with its INVITE (a subset of the 17.2.3 fallback rules).
        _ => format!(
            "rfc2543;{};{};{}",
            request.call_id(),
            request.cseq().seq,
            request.from().tag().unwrap_or_default()
        ),
    };
    Some(ServerKey {
        branch,
        sent_by: via.sent_by(),
        method,
    })
}

#[derive(Debug, Clone)]
enum IndexKey {
    Client(ClientKey),
    Server(ServerKey),
}

/// All transactions of one SIP stack.
#[derive(Debug, Default)]
pub struct TxnLayer {
    config: TxnConfig,
    next_id: u64,
    /// Boxed: a transaction is a few hundred bytes, and the map keeps spare capacity.
    txns: HashMap<TxnId, Box<Txn>>,
    client_index: HashMap<ClientKey, TxnId>,
    server_index: HashMap<ServerKey, TxnId>,
    /// Each transaction's index entry, so termination removes it in O(1).
    index_keys: HashMap<TxnId, IndexKey>,
    /// Earliest deadline per step; stale entries are skipped when popped.
    deadlines: BinaryHeap<Reverse<(Instant, TxnId)>>,
    transmits: VecDeque<TxnTransmit>,
    events: VecDeque<TxnEvent>,
    stats: TxnStats,
}

impl TxnLayer {
    /// An empty layer with the given timer values.
    pub fn new(config: TxnConfig) -> TxnLayer {
        TxnLayer {
            config,
            ..TxnLayer::default()
        }
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Finished transactions by role, method and final status.
    pub fn stats(&self) -> &TxnStats {
        &self.stats
    }

    /// The request that created a live transaction (a non-INVITE server transaction keeps
    /// it only until its final response).
    pub fn request(&self, txn: TxnId) -> Option<&SipRequest> {
        self.txns.get(&txn).and_then(|t| t.request())
    }

    /// Where a live transaction's messages go.
    pub fn destination(&self, txn: TxnId) -> Option<Destination> {
        self.txns.get(&txn).map(|t| t.target)
    }

    fn allocate_id(&mut self) -> TxnId {
        self.next_id += 1;
        TxnId(self.next_id)
    }

    /// Runs `input` through transaction `id`, then files its next deadline or removes it.
    fn step(&mut self, now: Instant, id: TxnId, input: Input) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if txn.final_status.is_none() {
            let status = match &input {
                Input::Response(r) | Input::TuResponse(r) if r.status() >= 200 => Some(r.status()),
                Input::Timer(Timer::B | Timer::F) => Some(408),
                Input::TransportError => Some(503),
                _ => None,
            };
            if let Some(status) = status {
                txn.final_status = Some(status);
                let role = match txn.state {
                    State::ClientInvite(_) | State::ClientNonInvite(_) => TxnRole::Client,
                    State::ServerInvite(_) | State::ServerNonInvite(_) => TxnRole::Server,
                };
                self.stats.record(role, &txn.method, status);
            }
        }
        let mut fx = Effects {
            now,
            config: &self.config,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        txn.step(input, &mut fx);
        self.settle(id);
    }

    fn settle(&mut self, id: TxnId) {
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        if txn.is_terminated() {
            match self.index_keys.remove(&id) {
                Some(IndexKey::Client(key)) => {
                    self.client_index.remove(&key);
                }
                Some(IndexKey::Server(key)) => {
                    self.server_index.remove(&key);
                }
                None => {}
            }
            self.txns.remove(&id);
            self.events.push_back(TxnEvent::Terminated { txn: id });
        } else if let Some(at) = txn.timers.next() {
            self.deadlines.push(Reverse((at, id)));
        }
    }

    /// Starts a client transaction and sends `request` to `target`. The top Via must carry a
    /// fresh `z9hG4bK` branch (RFC 3261 section 8.1.1.7).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: SipRequest,
        target: Destination,
    ) -> Result<TxnId, TxnError> {
        if *request.method() == Method::Ack {
            return Err(TxnError::AckIsNotATransaction);
        }
        let branch = request
            .top_via()
            .and_then(|v| v.branch())
            .filter(|b| b.starts_with(MAGIC_COOKIE))
            .ok_or(TxnError::MissingBranch)?;
        let key = ClientKey {
            branch,
            method: request.method().clone(),
        };
        if self.client_index.contains_key(&key) {
            return Err(TxnError::DuplicateBranch);
        }
        let id = self.allocate_id();
        let mut fx = Effects {
            now,
            config: &self.config,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        let txn = Txn::client(id, request, target, &mut fx);
        self.txns.insert(id, Box::new(txn));
        self.client_index.insert(key.clone(), id);
        self.index_keys.insert(id, IndexKey::Client(key));
        self.settle(id);
        Ok(id)
    }

    /// Sends the TU's response through server transaction `txn`.
    pub fn send_response(
        &mut self,
        now: Instant,
        txn: TxnId,
        response: SipResponse,
    ) -> Result<(), TxnError> {
        let t = self.txns.get(&txn).ok_or(TxnError::UnknownTransaction)?;
        let is_server = matches!(t.state, State::ServerInvite(_) | State::ServerNonInvite(_));
        if !is_server || !t.accepts_tu_response(response.status()) {
            return Err(TxnError::InvalidState);
        }
        self.step(now, txn, Input::TuResponse(response));
        Ok(())
    }

    /// A request arrived from `source`. New requests create a server transaction and reach the
    /// TU; retransmissions are answered from the transaction; ACKs for non-2xx are absorbed.
    pub fn handle_request(&mut self, now: Instant, request: SipRequest, source: Destination) {
        let method = request.method().clone();
        if method == Method::Ack {
            let invite = server_key(&request, Method::Invite)
                .and_then(|key| self.server_index.get(&key).copied());
            match invite {
                Some(id) => self.step(now, id, Input::Request(request)),
                None => self.events.push_back(TxnEvent::Ack { txn: None, request }),
            }
            return;
        }
        let Some(key) = server_key(&request, method.clone()) else {
            return;
        };
        if let Some(&id) = self.server_index.get(&key) {
            self.step(now, id, Input::Request(request));
            return;
        }
        let id = self.allocate_id();
        let event = if method == Method::Cancel {
            // RFC 3261 section 9.2: the CANCEL matches the INVITE by the same rules, method aside.
            let cancels = ServerKey {
                method: Method::Invite,
                ..key.clone()
            };
            TxnEvent::Cancel {
                txn: id,
                cancels: self.server_index.get(&cancels).copied(),
                request: request.clone(),
            }
        } else {
            TxnEvent::Request {
                txn: id,
                request: request.clone(),
            }
        };
        self.events.push_back(event);
        let mut fx = Effects {
            now,
            config: &self.config,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        let txn = Txn::server(id, request, source, &mut fx);
        self.txns.insert(id, Box::new(txn));
        self.server_index.insert(key.clone(), id);
        self.index_keys.insert(id, IndexKey::Server(key));
        self.settle(id);
    }

    /// A response arrived. It goes to the client transaction with the same branch and CSeq
    /// method; one that matches nothing is discarded (RFC 3261 section 18.1.2).
    pub fn handle_response(&mut self, now: Instant, response: SipResponse) {
        let Some(branch) = response.top_via().and_then(|v| v.branch()) else {
            drops::record(
                now,
                DropKind::SipStrayResponse,
                format_args!("response {} without a Via branch", response.status()),
            );
            return;
        };
        let key = ClientKey {
            branch,
            method: response.cseq().method.clone(),
        };
        if let Some(&id) = self.client_index.get(&key) {
            self.step(now, id, Input::Response(response));
        } else {
            drops::record(
                now,
                DropKind::SipStrayResponse,
                format_args!(
                    "response {} {} matches no transaction",
                    response.status(),
                    response.call_id()
                ),
            );
        }
    }

    /// The transport failed to deliver a message of `txn` (RFC 3261 section 17.1.4).
    pub fn handle_transport_error(&mut self, now: Instant, txn: TxnId) {
        self.step(now, txn, Input::TransportError);
    }

    /// Fires every timer due at `now`. Call when [`TxnLayer::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            // Several timers of one transaction may be due (e.g. after a late wake-up).
            while let Some(timer) = self
                .txns
                .get_mut(&id)
                .and_then(|txn| txn.timers.take_due(now))
            {
                self.step(now, id, Input::Timer(timer));
            }
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<TxnTransmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TxnEvent> {
        self.events.pop_front()
    }

    /// When [`TxnLayer::handle_timeout`] should run next (may be early; early is harmless).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }
}

/// Builds the CANCEL for an INVITE we sent (RFC 3261 section 9.1): same Request-URI, Call-ID,
/// From, To, CSeq number and top Via (so the same branch), the INVITE's Route set. Send it with
/// [`TxnLayer::send_request`] once a provisional response has arrived.
pub fn build_cancel(invite: &SipRequest) -> Result<SipRequest, MsgError> {
    request_on_invite_branch(invite, Method::Cancel, invite.to())
}

/// CANCEL (RFC 3261 section 9.1) and the ACK for a non-2xx (section 17.1.1.3) are built the
/// same way: the INVITE's Request-URI, top Via (same branch), From, Call-ID, CSeq number and
/// Route set, with their own method; only To differs (the ACK takes the response's, with tag).
fn request_on_invite_branch(
    invite: &SipRequest,
    method: Method,
    to: &NameAddr,
) -> Result<SipRequest, MsgError> {
    let via = invite.top_via().ok_or(MsgError::MissingHeader("Via"))?;
    let mut builder = RequestBuilder::new(method, invite.uri().clone())
        .via(via)
        .max_forwards(70)
        .from(invite.from())
        .to(to)
        .call_id(invite.call_id())
        .cseq(invite.cseq().seq);
    for route in invite.headers().get_all("Route") {
        builder = builder.header("Route", route);
    }
    builder.build()
}
