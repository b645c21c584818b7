//! A sans-IO DNS stub resolver: the engine behind RFC 3263 server location ([`super::locate`]).
//!
//! The engine never opens a socket, reads a file or reads the clock. The reactor
//!
//! * reads `/etc/resolv.conf` and `/etc/hosts` once at startup and hands their text to
//!   [`ResolverConfig::from_system`],
//! * owns one UDP socket for DNS (bound to an ephemeral port, which gives the source-port
//!   randomisation RFC 5452 section 9.2 asks for), writes every [`Resolver::poll_transmit`]
//!   datagram to it and feeds every received datagram to [`Resolver::handle_datagram`]. If
//!   resolv.conf lists servers of both families, that takes one socket per family (an IPv4
//!   [`DnsTransmit::destination`] cannot be sent from an `AF_INET6` socket); answers arriving as
//!   `::ffff:a.b.c.d` on a dual-stack socket are matched to their IPv4 server either way,
//! * arms its timer from [`Resolver::poll_timeout`] and calls [`Resolver::handle_timeout`].
//!
//! Only UDP is spoken. A truncated answer (TC bit) is reported as [`DnsError::Truncated`]
//! rather than retried over TCP (RFC 7766 would require it for a full resolver; SIP NAPTR/SRV
//! answers fit in 512 octets in practice).
//!
//! No search list (`search`/`domain` in resolv.conf) is applied: SIP URIs carry fully
//! qualified domains (RFC 3261 section 19.1.1), so every name is queried as given.

mod resolver;
mod system;
pub mod wire;

#[cfg(test)]
pub(crate) mod test_encoder;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub use resolver::{DnsEvent, DnsTransmit, QueryId, Resolver, ResolverConfig};
pub use system::{HostsFile, SystemConfigWarning};

/// Record types the resolver asks for and understands (RFC 1035, 3596, 2782, 3403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// IPv4 address (RFC 1035 section 3.4.1).
    A,
    /// IPv6 address (RFC 3596 section 2.1).
    Aaaa,
    /// Canonical name alias (RFC 1035 section 3.3.1); followed inside an answer, never queried.
    Cname,
    /// Service location (RFC 2782).
    Srv,
    /// Naming authority pointer (RFC 3403; RFC 2915 before it).
    Naptr,
}

impl RecordType {
    /// The TYPE code on the wire.
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Cname => 5,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
            RecordType::Naptr => 35,
        }
    }

    /// The type for a wire TYPE code, if it is one we understand.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            1 => Some(RecordType::A),
            5 => Some(RecordType::Cname),
            28 => Some(RecordType::Aaaa),
            33 => Some(RecordType::Srv),
            35 => Some(RecordType::Naptr),
            _ => None,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Srv => "SRV",
            RecordType::Naptr => "NAPTR",
        })
    }
}

/// One resource record from an answer (or synthesised from the hosts file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name: lower-case, no trailing dot, `""` for the root. Odd octets are `\DDD`
    /// escaped (RFC 1035 section 5.1), so DNS names compare case-insensitively as RFC 4343
    /// requires simply by string equality.
    pub name: String,
    /// Remaining time to live in seconds. For cached answers this counts down.
    pub ttl: u32,
    /// The typed RDATA.
    pub data: RecordData,
}

/// Typed RDATA of a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The alias target, in the same canonical form as [`Record::name`].
    Cname(String),
    /// A service location.
    Srv(Srv),
    /// A naming authority pointer.
    Naptr(Naptr),
}

impl RecordData {
    /// The record type this data belongs to.
    pub fn rtype(&self) -> RecordType {
        match self {
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::Aaaa,
            RecordData::Cname(_) => RecordType::Cname,
            RecordData::Srv(_) => RecordType::Srv,
            RecordData::Naptr(_) => RecordType::Naptr,
        }
    }
}

/// SRV RDATA (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share among records of equal priority.
    pub weight: u16,
    /// Port of the service on `target`.
    pub port: u16,
    /// Host name; `""` (the root, written `.`) means the service is decidedly not available.
    pub target: String,
}

