//! RFC 4976 section 5: AUTH to the relay with digest from the account's HA1 (the SIP
//! stack's digest client, method `AUTH`, digest-uri the relay's URI), Use-Path from its 200,
//! 423 answered once with the relay's bound, and a refresh before Expires runs out.

use std::time::{Duration, Instant};

use sip::auth::{ChallengeKind, DigestClient, DigestRequest};

use super::outgoing::PendingKind;
use super::{CloseReason, MsrpConnection, MsrpEvent, RelayAuth, Timer};
use crate::frame::{write_request, Continuation, Headers, Method};

/// The relay, our credentials and where AUTH stands.
#[derive(Debug)]
pub(super) struct RelayState {
    auth: RelayAuth,
    digest: DigestClient,
    authenticated: bool,
    /// `Expires` we ask for (moved into the relay's bounds after a 423).
    expires: u32,
    /// A 423 was answered already (once only: no loop).
    bounds_retried: bool,
}

impl RelayState {
    pub fn new(auth: RelayAuth) -> RelayState {
        RelayState {
            digest: DigestClient::new(&auth.username, auth.ha1.clone()),
            auth,
            authenticated: false,
            expires: 0,
            bounds_retried: false,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }
}

/// When to refresh a grant of `expires` seconds: three quarters through, at least 5 s on.
fn refresh_after(expires: u32) -> Duration {
    Duration::from_secs(u64::from(expires) * 3 / 4).max(Duration::from_secs(5))
}

impl MsrpConnection {
    /// Sends AUTH (with credentials once challenged).
    pub(super) fn send_auth(&mut self, now: Instant) {
        let cnonce = self.rng.token(16);
        let asked = self.config.auth_expires;
        let Some(relay) = self.relay.as_mut() else {
            return;
        };
        if relay.expires == 0 {
            relay.expires = asked;
        }
        let relay_uri = relay.auth.relay.to_string();
        let authorization = relay
            .digest
            .authorize(&DigestRequest {
                method: "AUTH",
                uri: &relay_uri,
                body: &[],
                cnonce: &cnonce,
            })
            .ok()
            .and_then(|h| h.into_iter().next())
            .map(|h| h.value);
        let headers = Headers {
            to_path: vec![relay.auth.relay.clone()],
            from_path: vec![self.local.clone()],
            expires: Some(relay.expires),
            authorization,
            ..Headers::default()
        };
        let tid = self.transaction_id();
        let frame = write_request(&tid, &Method::Auth, &headers, None, Continuation::Complete);
        self.track(now, tid, PendingKind::Auth);
        self.transmit(frame);
    }

    /// The relay's answer to AUTH.
    pub(super) fn handle_auth_response(&mut self, now: Instant, code: u16, headers: &Headers) {
        let Some(relay) = self.relay.as_mut() else {
            return;
        };
        match code {
            200 if !headers.use_path.is_empty() => {
                relay.digest.handle_success();
                relay.bounds_retried = false;
                let expires = headers.expires.unwrap_or(relay.expires).max(1);
                relay.authenticated = true;
                let changed = self.use_path != headers.use_path;
                self.use_path = headers.use_path.clone();
                if changed {
                    log::debug!("msrp {}: relay Use-Path {:?}", self.local, self.use_path);
                }
                self.deadlines
                    .set(Timer::Refresh, Some(now + refresh_after(expires)));
                self.event(MsrpEvent::Authenticated {
                    use_path: self.use_path.clone(),
                    expires,
                });
                self.maybe_bind(now);
            }
            401 => {
                let values: Vec<&str> = headers
                    .www_authenticate
                    .iter()
                    .map(String::as_str)
                    .collect();
                match relay
                    .digest
                    .handle_challenge_values(ChallengeKind::Www, &values)
                {
                    Ok(()) => self.send_auth(now),
                    Err(e) => {
                        log::info!("msrp {}: relay AUTH refused: {e}", self.local);
                        self.finish(CloseReason::AuthFailed { code }, true);
                    }
                }
            }
            423 if !relay.bounds_retried => {
                relay.bounds_retried = true;
                let bound = headers.min_expires.or(headers.max_expires);
                match bound {
                    Some(b) if b > 0 => {
                        relay.expires = b;
                        self.send_auth(now);
                    }
                    _ => self.finish(CloseReason::AuthFailed { code }, true),
                }
            }
            _ => self.finish(CloseReason::AuthFailed { code }, true),
        }
    }
}
