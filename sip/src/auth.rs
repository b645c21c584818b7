//! Digest authentication, client side (RFC 2617, RFC 7616, RFC 8760 for SIP), computed from
//! the account's stored HA1 so the password never reaches the gateway.
//!
//! * [`Challenge::parse`] reads one `WWW-Authenticate` / `Proxy-Authenticate` value.
//! * [`Ha1`] holds `H(username:realm:password)`; 32 hex digits mean MD5, 64 mean SHA-256, and a
//!   challenge with the other algorithm is refused (the HA1 cannot be converted).
//! * [`DigestClient`] keeps the challenges of one request sequence (a REGISTER refresh chain,
//!   an INVITE), counts `nc` per nonce, and allows one retry per challenge, plus one more only
//!   for `stale=true` (RFC 7616 section 3.3), so a server that keeps rejecting us cannot loop.
//!
//! Nothing here implements `Debug` in a way that prints the HA1 (architecture.md, log hygiene).

use std::fmt;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::msg::grammar::{read_quoted, split_top_level, trim_lws};
use super::msg::SipResponse;

/// Errors of the digest layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The configured HA1 is not 32 or 64 hex digits.
    BadHa1,
    /// A challenge does not parse; the text names the problem.
    MalformedChallenge(&'static str),
    /// The challenge is not `Digest` (e.g. Basic, Bearer).
    UnsupportedScheme,
    /// The challenge names an algorithm we do not implement (e.g. SHA-512-256).
    UnsupportedAlgorithm,
    /// No offered challenge uses the HA1's hash (MD5 HA1 vs SHA-256 challenge or the reverse).
    AlgorithmMismatch,
    /// The response is not a 401 or 407.
    NotAChallenge,
    /// The server challenged again after we answered the same challenge: wrong credentials.
    /// The UA reports the failure instead of retrying (no loops).
    Rejected,
    /// More distinct realms challenged one request than we track.
    TooManyRealms,
    /// `nc` would wrap past ffffffff for one nonce.
    NonceCountExhausted,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::BadHa1 => f.write_str("HA1 must be 32 (MD5) or 64 (SHA-256) hex digits"),
            AuthError::MalformedChallenge(what) => write!(f, "malformed challenge: {what}"),
            AuthError::UnsupportedScheme => f.write_str("authentication scheme is not Digest"),
            AuthError::UnsupportedAlgorithm => f.write_str("unsupported digest algorithm"),
            AuthError::AlgorithmMismatch => f.write_str("no challenge matches the HA1 algorithm"),
            AuthError::NotAChallenge => f.write_str("not a 401/407 response"),
            AuthError::Rejected => f.write_str("credentials rejected"),
            AuthError::TooManyRealms => f.write_str("too many realms"),
            AuthError::NonceCountExhausted => f.write_str("nonce count exhausted"),
        }
    }
}

impl std::error::Error for AuthError {}

/// The hash function behind an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFamily {
    /// MD5 (RFC 2617; RFC 7616 keeps it for backward compatibility).
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
}

