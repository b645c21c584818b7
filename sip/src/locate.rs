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

use super::dns::{DnsError, DnsTransmit, QueryId, Record, RecordData, RecordType, Resolver, Srv};
use super::transport::Transport;
use engine::Rng;

/// Hosts (SRV targets) one lookup resolves at most. A hostile or broken DNS answer could list
/// hundreds; a SIP transaction will not fail over that many times anyway.
const MAX_HOSTS: usize = 16;

/// RFC 3263 names of each transport.
impl Transport {
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

    /// Puts `target` back in front: it is the next one taken.
    pub fn push_front(&mut self, target: Target) {
        self.targets.push_front(target);
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
    rng: Rng,
    next_lookup: u64,
    lookups: HashMap<LookupId, Lookup>,
    /// Which lookup is waiting for each resolver query.
    owners: HashMap<QueryId, LookupId>,
    events: VecDeque<LocateEvent>,
    /// Domains served by a fixed next hop, before the outbound proxy and DNS (the local
    /// domain of a standalone gateway: its own address).
    static_routes: HashMap<String, Target>,
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
    /// A locator resolving through `resolver`; `rng` draws the SRV weights (seeded with a
    /// constant in tests, from the OS in production so that load spreads as the weights say).
    pub fn new(resolver: Resolver, config: LocatorConfig, rng: Rng) -> Self {
        Locator {
            resolver,
            config,
            rng,
            next_lookup: 0,
            lookups: HashMap::new(),
            owners: HashMap::new(),
            events: VecDeque::new(),
            static_routes: HashMap::new(),
        }
    }

    /// Requests for `domain` go to `target`, without the outbound proxy or DNS.
    pub fn set_static_route(&mut self, domain: &str, target: Target) {
        self.static_routes
            .insert(domain.to_ascii_lowercase(), target);
    }

    /// Starts locating `uri`, or the configured outbound proxy if there is one. The outcome
    /// arrives as a [`LocateEvent`], also when it is known at once (numeric host, bad URI).
    pub fn locate(&mut self, now: Instant, uri: &SipUriParts) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        if let Some(target) = self.static_routes.get(&uri.host.to_ascii_lowercase()) {
            let targets = TargetList {
                targets: VecDeque::from([target.clone()]),
            };
            self.finish(id, Ok(targets));
            return id;
        }
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
    pub fn poll_transmit(&mut self) -> Option<DnsTransmit> {
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
pub fn order_srv_records(mut records: Vec<Srv>, rng: &mut Rng) -> Vec<Srv> {
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
mod tests;
