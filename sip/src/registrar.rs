//! A registrar and location service for one local domain (RFC 3261 section 10.3), as a
//! sans-IO usage of the stack: the standalone gateway serves the accounts of `local.domain`
//! itself, for SIP phones and for its own browser accounts alike (their REGISTERs come back
//! to the gateway's own socket).
//!
//! [`Registrar::handle_register`] takes a REGISTER and says how to answer it: a digest
//! challenge computed from the configured HA1 (RFC 3261 section 22.4, RFC 7616; the
//! password is never known), `403` when the authenticated user is not the To user, `404`
//! for users not configured, `423` with `Min-Expires` for too short a lifetime, `400` for a
//! `*` Contact with a non-zero Expires, `500` for a CSeq out of order, or `200` listing every
//! binding of the address-of-record with its remaining lifetime. Bindings are matched by
//! RFC 5626 instance id and reg-id when the Contact has them, else by Contact URI (section
//! 10.3 step 7); Expires 0 (or `Contact: *`) removes them; they lapse on their own at
//! expiry. [`Registrar::lookup`] gives the live bindings of a user, newest first.
//!
//! Everything is bounded: bindings per address-of-record, addresses-of-record in open mode
//! (`local.open`: anyone may register, for a lab), outstanding nonces.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use engine::Rng;

use crate::auth::{DigestAlgorithm, Ha1, HashFamily};
use crate::msg::grammar::{read_quoted, split_top_level, trim_lws};
use crate::msg::{Contacts, NameAddr, SipRequest};

/// Bindings one address-of-record may hold.
pub const MAX_BINDINGS_PER_AOR: usize = 10;
/// Addresses-of-record an open registrar keeps at most.
pub const MAX_OPEN_AORS: usize = 10_000;
/// Nonces outstanding at most (the oldest is forgotten first).
const MAX_NONCES: usize = 4096;
/// How long a nonce may be used.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// What the registrar serves.
#[derive(Clone)]
pub struct RegistrarConfig {
    /// The domain (also the digest realm).
    pub domain: String,
    /// Anyone may register any user of the domain, without a challenge (a lab).
    pub open: bool,
    /// The users and their HA1 (`H(user:domain:password)`).
    pub users: HashMap<String, Ha1>,
    /// Shortest lifetime granted; shorter asks get 423 (RFC 3261 section 10.3 step 7).
    pub min_expires: u32,
    /// Longest lifetime granted; longer asks are cut to it.
    pub max_expires: u32,
    /// Lifetime when the REGISTER names none.
    pub default_expires: u32,
}

impl std::fmt::Debug for RegistrarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrarConfig")
            .field("domain", &self.domain)
            .field("open", &self.open)
            .field("users", &self.users.len())
            .finish()
    }
}

/// One binding of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact as registered (URI and parameters).
    pub contact: NameAddr,
    /// When it lapses.
    pub expires_at: Instant,
    /// The Call-ID and CSeq of the REGISTER that last refreshed it.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// RFC 5626 `+sip.instance` and `reg-id`, when given.
    pub instance: Option<(String, String)>,
}

/// How to answer a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarAnswer {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// Headers to add (`WWW-Authenticate`, `Contact`, `Min-Expires`, ...).
    pub headers: Vec<(&'static str, String)>,
}

impl RegistrarAnswer {
    fn plain(status: u16, reason: &'static str) -> RegistrarAnswer {
        RegistrarAnswer {
            status,
            reason,
            headers: Vec::new(),
        }
    }
}

/// The registrar of one domain.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    bindings: HashMap<String, Vec<Binding>>,
    nonces: HashMap<String, Instant>,
    nonce_order: VecDeque<String>,
}

/// The parameters of a `Digest` Authorization value.
#[derive(Debug, Default)]
struct Credentials {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: Option<String>,
    cnonce: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
}

impl Credentials {
    fn parse(value: &str) -> Option<Credentials> {
        let (scheme, params) = trim_lws(value).split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Credentials::default();
        for item in split_top_level(params, ',').ok()? {
            let (name, raw) = item.split_once('=')?;
            let raw = trim_lws(raw);
            let value = if raw.starts_with('"') {
                match read_quoted(raw) {
                    Ok((v, "")) => v,
                    _ => return None,
                }
            } else {
                raw.to_owned()
            };
            match trim_lws(name).to_ascii_lowercase().as_str() {
                "username" => c.username = value,
                "realm" => c.realm = value,
                "nonce" => c.nonce = value,
                "uri" => c.uri = value,
                "response" => c.response = value.to_ascii_lowercase(),
                "algorithm" => c.algorithm = Some(value),
                "cnonce" => c.cnonce = Some(value),
                "qop" => c.qop = Some(value),
                "nc" => c.nc = Some(value),
                _ => {}
            }
        }
        Some(c)
    }
}