impl HashFamily {
    pub(crate) fn hex(self, data: &[u8]) -> String {
        match self {
            HashFamily::Md5 => hex(&Md5::digest(data)),
            HashFamily::Sha256 => hex(&Sha256::digest(data)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A digest algorithm as named in the `algorithm` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `MD5` (the default when absent).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl DigestAlgorithm {
    fn parse(token: &str) -> Option<DigestAlgorithm> {
        // Algorithm names compare case-insensitively (RFC 7616 section 3.3 grammar via 2617).
        [
            ("MD5", DigestAlgorithm::Md5),
            ("MD5-sess", DigestAlgorithm::Md5Sess),
            ("SHA-256", DigestAlgorithm::Sha256),
            ("SHA-256-sess", DigestAlgorithm::Sha256Sess),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(token))
        .map(|(_, a)| a)
    }

    /// The IANA name, as sent back in `algorithm=`.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// The underlying hash.
    pub fn family(self) -> HashFamily {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => HashFamily::Md5,
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => HashFamily::Sha256,
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, DigestAlgorithm::Md5Sess | DigestAlgorithm::Sha256Sess)
    }
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    /// `auth`: method and URI are protected.
    Auth,
    /// `auth-int`: the body is protected too.
    AuthInt,
}

impl Qop {
    fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// Which header carried the challenge and which one answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// 401 + WWW-Authenticate, answered with Authorization.
    Www,
    /// 407 + Proxy-Authenticate, answered with Proxy-Authorization.
    Proxy,
}

impl ChallengeKind {
    /// The header that carries our answer.
    pub fn answer_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// One parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `algorithm` (MD5 when absent).
    pub algorithm: DigestAlgorithm,
    /// The qop values offered; empty means the RFC 2069 form without qop.
    pub qop: Vec<Qop>,
    /// `stale=true`: the nonce expired but the credentials were fine.
    pub stale: bool,
}

impl Challenge {
    /// Parses `Digest realm="..", nonce="..", ...`.
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let value = trim_lws(value);
        let (scheme, params) = value
            .split_once([' ', '\t'])
            .ok_or(AuthError::MalformedChallenge("no parameters"))?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::UnsupportedScheme);
        }
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = DigestAlgorithm::Md5;
        let mut qop = Vec::new();
        let mut stale = false;
        let items = split_top_level(params, ',')
            .map_err(|_| AuthError::MalformedChallenge("bad parameter list"))?;
        for item in items {
            let (name, raw) = item
                .split_once('=')
                .ok_or(AuthError::MalformedChallenge("parameter without value"))?;
            let name = trim_lws(name);
            let raw = trim_lws(raw);
            let value = if raw.starts_with('"') {
                match read_quoted(raw) {
                    Ok((v, "")) => v,
                    _ => return Err(AuthError::MalformedChallenge("bad quoted value")),
                }
            } else {
                raw.to_owned()
            };
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => opaque = Some(value),
                "algorithm" => {
                    algorithm =
                        DigestAlgorithm::parse(&value).ok_or(AuthError::UnsupportedAlgorithm)?;
                }
                "qop" => {
                    qop = value
                        .split(',')
                        .filter_map(|q| match trim_lws(q) {
                            "auth" => Some(Qop::Auth),
                            "auth-int" => Some(Qop::AuthInt),
                            _ => None,
                        })
                        .collect();
                    if qop.is_empty() {
                        return Err(AuthError::MalformedChallenge("no known qop"));
                    }
                }
                "stale" => stale = value.eq_ignore_ascii_case("true"),
                // domain, charset, userhash and extensions do not change the response.
                _ => {}
            }
        }
        Ok(Challenge {
            realm: realm.ok_or(AuthError::MalformedChallenge("no realm"))?,
            nonce: nonce.ok_or(AuthError::MalformedChallenge("no nonce"))?,
            opaque,
            algorithm,
            qop,
            stale,
        })
    }
}

/// `H(username:realm:password)` as lowercase hex. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1 {
    hex: String,
    family: HashFamily,
}

impl Ha1 {
    /// From the account's configured hex string: 32 digits are MD5, 64 are SHA-256.
    pub fn from_hex(hex: &str) -> Result<Ha1, AuthError> {
        let family = match hex.len() {
            32 => HashFamily::Md5,
            64 => HashFamily::Sha256,
            _ => return Err(AuthError::BadHa1),
        };
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::BadHa1);
        }
        Ok(Ha1 {
            hex: hex.to_ascii_lowercase(),
            family,
        })
    }

    /// Computes the HA1 from a password (provisioning and tests; the gateway stores HA1s).
    pub fn from_password(family: HashFamily, username: &str, realm: &str, password: &str) -> Ha1 {
        Ha1 {
            hex: family.hex(format!("{username}:{realm}:{password}").as_bytes()),
            family,
        }
    }

    /// The hash the HA1 was made with.
    pub fn family(&self) -> HashFamily {
        self.family
    }

    /// The hex digits (the registrar's own check of a response; never logged).
    pub(crate) fn as_hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ha1({:?}, <redacted>)", self.family)
    }
}

/// What is being authorised: one outgoing request.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest<'a> {
    /// The request method token (`REGISTER`, `INVITE`, ...).
    pub method: &'a str,
    /// The digest-uri: the Request-URI as sent.
    pub uri: &'a str,
    /// The body, hashed for `auth-int`.
    pub body: &'a [u8],
    /// A fresh client nonce from the caller's randomness (RFC 7616 section 3.4).
    pub cnonce: &'a str,
}

