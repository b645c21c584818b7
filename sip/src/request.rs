//! One non-INVITE client request (RFC 3261 section 8.1 over the section 17.1.2 transaction)
//! as a sans-IO state machine: MESSAGE, PUBLISH and SUBSCRIBE, out of any dialog
//! (located by RFC 3263 or sent to the outbound proxy, 401/407 answered from the HA1, failed
//! over on timeout, transport error or 503) or inside a call's dialog (MESSAGE, INFO, REFER,
//! UPDATE: one hop, the dialog's CSeq, no retry).
//!
//! Like a [`Registration`](super::registration::Registration) it decides *what* to do
//! ([`RequestAction`]); the stack picks the transport, adds the Via, runs the transaction and
//! feeds results back. Exactly one [`RequestOutcome`] is reported per request.

use std::collections::VecDeque;
use std::fmt;

use super::auth::{AuthError, DigestClient, DigestRequest, Ha1};
use super::call::Hop;
use super::dialog::OutgoingRequest;
use super::locate::{LocateError, SipScheme, SipUriParts, Target, TargetList};
use super::msg::{Method, MsgError, NameAddr, Param, SipResponse, Uri};
use super::stack::SendError;
use super::transport::Transport;
use super::txn::TxnId;

/// RFC 3261 section 18.1.1: a request larger than this (the path MTU being unknown) goes
/// over a congestion-controlled transport.
pub const MAX_UDP_REQUEST: usize = 1300;

/// Room for what the stack adds to a request after [`ClientRequest`] built it: the Via (with
/// branch and `rport`), a Contact, `Content-Length`, and the credentials of a digest retry.
const ADDED_BY_STACK: usize = 400;

/// Identifies a client request for its lifetime; never confused with a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId {
    pub(crate) key: usize,
    pub(crate) serial: u64,
}

/// How a request ended. [`RequestOutcome::code`] is the SIP status that stands for it (the
/// final response, 408 for a timeout, 503 when nothing could be reached) and `Display`
/// renders `"<code> <phrase>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestOutcome {
    /// A final response (after any digest retry): 2xx is success.
    Response(Box<SipResponse>),
    /// A 401/407 that cannot be answered (wrong credentials, unsupported algorithm, no HA1
    /// inside a dialog).
    Unauthorized {
        /// 401 or 407.
        code: u16,
        /// Its reason phrase.
        phrase: String,
        /// Why it was not answered.
        error: AuthError,
    },
    /// No final response (Timer F, RFC 3261 section 17.1.2.2): 408.
    Timeout,
    /// The transport failed towards every target: 503.
    TransportError,
    /// The target's domain could not be located (RFC 3263): 503.
    Dns(LocateError),
    /// The lookup gave no target to try: 503.
    NoTarget,
    /// The request could not be handed to any target: 503.
    NotSent(SendError),
}

impl RequestOutcome {
    /// The SIP status that stands for the outcome.
    pub fn code(&self) -> u16 {
        match self {
            RequestOutcome::Response(r) => r.status(),
            RequestOutcome::Unauthorized { code, .. } => *code,
            RequestOutcome::Timeout => 408,
            _ => 503,
        }
    }

    /// Whether the request succeeded (a 2xx).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code())
    }

    /// The reason phrase: the received one for a response, RFC 3261's otherwise.
    pub fn phrase(&self) -> &str {
        match self {
            RequestOutcome::Response(r) => r.reason(),
            RequestOutcome::Unauthorized { phrase, .. } => phrase,
            RequestOutcome::Timeout => "Request Timeout",
            _ => "Service Unavailable",
        }
    }

    /// The final response, when one arrived.
    pub fn response(&self) -> Option<&SipResponse> {
        match self {
            RequestOutcome::Response(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for RequestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.phrase())?;
        match self {
            RequestOutcome::Dns(e) => write!(f, " (DNS lookup error: {e})"),
            RequestOutcome::NotSent(e) => write!(f, " ({e})"),
            RequestOutcome::Unauthorized { error, .. } => write!(f, " ({error})"),
            _ => Ok(()),
        }
    }
}

