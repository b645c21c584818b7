//! The XCAP client engine: requests queued per origin on one keep-alive connection each
//! (HTTP/1.1 without pipelining, RFC 9112 section 9.3), digest challenges answered from the
//! account's HA1, per-request deadlines, and responses bounded by the document size limit.
//!
//! A request sent on a connection that already served one and then closed before any byte
//! of the answer is sent once more on a new connection (RFC 9112 section 9.3.1: the server
//! may close an idle keep-alive connection at any moment). XCAP GET, PUT with a
//! precondition and DELETE are idempotent (RFC 4825 section 7), so this cannot apply a
//! change twice.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use engine::{Deadlines, Key, Output, Rng, Table};
use sip::auth::{ChallengeKind, DigestClient, DigestRequest, Ha1};

use crate::response::{Response, ResponseParser};
use crate::url::{DocumentUrl, Origin};
use crate::XcapError;

/// Limits and timers of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XcapClientConfig {
    /// How long one request may take, from submission to the last byte of its answer.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_document_size: usize,
    /// An idle keep-alive connection is closed after this long.
    pub idle_timeout: Duration,
    /// Most requests waiting or in flight per origin.
    pub max_queued_per_origin: usize,
}

impl Default for XcapClientConfig {
    fn default() -> Self {
        XcapClientConfig {
            timeout: Duration::from_secs(10),
            max_document_size: 1024 * 1024,
            idle_timeout: Duration::from_secs(30),
            max_queued_per_origin: 1024,
        }
    }
}

/// One request's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(Key);

/// One connection's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(Key);

impl ConnId {
    /// A number for logs and socket tables.
    pub fn to_u64(self) -> u64 {
        self.0.to_u64()
    }
}

/// The XCAP operations (RFC 4825 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Fetch.
    Get,
    /// Create or replace.
    Put,
    /// Delete.
    Delete,
}

impl Method {
    /// The method token.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// Who the request is made for: digest credentials from the account's HA1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The digest username.
    pub username: String,
    /// `H(username:realm:password)`.
    pub ha1: Ha1,
}

/// A conditional request (RFC 9110 section 13.1; RFC 4825 section 7.11).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// Unconditional.
    #[default]
    None,
    /// `If-Match: <etag>`: only if the document is still the one read.
    IfMatch(String),
    /// `If-None-Match: *`: only if no document exists yet.
    IfNoneMatchAny,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XcapRequest {
    /// GET, PUT or DELETE.
    pub method: Method,
    /// The document.
    pub url: DocumentUrl,
    /// The body's MIME type (PUT).
    pub content_type: Option<String>,
    /// The body (PUT).
    pub body: Vec<u8>,
    /// The precondition.
    pub precondition: Precondition,
    /// Digest credentials, used once the server challenges.
    pub credentials: Option<Credentials>,
}

