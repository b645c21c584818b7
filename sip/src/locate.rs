//! RFC 3263 server location: from a SIP URI to an ordered list of `(transport, address)`
//! targets, as a sans-IO engine on top of the [`dns`](super::dns) resolver.
//!
//! The [`Locator`] owns the [`Resolver`] and is driven exactly like it: the reactor feeds DNS
//! datagrams and timeouts in, writes [`Locator::poll_transmit`] datagrams out, and hands each
//! [`LocateEvent`] to the gateway, which builds the `"DNS lookup error: {error}"` text from
//! a [`LocateError`].
//!
//! Failover (RFC 3263 section 4.3): the transaction layer sends to
//! [`TargetList::next_target`] and, on a transport error, a transaction timeout (Timer B/F)
//! or a 503 response, creates a new transaction (new branch) to the next target, until the
//! list is exhausted. A lookup answers for one request; a new request locates again (the
//! resolver's cache keeps that cheap).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::dns::{
    DnsError, QueryId, Record, RecordData, RecordType, Resolver, SplitMix64, Srv, Transmit,
};

/// Hosts (SRV targets) one lookup resolves at most. A hostile or broken DNS answer could list
/// hundreds; a SIP transaction will not fail over that many times anyway.
const MAX_HOSTS: usize = 16;

/// A SIP transport the gateway can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS over TCP.
    Tls,
}

impl Transport {
    /// RFC 3261 section 19.1.2: 5060 for UDP and TCP, 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }

    /// The SRV owner-name prefix (RFC 3263 section 4.1, RFC 2782).
    fn srv_prefix(self) -> &'static str {
        match self {
            Transport::Udp => "_sip._udp",
            Transport::Tcp => "_sip._tcp",
            Transport::Tls => "_sips._tcp",
        }
    }

    /// The NAPTR service field of this transport (RFC 3263 section 4.1).
    fn from_naptr_service(service: &str) -> Option<Self> {
        [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .find(|transport| service.eq_ignore_ascii_case(transport.naptr_service()))
    }

    fn naptr_service(self) -> &'static str {
        match self {
            Transport::Udp => "SIP+D2U",
            Transport::Tcp => "SIP+D2T",
            Transport::Tls => "SIPS+D2T",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        })
    }
}

/// `sip:` or `sips:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipScheme {
    /// `sip:`, any transport.
    Sip,
    /// `sips:`, TLS only (RFC 3261 section 26.2.2).
    Sips,
}

/// The parts of a SIP URI that server location uses (RFC 3263 section 4), filled in by the
/// SIP message layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUriParts {
    /// The scheme.
    pub scheme: SipScheme,
    /// Domain name, IPv4 literal, or IPv6 literal with or without brackets.
    pub host: String,
    /// The explicit port, if the URI has one.
    pub port: Option<u16>,
    /// The `transport=` URI parameter value as written (`udp`, `tcp`, `tls`, ...), if present.
    pub transport: Option<String>,
}

/// Which address families to look up for a host name, in what order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFamilies {
    /// A only.
    Ipv4Only,
    /// AAAA only.
    Ipv6Only,
    /// A and AAAA; IPv4 targets first within each host.
    #[default]
    Ipv4ThenIpv6,
    /// A and AAAA; IPv6 targets first within each host.
    Ipv6ThenIpv4,
}

impl AddressFamilies {
    fn record_types(self) -> &'static [RecordType] {
        match self {
            AddressFamilies::Ipv4Only => &[RecordType::A],
            AddressFamilies::Ipv6Only => &[RecordType::Aaaa],
            AddressFamilies::Ipv4ThenIpv6 => &[RecordType::A, RecordType::Aaaa],
            AddressFamilies::Ipv6ThenIpv4 => &[RecordType::Aaaa, RecordType::A],
        }
    }
}

/// Settings of a [`Locator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatorConfig {
    /// The transports the gateway has enabled, most preferred first. NAPTR order decides
    /// among what the domain offers; this order decides the SRV queries made without NAPTR.
    pub transports: Vec<Transport>,
    /// A global outbound proxy: when set, every lookup locates it instead of the given URI.
    pub outbound_proxy: Option<SipUriParts>,
    /// Address families of the targets.
    pub address_families: AddressFamilies,
}

/// One place to send a request to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// How to reach it.
    pub transport: Transport,
    /// Where.
    pub address: SocketAddr,
    /// The host of the located URI, which a TLS certificate must match (RFC 5922 section 4),
    /// not the SRV target.
    pub domain: String,
}

/// The ordered result of a lookup; walk it with [`next_target`](Self::next_target).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetList {
    targets: VecDeque<Target>,
}

impl From<Vec<Target>> for TargetList {
    /// A list in the given order (for a caller that already knows its targets).
    fn from(targets: Vec<Target>) -> Self {
        TargetList {
            targets: targets.into(),
        }
    }
}

impl TargetList {
    /// Takes the next target to try: the first one for a new request, then one more after each
    /// transport error, timeout or 503 (RFC 3263 section 4.3). `None` when all have failed.
    pub fn next_target(&mut self) -> Option<Target> {
        self.targets.pop_front()
    }

    /// The targets not yet taken, in order.
    pub fn remaining(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter()
    }

    /// How many targets are left.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when no target is left.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// Handle of one [`Locator::locate`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(u64);

/// A finished lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocateEvent {
    /// Which lookup.
    pub lookup: LookupId,
    /// The targets in the order to try them (never empty), or why there are none.
    pub result: Result<TargetList, LocateError>,
}