/// What an out-of-dialog request carries (RFC 3261 section 8.1.1).
#[derive(Debug, Clone)]
pub struct RequestConfig {
    /// Method (MESSAGE, PUBLISH, ...).
    pub method: Method,
    /// Sender's user part.
    pub user: String,
    /// Sender's domain (digest realm default).
    pub domain: String,
    /// Sender's display name (in From).
    pub display_name: Option<String>,
    /// User-Agent.
    pub user_agent: String,
    /// Target `user@domain[:port]`: the Request-URI and To.
    pub target: String,
    /// Call-ID (fresh per request, RFC 3428 section 7: MESSAGEs outside dialogs are not
    /// related to one another).
    pub call_id: String,
    /// From tag.
    pub from_tag: String,
    /// Header fields after the mandatory ones, in order (e.g. `Expires`, `Event`).
    pub headers: Vec<(String, String)>,
    /// Content-Type and body.
    pub body: Option<(String, Vec<u8>)>,
}

/// Why a request could not be started (the gateway's input, never the network).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The target is not a valid `user@domain`.
    InvalidTarget(String),
    /// The call has no confirmed dialog (or is gone).
    NoDialog,
    /// The request could not be built.
    Message(MsgError),
    /// Too many requests in flight on this stack.
    TooManyRequests,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidTarget(t) => write!(f, "invalid target {t:?}"),
            RequestError::NoDialog => f.write_str("no established dialog"),
            RequestError::Message(e) => write!(f, "cannot build the request: {e}"),
            RequestError::TooManyRequests => f.write_str("too many requests in flight"),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<MsgError> for RequestError {
    fn from(e: MsgError) -> Self {
        RequestError::Message(e)
    }
}

/// What a request asks its stack to do.
#[derive(Debug, Clone)]
pub enum RequestAction {
    /// Locate the target's domain (or the outbound proxy, RFC 3263); answer with
    /// [`ClientRequest::handle_located`].
    Locate(SipUriParts),
    /// Add a Via with a fresh branch (and our Contact when `contact_user` is set), send in
    /// a new client transaction and report with [`ClientRequest::handle_sent`].
    Send {
        /// The request without Via (boxed: it dwarfs the other actions).
        request: Box<OutgoingRequest>,
        /// Where to.
        hop: Hop,
        /// A copy after a digest challenge inside a dialog: it takes the dialog's next CSeq
        /// (RFC 3261 section 12.2.1.1), set with [`ClientRequest::renumber`].
        renumber: bool,
        /// Contact user part to advertise (a SUBSCRIBE's, RFC 6665 section 4.1.2.1).
        contact_user: Option<Box<str>>,
    },
    /// Tell the gateway; nothing more follows and the request is forgotten.
    Finished(RequestOutcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Locating,
    /// Handed to the stack, no transaction yet.
    Sending,
    Waiting(TxnId),
    Done,
}

/// One non-INVITE client request.
#[derive(Debug)]
pub struct ClientRequest {
    method: Method,
    uri: Uri,
    /// Every header but Via and CSeq, in order.
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
    cseq: u32,
    /// Answers 401/407 (outside dialogs always; inside one, the call's account's).
    digest: Option<DigestClient>,
    /// Inside a dialog: copies after the first take the dialog's next CSeq.
    in_dialog: bool,
    cnonce_base: String,
    targets: TargetList,
    /// Inside a dialog: the one hop; no fail-over.
    fixed_hop: Option<Hop>,
    /// Where the last copy went (a digest retry goes there too).
    last_hop: Option<Hop>,
    /// Our Contact's user part, for requests that carry one (SUBSCRIBE).
    contact_user: Option<Box<str>>,
    /// TCP is enabled: a request too large for UDP goes over it (RFC 3261 section 18.1.1).
    tcp_for_large: bool,
    /// A UDP target this request was moved to TCP from for its size: tried over UDP after
    /// all if the connection fails (RFC 3261 section 18.1.1), not after a response or timeout.
    udp_fallback: Option<Target>,
    phase: Phase,
    actions: VecDeque<RequestAction>,
}

impl ClientRequest {
    /// A request outside any dialog; it starts by asking to locate `config.target`'s domain.
    pub fn new(config: RequestConfig, ha1: Ha1) -> Result<ClientRequest, RequestError> {
        let invalid = || RequestError::InvalidTarget(config.target.clone());
        let target = config.target.trim();
        if !target.contains('@') || target.contains(['<', '>', ' ', ';', '?']) {
            return Err(invalid());
        }
        let uri = Uri::parse(&format!("sip:{target}")).map_err(|_| invalid())?;
        let host = uri.host().ok_or_else(invalid)?.to_string();
        let parts = SipUriParts {
            scheme: SipScheme::Sip,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port(),
            transport: None,
        };
        let mut from = NameAddr::new(Uri::parse(&format!(
            "sip:{}@{}",
            config.user, config.domain
        ))?);
        from.display_name = config.display_name.clone();
        let from = from.with_param(Param::raw("tag", Some(&config.from_tag)));
        let to = NameAddr::new(uri.clone());
        let mut headers = vec![
            ("Max-Forwards".to_owned(), "70".to_owned()),
            ("From".to_owned(), from.to_string()),
            ("To".to_owned(), to.to_string()),
            ("Call-ID".to_owned(), config.call_id.clone()),
            ("User-Agent".to_owned(), config.user_agent.clone()),
        ];
        headers.extend(config.headers.iter().cloned());
        let mut actions = VecDeque::new();
        actions.push_back(RequestAction::Locate(parts));
        Ok(ClientRequest {
            method: config.method,
            uri,
            headers,
            body: config.body,
            cseq: 0,
            digest: Some(DigestClient::new(&config.user, ha1)),
            in_dialog: false,
            cnonce_base: config.from_tag,
            targets: TargetList::default(),
            fixed_hop: None,
            last_hop: None,
            contact_user: None,
            tcp_for_large: false,
            udp_fallback: None,
            phase: Phase::Locating,
            actions,
        })
    }

