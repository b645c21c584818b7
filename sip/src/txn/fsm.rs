//! The four transaction state machines of RFC 3261 section 17, with RFC 6026's Accepted
//! states. One function per state; each takes one input and returns the next state.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::timers::{Timer, TimerTable, TxnConfig};
use super::{Destination, TxnEvent, TxnId, TxnTransmit};
use crate::msg::{Method, ResponseBuilder, SipRequest, SipResponse};

/// What a state function may be given.
#[derive(Debug)]
pub(super) enum Input {
    /// A response from the transport (client transactions).
    Response(SipResponse),
    /// A retransmitted request, or an ACK, from the transport (server transactions).
    Request(SipRequest),
    /// A response the TU asks us to send (server transactions).
    TuResponse(SipResponse),
    /// A timer from the table fired.
    Timer(Timer),
    /// The transport could not send.
    TransportError,
}

/// Client INVITE states (RFC 3261 figure 5, RFC 6026 figure 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientInvite {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// Client non-INVITE states (RFC 3261 figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientNonInvite {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// Server INVITE states (RFC 3261 figure 7, RFC 6026 figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerInvite {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// Server non-INVITE states (RFC 3261 figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerNonInvite {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// The machine and its state. Variant names are the RFC figure titles, hence the shared suffix.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
}

/// Where state functions put their outputs.
pub(super) struct Effects<'a> {
    pub(super) now: Instant,
    pub(super) config: &'a TxnConfig,
    pub(super) transmits: &'a mut VecDeque<TxnTransmit>,
    pub(super) events: &'a mut VecDeque<TxnEvent>,
}

/// One transaction.
#[derive(Debug)]
pub(super) struct Txn {
    pub(super) id: TxnId,
    pub(super) state: State,
    pub(super) target: Destination,
    pub(super) timers: TimerTable,
    /// The request that created the transaction. A non-INVITE server transaction drops it
    /// with its final response: from then on it only resends `last_sent` to retransmitted
    /// requests until Timer J (RFC 3261 section 17.2.2), up to 32 s over UDP, and a burst
    /// of NOTIFYs would otherwise hold every parsed NOTIFY that long. Boxed, so dropping it
    /// shrinks what stays.
    request: Option<Box<SipRequest>>,
    /// The request's method (statistics, after `request` is gone).
    pub(super) method: Method,
    /// Client: the request as sent, for retransmission.
    request_bytes: Vec<u8>,
    /// Server: the last response sent (resent on retransmitted requests). Client INVITE: the
    /// ACK sent for a non-2xx final (resent on retransmitted finals).
    last_sent: Option<Vec<u8>>,
    /// Current retransmit interval of timer A, E or G.
    interval: Duration,
    /// The first final status sent or received (or stood for, see [`super::stats`]).
    pub(super) final_status: Option<u16>,
}

fn status_class(response: &SipResponse) -> u16 {
    response.status() / 100
}

impl Txn {
    fn new(
        id: TxnId,
        state: State,
        target: Destination,
        request: SipRequest,
        config: &TxnConfig,
    ) -> Txn {
        Txn {
            id,
            state,
            target,
            timers: TimerTable::default(),
            method: request.method().clone(),
            request: Some(Box::new(request)),
            request_bytes: Vec::new(),
            last_sent: None,
            interval: config.t1,
            final_status: None,
        }
    }

    /// A client transaction; sends the request and arms A/B or E/F (RFC 3261 17.1.1.2, 17.1.2.2).
    pub(super) fn client(
        id: TxnId,
        request: SipRequest,
        target: Destination,
        fx: &mut Effects<'_>,
    ) -> Txn {
        let invite = *request.method() == Method::Invite;
        let state = if invite {
            State::ClientInvite(ClientInvite::Calling)
        } else {
            State::ClientNonInvite(ClientNonInvite::Trying)
        };
        let request_bytes = request.to_bytes();
        let mut txn = Txn::new(id, state, target, request, fx.config);
        txn.send(fx, request_bytes.clone());
        txn.request_bytes = request_bytes;
        let (retransmit, timeout) = if invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        if !target.reliable {
            txn.timers.arm(retransmit, fx.now + fx.config.t1);
        }
        txn.timers.arm(timeout, fx.now + fx.config.timeout());
        txn
    }

