//! One account's registration binding (RFC 3261 section 10) as a sans-IO state machine.
//!
//! It decides *what* to do (locate the registrar, send a REGISTER with some expiry, report a
//! state, retry later, finish); the SIP stack decides *how* (transactions, transport, Via)
//! and feeds results back. One Call-ID and a rising CSeq serve every REGISTER of the binding
//! (RFC 3261 section 10.2.4), and the Contact user is a token unique to this registration so
//! incoming requests map back to the right account on the right connection.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::auth::{AuthError, DigestClient, DigestRequest, Ha1};
use super::locate::{LocateError, SipScheme, SipUriParts, Target, TargetList};
use super::msg::{Method, MsgError, NameAddr, RequestBuilder, SipRequest, SipResponse, Uri, Via};

/// First delay before retrying a registration that failed after it had succeeded.
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Longest delay between retries.
const MAX_RETRY: Duration = Duration::from_secs(600);
/// How often a 423 may raise the requested expiry before giving up (no loops).
const MAX_INTERVAL_TOO_BRIEF: u8 = 2;

/// Identifies a registration in its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegId(pub(crate) usize);

/// Where a registration is, as reported to the account's connection (on change only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationStatus {
    /// A REGISTER is on its way.
    Registering,
    /// The registrar accepted the binding.
    Registered,
    /// It failed, for this reason.
    Failed(RegistrationFailure),
}

/// Where a registration is, for the metrics endpoint's gauge (read at scrape time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegState {
    /// Created or locating the registrar, or a REGISTER is in flight.
    Registering,
    /// The registrar holds the binding.
    Registered,
    /// Failed; waiting to retry or for the client to ask again.
    Failed,
    /// Removing the binding (REGISTER with Expires 0) before it finishes.
    Unregistering,
}

impl RegState {
    /// Every state, in a stable order.
    pub const ALL: [RegState; 4] = [
        RegState::Registering,
        RegState::Registered,
        RegState::Failed,
        RegState::Unregistering,
    ];

    /// A snake_case name for labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RegState::Registering => "registering",
            RegState::Registered => "registered",
            RegState::Failed => "failed",
            RegState::Unregistering => "unregistering",
        }
    }
}

/// Why a registration failed. `Display` renders the sylkRTC `reason` text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationFailure {
    /// The registrar answered with a final failure response (after fail-over, for a 503).
    Rejected {
        /// Its status code.
        code: u16,
        /// Its reason phrase.
        phrase: String,
    },
    /// A 401/407 challenge that cannot be answered (wrong credentials, unsupported
    /// algorithm, ...).
    Unauthorized {
        /// The challenge's status code.
        code: u16,
        /// Its reason phrase.
        phrase: String,
        /// Why it was not answered.
        error: AuthError,
    },
    /// A 2xx that does not list our Contact, or grants it no time (RFC 3261 section
    /// 10.2.4).
    NotBound,
    /// No response from any registrar (Timer F, RFC 3261 section 17.1.2.2).
    Timeout,
    /// The transport failed towards every registrar.
    TransportError,
    /// The registrar's domain could not be located (RFC 3263).
    Dns(LocateError),
    /// The lookup succeeded but gave no address to use.
    NoAddress,
}

impl fmt::Display for RegistrationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistrationFailure::Rejected { code, phrase }
            | RegistrationFailure::Unauthorized { code, phrase, .. } => {
                write!(f, "{code} {phrase}")
            }
            RegistrationFailure::NotBound => f.write_str("200 OK without our binding"),
            RegistrationFailure::Timeout => f.write_str("408 Request Timeout"),
            RegistrationFailure::TransportError => f.write_str("503 Service Unavailable"),
            RegistrationFailure::Dns(e) => write!(f, "DNS lookup error: {e}"),
            RegistrationFailure::NoAddress => f.write_str("DNS lookup error: no usable address"),
        }
    }
}

/// What the registration asks its stack to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegAction {
    /// Find the registrar (RFC 3263) for this URI; answer with
    /// [`Registration::handle_located`].
    Locate(SipUriParts),
    /// Send a REGISTER to `target` asking for `expires` seconds (0 removes the binding); build
    /// it with [`Registration::build_register`] and report the outcome.
    Send {
        /// Where to send it.
        target: Target,
        /// Requested lifetime.
        expires: u32,
    },
    /// Tell the account's connection.
    Report(RegistrationStatus),
    /// Nothing more to do: the binding is gone (or never existed). Forget the registration.
    Finished,
}

