//! The sockets bound at start-up, before the engines that need their addresses exist: the
//! WebSocket and metrics listeners, SIP and MSRP, the XCAP client's TLS settings, and the
//! signal pipe. The reactor takes them over in `Reactor::new`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Interest, Poll};
use rustls::ServerConfig;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::msrp_sockets::{MsrpAddresses, MsrpSockets};
use super::sip_sockets::SipSockets;
use super::tcp::{self, SocketError};
use super::tls;
use super::token::{self, TokenKind};
use super::xcap_sockets::{XcapHosts, XcapSockets};
use crate::config::Config;
use crate::ws::Service;

/// A listening HTTP socket: a WebSocket listener, or the metrics listener.
pub(super) struct Listener {
    pub(super) socket: TcpListener,
    /// `Some` for `wss://`.
    pub(super) tls: Option<Arc<ServerConfig>>,
    /// What it serves.
    pub(super) service: Service,
}

/// The addresses the reactor actually listens on (useful with port 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoundAddresses {
    /// `ws://` listener.
    pub ws: Option<SocketAddr>,
    /// `wss://` listener.
    pub wss: Option<SocketAddr>,
    /// SIP UDP and TCP.
    pub sip: Option<SocketAddr>,
    /// SIP TLS.
    pub sip_tls: Option<SocketAddr>,
    /// The separate metrics listener (`metrics.listen`).
    pub metrics: Option<SocketAddr>,
    /// The MSRP listeners.
    pub msrp: MsrpAddresses,
}

/// The sockets bound at start-up, before the engines that need their addresses exist.
pub struct BoundSockets {
    pub(super) poll: Poll,
    pub(super) listeners: Vec<Listener>,
    pub(super) sip: SipSockets,
    pub(super) msrp: MsrpSockets,
    pub(super) xcap: XcapSockets,
    pub(super) signals: Signals,
}

impl BoundSockets {
    /// Binds the WebSocket listeners, the metrics listener, the SIP sockets and the DNS
    /// client sockets (for the families of `nameservers`) of `config`, and catches
    /// SIGTERM/SIGINT/SIGHUP.
    pub fn bind(config: &Config, nameservers: &[SocketAddr]) -> Result<BoundSockets, SocketError> {
        let poll = Poll::new().map_err(SocketError::Poll)?;
        let ws = &config.websocket;
        let mut listeners = Vec::new();
        let tls = match (ws.wss_listen, config.sip.tls_listen, config.msrp.tls_listen) {
            (None, None, None) => None,
            _ => Some(tls::server_config(&ws.tls).map_err(SocketError::Tls)?),
        };
        let wss_tls = ws.wss_listen.and(tls.clone());
        // /metrics moves off the public port when it has a listener of its own.
        let web = Service {
            metrics: config.metrics.listen.is_none(),
            ..Service::WEB
        };
        for (addr, tls, service) in [
            (ws.ws_listen, None, web),
            (ws.wss_listen, wss_tls, web),
            (config.metrics.listen, None, Service::ADMIN),
        ] {
            let Some(addr) = addr else { continue };
            let token = token::encode(TokenKind::Listener, listeners.len(), 0);
            let what = if service.web {
                "WebSocket listener"
            } else {
                "metrics listener"
            };
            let socket = tcp::listen(poll.registry(), addr, token, what)?;
            listeners.push(Listener {
                socket,
                tls,
                service,
            });
        }
        let sip_tls = match (config.sip.tls_listen, &tls) {
            (Some(addr), Some(server)) => Some((addr, Arc::clone(server))),
            _ => None,
        };
        let tls_client =
            tls::sip_client_config(config.sip.tls_verify, config.sip.tls_ca_file.as_deref())
                .map_err(SocketError::Tls)?;
        let sip = SipSockets::bind(
            poll.registry(),
            config.sip.listen,
            sip_tls,
            Arc::clone(&tls_client),
            nameservers,
        )?;
        let msrp_tls = match (config.msrp.tls_listen, &tls) {
            (Some(addr), Some(server)) => Some((addr, Arc::clone(server))),
            _ => None,
        };
        let msrp = MsrpSockets::bind(
            poll.registry(),
            config.msrp.listen,
            msrp_tls,
            Arc::clone(&tls_client),
        )?;
        let xcap = XcapSockets::new(XcapHosts::resolve(&config.contacts.xcap), tls_client);
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(SocketError::Signals)?;
        let token = token::encode(TokenKind::Signals, 0, 0);
        tcp::register(
            poll.registry(),
            &mut signals,
            token,
            Interest::READABLE,
            "signal",
        )?;
        Ok(BoundSockets {
            poll,
            listeners,
            sip,
            msrp,
            xcap,
            signals,
        })
    }

    /// A waker for the message store's worker: its wake-ups arrive as the `Store` token.
    pub fn store_waker(&self) -> io::Result<mio::Waker> {
        mio::Waker::new(self.poll.registry(), token::encode(TokenKind::Store, 0, 0))
    }

    /// The bound listener addresses.
    pub fn addresses(&self) -> BoundAddresses {
        let mut out = BoundAddresses {
            sip: self.sip.local_addr(),
            sip_tls: self.sip.tls_local_addr(),
            msrp: self.msrp.addresses(),
            ..Default::default()
        };
        for l in &self.listeners {
            let addr = l.socket.local_addr().ok();
            if !l.service.web {
                out.metrics = addr;
            } else if l.tls.is_some() {
                out.wss = addr;
            } else {
                out.ws = addr;
            }
        }
        out
    }
}