    /// A server transaction for a new request. INVITE answers 100 Trying at once
    /// (RFC 3261 section 17.2.1: needed unless the TU answers within 200 ms, which we cannot
    /// promise).
    pub(super) fn server(
        id: TxnId,
        request: SipRequest,
        target: Destination,
        fx: &mut Effects<'_>,
    ) -> Txn {
        let invite = *request.method() == Method::Invite;
        let state = if invite {
            State::ServerInvite(ServerInvite::Proceeding)
        } else {
            State::ServerNonInvite(ServerNonInvite::Trying)
        };
        let trying = invite
            .then(|| ResponseBuilder::from_request(&request, 100, "Trying", None).build())
            .and_then(Result::ok);
        let mut txn = Txn::new(id, state, target, request, fx.config);
        if let Some(trying) = trying {
            let bytes = trying.to_bytes();
            txn.send(fx, bytes.clone());
            txn.last_sent = Some(bytes);
        }
        txn
    }

    /// The request that created the transaction, while it is kept.
    pub(super) fn request(&self) -> Option<&SipRequest> {
        self.request.as_deref()
    }

    pub(super) fn is_terminated(&self) -> bool {
        matches!(
            self.state,
            State::ClientInvite(ClientInvite::Terminated)
                | State::ClientNonInvite(ClientNonInvite::Terminated)
                | State::ServerInvite(ServerInvite::Terminated)
                | State::ServerNonInvite(ServerNonInvite::Terminated)
        )
    }

    /// True if the TU may send a response with this status now.
    pub(super) fn accepts_tu_response(&self, status: u16) -> bool {
        match self.state {
            State::ServerInvite(ServerInvite::Proceeding) => true,
            // RFC 6026 section 8.5: the TU retransmits 2xx through the Accepted state.
            State::ServerInvite(ServerInvite::Accepted) => (200..300).contains(&status),
            State::ServerNonInvite(ServerNonInvite::Trying | ServerNonInvite::Proceeding) => true,
            _ => false,
        }
    }

    fn reliable(&self) -> bool {
        self.target.reliable
    }

    fn send(&self, fx: &mut Effects<'_>, bytes: Vec<u8>) {
        fx.transmits.push_back(TxnTransmit {
            txn: self.id,
            target: self.target,
            bytes,
        });
    }

    fn resend_last(&self, fx: &mut Effects<'_>) {
        if let Some(bytes) = &self.last_sent {
            self.send(fx, bytes.clone());
        }
    }

    fn event(&self, fx: &mut Effects<'_>, event: TxnEvent) {
        fx.events.push_back(event);
    }

    /// Runs one input through the current state's function.
    pub(super) fn step(&mut self, input: Input, fx: &mut Effects<'_>) {
        self.state = match self.state {
            State::ClientInvite(s) => State::ClientInvite(match s {
                ClientInvite::Calling => self.client_invite_calling(input, fx),
                ClientInvite::Proceeding => self.client_invite_proceeding(input, fx),
                ClientInvite::Completed => self.client_invite_completed(input, fx),
                ClientInvite::Accepted => self.client_invite_accepted(input, fx),
                ClientInvite::Terminated => ClientInvite::Terminated,
            }),
            State::ClientNonInvite(s) => State::ClientNonInvite(match s {
                ClientNonInvite::Trying => self.client_non_invite_trying(input, fx),
                ClientNonInvite::Proceeding => self.client_non_invite_proceeding(input, fx),
                ClientNonInvite::Completed => self.client_non_invite_completed(input, fx),
                ClientNonInvite::Terminated => ClientNonInvite::Terminated,
            }),
            State::ServerInvite(s) => State::ServerInvite(match s {
                ServerInvite::Proceeding => self.server_invite_proceeding(input, fx),
                ServerInvite::Completed => self.server_invite_completed(input, fx),
                ServerInvite::Confirmed => self.server_invite_confirmed(input, fx),
                ServerInvite::Accepted => self.server_invite_accepted(input, fx),
                ServerInvite::Terminated => ServerInvite::Terminated,
            }),
            State::ServerNonInvite(s) => State::ServerNonInvite(match s {
                ServerNonInvite::Trying => self.server_non_invite_trying(input, fx),
                ServerNonInvite::Proceeding => self.server_non_invite_proceeding(input, fx),
                ServerNonInvite::Completed => self.server_non_invite_completed(input, fx),
                ServerNonInvite::Terminated => ServerNonInvite::Terminated,
            }),
        };
    }

    // ---- client INVITE -------------------------------------------------------------------