/// Computes one `Digest ...` credentials value (RFC 7616 section 3.4.1). `nc` is the count of
/// requests sent with this nonce, starting at 1. With `qop` the challenge must offer it.
pub fn credentials(
    username: &str,
    ha1: &Ha1,
    challenge: &Challenge,
    qop: Option<Qop>,
    request: &DigestRequest<'_>,
    nc: u32,
) -> Result<String, AuthError> {
    let family = challenge.algorithm.family();
    if family != ha1.family {
        return Err(AuthError::AlgorithmMismatch);
    }
    let h = |s: &str| family.hex(s.as_bytes());
    let nonce = &challenge.nonce;
    let cnonce = request.cnonce;
    // RFC 7616 section 3.4.2: -sess hashes the plain HA1 with both nonces.
    let ha1 = if challenge.algorithm.is_sess() {
        h(&format!("{}:{nonce}:{cnonce}", ha1.hex))
    } else {
        ha1.hex.clone()
    };
    // RFC 7616 section 3.4.3: auth-int adds H(entity-body).
    let ha2 = match qop {
        Some(Qop::AuthInt) => h(&format!(
            "{}:{}:{}",
            request.method,
            request.uri,
            family.hex(request.body)
        )),
        _ => h(&format!("{}:{}", request.method, request.uri)),
    };
    let nc_hex = format!("{nc:08x}");
    let response = match qop {
        Some(q) => h(&format!(
            "{ha1}:{nonce}:{nc_hex}:{cnonce}:{}:{ha2}",
            q.as_str()
        )),
        // RFC 2069 compatibility (RFC 2617 section 3.2.2.1): no qop, no cnonce, no nc.
        None => h(&format!("{ha1}:{nonce}:{ha2}")),
    };
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(username),
        quote(&challenge.realm),
        quote(nonce),
        quote(request.uri),
        challenge.algorithm.as_str()
    );
    if let Some(q) = qop {
        out.push_str(&format!(
            ", cnonce={}, qop={}, nc={nc_hex}",
            quote(cnonce),
            q.as_str()
        ));
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(&format!(", opaque={}", quote(opaque)));
    }
    Ok(out)
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One challenge we are answering.
#[derive(Clone)]
struct Answered {
    kind: ChallengeKind,
    challenge: Challenge,
    /// Requests sent with this nonce so far.
    nc: u32,
    /// We answered this challenge and have not seen a non-challenge final response since.
    retry_pending: bool,
    /// The one extra retry for `stale=true` has been used.
    stale_used: bool,
}

/// Realms one request may be challenged by (a proxy and the registrar is the usual maximum).
const MAX_REALMS: usize = 4;

/// One header to add to the retried request. `Debug` hides the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// `Authorization` or `Proxy-Authorization`.
    pub name: &'static str,
    /// The credentials.
    pub value: String,
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: <redacted>", self.name)
    }
}

/// Digest state for one request sequence (one account's REGISTERs, one call's INVITE).
#[derive(Clone)]
pub struct DigestClient {
    username: String,
    ha1: Ha1,
    prefer_auth_int: bool,
    answered: Vec<Answered>,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("ha1", &self.ha1)
            .field("realms", &self.answered.len())
            .finish()
    }
}

impl DigestClient {
    /// A client for `username` with the account's HA1.
    pub fn new(username: &str, ha1: Ha1) -> DigestClient {
        DigestClient {
            username: username.to_owned(),
            ha1,
            prefer_auth_int: false,
            answered: Vec::new(),
        }
    }

    /// The same account (user, HA1, preference) with no challenge answered yet: requests to
    /// another server must not carry the credentials computed for this one's nonces.
    pub fn fresh(&self) -> DigestClient {
        DigestClient {
            username: self.username.clone(),
            ha1: self.ha1.clone(),
            prefer_auth_int: self.prefer_auth_int,
            answered: Vec::new(),
        }
    }

    /// Use `auth-int` when the server offers both (default: `auth`, which survives proxies
    /// that rewrite bodies).
    pub fn prefer_auth_int(mut self, yes: bool) -> DigestClient {
        self.prefer_auth_int = yes;
        self
    }