/// Whether `value` parses as `Digest` credentials (an Authorization value); for the parser
/// checks of [`crate::exercise`].
pub(crate) fn parse_credentials(value: &str) -> bool {
    Credentials::parse(value).is_some()
}

/// Why credentials were not accepted.
enum Verdict {
    Ok,
    /// Right password, old nonce: challenge again with `stale=true`.
    Stale,
    Wrong,
}

impl Registrar {
    /// A registrar with no bindings.
    pub fn new(config: RegistrarConfig) -> Registrar {
        Registrar {
            config,
            bindings: HashMap::new(),
            nonces: HashMap::new(),
            nonce_order: VecDeque::new(),
        }
    }

    /// The domain served.
    pub fn domain(&self) -> &str {
        &self.config.domain
    }

    /// Whether `user` may have bindings here (configured, or any user when open).
    pub fn knows(&self, user: &str) -> bool {
        self.config.open || self.config.users.contains_key(user)
    }

    /// The live bindings of `user`, most recently refreshed first.
    pub fn lookup(&mut self, now: Instant, user: &str) -> Vec<Binding> {
        let Some(list) = self.bindings.get_mut(user) else {
            return Vec::new();
        };
        list.retain(|b| b.expires_at > now);
        let mut out = list.clone();
        if list.is_empty() {
            self.bindings.remove(user);
        }
        out.reverse();
        out
    }

    /// Bindings held, across users (metrics, tests).
    pub fn binding_count(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }

    /// Answers a REGISTER for the domain (RFC 3261 section 10.3).
    pub fn handle_register(
        &mut self,
        now: Instant,
        request: &SipRequest,
        rng: &mut Rng,
    ) -> RegistrarAnswer {
        // Step 5: the To header names the address-of-record.
        let to = &request.to().uri;
        let (Some(user), Some(host)) = (to.user(), to.host()) else {
            return RegistrarAnswer::plain(404, "Not Found");
        };
        if !host.to_string().eq_ignore_ascii_case(&self.config.domain) {
            return RegistrarAnswer::plain(404, "Not Found");
        }
        let user = user.to_owned();
        if !self.knows(&user) {
            return RegistrarAnswer::plain(404, "Not Found");
        }
        // Steps 3 and 4: authentication, and the authenticated user may change only its
        // own bindings.
        if !self.config.open {
            let Some(ha1) = self.config.users.get(&user).cloned() else {
                return RegistrarAnswer::plain(404, "Not Found");
            };
            let credentials = request
                .header("Authorization")
                .and_then(Credentials::parse)
                .filter(|c| c.realm == self.config.domain);
            let Some(c) = credentials else {
                return self.challenge(now, &ha1, false, rng);
            };
            if c.username != user {
                return RegistrarAnswer::plain(403, "Forbidden");
            }
            match self.verify(now, &c, &ha1, "REGISTER") {
                Verdict::Ok => {}
                Verdict::Stale => return self.challenge(now, &ha1, true, rng),
                Verdict::Wrong => return self.challenge(now, &ha1, false, rng),
            }
        } else if !self.bindings.contains_key(&user) && self.bindings.len() >= MAX_OPEN_AORS {
            return RegistrarAnswer::plain(503, "Service Unavailable");
        }
        self.update_bindings(now, request, &user)
    }