    /// RFC 3261 figure 5, "Calling": retransmit on Timer A with a doubling interval
    /// (section 17.1.1.2, no T2 cap for INVITE), give up on Timer B (408 path), leave on any
    /// response.
    fn client_invite_calling(&mut self, input: Input, fx: &mut Effects<'_>) -> ClientInvite {
        match input {
            Input::Timer(Timer::A) => {
                self.send(fx, self.request_bytes.clone());
                self.interval = self.interval.saturating_mul(2);
                self.timers.arm(Timer::A, fx.now + self.interval);
                ClientInvite::Calling
            }
            Input::Timer(Timer::B) => {
                self.event(fx, TxnEvent::Timeout { txn: self.id });
                ClientInvite::Terminated
            }
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn: self.id });
                ClientInvite::Terminated
            }
            Input::Response(response) => self.client_invite_response(response, fx),
            _ => ClientInvite::Calling,
        }
    }

    /// RFC 3261 figure 5, "Proceeding": no retransmissions; more provisionals go to the TU;
    /// a final response leaves.
    fn client_invite_proceeding(&mut self, input: Input, fx: &mut Effects<'_>) -> ClientInvite {
        match input {
            Input::Response(response) => self.client_invite_response(response, fx),
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn: self.id });
                ClientInvite::Terminated
            }
            _ => ClientInvite::Proceeding,
        }
    }

    /// Responses in Calling/Proceeding (RFC 3261 section 17.1.1.2, RFC 6026 section 8.4).
    fn client_invite_response(
        &mut self,
        response: SipResponse,
        fx: &mut Effects<'_>,
    ) -> ClientInvite {
        self.timers.cancel(Timer::A);
        // Only Calling retransmits the INVITE (Timer A); a response ends that, and an
        // accepted INVITE's transaction lives on 64*T1 (Timer M) without needing its bytes.
        self.request_bytes = Vec::new();
        let class = status_class(&response);
        let txn = self.id;
        match class {
            1 => {
                self.timers.cancel(Timer::B);
                self.event(fx, TxnEvent::Response { txn, response });
                ClientInvite::Proceeding
            }
            2 => {
                self.timers.cancel(Timer::B);
                self.timers.arm(Timer::M, fx.now + fx.config.timeout());
                self.event(fx, TxnEvent::Response { txn, response });
                ClientInvite::Accepted
            }
            _ => {
                self.timers.cancel(Timer::B);
                if let Some(ack) = self.ack_for(&response) {
                    self.send(fx, ack.clone());
                    self.last_sent = Some(ack);
                }
                self.timers
                    .arm(Timer::D, fx.now + fx.config.timer_d(self.reliable()));
                self.event(fx, TxnEvent::Response { txn, response });
                ClientInvite::Completed
            }
        }
    }

    /// The ACK for a non-2xx final (RFC 3261 section 17.1.1.3), To taken from the response.
    fn ack_for(&self, response: &SipResponse) -> Option<Vec<u8>> {
        super::request_on_invite_branch(self.request.as_deref()?, Method::Ack, response.to())
            .ok()
            .map(|ack| ack.to_bytes())
    }

    /// RFC 3261 figure 5, "Completed": absorb retransmitted finals by resending the ACK;
    /// terminate on Timer D.
    fn client_invite_completed(&mut self, input: Input, fx: &mut Effects<'_>) -> ClientInvite {
        match input {
            Input::Response(response) if status_class(&response) >= 3 => {
                self.resend_last(fx);
                ClientInvite::Completed
            }
            Input::Timer(Timer::D) => ClientInvite::Terminated,
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn: self.id });
                ClientInvite::Terminated
            }
            _ => ClientInvite::Completed,
        }
    }

    /// RFC 6026 figure 3, "Accepted": further 2xx (retransmissions or other forks) go to the
    /// TU, which ACKs them; terminate on Timer M.
    fn client_invite_accepted(&mut self, input: Input, fx: &mut Effects<'_>) -> ClientInvite {
        match input {
            Input::Response(response) if status_class(&response) == 2 => {
                self.event(
                    fx,
                    TxnEvent::Response {
                        txn: self.id,
                        response,
                    },
                );
                ClientInvite::Accepted
            }
            Input::Timer(Timer::M) => ClientInvite::Terminated,
            _ => ClientInvite::Accepted,
        }
    }

    // ---- client non-INVITE ---------------------------------------------------------------

    /// RFC 3261 figure 6, "Trying": retransmit on Timer E with the interval doubling up to
    /// T2, time out on Timer F.
    fn client_non_invite_trying(&mut self, input: Input, fx: &mut Effects<'_>) -> ClientNonInvite {
        match input {
            Input::Timer(Timer::E) => {
                self.send(fx, self.request_bytes.clone());
                self.interval = self.interval.saturating_mul(2).min(fx.config.t2);
                self.timers.arm(Timer::E, fx.now + self.interval);
                ClientNonInvite::Trying
            }
            other => self.client_non_invite_common(other, fx, ClientNonInvite::Trying),
        }
    }

    /// RFC 3261 figure 6, "Proceeding": retransmit every T2 on Timer E, time out on Timer F.
    fn client_non_invite_proceeding(
        &mut self,
        input: Input,
        fx: &mut Effects<'_>,
    ) -> ClientNonInvite {
        match input {
            Input::Timer(Timer::E) => {
                self.send(fx, self.request_bytes.clone());
                self.interval = fx.config.t2;
                self.timers.arm(Timer::E, fx.now + self.interval);
                ClientNonInvite::Proceeding
            }
            other => self.client_non_invite_common(other, fx, ClientNonInvite::Proceeding),
        }
    }

    /// Inputs handled alike in Trying and Proceeding (RFC 3261 section 17.1.2.2).
    fn client_non_invite_common(
        &mut self,
        input: Input,
        fx: &mut Effects<'_>,
        current: ClientNonInvite,
    ) -> ClientNonInvite {
        let txn = self.id;
        match input {
            Input::Timer(Timer::F) => {
                self.event(fx, TxnEvent::Timeout { txn });
                ClientNonInvite::Terminated
            }
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn });
                ClientNonInvite::Terminated
            }
            Input::Response(response) if status_class(&response) == 1 => {
                self.event(fx, TxnEvent::Response { txn, response });
                ClientNonInvite::Proceeding
            }
            Input::Response(response) => {
                self.timers.cancel(Timer::E);
                self.timers.cancel(Timer::F);
                self.timers
                    .arm(Timer::K, fx.now + fx.config.timer_i_k(self.reliable()));
                self.event(fx, TxnEvent::Response { txn, response });
                ClientNonInvite::Completed
            }
            _ => current,
        }
    }

    /// RFC 3261 figure 6, "Completed": absorb response retransmissions until Timer K.
    fn client_non_invite_completed(
        &mut self,
        input: Input,
        _fx: &mut Effects<'_>,
    ) -> ClientNonInvite {
        match input {
            Input::Timer(Timer::K) => ClientNonInvite::Terminated,
            _ => ClientNonInvite::Completed,
        }
    }

    // ---- server INVITE -------------------------------------------------------------------

    /// RFC 3261 figure 7, "Proceeding": retransmitted INVITEs get the last provisional; the TU's
    /// 2xx leads to Accepted (RFC 6026), 3xx-6xx to Completed.
    fn server_invite_proceeding(&mut self, input: Input, fx: &mut Effects<'_>) -> ServerInvite {
        match input {
            Input::Request(request) if *request.method() == Method::Invite => {
                self.resend_last(fx);
                ServerInvite::Proceeding
            }
            Input::TuResponse(response) => {
                let bytes = response.to_bytes();
                self.send(fx, bytes.clone());
                match status_class(&response) {
                    1 => {
                        self.last_sent = Some(bytes);
                        ServerInvite::Proceeding
                    }
                    2 => {
                        self.last_sent = None;
                        self.timers.arm(Timer::L, fx.now + fx.config.timeout());
                        ServerInvite::Accepted
                    }
                    _ => {
                        self.last_sent = Some(bytes);
                        if !self.reliable() {
                            self.timers.arm(Timer::G, fx.now + fx.config.t1);
                        }
                        self.timers.arm(Timer::H, fx.now + fx.config.timeout());
                        ServerInvite::Completed
                    }
                }
            }
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn: self.id });
                ServerInvite::Terminated
            }
            _ => ServerInvite::Proceeding,
        }
    }

    /// RFC 3261 figure 7, "Completed": resend the final on retransmitted INVITEs and on Timer G
    /// (doubling up to T2), wait for the ACK until Timer H.
    fn server_invite_completed(&mut self, input: Input, fx: &mut Effects<'_>) -> ServerInvite {
        match input {
            Input::Request(request) if *request.method() == Method::Ack => {
                self.timers.cancel(Timer::G);
                self.timers.cancel(Timer::H);
                self.timers
                    .arm(Timer::I, fx.now + fx.config.timer_i_k(self.reliable()));
                ServerInvite::Confirmed
            }
            Input::Request(_) => {
                self.resend_last(fx);
                ServerInvite::Completed
            }
            Input::Timer(Timer::G) => {
                self.resend_last(fx);
                self.interval = self.interval.saturating_mul(2).min(fx.config.t2);
                self.timers.arm(Timer::G, fx.now + self.interval);
                ServerInvite::Completed
            }
            Input::Timer(Timer::H) => {
                // No ACK: RFC 3261 section 17.2.1 tells the TU (a transaction failure).
                self.event(fx, TxnEvent::Timeout { txn: self.id });
                ServerInvite::Terminated
            }
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn: self.id });
                ServerInvite::Terminated
            }
            _ => ServerInvite::Completed,
        }
    }

    /// RFC 3261 figure 7, "Confirmed": absorb ACK retransmissions until Timer I.
    fn server_invite_confirmed(&mut self, input: Input, _fx: &mut Effects<'_>) -> ServerInvite {
        match input {
            Input::Timer(Timer::I) => ServerInvite::Terminated,
            _ => ServerInvite::Confirmed,
        }
    }

    /// RFC 6026 figure 5, "Accepted": absorb retransmitted INVITEs (the TU retransmits the 2xx
    /// itself), pass 2xx from the TU and ACKs matching this branch, end on Timer L.
    fn server_invite_accepted(&mut self, input: Input, fx: &mut Effects<'_>) -> ServerInvite {
        match input {
            Input::TuResponse(response) => {
                self.send(fx, response.to_bytes());
                ServerInvite::Accepted
            }
            Input::Request(request) if *request.method() == Method::Ack => {
                self.event(
                    fx,
                    TxnEvent::Ack {
                        txn: Some(self.id),
                        request,
                    },
                );
                ServerInvite::Accepted
            }
            Input::Timer(Timer::L) => ServerInvite::Terminated,
            _ => ServerInvite::Accepted,
        }
    }

    // ---- server non-INVITE ---------------------------------------------------------------

    /// RFC 3261 figure 8, "Trying": retransmitted requests are absorbed until the TU answers.
    fn server_non_invite_trying(&mut self, input: Input, fx: &mut Effects<'_>) -> ServerNonInvite {
        match input {
            Input::TuResponse(response) => self.server_non_invite_send(response, fx),
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn: self.id });
                ServerNonInvite::Terminated
            }
            _ => ServerNonInvite::Trying,
        }
    }

    /// RFC 3261 figure 8, "Proceeding": retransmitted requests get the last provisional.
    fn server_non_invite_proceeding(
        &mut self,
        input: Input,
        fx: &mut Effects<'_>,
    ) -> ServerNonInvite {
        match input {
            Input::Request(_) => {
                self.resend_last(fx);
                ServerNonInvite::Proceeding
            }
            Input::TuResponse(response) => self.server_non_invite_send(response, fx),
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn: self.id });
                ServerNonInvite::Terminated
            }
            _ => ServerNonInvite::Proceeding,
        }
    }

    /// The TU's response in Trying/Proceeding (RFC 3261 section 17.2.2).
    fn server_non_invite_send(
        &mut self,
        response: SipResponse,
        fx: &mut Effects<'_>,
    ) -> ServerNonInvite {
        let bytes = response.to_bytes();
        // The copy kept is the exact size (a clone), the one sent may have spare capacity.
        self.last_sent = Some(bytes.clone());
        self.send(fx, bytes);
        if status_class(&response) == 1 {
            ServerNonInvite::Proceeding
        } else {
            self.request = None;
            self.timers
                .arm(Timer::J, fx.now + fx.config.timer_j(self.reliable()));
            ServerNonInvite::Completed
        }
    }

    /// RFC 3261 figure 8, "Completed": retransmitted requests get the final again until Timer J.
    fn server_non_invite_completed(
        &mut self,
        input: Input,
        fx: &mut Effects<'_>,
    ) -> ServerNonInvite {
        match input {
            Input::Request(_) => {
                self.resend_last(fx);
                ServerNonInvite::Completed
            }
            Input::Timer(Timer::J) => ServerNonInvite::Terminated,
            Input::TransportError => {
                self.event(fx, TxnEvent::TransportError { txn: self.id });
                ServerNonInvite::Terminated
            }
            _ => ServerNonInvite::Completed,
        }
    }
}