/// Why a SIP URI could not be located. `Display` is the text after `"DNS lookup error: "`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocateError {
    /// The host is neither an IP literal nor a valid domain name.
    InvalidHost {
        /// The host as given.
        host: String,
    },
    /// The URI's `transport` parameter names a transport that is unknown, disabled, or not
    /// allowed for the scheme (`sips:` with `transport=udp`, RFC 3261 section 26.2.2).
    UnsupportedTransport {
        /// The host of the URI.
        host: String,
        /// The parameter value.
        transport: String,
    },
    /// None of the enabled transports fits the URI (e.g. `sips:` while TLS is disabled).
    NoUsableTransport {
        /// The host of the URI.
        host: String,
    },
    /// DNS answered, but nothing led to an address (NXDOMAIN, no records, or SRV targets `.`).
    NoRecords {
        /// The host of the URI.
        host: String,
    },
    /// DNS could not be asked or did not answer usefully (timeout, server failure, ...).
    Dns {
        /// The host of the URI.
        host: String,
        /// The first such failure.
        source: DnsError,
    },
}

impl fmt::Display for LocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocateError::InvalidHost { host } => write!(f, "invalid host {host:?}"),
            LocateError::UnsupportedTransport { host, transport } => {
                write!(f, "unsupported transport {transport} for {host}")
            }
            LocateError::NoUsableTransport { host } => {
                write!(f, "no supported transport for {host}")
            }
            LocateError::NoRecords { host } => write!(f, "no records for {host}"),
            LocateError::Dns { source, .. } => source.fmt(f),
        }
    }
}

impl std::error::Error for LocateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LocateError::Dns { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The RFC 3263 engine (sans-IO; see the [module docs](self)).
///
/// After every `locate`/`cancel`/`handle_*` call, drain [`poll_transmit`](Self::poll_transmit)
/// and [`poll_event`](Self::poll_event), then re-arm the timer from
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct Locator {
    resolver: Resolver,
    config: LocatorConfig,
    /// Draws for the RFC 2782 weighted SRV selection.
    rng: SplitMix64,
    next_lookup: u64,
    lookups: HashMap<LookupId, Lookup>,
    /// Which lookup is waiting for each resolver query.
    owners: HashMap<QueryId, LookupId>,
    events: VecDeque<LocateEvent>,
}

/// What a resolver query of a lookup is for.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Naptr,
    /// Index into `Lookup::services`.
    Srv(usize),
    /// Index into `Lookup::hosts`.
    Address(usize),
}

/// An SRV name to query and what it returned.
#[derive(Debug)]
struct Service {
    transport: Transport,
    name: String,
    records: Vec<Srv>,
}

/// A host name to resolve, with the port and transport its targets get.
#[derive(Debug, Clone)]
struct Host {
    transport: Transport,
    name: String,
    port: u16,
    /// Addresses per entry of `AddressFamilies::record_types`, in that order.
    addresses: [Vec<IpAddr>; 2],
}

/// One lookup in progress. Its stage is implied by which list is being filled: NAPTR while
/// `services` and `hosts` are empty, SRV while `hosts` is empty, addresses after.
#[derive(Debug)]
struct Lookup {
    domain: String,
    /// Transports usable for this URI, preferred first.
    transports: Vec<Transport>,
    /// Name, transport and port for the A/AAAA fallback when no SRV record exists (RFC 3263
    /// section 4.2).
    fallback: Host,
    services: Vec<Service>,
    hosts: Vec<Host>,
    pending: HashMap<QueryId, Purpose>,
    /// The first failure that was not a negative answer, reported if no target results.
    failure: Option<DnsError>,
}

/// How a URI is resolved, decided before any DNS query (RFC 3263 sections 4.1 and 4.2).
enum Plan {
    /// Numeric host: the target is known.
    Numeric(Target),
    /// Host with an explicit port, or listed in the hosts file: A/AAAA only, on the
    /// fallback port and transport.
    Address,
    /// Explicit transport, no port: SRV for that transport, then A/AAAA.
    Srv(Transport),
    /// Nothing explicit: NAPTR, then SRV, then A/AAAA.
    Naptr,
}

impl Locator {
    /// A locator resolving through `resolver`; `seed` drives the SRV weight draws (fixed in
    /// tests, random in production so that load spreads as the weights say).
    pub fn new(resolver: Resolver, config: LocatorConfig, seed: u64) -> Self {
        Locator {
            resolver,
            config,
            rng: SplitMix64::new(seed),
            next_lookup: 0,
            lookups: HashMap::new(),
            owners: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts locating `uri`, or the configured outbound proxy if there is one. The outcome
    /// arrives as a [`LocateEvent`], also when it is known at once (numeric host, bad URI).
    pub fn locate(&mut self, now: Instant, uri: &SipUriParts) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        let uri = self
            .config
            .outbound_proxy
            .clone()
            .unwrap_or_else(|| uri.clone());
        let (mut lookup, plan) = match self.plan(&uri) {
            Ok(planned) => planned,
            Err(error) => {
                self.finish(id, Err(error));
                return id;
            }
        };
        match plan {
            Plan::Numeric(target) => {
                let targets = TargetList {
                    targets: VecDeque::from([target]),
                };
                self.finish(id, Ok(targets));
                return id;
            }
            Plan::Address => {
                lookup.hosts.push(lookup.fallback.clone());
                self.query_hosts(now, id, &mut lookup);
            }
            Plan::Srv(transport) => {
                lookup.services.push(Service {
                    transport,
                    name: format!("{}.{}", transport.srv_prefix(), lookup.domain),
                    records: Vec::new(),
                });
                self.query_services(now, id, &mut lookup);
            }
            Plan::Naptr => {
                let domain = lookup.domain.clone();
                self.issue(
                    now,
                    id,
                    &mut lookup,
                    &domain,
                    RecordType::Naptr,
                    Purpose::Naptr,
                );
            }
        }
        self.settle(id, lookup);
        self.drain_resolver(now);
        id
    }

    /// Forgets a lookup whose result is no longer wanted (the call was cancelled). Its DNS
    /// queries still complete and fill the cache; no event is produced for it.
    pub fn cancel(&mut self, lookup: LookupId) {
        if let Some(lookup) = self.lookups.remove(&lookup) {
            for query in lookup.pending.keys() {
                self.owners.remove(query);
            }
        }
    }

    /// Feeds a datagram received on the DNS socket (see [`Resolver::handle_datagram`]).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.resolver.handle_datagram(now, from, datagram);
        self.drain_resolver(now);
    }

