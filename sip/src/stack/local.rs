//! The local domain of a standalone gateway: its registrar (RFC 3261 section 10.3) and the
//! routing of requests addressed to the domain's users.
//!
//! Requests the gateway sends to the domain (its browser accounts' REGISTERs, INVITEs and
//! MESSAGEs) go to its own SIP socket through a static route, and come back in as any
//! request would: REGISTERs reach the registrar; an INVITE for a user bound through one of
//! the gateway's own registrations becomes an incoming call of that registration (so a call
//! between two browser users runs through two bridges back to back); a user bound only at
//! SIP phones gets `302 Moved Temporarily` with their Contacts (a redirect server: the
//! gateway does not proxy), which [`SipStack::local_redirect`] spares the gateway's own
//! requests; a MESSAGE for a user with a browser binding, or with none, is the gateway's to
//! store and deliver ([`RequestTarget::Address`](super::RequestTarget::Address)).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use super::SipStack;
use crate::locate::Target;
use crate::msg::{Method, SipRequest};
use crate::registrar::{Binding, Registrar, RegistrarConfig};
use crate::transport::Transport;
use crate::txn::TxnId;

impl SipStack {
    /// Serves `config.domain` in-process: its registrar, and every request for the domain
    /// routed to this stack's own UDP address.
    pub fn set_local_domain(&mut self, config: RegistrarConfig) {
        let mut own: SocketAddr = self.config.local.udp_tcp;
        if own.ip().is_unspecified() {
            own.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        self.locator.set_static_route(
            &config.domain,
            Target {
                transport: Transport::Udp,
                address: own,
                domain: config.domain.clone(),
            },
        );
        self.registrar = Some(Registrar::new(config));
    }

    /// The local domain, if this stack serves one.
    pub fn local_domain(&self) -> Option<&str> {
        self.registrar.as_ref().map(Registrar::domain)
    }

    /// Bindings the local registrar holds (metrics).
    pub fn local_binding_count(&self) -> usize {
        self.registrar.as_ref().map_or(0, Registrar::binding_count)
    }

    /// Where the gateway's own request to `target` (`user@domain`) should go instead: the
    /// newest SIP phone binding (`user@host:port`) when the user is of the local domain and
    /// bound at phones only. `None`: send it as addressed.
    pub fn local_redirect(&mut self, now: Instant, target: &str) -> Option<String> {
        let (user, domain) = target.split_once('@')?;
        let registrar = self.registrar.as_mut()?;
        if !domain.eq_ignore_ascii_case(registrar.domain()) {
            return None;
        }
        let bindings = registrar.lookup(now, user);
        if bindings.iter().any(|b| self.is_own(b)) {
            return None;
        }
        let b = bindings.first()?;
        let uri = &b.contact.uri;
        let host = uri.host()?.to_string();
        let user = uri.user().unwrap_or(user);
        Some(match uri.port() {
            Some(port) => format!("{user}@{host}:{port}"),
            None => format!("{user}@{host}"),
        })
    }

    /// Whether `binding` is one of this stack's own registrations (a browser account).
    fn is_own(&self, binding: &Binding) -> bool {
        binding
            .contact
            .uri
            .user()
            .is_some_and(|u| self.by_contact_user.contains_key(u))
    }

    /// Handles a new request for the local domain; false when it is not one (or the usual
    /// handling applies).
    pub(super) fn handle_local_request(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &SipRequest,
    ) -> bool {
        let Some(domain) = self.local_domain().map(str::to_owned) else {
            return false;
        };
        let method = request.method().clone();
        if method == Method::Register {
            let to_host = request.to().uri.host().map(|h| h.to_string());
            if !to_host.is_some_and(|h| h.eq_ignore_ascii_case(&domain)) {
                return false;
            }
            let Some(registrar) = self.registrar.as_mut() else {
                return false;
            };
            let answer = registrar.handle_register(now, request, &mut self.rng);
            if answer.status == 200 {
                log::info!(
                    "sip: local registrar: {} has {} binding(s)",
                    request.to().uri,
                    answer.headers.len()
                );
            }
            let extra: Vec<(&str, &str)> = answer
                .headers
                .iter()
                .map(|(n, v)| (*n, v.as_str()))
                .collect();
            self.respond(now, txn, request, answer.status, answer.reason, &extra);
            return true;
        }
        let is_invite = method == Method::Invite && self.incoming_calls;
        let is_message = self.surfaces(&method) && method == Method::Message;
        if !is_invite && !is_message {
            return false;
        }
        let uri = request.uri();
        let (Some(user), Some(host)) = (uri.user(), uri.host()) else {
            return false;
        };
        if !host.to_string().eq_ignore_ascii_case(&domain)
            || self.by_contact_user.contains_key(user)
        {
            return false;
        }
        let user = user.to_owned();
        let Some(registrar) = self.registrar.as_mut() else {
            return false;
        };
        let known = registrar.knows(&user);
        let bindings = registrar.lookup(now, &user);
        let own = bindings
            .iter()
            .find_map(|b| {
                b.contact
                    .uri
                    .user()
                    .and_then(|u| self.by_contact_user.get(u))
            })
            .copied();
        match own {
            // A browser account of this gateway: its incoming call; messages are stored and
            // shown to every connection of the account.
            Some(reg) if is_invite => {
                self.incoming_call(now, txn, request, reg);
                true
            }
            Some(_) => false,
            None if !known => {
                self.respond(now, txn, request, 404, "Not Found", &[]);
                true
            }
            // SIP phones only: RFC 3261 section 8.3 redirect to them.
            None if !bindings.is_empty() => {
                let contacts: Vec<String> = bindings
                    .iter()
                    .map(|b| format!("<{}>", b.contact.uri))
                    .collect();
                let extra: Vec<(&str, &str)> =
                    contacts.iter().map(|c| ("Contact", c.as_str())).collect();
                self.respond(now, txn, request, 302, "Moved Temporarily", &extra);
                true
            }
            None if is_invite => {
                self.respond(now, txn, request, 480, "Temporarily Unavailable", &[]);
                true
            }
            // Nobody bound: the gateway stores the message for the user's next sync.
            None => false,
        }
    }
}