    /// Call with a 401 or 407. `Ok` means: retry the request with [`DigestClient::authorize`]'s
    /// headers. `Err(Rejected)` means the same challenge was already answered (credentials are
    /// wrong): give up.
    pub fn handle_challenge(&mut self, response: &SipResponse) -> Result<(), AuthError> {
        let (kind, values): (_, Vec<&str>) = match response.status() {
            401 => (ChallengeKind::Www, response.www_authenticate().collect()),
            407 => (
                ChallengeKind::Proxy,
                response.proxy_authenticate().collect(),
            ),
            _ => return Err(AuthError::NotAChallenge),
        };
        self.handle_challenge_values(kind, &values)
    }

    /// The challenge values of a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`) of
    /// another protocol that uses SIP's digest, e.g. an MSRP relay's 401 to AUTH (RFC 4976
    /// section 5.1); same contract as [`handle_challenge`](Self::handle_challenge).
    pub fn handle_challenge_values(
        &mut self,
        kind: ChallengeKind,
        values: &[&str],
    ) -> Result<(), AuthError> {
        let challenge = self.select(values)?;
        match self
            .answered
            .iter_mut()
            .find(|a| a.kind == kind && a.challenge.realm == challenge.realm)
        {
            Some(a) if a.retry_pending => {
                // RFC 7616 section 3.3: stale=true means retry with the new nonce without
                // asking the user; allow it once so a server that always says stale cannot
                // make us loop.
                if !challenge.stale || a.stale_used {
                    return Err(AuthError::Rejected);
                }
                a.stale_used = true;
                a.challenge = challenge;
                a.nc = 0;
            }
            Some(a) => {
                a.challenge = challenge;
                a.nc = 0;
                a.retry_pending = true;
                a.stale_used = false;
            }
            None => {
                if self.answered.len() >= MAX_REALMS {
                    return Err(AuthError::TooManyRealms);
                }
                self.answered.push(Answered {
                    kind,
                    challenge,
                    nc: 0,
                    retry_pending: true,
                    stale_used: false,
                });
            }
        }
        Ok(())
    }

    /// Picks the challenge our HA1 can answer (RFC 8760 section 2.4: the server may offer
    /// several algorithms, the client uses the first it supports).
    fn select(&self, values: &[&str]) -> Result<Challenge, AuthError> {
        let mut first_error = AuthError::MalformedChallenge("no challenge");
        for value in values {
            match Challenge::parse(value) {
                Ok(c) if c.algorithm.family() == self.ha1.family => return Ok(c),
                Ok(_) => first_error = AuthError::AlgorithmMismatch,
                Err(e) if first_error == AuthError::MalformedChallenge("no challenge") => {
                    first_error = e;
                }
                Err(_) => {}
            }
        }
        Err(first_error)
    }

    /// Call after any final response other than 401/407: the credentials worked, so a later
    /// challenge (e.g. a nonce that expired before the next refresh) may be answered again.
    pub fn handle_success(&mut self) {
        for a in &mut self.answered {
            a.retry_pending = false;
            a.stale_used = false;
        }
    }

