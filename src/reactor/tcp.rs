//! Opening the SIP, MSRP and XCAP TCP/TLS connections the same way: binding a listener,
//! accepting, starting a non-blocking connect and learning how it ended, and arming the
//! readiness a connection's output wants. (Moving bytes over them is `stream.rs`.)

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

/// A socket the gateway could not open at start-up.
#[derive(Debug)]
pub enum SocketError {
    /// The poller itself.
    Poll(io::Error),
    /// The signal pipe (SIGTERM, SIGINT, SIGHUP).
    Signals(io::Error),
    /// A socket could not be bound (`what` names it: "SIP UDP", "MSRP", ...).
    Bind {
        /// What the socket is for.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the kernel said.
        source: io::Error,
    },
    /// A bound socket could not be registered with the poller.
    Register {
        /// What the socket is for.
        what: &'static str,
        /// What the kernel said.
        source: io::Error,
    },
    /// TLS could not be set up (certificate, key, CA file).
    Tls(String),
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::Poll(e) => write!(f, "cannot create poll: {e}"),
            SocketError::Signals(e) => write!(f, "cannot catch signals: {e}"),
            SocketError::Bind { what, addr, source } => {
                write!(f, "cannot bind {what} {addr}: {source}")
            }
            SocketError::Register { what, source } => {
                write!(f, "cannot register {what} socket: {source}")
            }
            SocketError::Tls(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for SocketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SocketError::Poll(source)
            | SocketError::Signals(source)
            | SocketError::Bind { source, .. }
            | SocketError::Register { source, .. } => Some(source),
            SocketError::Tls(_) => None,
        }
    }
}

/// Registers `source` (a socket of kind `what`) for `interest` under `token`.
pub fn register(
    registry: &Registry,
    source: &mut impl Source,
    token: Token,
    interest: Interest,
    what: &'static str,
) -> Result<(), SocketError> {
    registry
        .register(source, token, interest)
        .map_err(|source| SocketError::Register { what, source })
}

/// Binds a listener on `addr` (`what` names it in the error) and registers it for reads.
pub fn listen(
    registry: &Registry,
    addr: SocketAddr,
    token: Token,
    what: &'static str,
) -> Result<TcpListener, SocketError> {
    let mut listener =
        TcpListener::bind(addr).map_err(|source| SocketError::Bind { what, addr, source })?;
    register(registry, &mut listener, token, Interest::READABLE, what)?;
    Ok(listener)
}

/// A connection taken from a listener.
pub struct Accepted {
    /// Its socket, Nagle off.
    pub socket: TcpStream,
    /// The peer.
    pub remote: SocketAddr,
    /// The server side of its TLS session, on a TLS listener.
    pub tls: Option<Box<Connection>>,
}

/// Takes the next connection waiting on `listener`, with a TLS server session when `tls` is
/// given. `None` once the backlog is empty, or when accepting fails (EMFILE and friends: the
/// rest stay in the backlog for the next readiness event). `what` names the listener in the
/// log.
pub fn accept_next(
    listener: &TcpListener,
    tls: Option<&Arc<ServerConfig>>,
    what: &str,
) -> Option<Accepted> {
    loop {
        let (socket, remote) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("{what}: accept failed: {e}");
                return None;
            }
        };
        let tls = match tls {
            Some(config) => match ServerConnection::new(Arc::clone(config)) {
                Ok(c) => Some(Box::new(Connection::Server(c))),
                Err(e) => {
                    log::warn!("{what}: TLS setup failed for {remote}: {e}");
                    continue;
                }
            },
            None => None,
        };
        let _ = socket.set_nodelay(true);
        return Some(Accepted {
            socket,
            remote,
            tls,
        });
    }
}

/// Why an outbound connection could not be started.
#[derive(Debug)]
pub enum ConnectError {
    /// The TLS client session could not be made.
    Tls(rustls::Error),
    /// The socket could not be opened.
    Io(io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Tls(e) => write!(f, "TLS: {e}"),
            ConnectError::Io(e) => e.fmt(f),
        }
    }
}

/// Starts a non-blocking connect to `remote`, Nagle off; with `tls`, the client side of a
/// TLS session for the server name (its IP address when the name is not a valid DNS name).
pub fn connect(
    remote: SocketAddr,
    tls: Option<(&Arc<ClientConfig>, &str)>,
) -> Result<(TcpStream, Option<Box<Connection>>), ConnectError> {
    let tls = match tls {
        Some((config, name)) => {
            let server_name = ServerName::try_from(name.to_owned())
                .unwrap_or_else(|_| ServerName::IpAddress(remote.ip().into()));
            let c = ClientConnection::new(Arc::clone(config), server_name)
                .map_err(ConnectError::Tls)?;
            Some(Box::new(Connection::Client(c)))
        }
        None => None,
    };
    let socket = TcpStream::connect(remote).map_err(ConnectError::Io)?;
    let _ = socket.set_nodelay(true);
    Ok((socket, tls))
}

/// How a non-blocking connect stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectProgress {
    /// Connected.
    Done,
    /// Still in progress (a spurious readiness event).
    Pending,
    /// Refused, unreachable, or another error.
    Failed,
}

/// Where `socket`'s connect stands, when it turned ready: SO_ERROR says whether it failed,
/// and a missing peer address that it is still going on.
pub fn connect_progress(socket: &TcpStream) -> ConnectProgress {
    match (socket.take_error(), socket.peer_addr()) {
        (Ok(None), Ok(_)) => ConnectProgress::Done,
        (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => ConnectProgress::Pending,
        _ => ConnectProgress::Failed,
    }
}

/// The readiness a connection wants: writable too while output waits (queued by us, or
/// inside its TLS session) or its connect is in progress, readable always.
pub fn interest(output_waiting: bool, tls: Option<&Connection>, connecting: bool) -> Interest {
    if connecting || output_waiting || tls.is_some_and(|t| t.wants_write()) {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    }
}

/// Re-registers `socket` for `wanted` when it is not what `armed` says it is registered for.
pub fn rearm(
    registry: &Registry,
    socket: &mut TcpStream,
    token: Token,
    armed: &mut Interest,
    wanted: Interest,
) {
    if wanted != *armed && registry.reregister(socket, token, wanted).is_ok() {
        *armed = wanted;
    }
}