    /// A request inside a dialog, as the dialog built it (route set, tags, its CSeq), sent to
    /// `hop` at once; `digest` (the call's account's) answers 401/407 (RFC 3261 section 22).
    pub fn in_dialog(
        request: OutgoingRequest,
        hop: Hop,
        digest: Option<DigestClient>,
    ) -> ClientRequest {
        let cnonce_base = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Call-ID"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        ClientRequest::in_dialog_with(request, hop, digest, None, cnonce_base)
    }

    /// [`ClientRequest::in_dialog`] for a usage that owns its credentials and Contact (a
    /// subscription's refresh, RFC 6665 section 4.1.2.2): `digest` answers 401/407 and puts
    /// credentials for the realms that challenged earlier requests on this one;
    /// `contact_user` makes the stack add our Contact (a target refresh); `cnonce_base` is
    /// the random base of digest client nonces (the CSeq is appended, RFC 7616 section 3.4).
    pub fn in_dialog_with(
        request: OutgoingRequest,
        hop: Hop,
        digest: Option<DigestClient>,
        contact_user: Option<String>,
        cnonce_base: String,
    ) -> ClientRequest {
        let OutgoingRequest {
            method,
            uri,
            headers,
            body,
        } = request;
        let cseq: u32 = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("CSeq"))
            .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(1);
        let headers = headers
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("CSeq"))
            .collect();
        let mut r = ClientRequest {
            method,
            uri,
            headers,
            body,
            cseq: cseq.wrapping_sub(1),
            digest,
            in_dialog: true,
            cnonce_base,
            targets: TargetList::default(),
            fixed_hop: Some(hop.clone()),
            last_hop: None,
            contact_user: contact_user.map(String::into_boxed_str),
            tcp_for_large: false,
            udp_fallback: None,
            phase: Phase::Sending,
            actions: VecDeque::new(),
        };
        r.send(hop);
        r
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The dialog gave the copy just sent (a [`RequestAction::Send`] with `renumber`) its
    /// next CSeq `seq`: the request goes out with it.
    pub fn renumber(&mut self, request: &mut OutgoingRequest, seq: u32) {
        self.cseq = seq;
        for (name, value) in request.headers.iter_mut() {
            if name.eq_ignore_ascii_case("CSeq") {
                *value = format!("{seq} {}", self.method);
            }
        }
    }