    /// Call when [`poll_timeout`](Self::poll_timeout) is reached; early calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.resolver.handle_timeout(now);
        self.drain_resolver(now);
    }

    /// The next DNS datagram to send from the DNS socket.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.resolver.poll_transmit()
    }

    /// The next finished lookup.
    pub fn poll_event(&mut self) -> Option<LocateEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called; `None` while idle.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.resolver.poll_timeout()
    }

    /// The resolver, e.g. to see which address families its nameservers need sockets for.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    fn in_hosts_file(&self, host: &str) -> bool {
        let hosts = &self.resolver.config().hosts;
        self.config
            .address_families
            .record_types()
            .iter()
            .any(|&rtype| !hosts.lookup(host, rtype).is_empty())
    }

    /// Classifies the URI (RFC 3263 section 4.1 transport, section 4.2 port and address).
    fn plan(&self, uri: &SipUriParts) -> Result<(Lookup, Plan), LocateError> {
        let raw_host = uri.host.as_str();
        let bracketed = raw_host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        // RFC 3261 section 19.1.1: brackets enclose an IPv6 reference and nothing else.
        if bracketed.is_some_and(|inner| inner.parse::<std::net::Ipv6Addr>().is_err()) {
            return Err(LocateError::InvalidHost {
                host: uri.host.clone(),
            });
        }
        let host = bracketed.unwrap_or(raw_host);
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let sips = uri.scheme == SipScheme::Sips;
        // RFC 3263 section 4.1: a SIPS URI is only reachable over TLS.
        let transports: Vec<Transport> = self
            .config
            .transports
            .iter()
            .copied()
            .filter(|&t| !sips || t == Transport::Tls)
            .collect();
        let explicit = match &uri.transport {
            None => None,
            Some(param) => {
                let unsupported = || LocateError::UnsupportedTransport {
                    host: host.clone(),
                    transport: param.clone(),
                };
                let transport = match param.to_ascii_lowercase().as_str() {
                    "udp" if !sips => Transport::Udp,
                    // RFC 3261 section 26.2.2: sips with transport=tcp means TLS over TCP.
                    "tcp" if sips => Transport::Tls,
                    "tcp" => Transport::Tcp,
                    "tls" => Transport::Tls,
                    _ => return Err(unsupported()),
                };
                if !transports.contains(&transport) {
                    return Err(unsupported());
                }
                Some(transport)
            }
        };
        // RFC 3263 section 4.1: UDP for sip, TLS for sips when nothing says otherwise. With
        // UDP disabled, TCP rather than failing a lookup that TCP would serve.
        let default_transport = explicit.or_else(|| {
            let candidates: &[Transport] = if sips {
                &[Transport::Tls]
            } else {
                &[Transport::Udp, Transport::Tcp]
            };
            candidates.iter().copied().find(|t| transports.contains(t))
        });
        let fallback_transport = match default_transport {
            Some(transport) => transport,
            None => return Err(LocateError::NoUsableTransport { host }),
        };
        let fallback = Host {
            transport: fallback_transport,
            name: host.clone(),
            port: uri.port.unwrap_or(fallback_transport.default_port()),
            addresses: Default::default(),
        };
        let plan = if let Ok(ip) = host.parse::<IpAddr>() {
            Plan::Numeric(Target {
                transport: fallback.transport,
                address: SocketAddr::new(ip, fallback.port),
                domain: host.clone(),
            })
        } else if !is_valid_domain(&host) {
            return Err(LocateError::InvalidHost {
                host: uri.host.clone(),
            });
        } else if uri.port.is_some() || self.in_hosts_file(&host) {
            // A name from the hosts file is meant to be used as it is; asking the DNS for its
            // NAPTR and SRV records would only add round trips to lab and loopback setups.
            Plan::Address
        } else if let Some(transport) = explicit {
            Plan::Srv(transport)
        } else {
            Plan::Naptr
        };
        let lookup = Lookup {
            domain: host,
            transports,
            fallback,
            services: Vec::new(),
            hosts: Vec::new(),
            pending: HashMap::new(),
            failure: None,
        };
        Ok((lookup, plan))
    }

    /// Routes every resolver event to its lookup until the resolver is quiet. Starting the
    /// next stage may be answered from the cache at once, hence the loop.
    fn drain_resolver(&mut self, now: Instant) {
        while let Some(event) = self.resolver.poll_event() {
            let Some(id) = self.owners.remove(&event.query) else {
                continue; // a cancelled lookup
            };
            let Some(mut lookup) = self.lookups.remove(&id) else {
                continue;
            };
            let Some(purpose) = lookup.pending.remove(&event.query) else {
                self.lookups.insert(id, lookup);
                continue;
            };
            let records = match event.result {
                Ok(records) => records,
                Err(error) => {
                    // RFC 3263 section 4: a negative answer moves on to the next step; other
                    // failures are remembered in case no target results at all.
                    if !error.is_negative_answer() && lookup.failure.is_none() {
                        lookup.failure = Some(error);
                    }
                    Vec::new()
                }
            };
            match purpose {
                Purpose::Naptr => services_from_naptr(&mut lookup, records),
                Purpose::Srv(index) => {
                    if let Some(service) = lookup.services.get_mut(index) {
                        service.records = records
                            .into_iter()
                            .filter_map(|r| match r.data {
                                RecordData::Srv(srv) => Some(srv),
                                _ => None,
                            })
                            .collect();
                    }
                }
                Purpose::Address(index) => {
                    if let Some(host) = lookup.hosts.get_mut(index) {
                        let slot = self
                            .config
                            .address_families
                            .record_types()
                            .iter()
                            .position(|&rtype| rtype == event.rtype);
                        if let Some(addresses) = slot.and_then(|i| host.addresses.get_mut(i)) {
                            addresses.extend(records.iter().filter_map(record_address));
                        }
                    }
                }
            }
            if lookup.pending.is_empty() {
                match purpose {
                    Purpose::Naptr => self.query_services(now, id, &mut lookup),
                    Purpose::Srv(_) => self.query_srv_targets(now, id, &mut lookup),
                    Purpose::Address(_) => {}
                }
            }
            self.settle(id, lookup);
        }
    }

    /// Keeps a lookup that still waits for answers; finishes one that does not.
    fn settle(&mut self, id: LookupId, mut lookup: Lookup) {
        if lookup.pending.is_empty() {
            let result = collect_targets(&mut lookup);
            self.finish(id, result);
        } else {
            self.lookups.insert(id, lookup);
        }
    }

    fn query_services(&mut self, now: Instant, id: LookupId, lookup: &mut Lookup) {
        if lookup.services.is_empty() {
            return self.query_srv_targets(now, id, lookup);
        }
        let names: Vec<String> = lookup.services.iter().map(|s| s.name.clone()).collect();
        for (index, name) in names.iter().enumerate() {
            self.issue(now, id, lookup, name, RecordType::Srv, Purpose::Srv(index));
        }
    }

    /// RFC 3263 section 4.2: order each service's SRV records per RFC 2782 and resolve their
    /// targets; without any SRV record, resolve the domain itself on the default port.
    fn query_srv_targets(&mut self, now: Instant, id: LookupId, lookup: &mut Lookup) {
        let found_any = lookup.services.iter().any(|s| !s.records.is_empty());
        if found_any {
            for service in &mut lookup.services {
                let records = std::mem::take(&mut service.records);
                for srv in order_srv_records(records, &mut self.rng) {
                    // RFC 2782: target "." means the service is decidedly not available.
                    if srv.target.is_empty() || lookup.hosts.len() >= MAX_HOSTS {
                        continue;
                    }
                    lookup.hosts.push(Host {
                        transport: service.transport,
                        name: srv.target,
                        port: srv.port,
                        addresses: Default::default(),
                    });
                }
            }
        } else {
            lookup.hosts.push(lookup.fallback.clone());
        }
        // With every SRV target ".", nothing is queried and `settle` reports no records.
        self.query_hosts(now, id, lookup);
    }

    fn query_hosts(&mut self, now: Instant, id: LookupId, lookup: &mut Lookup) {
        let names: Vec<String> = lookup.hosts.iter().map(|h| h.name.clone()).collect();
        for (index, name) in names.iter().enumerate() {
            for &rtype in self.config.address_families.record_types() {
                self.issue(now, id, lookup, name, rtype, Purpose::Address(index));
            }
        }
    }

    fn issue(
        &mut self,
        now: Instant,
        id: LookupId,
        lookup: &mut Lookup,
        name: &str,
        rtype: RecordType,
        purpose: Purpose,
    ) {
        let query = self.resolver.query(now, name, rtype);
        self.owners.insert(query, id);
        lookup.pending.insert(query, purpose);
    }

    fn finish(&mut self, lookup: LookupId, result: Result<TargetList, LocateError>) {
        self.events.push_back(LocateEvent { lookup, result });
    }
}