/// NAPTR RDATA (RFC 3403 section 4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower is processed first.
    pub order: u16,
    /// Lower is preferred among equal `order`.
    pub preference: u16,
    /// Flags such as `S` (next lookup is SRV) or `A`; compared case-insensitively.
    pub flags: String,
    /// Service field, for SIP `SIP+D2U`, `SIP+D2T`, `SIPS+D2T` (RFC 3263 section 4.1).
    pub services: String,
    /// Substitution expression; RFC 3263 uses `replacement` instead and leaves this empty.
    pub regexp: String,
    /// The next domain to query, canonical form.
    pub replacement: String,
}

/// Why a query produced no records.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The name cannot be encoded in a query (empty label, over 63/255 octets).
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// NXDOMAIN: the name does not exist (RFC 1035 section 4.1.1 RCODE 3).
    NxDomain {
        /// The queried name.
        name: String,
    },
    /// The name exists but has no records of the asked type (NODATA, RFC 2308 section 2.2).
    NoRecords {
        /// The queried name.
        name: String,
        /// The queried type.
        rtype: RecordType,
    },
    /// SERVFAIL from every server tried (RCODE 2).
    ServerFailure {
        /// The queried name.
        name: String,
    },
    /// REFUSED from every server tried (RCODE 5).
    Refused {
        /// The queried name.
        name: String,
    },
    /// Another non-zero RCODE (FORMERR, NOTIMP, ...).
    ServerError {
        /// The queried name.
        name: String,
        /// The RCODE received.
        rcode: u8,
    },
    /// The answer had the TC bit set. TCP fallback (RFC 7766) is not implemented.
    Truncated {
        /// The queried name.
        name: String,
    },
    /// A response matched our query but could not be parsed.
    Malformed {
        /// The queried name.
        name: String,
        /// What was wrong with it.
        reason: wire::ParseError,
    },
    /// No server answered within `timeout` x `attempts` per server (resolv.conf(5)).
    Timeout {
        /// The queried name.
        name: String,
    },
    /// The bound on concurrent distinct queries ([`ResolverConfig::max_in_flight`]) is reached.
    TooManyQueries {
        /// The name that could not be queried.
        name: String,
    },
}

impl DnsError {
    /// The name the failed query was about.
    pub fn name(&self) -> &str {
        match self {
            DnsError::InvalidName { name }
            | DnsError::NxDomain { name }
            | DnsError::NoRecords { name, .. }
            | DnsError::ServerFailure { name }
            | DnsError::Refused { name }
            | DnsError::ServerError { name, .. }
            | DnsError::Truncated { name }
            | DnsError::Malformed { name, .. }
            | DnsError::Timeout { name }
            | DnsError::TooManyQueries { name } => name,
        }
    }

    /// True when the DNS answered authoritatively that there is nothing (NXDOMAIN or NODATA),
    /// as opposed to a failure to get an answer at all. RFC 3263 section 4 falls back to the
    /// next lookup step only in the first case.
    pub fn is_negative_answer(&self) -> bool {
        matches!(self, DnsError::NxDomain { .. } | DnsError::NoRecords { .. })
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::InvalidName { name } => write!(f, "invalid domain name {name:?}"),
            DnsError::NxDomain { name } => write!(f, "{name} does not exist"),
            DnsError::NoRecords { name, rtype } => write!(f, "no {rtype} records for {name}"),
            DnsError::ServerFailure { name } => write!(f, "server failure resolving {name}"),
            DnsError::Refused { name } => write!(f, "query for {name} refused"),
            DnsError::ServerError { name, rcode } => {
                write!(f, "server error {rcode} resolving {name}")
            }
            DnsError::Truncated { name } => write!(f, "truncated answer for {name}"),
            DnsError::Malformed { name, reason } => {
                write!(f, "malformed answer for {name}: {reason}")
            }
            DnsError::Timeout { name } => write!(f, "timeout resolving {name}"),
            DnsError::TooManyQueries { name } => {
                write!(f, "too many DNS queries in flight for {name}")
            }
        }
    }
}

impl std::error::Error for DnsError {}