    /// Advertises our Contact with this user part (a SUBSCRIBE, RFC 6665 section 4.1.2.1).
    pub fn with_contact(mut self, contact_user: String) -> ClientRequest {
        self.contact_user = Some(contact_user.into_boxed_str());
        self
    }

    /// TCP is enabled: a located UDP target gets this request over TCP when it is larger
    /// than [`MAX_UDP_REQUEST`] (RFC 3261 section 18.1.1). Inside a dialog the hop is fixed.
    pub fn with_tcp_for_large(mut self, enabled: bool) -> ClientRequest {
        self.tcp_for_large = enabled;
        self
    }

    /// The request's size on the wire, from above: what it carries plus
    /// [`ADDED_BY_STACK`].
    fn wire_size_bound(&self) -> usize {
        let start_line = self.method.as_str().len() + self.uri.to_string().len() + 11;
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        let body = self
            .body
            .as_ref()
            .map_or(0, |(ct, b)| "Content-Type: \r\n".len() + ct.len() + b.len());
        start_line + headers + body + ADDED_BY_STACK
    }

    /// The CSeq number of the last copy sent (a dialog this request creates starts there).
    pub fn cseq(&self) -> u32 {
        self.cseq
    }

    /// Where the last copy went: requests inside the dialog it creates fall back to it.
    pub fn last_hop(&self) -> Option<&Hop> {
        self.last_hop.as_ref()
    }

    /// The digest state, for the next request of the same usage (credentials for the realms
    /// that challenged this one, nonce counts going on).
    pub fn take_digest(&mut self) -> Option<DigestClient> {
        self.digest.take()
    }

    /// The next thing for the stack to do.
    pub fn poll_action(&mut self) -> Option<RequestAction> {
        self.actions.pop_front()
    }

    /// The lookup finished.
    pub fn handle_located(&mut self, result: Result<TargetList, LocateError>) {
        if self.phase != Phase::Locating {
            return;
        }
        match result {
            Ok(targets) => {
                self.targets = targets;
                self.next_target(RequestOutcome::NoTarget);
            }
            Err(e) => self.finish(RequestOutcome::Dns(e)),
        }
    }

    /// The stack sent (or failed to send) a [`RequestAction::Send`].
    pub fn handle_sent(&mut self, result: Result<TxnId, SendError>) {
        if self.phase != Phase::Sending {
            return;
        }
        match result {
            Ok(txn) => self.phase = Phase::Waiting(txn),
            Err(e) => self.fail_over(RequestOutcome::NotSent(e)),
        }
    }

    /// A response on the request's transaction.
    pub fn handle_response(&mut self, txn: TxnId, response: &SipResponse) {
        if self.phase != Phase::Waiting(txn) {
            return;
        }
        let status = response.status();
        match status {
            100..=199 => {}
            401 | 407 => {
                let answered = match self.digest.as_mut() {
                    Some(d) => d.handle_challenge(response),
                    None => Err(AuthError::Rejected),
                };
                match answered {
                    Ok(()) => match self.current_hop() {
                        Some(hop) => self.send(hop),
                        None => self.finish(RequestOutcome::NoTarget),
                    },
                    Err(error) => self.finish(RequestOutcome::Unauthorized {
                        code: status,
                        phrase: response.reason().to_owned(),
                        error,
                    }),
                }
            }
            // RFC 3263 section 4.3: a 503 moves on to the next server.
            503 if self.fixed_hop.is_none() && !self.targets.is_empty() => {
                self.next_target(RequestOutcome::NoTarget)
            }
            _ => self.finish(RequestOutcome::Response(Box::new(response.clone()))),
        }
    }