/// RFC 3263 section 4.1 with RFC 3403 section 4.1: keep NAPTR records with flag `S`, a SIP
/// service we have enabled and a replacement; only the lowest ORDER among them counts,
/// then PREFERENCE ranks. Without any, SRV is asked for each enabled transport.
fn services_from_naptr(lookup: &mut Lookup, records: Vec<Record>) {
    let mut usable: Vec<(u16, u16, Transport, String)> = records
        .into_iter()
        .filter_map(|record| match record.data {
            RecordData::Naptr(naptr) => Some(naptr),
            _ => None,
        })
        .filter(|naptr| naptr.flags.eq_ignore_ascii_case("s") && !naptr.replacement.is_empty())
        .filter_map(|naptr| {
            let transport = Transport::from_naptr_service(&naptr.services)?;
            lookup.transports.contains(&transport).then_some((
                naptr.order,
                naptr.preference,
                transport,
                naptr.replacement,
            ))
        })
        .collect();
    usable.sort_by_key(|&(order, preference, ..)| (order, preference));
    let lowest_order = usable.first().map(|&(order, ..)| order);
    for (order, _, transport, name) in usable {
        let duplicate = lookup
            .services
            .iter()
            .any(|s| s.transport == transport && s.name == name);
        if Some(order) == lowest_order && !duplicate {
            lookup.services.push(Service {
                transport,
                name,
                records: Vec::new(),
            });
        }
    }
    if lookup.services.is_empty() {
        for &transport in &lookup.transports {
            lookup.services.push(Service {
                transport,
                name: format!("{}.{}", transport.srv_prefix(), lookup.domain),
                records: Vec::new(),
            });
        }
    }
}