/// A response to hand to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XcapResponse {
    /// The status code (2xx, or the server's refusal: 404, 409, 412, ...).
    pub status: u16,
    /// `ETag`, if any.
    pub etag: Option<String>,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Socket work for the reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XcapTransmit {
    /// Open a TCP (TLS when `origin.tls`) connection to the origin; the reactor answers with
    /// [`XcapClient::handle_connected`] or [`XcapClient::handle_closed`].
    Connect {
        /// The connection.
        conn: ConnId,
        /// Where to.
        origin: Origin,
    },
    /// Bytes to write.
    Data {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close the connection (no [`XcapClient::handle_closed`] needed).
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// What the client tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XcapEvent {
    /// A request ended.
    Done {
        /// Which.
        id: RequestId,
        /// Its response, whatever the status, or why there is none.
        result: Result<XcapResponse, XcapError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Timer {
    Request(RequestId),
    Idle(ConnId),
}

#[derive(Debug)]
struct Conn {
    origin: Origin,
    connecting: bool,
    parser: ResponseParser,
    queue: VecDeque<RequestId>,
    in_flight: Option<RequestId>,
    /// Bytes of the in-flight request's answer arrived.
    answered_bytes: bool,
    /// Responses this connection carried.
    served: u32,
}

#[derive(Debug)]
struct Pending {
    request: XcapRequest,
    conn: ConnId,
    /// The connection-reuse retry was used.
    resent: bool,
    digest: Option<DigestClient>,
}

/// Digest state kept per origin and user, so a nonce answered once authorises the next
/// requests without a new challenge (RFC 7616 section 3.4, `nc` counting up).
struct CachedDigest {
    ha1: Ha1,
    client: DigestClient,
}

/// Origins and users whose digest state is kept; beyond, the cache starts over.
const MAX_DIGESTS: usize = 4096;

/// The engine.
pub struct XcapClient {
    config: XcapClientConfig,
    rng: Rng,
    conns: Table<Conn>,
    by_origin: HashMap<Origin, ConnId>,
    requests: Table<Pending>,
    timers: Deadlines<Timer>,
    digests: HashMap<(Origin, String), CachedDigest>,
    out: VecDeque<Output<XcapTransmit, XcapEvent>>,
}

impl std::fmt::Debug for XcapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XcapClient")
            .field("conns", &self.conns.len())
            .field("requests", &self.requests.len())
            .finish()
    }
}

impl XcapClient {
    /// A client with `rng` for digest client nonces.
    pub fn new(config: XcapClientConfig, rng: Rng) -> XcapClient {
        XcapClient {
            config,
            rng,
            conns: Table::new(),
            by_origin: HashMap::new(),
            requests: Table::new(),
            timers: Deadlines::new(),
            digests: HashMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Requests not finished.
    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    /// Connections open or opening.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Queues a request; its [`XcapEvent::Done`] follows (never before this returns).
    pub fn submit(&mut self, now: Instant, request: XcapRequest) -> Result<RequestId, XcapError> {
        let origin = request.url.origin.clone();
        if let Some(c) = self
            .by_origin
            .get(&origin)
            .and_then(|c| self.conns.get(c.0))
        {
            if c.queue.len() + usize::from(c.in_flight.is_some())
                >= self.config.max_queued_per_origin
            {
                return Err(XcapError::QueueFull);
            }
        }
        let conn = self.conn_for(now, &origin);
        let key = self.requests.insert(Pending {
            request,
            conn,
            resent: false,
            digest: None,
        });
        let id = RequestId(key);
        self.timers
            .set(Timer::Request(id), Some(now + self.config.timeout));
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.queue.push_back(id);
        }
        self.pump(now, conn);
        Ok(id)
    }

    /// Cancels a request: no event follows. A request in flight closes its connection (the
    /// others on it move to a new one).
    pub fn cancel(&mut self, now: Instant, id: RequestId) {
        let Some(p) = self.requests.remove(id.0) else {
            return;
        };
        self.timers.cancel(Timer::Request(id));
        if let Some(c) = self.conns.get_mut(p.conn.0) {
            c.queue.retain(|q| *q != id);
            if c.in_flight == Some(id) {
                c.in_flight = None;
                self.close_and_requeue(now, p.conn);
            }
        }
    }

    /// The connection is up.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.connecting = false;
            self.pump(now, conn);
        }
    }

    /// Bytes arrived on a connection.
    pub fn handle_data(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let mut input = bytes;
        loop {
            let Some(c) = self.conns.get_mut(conn.0) else {
                return;
            };
            if !input.is_empty() {
                c.answered_bytes = true;
            }
            let parsed = c.parser.push(input);
            input = &[];
            match parsed {
                Ok(None) => return,
                Ok(Some(response)) => {
                    c.served += 1;
                    c.answered_bytes = false;
                    let keep_alive = response.keep_alive;
                    let id = c.in_flight.take();
                    if id.is_none() {
                        // An answer nobody asked for: the stream is out of step.
                        log::info!("xcap: unsolicited response from {}", c.origin);
                    }
                    if !keep_alive || id.is_none() {
                        // Closed first, so a retried request (a challenge answered) goes
                        // on a new connection.
                        self.close_and_requeue(now, conn);
                    }
                    let Some(id) = id else { return };
                    self.handle_response(now, id, response);
                    if !keep_alive {
                        return;
                    }
                    self.pump(now, conn);
                }
                Err(e) => {
                    let id = c.in_flight.take();
                    log::info!("xcap: bad response from {}: {e}", c.origin);
                    if let Some(id) = id {
                        self.finish(id, Err(XcapError::Response(e)));
                    }
                    self.close_and_requeue(now, conn);
                    return;
                }
            }
        }
    }

    /// The connection closed, or could not be opened.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        let Some(mut c) = self.remove_conn(conn) else {
            return;
        };
        if c.connecting {
            log::info!("xcap: cannot connect to {}", c.origin);
            for id in c.queue.drain(..) {
                self.finish(id, Err(XcapError::ConnectFailed));
            }
            return;
        }
        if let Some(id) = c.in_flight.take() {
            match c.parser.finish() {
                Ok(Some(response)) => self.handle_response(now, id, response),
                Ok(None) | Err(_) => {
                    let may_resend = c.served > 0
                        && !c.answered_bytes
                        && self.requests.get(id.0).is_some_and(|p| !p.resent);
                    if may_resend {
                        if let Some(p) = self.requests.get_mut(id.0) {
                            p.resent = true;
                        }
                        c.queue.push_front(id);
                    } else {
                        self.finish(id, Err(XcapError::ConnectionClosed));
                    }
                }
            }
        }
        self.requeue(now, &c.origin, c.queue);
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Request(id) => {
                    let Some(p) = self.requests.get(id.0) else {
                        continue;
                    };
                    let conn = p.conn;
                    let in_flight = self
                        .conns
                        .get(conn.0)
                        .is_some_and(|c| c.in_flight == Some(id));
                    if let Some(c) = self.conns.get_mut(conn.0) {
                        c.queue.retain(|q| *q != id);
                        if in_flight {
                            c.in_flight = None;
                        }
                    }
                    self.finish(id, Err(XcapError::Timeout));
                    if in_flight {
                        self.close_and_requeue(now, conn);
                    }
                }
                Timer::Idle(conn) => {
                    let idle = self
                        .conns
                        .get(conn.0)
                        .is_some_and(|c| c.in_flight.is_none() && c.queue.is_empty());
                    if idle {
                        self.close(conn);
                    }
                }
            }
        }
    }

    /// The next transmit or event, or the deadline.
    pub fn poll_output(&mut self) -> Output<XcapTransmit, XcapEvent> {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        Output::Timeout(self.timers.earliest())
    }

    fn conn_for(&mut self, now: Instant, origin: &Origin) -> ConnId {
        if let Some(&c) = self.by_origin.get(origin) {
            if self.conns.contains(c.0) {
                return c;
            }
        }
        let key = self.conns.insert(Conn {
            origin: origin.clone(),
            connecting: true,
            parser: ResponseParser::new(self.config.max_document_size),
            queue: VecDeque::new(),
            in_flight: None,
            answered_bytes: false,
            served: 0,
        });
        let conn = ConnId(key);
        self.by_origin.insert(origin.clone(), conn);
        // The connect attempt is bounded by the requests' own deadlines.
        let _ = now;
        self.out.push_back(Output::Transmit(XcapTransmit::Connect {
            conn,
            origin: origin.clone(),
        }));
        conn
    }

    /// Sends the next queued request if the connection is free.
    fn pump(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn.0) else {
            return;
        };
        if c.connecting || c.in_flight.is_some() {
            return;
        }
        let Some(id) = c.queue.pop_front() else {
            self.timers
                .set(Timer::Idle(conn), Some(now + self.config.idle_timeout));
            return;
        };
        self.timers.cancel(Timer::Idle(conn));
        c.in_flight = Some(id);
        c.answered_bytes = false;
        c.parser.expect_no_body(false);
        let origin = c.origin.clone();
        let bytes = match self.encode(id, &origin) {
            Ok(b) => b,
            Err(e) => {
                if let Some(c) = self.conns.get_mut(conn.0) {
                    c.in_flight = None;
                }
                self.finish(id, Err(e));
                self.pump(now, conn);
                return;
            }
        };
        self.out
            .push_back(Output::Transmit(XcapTransmit::Data { conn, bytes }));
    }

    /// The request's bytes, with credentials when its digest state has a challenge.
    fn encode(&mut self, id: RequestId, origin: &Origin) -> Result<Vec<u8>, XcapError> {
        let cnonce = self.rng.token(16);
        let Some(p) = self.requests.get_mut(id.0) else {
            return Err(XcapError::ConnectionClosed);
        };
        let r = &p.request;
        if p.digest.is_none() {
            if let Some(creds) = &r.credentials {
                let cached = self
                    .digests
                    .get(&(origin.clone(), creds.username.clone()))
                    .filter(|d| d.ha1 == creds.ha1)
                    .map(|d| d.client.clone());
                p.digest = Some(
                    cached.unwrap_or_else(|| DigestClient::new(&creds.username, creds.ha1.clone())),
                );
            }
        }
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sylk-gateway\r\n",
            r.method.as_str(),
            r.url.path,
            origin.host_field()
        );
        if let Some(d) = p.digest.as_mut() {
            let auth = d
                .authorize(&DigestRequest {
                    method: r.method.as_str(),
                    uri: &r.url.path,
                    body: &r.body,
                    cnonce: &cnonce,
                })
                .map_err(XcapError::Auth)?;
            for h in auth {
                head.push_str(&format!("{}: {}\r\n", h.name, h.value));
            }
        }
        match &r.precondition {
            Precondition::None => {}
            Precondition::IfMatch(etag) => head.push_str(&format!("If-Match: {etag}\r\n")),
            Precondition::IfNoneMatchAny => head.push_str("If-None-Match: *\r\n"),
        }
        if let Some(ct) = &r.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if r.method == Method::Put || !r.body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&r.body);
        Ok(bytes)
    }

    /// A complete response to request `id`: a challenge is answered once, the rest ends it.
    fn handle_response(&mut self, now: Instant, id: RequestId, response: Response) {
        let Some(p) = self.requests.get_mut(id.0) else {
            return;
        };
        if response.status == 401 {
            if let Some(d) = p.digest.as_mut() {
                let values: Vec<&str> = response.headers_named("WWW-Authenticate").collect();
                match d.handle_challenge_values(ChallengeKind::Www, &values) {
                    Ok(()) => {
                        let origin = p.request.url.origin.clone();
                        self.requeue_front(now, &origin, id);
                        return;
                    }
                    Err(e) => {
                        log::info!(
                            "xcap: {} refused our credentials: {e}",
                            p.request.url.origin
                        );
                        self.finish(id, Err(XcapError::Auth(e)));
                        return;
                    }
                }
            }
        } else if let (Some(d), Some(creds)) = (p.digest.as_mut(), p.request.credentials.as_ref()) {
            d.handle_success();
            if self.digests.len() >= MAX_DIGESTS {
                self.digests.clear();
            }
            self.digests.insert(
                (p.request.url.origin.clone(), creds.username.clone()),
                CachedDigest {
                    ha1: creds.ha1.clone(),
                    client: d.clone(),
                },
            );
        }
        log::debug!(
            "xcap: {} {} -> {}",
            p.request.method.as_str(),
            p.request.url.path,
            response.status
        );
        let r = XcapResponse {
            status: response.status,
            etag: response.header("ETag").map(str::to_owned),
            content_type: response.header("Content-Type").map(str::to_owned),
            body: response.body,
        };
        self.finish(id, Ok(r));
    }

    fn finish(&mut self, id: RequestId, result: Result<XcapResponse, XcapError>) {
        if self.requests.remove(id.0).is_none() {
            return;
        }
        self.timers.cancel(Timer::Request(id));
        self.out
            .push_back(Output::Event(XcapEvent::Done { id, result }));
    }

    /// Puts `id` first in its origin's queue (on a new connection if the old one is gone).
    fn requeue_front(&mut self, now: Instant, origin: &Origin, id: RequestId) {
        let conn = self.conn_for(now, origin);
        if let Some(p) = self.requests.get_mut(id.0) {
            p.conn = conn;
        }
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.queue.push_front(id);
        }
        self.pump(now, conn);
    }

    /// Moves requests of a closed connection to a new one.
    fn requeue(&mut self, now: Instant, origin: &Origin, queue: VecDeque<RequestId>) {
        let queue: VecDeque<RequestId> = queue
            .into_iter()
            .filter(|id| self.requests.contains(id.0))
            .collect();
        if queue.is_empty() {
            return;
        }
        let conn = self.conn_for(now, origin);
        for id in &queue {
            if let Some(p) = self.requests.get_mut(id.0) {
                p.conn = conn;
            }
        }
        if let Some(c) = self.conns.get_mut(conn.0) {
            c.queue.extend(queue);
        }
        self.pump(now, conn);
    }

    fn close_and_requeue(&mut self, now: Instant, conn: ConnId) {
        let Some(mut c) = self.remove_conn(conn) else {
            return;
        };
        self.out
            .push_back(Output::Transmit(XcapTransmit::Close { conn }));
        if let Some(id) = c.in_flight.take() {
            c.queue.push_front(id);
        }
        self.requeue(now, &c.origin, c.queue);
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(mut c) = self.remove_conn(conn) {
            self.out
                .push_back(Output::Transmit(XcapTransmit::Close { conn }));
            let ids: Vec<RequestId> = c.in_flight.take().into_iter().chain(c.queue).collect();
            for id in ids {
                self.finish(id, Err(XcapError::ConnectionClosed));
            }
        }
    }

    fn remove_conn(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(conn.0)?;
        if self.by_origin.get(&c.origin) == Some(&conn) {
            self.by_origin.remove(&c.origin);
        }
        self.timers.cancel(Timer::Idle(conn));
        Some(c)
    }
}