    /// The headers to put on the next request: one per challenging realm, `nc` counting up per
    /// nonce. Empty before any challenge.
    pub fn authorize(&mut self, request: &DigestRequest<'_>) -> Result<Vec<AuthHeader>, AuthError> {
        let mut out = Vec::with_capacity(self.answered.len());
        for a in &mut self.answered {
            a.nc = a.nc.checked_add(1).ok_or(AuthError::NonceCountExhausted)?;
            let offered = &a.challenge.qop;
            let qop = match (
                offered.contains(&Qop::Auth),
                offered.contains(&Qop::AuthInt),
            ) {
                (_, true) if self.prefer_auth_int => Some(Qop::AuthInt),
                (true, _) => Some(Qop::Auth),
                (false, true) => Some(Qop::AuthInt),
                (false, false) => None,
            };
            let value = credentials(&self.username, &self.ha1, &a.challenge, qop, request, a.nc)?;
            out.push(AuthHeader {
                name: a.kind.answer_header(),
                value,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{parse, Framing, SipMessage};

    fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
        value
            .split(", ")
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    }

    /// RFC 2617 section 3.5 (HTTP GET, MD5, qop=auth).
    #[test]
    fn rfc2617_example() {
        let challenge = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("challenge");
        assert_eq!(challenge.qop, [Qop::Auth, Qop::AuthInt]);
        let ha1 = Ha1::from_password(
            HashFamily::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let request = DigestRequest {
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
            cnonce: "0a4f113b",
        };
        let value =
            credentials("Mufasa", &ha1, &challenge, Some(Qop::Auth), &request, 1).expect("ok");
        assert_eq!(
            param(&value, "response"),
            Some("\"6629fae49393a05397450978507c4ef1\"")
        );
        assert_eq!(param(&value, "nc"), Some("00000001"));
        assert_eq!(
            param(&value, "opaque"),
            Some("\"5ccc069c403ebaf9f0171e9517f40e41\"")
        );
    }

    /// RFC 7616 section 3.9.1, SHA-256 and MD5 forms.
    #[test]
    fn rfc7616_examples() {
        let request = DigestRequest {
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        };
        for (algorithm, family, expected) in [
            (
                "SHA-256",
                HashFamily::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", HashFamily::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let challenge = Challenge::parse(&format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, \
                 nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ))
            .expect("challenge");
            let ha1 =
                Ha1::from_password(family, "Mufasa", "http-auth@example.org", "Circle of Life");
            let hex_ha1 = Ha1::from_hex(&ha1.hex.to_ascii_uppercase()).expect("hex round trip");
            let value = credentials("Mufasa", &hex_ha1, &challenge, Some(Qop::Auth), &request, 1)
                .expect("ok");
            assert_eq!(
                param(&value, "response"),
                Some(format!("\"{expected}\"").as_str()),
                "{algorithm}"
            );
            assert_eq!(param(&value, "algorithm"), Some(algorithm));
        }
    }

    #[test]
    fn sess_and_auth_int_follow_rfc7616_formulas() {
        let ha1 = Ha1::from_password(HashFamily::Sha256, "alice", "example.com", "secret");
        let challenge = Challenge::parse(
            "Digest realm=\"example.com\", nonce=\"n1\", algorithm=SHA-256-sess, qop=\"auth-int\"",
        )
        .expect("challenge");
        let request = DigestRequest {
            method: "INVITE",
            uri: "sip:bob@example.com",
            body: b"v=0\r\n",
            cnonce: "c1",
        };
        let value =
            credentials("alice", &ha1, &challenge, Some(Qop::AuthInt), &request, 2).expect("ok");
        let h = |s: String| hex(&Sha256::digest(s.as_bytes()));
        let sess = h(format!("{}:n1:c1", ha1.hex));
        let ha2 = h(format!(
            "INVITE:sip:bob@example.com:{}",
            hex(&Sha256::digest(b"v=0\r\n"))
        ));
        let expected = h(format!("{sess}:n1:00000002:c1:auth-int:{ha2}"));
        assert_eq!(
            param(&value, "response"),
            Some(format!("\"{expected}\"").as_str())
        );
        assert_eq!(param(&value, "qop"), Some("auth-int"));
        assert_eq!(param(&value, "algorithm"), Some("SHA-256-sess"));

        // RFC 2069 form: no qop offered.
        let md5 = Ha1::from_password(HashFamily::Md5, "alice", "r", "p");
        let legacy = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").expect("challenge");
        let value = credentials("alice", &md5, &legacy, None, &request, 1).expect("ok");
        let hm = |s: String| hex(&Md5::digest(s.as_bytes()));
        let expected = hm(format!(
            "{}:n:{}",
            md5.hex,
            hm("INVITE:sip:bob@example.com".into())
        ));
        assert_eq!(
            param(&value, "response"),
            Some(format!("\"{expected}\"").as_str())
        );
        assert_eq!(param(&value, "nc"), None);
    }

    #[test]
    fn ha1_is_validated_and_never_printed() {
        assert_eq!(Ha1::from_hex("abc"), Err(AuthError::BadHa1));
        assert_eq!(Ha1::from_hex(&"g".repeat(32)), Err(AuthError::BadHa1));
        let ha1 = Ha1::from_hex(&"a".repeat(64)).expect("sha");
        assert_eq!(ha1.family(), HashFamily::Sha256);
        let client = DigestClient::new("alice", ha1);
        assert!(!format!("{client:?}").contains("aaaa"));
        // Algorithm mismatch: MD5 HA1 against a SHA-256-only challenge.
        let md5 = Ha1::from_hex(&"b".repeat(32)).expect("md5");
        let sha =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256").expect("c");
        let request = DigestRequest {
            method: "REGISTER",
            uri: "sip:r",
            body: b"",
            cnonce: "c",
        };
        assert_eq!(
            credentials("a", &md5, &sha, None, &request, 1),
            Err(AuthError::AlgorithmMismatch)
        );
        assert_eq!(
            Challenge::parse("Basic realm=\"r\""),
            Err(AuthError::UnsupportedScheme)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }

    fn challenge_response(status: u16, headers: &[&str]) -> SipResponse {
        let name = if status == 401 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let mut text = format!(
            "SIP/2.0 {status} Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@r>;tag=t\r\n\
             From: <sip:a@r>;tag=f\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n"
        );
        for h in headers {
            text.push_str(&format!("{name}: {h}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        match parse(text.as_bytes(), Framing::Datagram) {
            Ok(SipMessage::Response(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_retry_per_challenge_and_one_more_for_stale() {
        let ha1 = Ha1::from_password(HashFamily::Md5, "alice", "r", "p");
        let mut client = DigestClient::new("alice", ha1);
        let request = DigestRequest {
            method: "REGISTER",
            uri: "sip:r",
            body: b"",
            cnonce: "c",
        };
        assert_eq!(client.authorize(&request), Ok(vec![]));

        // RFC 8760: SHA-256 offered first, MD5 second; the MD5 HA1 picks the MD5 one.
        let first = challenge_response(
            401,
            &[
                "Digest realm=\"r\", nonce=\"s1\", algorithm=SHA-256, qop=\"auth\"",
                "Digest realm=\"r\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"",
            ],
        );
        client.handle_challenge(&first).expect("first challenge");
        let headers = client.authorize(&request).expect("creds");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].name, "Authorization");
        assert_eq!(param(&headers[0].value, "nonce"), Some("\"n1\""));
        assert_eq!(param(&headers[0].value, "nc"), Some("00000001"));
        // Same nonce reused: nc counts up.
        let again = client.authorize(&request).expect("creds");
        assert_eq!(param(&again[0].value, "nc"), Some("00000002"));

        // Challenged again with a fresh nonce and no stale: wrong password, stop.
        let second = challenge_response(401, &["Digest realm=\"r\", nonce=\"n2\", qop=\"auth\""]);
        assert_eq!(client.handle_challenge(&second), Err(AuthError::Rejected));

        // stale=true: one more retry, nc restarts; a second stale is refused.
        let mut client = DigestClient::new(
            "alice",
            Ha1::from_password(HashFamily::Md5, "alice", "r", "p"),
        );
        client.handle_challenge(&first).expect("first");
        let stale = challenge_response(
            401,
            &["Digest realm=\"r\", nonce=\"n3\", qop=\"auth\", stale=TRUE"],
        );
        client
            .handle_challenge(&stale)
            .expect("stale retry allowed");
        let headers = client.authorize(&request).expect("creds");
        assert_eq!(param(&headers[0].value, "nonce"), Some("\"n3\""));
        assert_eq!(param(&headers[0].value, "nc"), Some("00000001"));
        assert_eq!(client.handle_challenge(&stale), Err(AuthError::Rejected));

        // After a success, a later challenge is answered again (refresh with expired nonce).
        client.handle_success();
        client.handle_challenge(&second).expect("new round");

        // A 407 adds Proxy-Authorization alongside.
        let proxy = challenge_response(407, &["Digest realm=\"proxy\", nonce=\"p1\""]);
        client.handle_challenge(&proxy).expect("proxy");
        let names: Vec<&str> = client
            .authorize(&request)
            .expect("creds")
            .iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, ["Authorization", "Proxy-Authorization"]);

        let ok = challenge_response(401, &[]);
        assert!(client.handle_challenge(&ok).is_err());
    }
}
