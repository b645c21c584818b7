//! Where requests inside a dialog go (RFC 3261 section 12.2.1.1 with RFC 3263 section 4):
//! to the dialog's next hop, the first Route or else the remote target. A literal address
//! over UDP is used as it is; a host name is located by RFC 3263 once per next hop (the
//! INVITE's flow carries requests until the lookup answers, and when it fails). Stream
//! flows are reused as they are (through NATs a new connection would not reach the peer),
//! and with an outbound proxy everything goes through it.

use std::net::{IpAddr, SocketAddr};

use super::usage::{transport_of, DialogUsage};
use super::{CallAction, Hop};
use crate::dialog::Dialog;
use crate::locate::{LocateError, SipScheme, SipUriParts, Target, TargetList};
use crate::msg::{Host, Uri};
use crate::transport::Transport;

/// The located next hop of a dialog.
#[derive(Debug, Clone)]
pub(super) struct LocatedHop {
    /// The next hop URI as written, which the result is for.
    uri: String,
    /// The first target of the lookup; `None` while it runs or when it failed.
    target: Option<Target>,
}

/// The literal address of `uri`, if its host is one.
fn literal(uri: &Uri) -> Option<IpAddr> {
    match uri.host() {
        Some(Host::Ipv4(a)) => Some(IpAddr::V4(*a)),
        Some(Host::Ipv6(a)) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn transport_param(uri: &Uri) -> Option<String> {
    uri.param("transport")
        .and_then(|p| p.value())
        .map(|t| t.to_ascii_lowercase())
}

impl<S: Copy + PartialEq> DialogUsage<S> {
    /// Whether requests of the dialog choose their own hop (no outbound proxy, and the
    /// INVITE's flow is UDP, which any other address can be reached by as well).
    fn routes_by_dialog(&self) -> bool {
        let udp = matches!(
            self.hop,
            Some(Hop::Flow {
                kind: Transport::Udp,
                ..
            }) | None
        );
        self.route_by_dialog && udp
    }

    pub(super) fn in_dialog_hop(&self) -> Option<Hop> {
        self.dialog.as_ref().and_then(|d| self.hop_for(d))
    }

    /// Where requests of `dialog` go: its next hop when it is a literal UDP address or a
    /// located host name, else the INVITE's flow.
    pub(super) fn hop_for(&self, dialog: &Dialog) -> Option<Hop> {
        let fallback = self.hop.clone();
        if !self.routes_by_dialog() {
            return fallback;
        }
        let uri = dialog.next_hop();
        let transport = transport_param(uri)
            .map(|t| transport_of(&t))
            .unwrap_or(Transport::Udp);
        if let Some(ip) = literal(uri) {
            return match transport {
                Transport::Udp => Some(Hop::Located(Target {
                    transport,
                    address: SocketAddr::new(ip, uri.port().unwrap_or(5060)),
                    domain: ip.to_string(),
                })),
                _ => fallback,
            };
        }
        match &self.located {
            Some(LocatedHop {
                uri: located,
                target: Some(target),
            }) if located == uri.as_str() => Some(Hop::Located(target.clone())),
            _ => fallback,
        }
    }

    /// Asks for an RFC 3263 lookup of the dialog's next hop when it is a host name not
    /// located yet; called before each action is taken, so a target refresh is followed.
    pub(super) fn locate_next_hop(&mut self) {
        if !self.routes_by_dialog() {
            return;
        }
        let Some(uri) = self.dialog.as_ref().map(|d| d.next_hop().clone()) else {
            return;
        };
        if literal(&uri).is_some() || self.located.as_ref().is_some_and(|l| l.uri == uri.as_str()) {
            return;
        }
        let Some(host) = uri.host().map(|h| h.to_string()) else {
            return;
        };
        let scheme = if uri
            .as_str()
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
        {
            SipScheme::Sips
        } else {
            SipScheme::Sip
        };
        self.located = Some(LocatedHop {
            uri: uri.as_str().to_owned(),
            target: None,
        });
        self.push(CallAction::Locate(SipUriParts {
            scheme,
            host,
            port: uri.port(),
            transport: transport_param(&uri),
        }));
    }

    /// The lookup of the dialog's next hop answered: its first target carries requests from
    /// now on (the INVITE's flow stays the fallback when nothing was found).
    pub(super) fn handle_next_hop_located(&mut self, result: Result<TargetList, LocateError>) {
        let Some(located) = self.located.as_mut() else {
            return;
        };
        match result {
            Ok(mut targets) => located.target = targets.next_target(),
            Err(e) => log::info!("sip: next hop {} not located: {e}", located.uri),
        }
    }
}