/// Static facts of the registration.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// User part of the AOR.
    pub user: String,
    /// Domain of the AOR (host with optional port): registrar and digest realm default.
    pub domain: String,
    /// Display name for From/To.
    pub display_name: Option<String>,
    /// User-Agent header.
    pub user_agent: String,
    /// Requested lifetime in seconds.
    pub expires: u32,
    /// The unique Contact user token.
    pub contact_user: String,
    /// Call-ID of every REGISTER of this binding.
    pub call_id: String,
    /// From tag.
    pub from_tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created, nothing sent.
    Idle,
    /// Waiting for the registrar's address.
    Locating,
    /// A REGISTER asking for `expires` is in a transaction.
    InFlight { expires: u32 },
    /// Bound until the refresh time.
    Registered { refresh_at: Instant },
    /// Failed; try again at `at` (only after having been registered).
    WaitingRetry { at: Instant },
    /// Failed for good (until the client asks again).
    Failed,
    /// Finished: forget it.
    Done,
}

/// One registration.
#[derive(Debug)]
pub struct Registration {
    config: RegistrationConfig,
    digest: DigestClient,
    cseq: u32,
    phase: Phase,
    targets: TargetList,
    current: Option<Target>,
    reported: Option<RegistrationStatus>,
    ever_registered: bool,
    stopping: bool,
    expires: u32,
    too_brief_count: u8,
    retry_delay: Duration,
    actions: VecDeque<RegAction>,
    /// URI parameters of our Contact (RFC 8599 push parameters), from the next REGISTER on.
    contact_params: Vec<(String, String)>,
}