    /// The transaction timed out (Timer F) or its transport failed.
    pub fn handle_failure(&mut self, txn: TxnId, transport_error: bool) {
        if self.phase != Phase::Waiting(txn) {
            return;
        }
        let outcome = if transport_error {
            RequestOutcome::TransportError
        } else {
            RequestOutcome::Timeout
        };
        self.fail_over(outcome);
    }

    /// The transaction it waits for, if any.
    pub fn txn(&self) -> Option<TxnId> {
        match self.phase {
            Phase::Waiting(t) => Some(t),
            _ => None,
        }
    }

    fn current_hop(&self) -> Option<Hop> {
        self.fixed_hop.clone().or_else(|| self.last_hop.clone())
    }

    /// Tries the next located target, or ends with `if_none` (RFC 3263 section 4.3).
    fn next_target(&mut self, if_none: RequestOutcome) {
        self.udp_fallback = None;
        match self.targets.next_target() {
            Some(t)
                if t.transport == Transport::Udp
                    && self.tcp_for_large
                    && self.wire_size_bound() > MAX_UDP_REQUEST =>
            {
                // RFC 3261 section 18.1.1: too large for UDP; the same server over TCP.
                let tcp = Target {
                    transport: Transport::Tcp,
                    ..t.clone()
                };
                self.udp_fallback = Some(t);
                self.send(Hop::Located(tcp));
            }
            Some(t) => self.send(Hop::Located(t)),
            None => self.finish(if_none),
        }
    }

    /// After a timeout, transport error or unsendable request: the next target when there
    /// is one (outside dialogs), else `outcome`.
    fn fail_over(&mut self, outcome: RequestOutcome) {
        // RFC 3261 section 18.1.1: a connection refused for a request moved to TCP for its
        // size is retried over UDP.
        let refused = matches!(
            outcome,
            RequestOutcome::TransportError | RequestOutcome::NotSent(_)
        );
        if let Some(udp) = self.udp_fallback.take().filter(|_| refused) {
            self.send(Hop::Located(udp));
            return;
        }
        if self.fixed_hop.is_none() && !self.targets.is_empty() {
            self.next_target(outcome);
        } else {
            self.finish(outcome);
        }
    }

    /// Sends the request (again: next CSeq, credentials for the realms that challenged).
    fn send(&mut self, hop: Hop) {
        let renumber = self.in_dialog && self.last_hop.is_some();
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let mut headers = self.headers.clone();
        headers.push(("CSeq".to_owned(), format!("{} {}", self.cseq, self.method)));
        if let Some(digest) = self.digest.as_mut() {
            let uri = self.uri.to_string();
            let body = self.body.as_ref().map_or(&[][..], |(_, b)| b.as_slice());
            // Unique per use: the From tag is, and the CSeq rises.
            let cnonce = format!("{}{}", self.cnonce_base, self.cseq);
            let request = DigestRequest {
                method: self.method.as_str(),
                uri: &uri,
                body,
                cnonce: &cnonce,
            };
            // Credentials only for realms that challenged us; an error here was already
            // reported when the challenge arrived.
            if let Ok(auth) = digest.authorize(&request) {
                for h in auth {
                    headers.push((h.name.to_owned(), h.value));
                }
            }
        }
        self.last_hop = Some(hop.clone());
        self.phase = Phase::Sending;
        self.actions.push_back(RequestAction::Send {
            request: Box::new(OutgoingRequest {
                method: self.method.clone(),
                uri: self.uri.clone(),
                headers,
                body: self.body.clone(),
            }),
            hop,
            renumber,
            contact_user: self.contact_user.clone(),
        });
    }

    fn finish(&mut self, outcome: RequestOutcome) {
        if self.phase == Phase::Done {
            return;
        }
        if let Some(d) = self.digest.as_mut() {
            if !matches!(outcome, RequestOutcome::Unauthorized { .. }) {
                d.handle_success();
            }
        }
        self.phase = Phase::Done;
        self.actions.push_back(RequestAction::Finished(outcome));
    }
}