/// The targets of a lookup whose queries are all answered, hosts in order, addresses in the
/// configured family order, duplicates dropped.
fn collect_targets(lookup: &mut Lookup) -> Result<TargetList, LocateError> {
    let mut targets: VecDeque<Target> = VecDeque::new();
    for host in &lookup.hosts {
        for &ip in host.addresses.iter().flatten() {
            let target = Target {
                transport: host.transport,
                address: SocketAddr::new(ip, host.port),
                domain: lookup.domain.clone(),
            };
            if !targets.contains(&target) {
                targets.push_back(target);
            }
        }
    }
    if !targets.is_empty() {
        return Ok(TargetList { targets });
    }
    let host = lookup.domain.clone();
    Err(match lookup.failure.take() {
        Some(source) => LocateError::Dns { host, source },
        None => LocateError::NoRecords { host },
    })
}

fn record_address(record: &Record) -> Option<IpAddr> {
    match record.data {
        RecordData::A(v4) => Some(IpAddr::V4(v4)),
        RecordData::Aaaa(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

/// A host name we can put in a query: what the DNS encoder accepts.
fn is_valid_domain(host: &str) -> bool {
    super::dns::wire::encode_query(0, host, RecordType::A).is_ok()
}

/// Orders SRV records as RFC 2782 prescribes: ascending priority; within one priority, a
/// weighted random draw repeated until none is left, with weight-0 records placed first so
/// they are picked rarely but not never. `rng` makes the draws reproducible in tests.
pub fn order_srv_records(mut records: Vec<Srv>, rng: &mut SplitMix64) -> Vec<Srv> {
    // Stable sort: weight 0 first within a priority, otherwise answer order.
    records.sort_by_key(|srv| (srv.priority, srv.weight != 0));
    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let group_len = rest
            .iter()
            .take_while(|srv| srv.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(group_len);
        let mut group = group.to_vec();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|srv| u32::from(srv.weight)).sum();
            let draw = rng.below_or_equal(total);
            let mut running = 0u32;
            let chosen = group
                .iter()
                .position(|srv| {
                    running += u32::from(srv.weight);
                    running >= draw
                })
                .unwrap_or(0);
            ordered.push(group.remove(chosen));
        }
        rest = tail;
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::super::dns::test_encoder::{naptr, srv, ResponseBuilder};
    use super::super::dns::{wire, ResolverConfig};
    use super::*;
    use std::time::Duration;

    const NS: &str = "192.0.2.53:53";

    /// A scripted recursive server: answers from a zone, NXDOMAIN (with SOA) for anything
    /// else, silence for names listed as unreachable.
    #[derive(Default)]
    struct Zone {
        records: Vec<(String, u32, RecordData)>,
        silent: Vec<String>,
        asked: Vec<(String, RecordType)>,
    }

    impl Zone {
        fn add(&mut self, owner: &str, data: RecordData) -> &mut Self {
            self.records.push((owner.to_string(), 300, data));
            self
        }

        /// Answers every query the locator sent, repeatedly, until it sends no more.
        fn serve(&mut self, locator: &mut Locator, now: Instant) {
            while let Some(transmit) = locator.poll_transmit() {
                assert_eq!(
                    transmit.destination,
                    NS.parse::<std::net::SocketAddr>().unwrap()
                );
                let query = wire::parse_query(&transmit.payload).unwrap();
                let name = query.question.name.clone();
                let rtype = RecordType::from_code(query.question.rtype).unwrap();
                self.asked.push((name.clone(), rtype));
                if self.silent.contains(&name) {
                    continue;
                }
                let mut reply = ResponseBuilder::answering(&transmit.payload);
                let mut found = false;
                for (owner, ttl, data) in &self.records {
                    if *owner == name && data.rtype() == rtype {
                        reply = reply.answer(owner, *ttl, data.clone());
                        found = true;
                    }
                }
                let exists = self.records.iter().any(|(owner, ..)| *owner == name);
                if !found {
                    reply = reply.rcode(if exists { 0 } else { 3 }).soa(60, 60);
                }
                locator.handle_datagram(now, NS.parse().unwrap(), &reply.build());
            }
        }
    }

    fn locator(transports: &[Transport]) -> Locator {
        let resolver = Resolver::new(
            ResolverConfig::with_nameservers(vec![NS.parse().unwrap()]),
            9,
        );
        let config = LocatorConfig {
            transports: transports.to_vec(),
            outbound_proxy: None,
            address_families: AddressFamilies::Ipv4ThenIpv6,
        };
        Locator::new(resolver, config, 77)
    }

    fn uri(
        scheme: SipScheme,
        host: &str,
        port: Option<u16>,
        transport: Option<&str>,
    ) -> SipUriParts {
        SipUriParts {
            scheme,
            host: host.to_string(),
            port,
            transport: transport.map(str::to_string),
        }
    }

    fn sip(host: &str) -> SipUriParts {
        uri(SipScheme::Sip, host, None, None)
    }

    fn a(ip: [u8; 4]) -> RecordData {
        RecordData::A(ip.into())
    }

    fn outcome(
        locator: &mut Locator,
        lookup: LookupId,
    ) -> Result<Vec<(Transport, SocketAddr)>, LocateError> {
        let event = locator.poll_event().expect("the lookup finished");
        assert_eq!(event.lookup, lookup);
        assert!(locator.poll_event().is_none());
        event.result.map(|mut list| {
            std::iter::from_fn(|| list.next_target())
                .map(|t| (t.transport, t.address))
                .collect()
        })
    }

    fn target(transport: Transport, address: &str) -> (Transport, SocketAddr) {
        (transport, address.parse().unwrap())
    }

    const ALL: &[Transport] = &[Transport::Tls, Transport::Tcp, Transport::Udp];

    #[test]
    fn numeric_hosts_need_no_dns() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let cases = [
            (
                uri(SipScheme::Sip, "192.0.2.1", None, None),
                target(Transport::Udp, "192.0.2.1:5060"),
            ),
            (
                uri(SipScheme::Sips, "192.0.2.1", None, None),
                target(Transport::Tls, "192.0.2.1:5061"),
            ),
            (
                uri(SipScheme::Sip, "[2001:db8::1]", Some(5070), Some("TCP")),
                target(Transport::Tcp, "[2001:db8::1]:5070"),
            ),
            (
                uri(SipScheme::Sips, "2001:db8::1", None, Some("tcp")),
                target(Transport::Tls, "[2001:db8::1]:5061"),
            ),
            (
                uri(SipScheme::Sip, "192.0.2.1", None, Some("tls")),
                target(Transport::Tls, "192.0.2.1:5061"),
            ),
        ];
        for (input, expected) in cases {
            let lookup = l.locate(now, &input);
            assert_eq!(outcome(&mut l, lookup), Ok(vec![expected]), "{input:?}");
        }
        assert!(l.poll_transmit().is_none());
        assert_eq!(l.poll_timeout(), None);
    }

    #[test]
    fn explicit_port_asks_only_for_addresses() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let mut zone = Zone::default();
        zone.add("pbx.example.com", a([192, 0, 2, 5])).add(
            "pbx.example.com",
            RecordData::Aaaa("2001:db8::5".parse().unwrap()),
        );
        let lookup = l.locate(
            now,
            &uri(SipScheme::Sip, "PBX.example.com.", Some(5080), None),
        );
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![
                target(Transport::Udp, "192.0.2.5:5080"),
                target(Transport::Udp, "[2001:db8::5]:5080"),
            ])
        );
        let asked: Vec<RecordType> = zone.asked.iter().map(|(_, t)| *t).collect();
        assert_eq!(asked, vec![RecordType::A, RecordType::Aaaa]);
    }

    #[test]
    fn naptr_srv_address_chain_honours_order_preference_and_transports() {
        let now = Instant::now();
        let mut l = locator(&[Transport::Udp, Transport::Tcp]);
        let mut zone = Zone::default();
        zone.add(
            "example.com",
            naptr(10, 30, "S", "SIP+D2U", "_sip._udp.example.com"),
        )
        .add(
            "example.com",
            naptr(10, 10, "S", "SIPS+D2T", "_sips._tcp.example.com"),
        )
        .add(
            "example.com",
            naptr(10, 20, "s", "SIP+D2T", "_sip._tcp.example.com"),
        )
        .add(
            "example.com",
            naptr(10, 5, "S", "SIP+D2S", "_sip._sctp.example.com"),
        )
        .add(
            "example.com",
            naptr(10, 1, "A", "SIP+D2U", "a-flag.example.com"),
        )
        .add(
            "example.com",
            naptr(20, 1, "S", "SIP+D2U", "_later._udp.example.com"),
        )
        .add(
            "_sip._tcp.example.com",
            srv(20, 0, 5062, "backup.example.com"),
        )
        .add(
            "_sip._tcp.example.com",
            srv(10, 0, 5060, "main.example.com"),
        )
        .add(
            "_sip._udp.example.com",
            srv(10, 0, 5060, "main.example.com"),
        )
        .add("main.example.com", a([192, 0, 2, 1]))
        .add("backup.example.com", a([192, 0, 2, 2]));
        let lookup = l.locate(now, &sip("example.com"));
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![
                target(Transport::Tcp, "192.0.2.1:5060"),
                target(Transport::Tcp, "192.0.2.2:5062"),
                target(Transport::Udp, "192.0.2.1:5060"),
            ])
        );
        let srv_asked: Vec<&str> = zone
            .asked
            .iter()
            .filter(|(_, t)| *t == RecordType::Srv)
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            srv_asked,
            vec!["_sip._tcp.example.com", "_sip._udp.example.com"],
            "TLS is disabled; SCTP, the A flag and order 20 are not used"
        );
    }

    #[test]
    fn sips_uri_uses_only_sips_naptr_and_srv() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let mut zone = Zone::default();
        zone.add(
            "example.com",
            naptr(10, 10, "S", "SIP+D2U", "_sip._udp.example.com"),
        )
        .add(
            "example.com",
            naptr(10, 20, "S", "SIPS+D2T", "_sips._tcp.example.com"),
        )
        .add("_sips._tcp.example.com", srv(0, 0, 5061, "tls.example.com"))
        .add("_sip._udp.example.com", srv(0, 0, 5060, "udp.example.com"))
        .add("tls.example.com", a([192, 0, 2, 3]))
        .add("udp.example.com", a([192, 0, 2, 4]));
        let lookup = l.locate(now, &uri(SipScheme::Sips, "example.com", None, None));
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![target(Transport::Tls, "192.0.2.3:5061")])
        );
    }

    #[test]
    fn without_naptr_srv_is_asked_per_transport_in_preference_order() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let mut zone = Zone::default();
        zone.add("example.org", a([192, 0, 2, 99]))
            .add("_sip._udp.example.org", srv(0, 0, 5070, "sip.example.org"))
            .add("_sips._tcp.example.org", srv(0, 0, 5071, "sip.example.org"))
            .add("sip.example.org", a([192, 0, 2, 7]));
        let lookup = l.locate(now, &sip("example.org"));
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![
                target(Transport::Tls, "192.0.2.7:5071"),
                target(Transport::Udp, "192.0.2.7:5070"),
            ])
        );
        let asked: Vec<(&str, RecordType)> = zone
            .asked
            .iter()
            .map(|(n, t)| (n.as_str(), *t))
            .take(4)
            .collect();
        assert_eq!(
            asked,
            vec![
                ("example.org", RecordType::Naptr),
                ("_sips._tcp.example.org", RecordType::Srv),
                ("_sip._tcp.example.org", RecordType::Srv),
                ("_sip._udp.example.org", RecordType::Srv),
            ]
        );
    }

    #[test]
    fn without_srv_the_host_itself_is_used_on_the_default_port() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let mut zone = Zone::default();
        zone.add(
            "example.net",
            RecordData::Aaaa("2001:db8::9".parse().unwrap()),
        )
        .add("example.net", a([192, 0, 2, 9]));
        let lookup = l.locate(now, &sip("example.net"));
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![
                target(Transport::Udp, "192.0.2.9:5060"),
                target(Transport::Udp, "[2001:db8::9]:5060"),
            ])
        );

        let lookup = l.locate(now, &uri(SipScheme::Sips, "example.net", None, None));
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![
                target(Transport::Tls, "192.0.2.9:5061"),
                target(Transport::Tls, "[2001:db8::9]:5061"),
            ])
        );
    }

    #[test]
    fn explicit_transport_without_port_asks_that_srv_only() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let mut zone = Zone::default();
        zone.add("example.com", a([192, 0, 2, 1]));
        let lookup = l.locate(now, &uri(SipScheme::Sip, "example.com", None, Some("tcp")));
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![target(Transport::Tcp, "192.0.2.1:5060")])
        );
        assert_eq!(
            zone.asked[0],
            ("_sip._tcp.example.com".to_string(), RecordType::Srv)
        );
        assert!(zone.asked.iter().all(|(_, t)| *t != RecordType::Naptr));
    }

    #[test]
    fn outbound_proxy_is_located_instead_of_the_uri() {
        let now = Instant::now();
        let mut l = locator(ALL);
        l.config.outbound_proxy = Some(uri(
            SipScheme::Sip,
            "proxy.example.net",
            Some(5080),
            Some("tcp"),
        ));
        let mut zone = Zone::default();
        zone.add("proxy.example.net", a([192, 0, 2, 80]));
        let lookup = l.locate(now, &sip("callee.example.com"));
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![target(Transport::Tcp, "192.0.2.80:5080")])
        );
        assert!(zone
            .asked
            .iter()
            .all(|(name, _)| name == "proxy.example.net"));
    }

    #[test]
    fn nxdomain_everywhere_reads_as_no_records() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let lookup = l.locate(now, &sip("example.invalid"));
        Zone::default().serve(&mut l, now);
        let error = outcome(&mut l, lookup).unwrap_err();
        assert_eq!(
            format!("DNS lookup error: {error}"),
            "DNS lookup error: no records for example.invalid"
        );
    }

    #[test]
    fn srv_target_dot_means_not_available() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let mut zone = Zone::default();
        zone.add("example.com", a([192, 0, 2, 1]))
            .add("_sip._udp.example.com", srv(0, 0, 0, ""));
        let lookup = l.locate(now, &uri(SipScheme::Sip, "example.com", None, Some("udp")));
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Err(LocateError::NoRecords {
                host: "example.com".into()
            })
        );
    }

    #[test]
    fn unanswered_dns_is_a_timeout_error() {
        let t0 = Instant::now();
        let mut l = locator(ALL);
        let mut zone = Zone::default();
        zone.silent.push("slow.example".to_string());
        let lookup = l.locate(t0, &uri(SipScheme::Sip, "slow.example", Some(5060), None));
        let mut now = t0;
        while let Some(deadline) = l.poll_timeout() {
            zone.serve(&mut l, now);
            now = deadline;
            l.handle_timeout(now);
        }
        assert_eq!(now, t0 + Duration::from_secs(10), "2 attempts x 5 s");
        let error = outcome(&mut l, lookup).unwrap_err();
        assert_eq!(error.to_string(), "timeout resolving slow.example");
    }

    #[test]
    fn uri_errors_are_reported_without_dns() {
        let now = Instant::now();
        let mut l = locator(&[Transport::Udp, Transport::Tcp]);
        let cases = [
            (
                uri(SipScheme::Sips, "example.com", None, Some("udp")),
                "unsupported transport udp for example.com",
            ),
            (
                uri(SipScheme::Sip, "example.com", None, Some("sctp")),
                "unsupported transport sctp for example.com",
            ),
            (
                uri(SipScheme::Sips, "example.com", None, None),
                "no supported transport for example.com",
            ),
            (
                uri(SipScheme::Sip, "a..b", None, None),
                "invalid host \"a..b\"",
            ),
            (uri(SipScheme::Sip, "", None, None), "invalid host \"\""),
            (
                uri(SipScheme::Sip, "[example.com]", None, None),
                "invalid host \"[example.com]\"",
            ),
        ];
        for (input, text) in cases {
            let lookup = l.locate(now, &input);
            assert_eq!(outcome(&mut l, lookup).unwrap_err().to_string(), text);
        }
        assert!(l.poll_transmit().is_none());
    }

    #[test]
    fn target_list_is_walked_for_failover() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let mut zone = Zone::default();
        zone.add("_sip._udp.example.com", srv(1, 0, 5060, "one.example.com"))
            .add("_sip._udp.example.com", srv(2, 0, 5060, "two.example.com"))
            .add("one.example.com", a([192, 0, 2, 1]))
            .add("two.example.com", a([192, 0, 2, 2]));
        let lookup = l.locate(now, &uri(SipScheme::Sip, "example.com", None, Some("udp")));
        zone.serve(&mut l, now);
        let event = l.poll_event().unwrap();
        assert_eq!(event.lookup, lookup);
        let mut list = event.result.unwrap();
        assert_eq!(list.len(), 2);
        let first = list.next_target().unwrap();
        assert_eq!(
            first.address,
            "192.0.2.1:5060".parse::<std::net::SocketAddr>().unwrap()
        );
        assert_eq!(first.domain, "example.com", "TLS checks the URI's domain");
        // 503 or timeout from the first: move on.
        assert_eq!(
            list.next_target().unwrap().address,
            "192.0.2.2:5060".parse::<std::net::SocketAddr>().unwrap()
        );
        assert!(list.next_target().is_none());
        assert!(list.is_empty());
    }

    #[test]
    fn cancelled_lookup_produces_no_event() {
        let now = Instant::now();
        let mut l = locator(ALL);
        let lookup = l.locate(now, &sip("example.com"));
        l.cancel(lookup);
        Zone::default().serve(&mut l, now);
        assert!(l.poll_event().is_none());
        assert!(l.lookups.is_empty() && l.owners.is_empty());
    }

    #[test]
    fn second_lookup_is_served_from_the_cache() {
        let now = Instant::now();
        let mut l = locator(&[Transport::Udp]);
        let mut zone = Zone::default();
        zone.add("_sip._udp.example.com", srv(0, 0, 5060, "sip.example.com"))
            .add("sip.example.com", a([192, 0, 2, 1]));
        let first = l.locate(now, &sip("example.com"));
        zone.serve(&mut l, now);
        let expected = Ok(vec![target(Transport::Udp, "192.0.2.1:5060")]);
        assert_eq!(outcome(&mut l, first), expected);
        let asked = zone.asked.len();
        let second = l.locate(now + Duration::from_secs(30), &sip("example.com"));
        assert!(
            l.poll_transmit().is_none(),
            "NAPTR NXDOMAIN, SRV and A are all cached"
        );
        assert_eq!(outcome(&mut l, second), expected);
        assert_eq!(zone.asked.len(), asked);
    }

    #[test]
    fn srv_order_respects_priority_and_weights() {
        let records = vec![
            Srv {
                priority: 20,
                weight: 100,
                port: 1,
                target: "late".into(),
            },
            Srv {
                priority: 10,
                weight: 90,
                port: 2,
                target: "heavy".into(),
            },
            Srv {
                priority: 10,
                weight: 10,
                port: 3,
                target: "light".into(),
            },
            Srv {
                priority: 10,
                weight: 0,
                port: 4,
                target: "zero".into(),
            },
        ];
        let mut rng = SplitMix64::new(1);
        let mut heavy_first = 0;
        let mut zero_first = 0;
        for _ in 0..10_000 {
            let order: Vec<String> = order_srv_records(records.clone(), &mut rng)
                .into_iter()
                .map(|s| s.target)
                .collect();
            assert_eq!(order.len(), 4);
            assert_eq!(order[3], "late", "priority 20 always last");
            heavy_first += usize::from(order[0] == "heavy");
            zero_first += usize::from(order[0] == "zero");
        }
        // RFC 2782: the draw is uniform in 0..=100 (the weight sum); 0 picks the weight-0
        // record listed first, 1..=90 the heavy one: expect 1/101 and 90/101 of the rounds.
        assert!(
            (8_700..=9_100).contains(&heavy_first),
            "heavy first {heavy_first}"
        );
        assert!((50..=150).contains(&zero_first), "zero first {zero_first}");
        // Deterministic for a given seed.
        let again = |seed| order_srv_records(records.clone(), &mut SplitMix64::new(seed));
        assert_eq!(again(5), again(5));
    }

    #[test]
    fn hosts_file_names_skip_naptr_and_srv() {
        let now = Instant::now();
        let (mut config, _) =
            ResolverConfig::from_system("", "127.0.0.1 localhost\n::1 localhost\n");
        config.nameservers = vec![NS.parse().unwrap()];
        let transports = vec![Transport::Udp];
        let mut l = Locator::new(
            Resolver::new(config, 1),
            LocatorConfig {
                transports,
                outbound_proxy: None,
                address_families: AddressFamilies::Ipv6ThenIpv4,
            },
            2,
        );
        let lookup = l.locate(now, &sip("localhost"));
        assert!(l.poll_transmit().is_none(), "no DNS traffic at all");
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![
                target(Transport::Udp, "[::1]:5060"),
                target(Transport::Udp, "127.0.0.1:5060"),
            ])
        );
    }

    #[test]
    fn ipv6_only_asks_for_aaaa_only() {
        let now = Instant::now();
        let mut l = locator(ALL);
        l.config.address_families = AddressFamilies::Ipv6Only;
        let mut zone = Zone::default();
        zone.add("v6.example", a([192, 0, 2, 1])).add(
            "v6.example",
            RecordData::Aaaa("2001:db8::6".parse().unwrap()),
        );
        let lookup = l.locate(
            now,
            &uri(SipScheme::Sip, "v6.example", Some(5060), Some("tcp")),
        );
        zone.serve(&mut l, now);
        assert_eq!(
            outcome(&mut l, lookup),
            Ok(vec![target(Transport::Tcp, "[2001:db8::6]:5060")])
        );
        assert_eq!(
            zone.asked,
            vec![("v6.example".to_string(), RecordType::Aaaa)]
        );
    }
}