/// A Contact URI parameter value as RFC 3261 section 25.1 `paramchar`s: unreserved and
/// `param-unreserved` characters as they are, every other byte `%`-escaped.
fn escape_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/:&+$".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Registration {
    /// A registration that has not started.
    pub fn new(config: RegistrationConfig, ha1: Ha1) -> Registration {
        let digest = DigestClient::new(&config.user, ha1);
        let expires = config.expires;
        Registration {
            config,
            digest,
            cseq: 0,
            phase: Phase::Idle,
            targets: TargetList::default(),
            current: None,
            reported: None,
            ever_registered: false,
            stopping: false,
            expires,
            too_brief_count: 0,
            retry_delay: FIRST_RETRY,
            actions: VecDeque::new(),
            contact_params: Vec::new(),
        }
    }

    /// URI parameters for our Contact from the next REGISTER on (RFC 8599 push parameters;
    /// empty removes them). Names must be URI parameter tokens; values are escaped.
    pub fn set_contact_params(&mut self, params: Vec<(String, String)>) {
        self.contact_params = params;
    }

    /// The Contact user token.
    pub fn contact_user(&self) -> &str {
        &self.config.contact_user
    }

    /// The registration's settings (user, domain, User-Agent, ...).
    pub fn config(&self) -> &RegistrationConfig {
        &self.config
    }

    /// A digest client for this account's requests inside calls (RFC 3261 section 22): the
    /// same HA1, answering only the challenges the call's peers make (the registrar's
    /// nonces stay with the registrar).
    pub fn digest_client(&self) -> DigestClient {
        self.digest.fresh()
    }

    /// True while the registrar holds (or may hold) our binding.
    pub fn is_registered(&self) -> bool {
        matches!(self.phase, Phase::Registered { .. })
    }

    /// Where it is (metrics).
    pub fn state(&self) -> RegState {
        match self.phase {
            _ if self.stopping => RegState::Unregistering,
            Phase::Registered { .. } => RegState::Registered,
            Phase::WaitingRetry { .. } | Phase::Failed => RegState::Failed,
            Phase::Idle | Phase::Locating | Phase::InFlight { .. } | Phase::Done => {
                RegState::Registering
            }
        }
    }

    /// The registrar URI (`sip:domain`), also the REGISTER Request-URI (RFC 3261 10.2).
    pub fn registrar_uri(&self) -> String {
        format!("sip:{}", self.config.domain)
    }

    /// Starts (or restarts after a failure) registering.
    pub fn start(&mut self, _now: Instant) {
        self.stopping = false;
        match self.phase {
            Phase::Idle | Phase::Failed | Phase::WaitingRetry { .. } => self.locate(),
            // Already registering or registered: `account-register` twice is harmless.
            Phase::Locating | Phase::InFlight { .. } | Phase::Registered { .. } | Phase::Done => {}
        }
    }

    /// Removes the binding (REGISTER with expiry 0) if there may be one, then finishes.
    pub fn stop(&mut self, _now: Instant) {
        self.stopping = true;
        match self.phase {
            Phase::Registered { .. } => self.send(0),
            // The answer to the pending REGISTER decides (see `handle_response`).
            Phase::InFlight { .. } => {}
            Phase::Idle | Phase::Locating | Phase::WaitingRetry { .. } | Phase::Failed => {
                self.finish()
            }
            Phase::Done => {}
        }
    }

    /// The registrar lookup finished.
    pub fn handle_located(&mut self, now: Instant, result: Result<TargetList, LocateError>) {
        if self.phase != Phase::Locating {
            return;
        }
        match result {
            Ok(targets) => {
                self.targets = targets;
                match self.targets.next_target() {
                    Some(t) => {
                        self.current = Some(t);
                        self.send(self.expires);
                    }
                    None => self.fail(now, RegistrationFailure::NoAddress),
                }
            }
            Err(e) => self.fail(now, RegistrationFailure::Dns(e)),
        }
    }

    /// Builds the REGISTER for a [`RegAction::Send`]: `via` carries a fresh branch, `contact`
    /// is our address for the chosen transport (`sip:host:port;transport=x`, without user).
    pub fn build_register(
        &mut self,
        via: &Via,
        contact_hostport: &str,
        expires: u32,
        cnonce: &str,
    ) -> Result<SipRequest, MsgError> {
        self.cseq += 1;
        let request_uri = self.registrar_uri();
        let aor = Uri::parse(&format!("sip:{}@{}", self.config.user, self.config.domain))?;
        let mut from = NameAddr::new(aor.clone());
        from.display_name = self.config.display_name.clone();
        let to = from.clone();
        let from = from.with_param(super::msg::Param::raw("tag", Some(&self.config.from_tag)));
        let mut contact_uri = format!("sip:{}@{contact_hostport}", self.config.contact_user);
        for (name, value) in &self.contact_params {
            contact_uri.push(';');
            contact_uri.push_str(name);
            contact_uri.push('=');
            contact_uri.push_str(&escape_param(value));
        }
        let contact = NameAddr::new(Uri::parse(&contact_uri)?).with_param(super::msg::Param::raw(
            "expires",
            Some(&expires.to_string()),
        ));
        let mut builder = RequestBuilder::new(Method::Register, Uri::parse(&request_uri)?)
            .via(via)
            .max_forwards(70)
            .from(&from)
            .to(&to)
            .call_id(&self.config.call_id)
            .cseq(self.cseq)
            .contact(&contact)
            .header("Expires", &expires.to_string())
            .header("User-Agent", &self.config.user_agent);
        let digest_request = DigestRequest {
            method: "REGISTER",
            uri: &request_uri,
            body: &[],
            cnonce,
        };
        // Credentials only for realms that challenged us; an AlgorithmMismatch here was
        // already reported when the challenge arrived.
        if let Ok(headers) = self.digest.authorize(&digest_request) {
            for h in headers {
                builder = builder.header(h.name, &h.value);
            }
        }
        builder.build()
    }

    /// A final or provisional response to our REGISTER.
    pub fn handle_response(&mut self, now: Instant, response: &SipResponse) {
        let Phase::InFlight { expires } = self.phase else {
            return;
        };
        let status = response.status();
        if status < 200 {
            return;
        }
        let rejected = || RegistrationFailure::Rejected {
            code: status,
            phrase: response.reason().to_owned(),
        };
        if expires == 0 {
            // The binding is gone (or was never there): nothing more to report.
            self.finish();
            return;
        }
        match status {
            200..=299 => {
                self.digest.handle_success();
                let granted = self.granted_expiry(response).unwrap_or(expires);
                if granted == 0 {
                    self.fail(now, RegistrationFailure::NotBound);
                    return;
                }
                self.ever_registered = true;
                self.retry_delay = FIRST_RETRY;
                self.too_brief_count = 0;
                if self.stopping {
                    self.send(0);
                    return;
                }
                self.phase = Phase::Registered {
                    refresh_at: now + refresh_delay(granted),
                };
                self.report(RegistrationStatus::Registered);
            }
            401 | 407 => match self.digest.handle_challenge(response) {
                Ok(()) => self.send(expires),
                Err(error) => {
                    log::info!(
                        "sip: registration of {}: not retrying challenge: {error}",
                        self.config.user
                    );
                    let failure = RegistrationFailure::Unauthorized {
                        code: status,
                        phrase: response.reason().to_owned(),
                        error,
                    };
                    self.fail(now, failure);
                }
            },
            // RFC 3261 section 10.2.8: retry with at least Min-Expires.
            423 => match response.min_expires() {
                Some(min)
                    if min > self.expires && self.too_brief_count < MAX_INTERVAL_TOO_BRIEF =>
                {
                    self.too_brief_count += 1;
                    self.expires = min;
                    self.send(min);
                }
                _ => self.fail(now, rejected()),
            },
            // RFC 3263 section 4.3: a 503 moves on to the next server.
            503 => self.fail_over(now, rejected()),
            _ => self.fail(now, rejected()),
        }
    }

    /// The REGISTER's transaction timed out (Timer F) or its transport failed.
    pub fn handle_no_response(&mut self, now: Instant, transport_error: bool) {
        if let Phase::InFlight { expires } = self.phase {
            if expires == 0 {
                self.finish();
                return;
            }
            let failure = if transport_error {
                RegistrationFailure::TransportError
            } else {
                RegistrationFailure::Timeout
            };
            self.fail_over(now, failure);
        }
    }

    /// Runs the refresh or retry timer; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Registered { refresh_at } if now >= refresh_at => self.send(self.expires),
            Phase::WaitingRetry { at } if now >= at => self.locate(),
            _ => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Registered { refresh_at } => Some(refresh_at),
            Phase::WaitingRetry { at } => Some(at),
            _ => None,
        }
    }

    /// The next thing for the stack to do.
    pub fn poll_action(&mut self) -> Option<RegAction> {
        self.actions.pop_front()
    }

    fn locate(&mut self) {
        self.phase = Phase::Locating;
        self.report(RegistrationStatus::Registering);
        let (host, port) = split_host_port(&self.config.domain);
        self.actions.push_back(RegAction::Locate(SipUriParts {
            scheme: SipScheme::Sip,
            host,
            port,
            transport: None,
        }));
    }

    fn send(&mut self, expires: u32) {
        let Some(target) = self.current.clone() else {
            self.locate();
            return;
        };
        self.phase = Phase::InFlight { expires };
        self.actions.push_back(RegAction::Send { target, expires });
    }

    fn fail_over(&mut self, now: Instant, reason: RegistrationFailure) {
        match self.targets.next_target() {
            Some(next) => {
                log::info!(
                    "sip: registration of {}: {reason}, trying {}",
                    self.config.user,
                    next.address
                );
                self.current = Some(next);
                let expires = match self.phase {
                    Phase::InFlight { expires } => expires,
                    _ => self.expires,
                };
                self.send(expires);
            }
            None => self.fail(now, reason),
        }
    }

    fn fail(&mut self, now: Instant, reason: RegistrationFailure) {
        self.report(RegistrationStatus::Failed(reason));
        self.current = None;
        if self.stopping {
            self.finish();
        } else if self.ever_registered {
            // A binding that worked before is worth re-establishing: the registrar may
            // just be restarting. Back off so a dead registrar is not hammered.
            self.phase = Phase::WaitingRetry {
                at: now + self.retry_delay,
            };
            self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
        } else {
            self.phase = Phase::Failed;
        }
    }

    fn finish(&mut self) {
        if self.phase != Phase::Done {
            self.phase = Phase::Done;
            self.actions.push_back(RegAction::Finished);
        }
    }

    /// Reports a state once per change (SylkServer sends registration events on change only).
    fn report(&mut self, status: RegistrationStatus) {
        if self.stopping {
            return;
        }
        if self.reported.as_ref() != Some(&status) {
            self.reported = Some(status.clone());
            self.actions.push_back(RegAction::Report(status));
        }
    }

    /// The lifetime the registrar granted our Contact (RFC 3261 section 10.2.4): its
    /// `expires` parameter, else the Expires header.
    fn granted_expiry(&self, response: &SipResponse) -> Option<u32> {
        let ours = response
            .contacts()
            .as_slice()
            .iter()
            .find(|c| c.uri.user().is_some_and(|u| u == self.config.contact_user));
        match ours {
            Some(c) => c.expires().or_else(|| response.expires()),
            // A registrar that lists other Contacts but not ours did not bind us.
            None if !response.contacts().as_slice().is_empty() => Some(0),
            None => response.expires(),
        }
    }
}

/// Refresh well before expiry: a minute early for long bindings, halfway for short ones.
fn refresh_delay(granted: u32) -> Duration {
    let secs = if granted > 120 {
        granted - 60
    } else {
        granted / 2
    };
    Duration::from_secs(u64::from(secs.max(1)))
}

/// Splits `host[:port]` (IPv6 in brackets) into host and port.
fn split_host_port(domain: &str) -> (String, Option<u16>) {
    if let Some(rest) = domain.strip_prefix('[') {
        if let Some((h, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h.to_owned(), port);
        }
    }
    match domain.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_owned(), p.parse().ok()),
        _ => (domain.to_owned(), None),
    }
}

#[cfg(test)]
mod tests;