    /// Step 6 to 8: adds, refreshes and removes bindings, then lists them.
    fn update_bindings(
        &mut self,
        now: Instant,
        request: &SipRequest,
        user: &str,
    ) -> RegistrarAnswer {
        let call_id = request.call_id().to_owned();
        let cseq = request.cseq().seq;
        let header_expires = request.expires();
        let list = self.bindings.entry(user.to_owned()).or_default();
        list.retain(|b| b.expires_at > now);
        match request.contacts() {
            Contacts::None => {}
            Contacts::Star => {
                // Section 10.2.2: `*` only with Expires 0, and removes everything.
                if header_expires != Some(0) {
                    return RegistrarAnswer::plain(400, "Bad Request");
                }
                if list.iter().any(|b| b.call_id == call_id && b.cseq >= cseq) {
                    return RegistrarAnswer::plain(500, "Server Internal Error");
                }
                list.clear();
            }
            Contacts::List(contacts) => {
                // Check everything before changing anything (the request is atomic).
                let mut changes = Vec::with_capacity(contacts.len());
                for contact in contacts {
                    let asked = contact
                        .expires()
                        .or(header_expires)
                        .unwrap_or(self.config.default_expires);
                    if asked != 0 && asked < self.config.min_expires {
                        return RegistrarAnswer {
                            status: 423,
                            reason: "Interval Too Brief",
                            headers: vec![("Min-Expires", self.config.min_expires.to_string())],
                        };
                    }
                    let instance = contact
                        .params
                        .value("+sip.instance")
                        .zip(contact.params.value("reg-id"));
                    let existing = list.iter().position(|b| match (&instance, &b.instance) {
                        (Some(i), Some(j)) => i == j,
                        _ => b.contact.uri.as_str() == contact.uri.as_str(),
                    });
                    if let Some(i) = existing {
                        let b = &list[i];
                        if b.call_id == call_id && b.cseq >= cseq {
                            return RegistrarAnswer::plain(500, "Server Internal Error");
                        }
                    }
                    changes.push((
                        existing,
                        contact,
                        asked.min(self.config.max_expires),
                        instance,
                    ));
                }
                let mut removed = Vec::new();
                for (existing, contact, expires, instance) in changes {
                    let binding = Binding {
                        contact: strip_expires(contact),
                        expires_at: now + Duration::from_secs(u64::from(expires)),
                        call_id: call_id.clone(),
                        cseq,
                        instance,
                    };
                    match (existing, expires) {
                        (Some(i), 0) => removed.push(i),
                        (Some(i), _) => {
                            // Refreshed: move to the end (the newest).
                            list[i] = binding;
                            let b = list.remove(i);
                            list.push(b);
                        }
                        (None, 0) => {}
                        (None, _) => {
                            if list.len() >= MAX_BINDINGS_PER_AOR {
                                // The oldest gives way (a phone that vanished without
                                // un-registering must not lock its user out).
                                list.remove(0);
                            }
                            list.push(binding);
                        }
                    }
                }
                removed.sort_unstable();
                for i in removed.into_iter().rev() {
                    if i < list.len() {
                        list.remove(i);
                    }
                }
            }
        }
        let headers = list
            .iter()
            .map(|b| {
                let left = b.expires_at.saturating_duration_since(now).as_secs();
                ("Contact", format!("{};expires={left}", b.contact))
            })
            .collect();
        if list.is_empty() {
            self.bindings.remove(user);
        }
        RegistrarAnswer {
            status: 200,
            reason: "OK",
            headers,
        }
    }

    /// A 401 with a fresh nonce for the HA1's hash.
    fn challenge(
        &mut self,
        now: Instant,
        ha1: &Ha1,
        stale: bool,
        rng: &mut Rng,
    ) -> RegistrarAnswer {
        let nonce = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
        while self.nonce_order.len() >= MAX_NONCES {
            if let Some(old) = self.nonce_order.pop_front() {
                self.nonces.remove(&old);
            }
        }
        self.nonces.insert(nonce.clone(), now);
        self.nonce_order.push_back(nonce.clone());
        let algorithm = match ha1.family() {
            HashFamily::Md5 => DigestAlgorithm::Md5,
            HashFamily::Sha256 => DigestAlgorithm::Sha256,
        };
        let mut value = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
            self.config.domain,
            algorithm.as_str()
        );
        if stale {
            value.push_str(", stale=true");
        }
        RegistrarAnswer {
            status: 401,
            reason: "Unauthorized",
            headers: vec![("WWW-Authenticate", value)],
        }
    }

    /// Checks a digest response against the HA1 (RFC 7616 section 3.4.1, qop auth or the
    /// RFC 2069 form).
    fn verify(&mut self, now: Instant, c: &Credentials, ha1: &Ha1, method: &str) -> Verdict {
        let family = ha1.family();
        let algorithm_ok = match (family, c.algorithm.as_deref()) {
            (HashFamily::Md5, None) => true,
            (HashFamily::Md5, Some(a)) => a.eq_ignore_ascii_case("MD5"),
            (HashFamily::Sha256, Some(a)) => a.eq_ignore_ascii_case("SHA-256"),
            (HashFamily::Sha256, None) => false,
        };
        if !algorithm_ok {
            return Verdict::Wrong;
        }
        let h = |s: &str| family.hex(s.as_bytes());
        let ha2 = h(&format!("{method}:{}", c.uri));
        let expected = match (c.qop.as_deref(), &c.cnonce, &c.nc) {
            (Some("auth"), Some(cnonce), Some(nc)) => h(&format!(
                "{}:{}:{nc}:{cnonce}:auth:{ha2}",
                ha1.as_hex(),
                c.nonce
            )),
            (None, _, _) => h(&format!("{}:{}:{ha2}", ha1.as_hex(), c.nonce)),
            _ => return Verdict::Wrong,
        };
        if expected != c.response {
            return Verdict::Wrong;
        }
        match self.nonces.get(&c.nonce) {
            Some(&issued) if now.saturating_duration_since(issued) < NONCE_LIFETIME => Verdict::Ok,
            _ => Verdict::Stale,
        }
    }
}

/// The Contact without its `expires` parameter (the registrar writes its own).
fn strip_expires(contact: &NameAddr) -> NameAddr {
    let mut c = contact.clone();
    c.params.remove("expires");
    c
}

#[cfg(test)]
mod tests;
