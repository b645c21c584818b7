//! Wiring: configuration -> sockets, resolver, SIP stack, gateway, switchboard, reactor.
//!
//! The one place that reads the system's resolver files and the OS's random source at
//! start-up; everything it builds is then driven by the reactor alone.

use std::fmt;

use engine::Rng;
use sip::dns::{Resolver, ResolverConfig};
use sip::locate::{SipScheme, SipUriParts};
use sip::msg::Uri;
use sip::stack::{SipStack, StackConfig};
use sip::transport::LocalAddresses;

use crate::config::Config;
use crate::gateway::{Gateway, GatewayConfig};
use crate::reactor::{BoundAddresses, BoundSockets, Reactor};
use crate::switchboard::Switchboard;
use crate::ws::WsLimits;

/// Why the gateway could not start (exit status 1).
#[derive(Debug)]
#[non_exhaustive]
pub enum StartupError {
    /// A socket could not be bound or registered, or TLS could not be set up.
    Sockets(crate::reactor::SocketError),
    /// `media.rtp_ports` cannot be used.
    Ports(crate::gateway::PortRangeError),
    /// The message database cannot be opened (or its storage thread started).
    Store(String),
    /// The DTLS certificate could not be made.
    DtlsIdentity(media::error::WebrtcError),
    /// An MSRP relay's host could not be resolved.
    Relay(String),
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Sockets(e) => e.fmt(f),
            StartupError::Ports(e) => e.fmt(f),
            StartupError::Store(e) => f.write_str(e),
            StartupError::DtlsIdentity(e) => write!(f, "cannot create the DTLS identity: {e}"),
            StartupError::Relay(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for StartupError {}

/// A gateway ready to run: its reactor and the addresses it listens on.
pub struct App {
    /// The event loop; [`Reactor::run`] it.
    pub reactor: Reactor,
    /// The bound listener addresses (useful with port 0).
    pub addresses: BoundAddresses,
}

/// Builds everything `config` asks for and binds its sockets.
pub fn build(config: &Config) -> Result<App, StartupError> {
    let (mut resolver_config, warnings) = ResolverConfig::from_system(
        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        &std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
    );
    for w in warnings {
        log::info!("dns: {w}");
    }
    if !config.sip.nameservers.is_empty() {
        resolver_config.nameservers = config.sip.nameservers.clone();
    }
    let sockets =
        BoundSockets::bind(config, &resolver_config.nameservers).map_err(StartupError::Sockets)?;
    let addresses = sockets.addresses();
    let mut rng = Rng::from_seed(os_random_seed());
    let mut stack = SipStack::new(
        StackConfig {
            local: LocalAddresses {
                udp_tcp: addresses.sip.unwrap_or(config.sip.listen),
                tls: addresses.sip_tls,
                advertised_host: config.sip.advertised_host.clone(),
            },
            transports: config.sip.transports.clone(),
            outbound_proxy: config.sip.outbound_proxy.as_deref().and_then(uri_parts),
            register_expires: config.sip.register_expires,
            user_agent: config.sip.user_agent.clone(),
        },
        Resolver::new(resolver_config, rng.fork()),
        rng.fork(),
    );
    stack.set_session_expires(config.sip.session_expires);
    let mut gateway = Gateway::new(
        GatewayConfig {
            sylkrtc: sylkrtc_with_local_domain(config),
            trace_websocket: config.log.trace_websocket,
            media: config.media.clone(),
            decline_code: config.sip.decline_code,
            push_parameters: config.sip.push_parameters,
            messaging: config.messaging.clone(),
            contacts: config.contacts.clone(),
            chat: chat_settings(config, &addresses)?,
            dtls_identity: std::sync::Arc::new(
                media::webrtc_leg::DtlsIdentity::generate().map_err(StartupError::DtlsIdentity)?,
            ),
        },
        rng.fork(),
    )
    .map_err(StartupError::Ports)?;
    gateway.set_port_probe(Box::new(crate::reactor::BindProbe));
    stack.set_register_extensions(sip::registration::RegisterExtensions {
        path: config.sip.register_path,
        instance_id: config.sip.register_instance_id,
    });
    if let Some(registrar) = local_registrar(config)? {
        log::info!(
            "local domain {}: served in-process ({})",
            registrar.domain,
            if registrar.open {
                "open: anyone may register".to_owned()
            } else {
                format!("{} user(s)", registrar.users.len())
            }
        );
        let public = |a: Option<std::net::SocketAddr>| a.is_some_and(|a| !a.ip().is_loopback());
        if registrar.open
            && (public(addresses.sip) || public(addresses.ws) || public(addresses.wss))
        {
            log::warn!(
                "local.open is on and a listener is not on loopback: anyone who reaches it may \
                 register as any user of {} (set local.open = false and list local.users)",
                registrar.domain
            );
        }
        stack.set_local_domain(registrar);
    }
    let mut board = Switchboard::new(gateway, stack, config.media.max_calls);
    board.set_store(start_store(config, &sockets)?);
    board.set_xcap(xcap::XcapClient::new(
        xcap::XcapClientConfig {
            timeout: config.contacts.xcap.timeout,
            max_document_size: config.contacts.xcap.max_document_size,
            ..xcap::XcapClientConfig::default()
        },
        rng.fork(),
    ));
    let ws = &config.websocket;
    let limits = WsLimits {
        origins: ws.origins.clone(),
        allow_missing_origin: ws.allow_missing_origin,
        max_message_size: ws.max_message_size,
        max_queued_output: ws.max_queued_output,
        ping_interval: ws.ping_interval,
        pong_timeout: ws.pong_timeout(),
    };
    let mut reactor = Reactor::new(sockets, board, limits, ws.max_connections);
    reactor.set_drain_timeout(config.shutdown.drain_timeout);
    Ok(App { reactor, addresses })
}

/// Opens the message database and starts its worker thread, which wakes the reactor.
fn start_store(
    config: &Config,
    sockets: &BoundSockets,
) -> Result<crate::switchboard::Store, StartupError> {
    let path = &config.messaging.database;
    let shown = shown_database(path);
    let db: Box<dyn store::MessageStore> = if store::postgres::is_postgres_url(path) {
        Box::new(store::postgres::PostgresStore::connect(path).map_err(|e| {
            StartupError::Store(format!("cannot open messaging.database {shown}: {e}"))
        })?)
    } else {
        Box::new(store::sqlite::SqliteStore::open(path).map_err(|e| {
            StartupError::Store(format!("cannot open messaging.database {shown}: {e}"))
        })?)
    };
    let waker = sockets
        .store_waker()
        .map_err(|e| StartupError::Store(format!("cannot create the store's waker: {e}")))?;
    let notify = Box::new(move || {
        if let Err(e) = waker.wake() {
            log::warn!("store: cannot wake the reactor: {e}");
        }
    });
    let worker = store::worker::StoreWorker::spawn(db, config.messaging.store_queue, notify)
        .map_err(|e| StartupError::Store(format!("cannot start the store's thread: {e}")))?;
    log::info!("messaging: store {shown}");
    Ok(crate::switchboard::Store::new(worker))
}

/// The local domain's registrar, from `[local]`.
fn local_registrar(
    config: &Config,
) -> Result<Option<sip::registrar::RegistrarConfig>, StartupError> {
    let Some(domain) = config.local.domain.clone() else {
        return Ok(None);
    };
    let mut users = std::collections::HashMap::new();
    for (user, ha1) in &config.local.users {
        let ha1 = sip::auth::Ha1::from_hex(ha1)
            .map_err(|_| StartupError::Store(format!("local.users: bad HA1 for {user}")))?;
        users.insert(user.clone(), ha1);
    }
    Ok(Some(sip::registrar::RegistrarConfig {
        domain,
        open: config.local.open,
        users,
        min_expires: 60,
        max_expires: 3600,
        default_expires: 3600,
    }))
}

/// `sylkrtc.sip_domains` with the local domain allowed too (its accounts are the point).
fn sylkrtc_with_local_domain(config: &Config) -> crate::config::SylkRtcConfig {
    let mut sylkrtc = config.sylkrtc.clone();
    if let Some(domain) = &config.local.domain {
        if !sylkrtc.domain_allowed(domain) {
            sylkrtc.sip_domains.push(domain.clone());
        }
    }
    sylkrtc
}

/// `messaging.database` as it may be logged: a PostgreSQL URL without its password.
fn shown_database(path: &str) -> String {
    if !store::postgres::is_postgres_url(path) {
        return path.to_owned();
    }
    let (scheme, rest) = path.split_once("://").unwrap_or(("postgres", path));
    match rest.split_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => path.to_owned(),
    }
}

/// Chat sessions' settings: the bound MSRP listeners, and the relays resolved once (the
/// only name lookups outside the SIP resolver; at start-up, before the reactor runs).
fn chat_settings(
    config: &Config,
    addresses: &BoundAddresses,
) -> Result<crate::gateway::ChatSettings, StartupError> {
    let resolve = |text: &str| -> Result<crate::gateway::RelayTarget, StartupError> {
        use std::net::ToSocketAddrs;
        let uri = msrp::MsrpUri::parse(text)
            .map_err(|e| StartupError::Relay(format!("MSRP relay {text}: {e}")))?;
        let addr = match uri.socket_addr() {
            Some(a) => a,
            None => (uri.host.as_str(), uri.port_or_default())
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    StartupError::Relay(format!("MSRP relay {text}: cannot resolve {}", uri.host))
                })?,
        };
        Ok(crate::gateway::RelayTarget { uri, addr })
    };
    let m = &config.msrp;
    let listener = addresses.msrp.plain.or(addresses.msrp.tls);
    Ok(crate::gateway::ChatSettings {
        listen: addresses.msrp.plain,
        tls_listen: addresses.msrp.tls,
        address: m
            .advertised_host
            .or(listener.map(|l| l.ip()).filter(|ip| !ip.is_unspecified()))
            .or(Some(
                config
                    .media
                    .advertised_address
                    .unwrap_or(config.media.address),
            )),
        offer_tls: m.tls,
        relay: m.relay.as_deref().map(resolve).transpose()?,
        relays: m
            .relays
            .iter()
            .map(|(d, r)| Ok((d.clone(), resolve(r)?)))
            .collect::<Result<_, StartupError>>()?,
        max_message_size: m.max_message_size,
        auth_expires: m.auth_expires,
    })
}

/// The parts of a configured `sip:`/`sips:` URI that server location needs.
fn uri_parts(text: &str) -> Option<SipUriParts> {
    let uri = Uri::parse(text).ok()?;
    let scheme = if uri.as_str().to_ascii_lowercase().starts_with("sips:") {
        SipScheme::Sips
    } else {
        SipScheme::Sip
    };
    let host = uri.host()?.to_string();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Some(SipUriParts {
        scheme,
        host,
        port: uri.port(),
        transport: uri.param("transport").and_then(|p| p.value()),
    })
}

/// 32 bytes from the OS's random source, the seed of every engine's [`Rng`]. Falls back to
/// the clock and process id if the source is missing (then only as unpredictable as those).
fn os_random_seed() -> [u8; 32] {
    use std::io::Read;
    let mut seed = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .is_err()
    {
        log::warn!("no /dev/urandom: seeding randomness from the clock");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
        seed[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    seed
}
