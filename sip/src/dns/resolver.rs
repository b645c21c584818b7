//! The resolver engine: hosts file, cache, in-flight queries, retransmission, answer checks.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::system::{HostsFile, ResolvConf, SystemConfigWarning};
use super::wire::{self, Response, CLASS_IN};
use engine::Rng;

use super::{DnsError, Record, RecordData, RecordType};

/// RCODE values (RFC 1035 section 4.1.1).
const RCODE_NOERROR: u8 = 0;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_REFUSED: u8 = 5;
/// CNAME links followed inside one answer before giving up; real chains are 1-3 long and a
/// recursive server already bounds them (BIND's limit is 16).
const MAX_CNAME_CHAIN: usize = 8;

/// Settings of a [`Resolver`]. Build with [`ResolverConfig::from_system`] in production or
/// [`ResolverConfig::with_nameservers`] in tests.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Servers in resolv.conf order; tried in turn on timeout or server failure.
    pub nameservers: Vec<SocketAddr>,
    /// Wait for an answer from one server before moving to the next (resolv.conf `timeout:`).
    pub timeout: Duration,
    /// Rounds over the server list before giving up (resolv.conf `attempts:`); a query is
    /// sent at most `attempts x nameservers.len()` times.
    pub attempts: u32,
    /// Start each new query at the next server instead of the first (resolv.conf `rotate`).
    pub rotate: bool,
    /// Static names answered before any query.
    pub hosts: HostsFile,
    /// Most cached answers kept; beyond it the entry closest to expiry is evicted.
    pub cache_capacity: usize,
    /// Most distinct queries outstanding at once; more fail with [`DnsError::TooManyQueries`].
    pub max_in_flight: usize,
    /// Upper bound on how long a positive answer is cached, whatever its TTL.
    pub max_positive_ttl: Duration,
    /// Upper bound on how long NXDOMAIN/NODATA is cached. RFC 2308 section 5 allows hours; a
    /// SIP gateway wants a fixed DNS record to be picked up quickly, so this is short.
    pub max_negative_ttl: Duration,
}

impl ResolverConfig {
    /// Defaults (5 s timeout, 2 attempts, no rotation, empty hosts table) with the given servers.
    pub fn with_nameservers(nameservers: Vec<SocketAddr>) -> Self {
        ResolverConfig {
            nameservers,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
            hosts: HostsFile::default(),
            cache_capacity: 1024,
            max_in_flight: 256,
            max_positive_ttl: Duration::from_secs(24 * 3600),
            max_negative_ttl: Duration::from_secs(60),
        }
    }

    /// Configuration from the text of `/etc/resolv.conf` and `/etc/hosts` (pass `""` for a
    /// missing file). Ignored lines come back as warnings for the startup log.
    pub fn from_system(resolv_conf: &str, hosts: &str) -> (Self, Vec<SystemConfigWarning>) {
        let mut warnings = Vec::new();
        let conf = ResolvConf::parse(resolv_conf, &mut warnings);
        let mut config = ResolverConfig::with_nameservers(conf.nameservers);
        config.timeout = conf.timeout;
        config.attempts = conf.attempts;
        config.rotate = conf.rotate;
        config.hosts = HostsFile::parse(hosts, &mut warnings);
        (config, warnings)
    }
}

/// Handle of one [`Resolver::query`] call; every call gets its own, even when coalesced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(u64);

/// A datagram to send from the resolver's UDP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTransmit {
    /// The nameserver to send to.
    pub destination: SocketAddr,
    /// The DNS query message.
    pub payload: Vec<u8>,
}

/// The outcome of one [`Resolver::query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEvent {
    /// Which query this answers.
    pub query: QueryId,
    /// The name as queried (canonical form).
    pub name: String,
    /// The type queried.
    pub rtype: RecordType,
    /// Records of type `rtype` (after following CNAMEs within the answer; their owner is the
    /// alias target), never empty on success.
    pub result: Result<Vec<Record>, DnsError>,
}

/// A cached outcome (RFC 2308 section 5 caches negative answers too).
#[derive(Debug, Clone)]
enum CachedAnswer {
    Records(Vec<Record>),
    NxDomain,
    NoRecords,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    stored: Instant,
    expires: Instant,
    answer: CachedAnswer,
}

/// One query on the wire, shared by every caller that asked the same question meanwhile.
#[derive(Debug)]
struct InFlight {
    name: String,
    rtype: RecordType,
    waiters: Vec<QueryId>,
    payload: Vec<u8>,
    /// Index into `nameservers` of the first try.
    first_server: usize,
    tries_sent: u32,
    /// Servers this query went to: a late answer from an earlier server is still accepted.
    sent_to: Vec<SocketAddr>,
    deadline: Instant,
    /// The most telling failure so far, reported if all tries fail.
    failure: Option<DnsError>,
}

/// The stub resolver engine (sans-IO; see the [module docs](super)).
///
/// Call order, as for every engine here: after each `query`/`handle_*` call, drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event), then re-arm the
/// timer from [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct Resolver {
    config: ResolverConfig,
    /// Transaction ids (RFC 5452 section 9.2: unpredictable, so spoofed answers miss).
    rng: Rng,
    next_query: u64,
    /// Start server of the next query when `rotate` is set.
    next_rotation: usize,
    cache: HashMap<(String, RecordType), CacheEntry>,
    /// Keyed by DNS transaction id.
    in_flight: HashMap<u16, InFlight>,
    transmits: VecDeque<DnsTransmit>,
    events: VecDeque<DnsEvent>,
}

impl Resolver {
    /// A resolver with `config`; `rng` draws the transaction ids (seed it from the OS in
    /// production: guessable ids make spoofing easier, RFC 5452 section 9.2; with a constant
    /// in tests). With no nameserver configured, 127.0.0.1:53 is used as resolv.conf(5)
    /// specifies.
    pub fn new(mut config: ResolverConfig, rng: Rng) -> Self {
        if config.nameservers.is_empty() {
            config
                .nameservers
                .push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        config.attempts = config.attempts.max(1);
        Resolver {
            config,
            rng,
            next_query: 0,
            next_rotation: 0,
            cache: HashMap::new(),
            in_flight: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts resolving `name` (a domain, trailing dot optional) for `rtype`. The result always
    /// arrives through [`poll_event`](Self::poll_event), even when the hosts file or the cache
    /// answers at once, so callers have a single path.
    ///
    /// `rtype` should be A, AAAA, SRV or NAPTR; CNAMEs are followed, not asked for.
    pub fn query(&mut self, now: Instant, name: &str, rtype: RecordType) -> QueryId {
        let query = QueryId(self.next_query);
        self.next_query += 1;
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();

        let from_hosts = self.config.hosts.lookup(&name, rtype);
        if !from_hosts.is_empty() {
            // A hosts entry has no TTL; 0 keeps any downstream cache from holding it.
            let records = from_hosts
                .into_iter()
                .map(|ip| Record {
                    name: name.clone(),
                    ttl: 0,
                    data: match ip {
                        IpAddr::V4(v4) => RecordData::A(v4),
                        IpAddr::V6(v6) => RecordData::Aaaa(v6),
                    },
                })
                .collect();
            self.emit(query, name, rtype, Ok(records));
            return query;
        }

        if let Some(result) = self.cached(now, &name, rtype) {
            self.emit(query, name, rtype, result);
            return query;
        }

        if let Some(pending) = self
            .in_flight
            .values_mut()
            .find(|f| f.name == name && f.rtype == rtype)
        {
            pending.waiters.push(query);
            return query;
        }

        if self.in_flight.len() >= self.config.max_in_flight {
            let error = DnsError::TooManyQueries { name: name.clone() };
            self.emit(query, name, rtype, Err(error));
            return query;
        }

        // RFC 5452 section 9.2: random ids; distinct from those in flight so that answers can
        // be matched by id alone. At most max_in_flight of 65536 ids are taken, so this ends.
        let id = loop {
            let candidate = (self.rng.next_u64() >> 48) as u16;
            if !self.in_flight.contains_key(&candidate) {
                break candidate;
            }
        };
        let payload = match wire::encode_query(id, &name, rtype) {
            Ok(payload) => payload,
            Err(_) => {
                let error = DnsError::InvalidName { name: name.clone() };
                self.emit(query, name, rtype, Err(error));
                return query;
            }
        };
        let first_server = if self.config.rotate {
            let index = self.next_rotation % self.config.nameservers.len();
            self.next_rotation = index + 1;
            index
        } else {
            0
        };
        let mut pending = InFlight {
            name,
            rtype,
            waiters: vec![query],
            payload,
            first_server,
            tries_sent: 0,
            sent_to: Vec::new(),
            deadline: now,
            failure: None,
        };
        self.send_next_try(now, &mut pending);
        self.in_flight.insert(id, pending);
        query
    }

    /// Feeds a datagram received on the DNS socket from `from`. Call it for every datagram;
    /// anything that is not an answer to a query in flight, from a server it was sent to, with
    /// the same id and question, is ignored (RFC 5452 section 3).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let (id, question) = match wire::parse_response_question(datagram) {
            Ok(start) => start,
            Err(_) => return,
        };
        let Some(pending) = self.in_flight.get(&id) else {
            return;
        };
        let from = canonical(from);
        if !pending.sent_to.iter().any(|&to| canonical(to) == from)
            || question.name != pending.name
            || question.rtype != pending.rtype.code()
            || question.class != CLASS_IN
        {
            return;
        }
        let Some(pending) = self.in_flight.remove(&id) else {
            return;
        };
        match wire::parse_response(datagram) {
            Ok(response) => self.handle_response(now, id, pending, response),
            Err(reason) => {
                let error = DnsError::Malformed {
                    name: pending.name.clone(),
                    reason,
                };
                self.retry_or_fail(now, id, pending, error);
            }
        }
    }

    /// Retransmits or fails queries whose deadline has passed. Call it when the instant from
    /// [`poll_timeout`](Self::poll_timeout) is reached; calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired: Vec<(Instant, u16)> = self
            .in_flight
            .iter()
            .filter(|(_, pending)| pending.deadline <= now)
            .map(|(&id, pending)| (pending.deadline, id))
            .collect();
        // HashMap order is random per process; sorting keeps the engine deterministic.
        expired.sort_unstable();
        for (_, id) in expired {
            if let Some(pending) = self.in_flight.remove(&id) {
                let error = DnsError::Timeout {
                    name: pending.name.clone(),
                };
                self.retry_or_fail(now, id, pending, error);
            }
        }
    }

    /// The next datagram to send. Drain after every call that changes state.
    pub fn poll_transmit(&mut self) -> Option<DnsTransmit> {
        self.transmits.pop_front()
    }

    /// The next finished query. Drain after every call that changes state.
    pub fn poll_event(&mut self) -> Option<DnsEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called; `None` while idle.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.values().map(|p| p.deadline).min()
    }

    /// The configuration in use (after defaults were applied).
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    fn handle_response(&mut self, now: Instant, id: u16, pending: InFlight, response: Response) {
        let name = pending.name.clone();
        if response.truncated {
            // Another server would truncate too; only TCP would help (RFC 7766), not done.
            return self.finish(pending, Err(DnsError::Truncated { name }));
        }
        let negative_ttl = response
            .negative_ttl
            .map(|ttl| Duration::from_secs(u64::from(ttl)).min(self.config.max_negative_ttl));
        match response.rcode {
            RCODE_NOERROR => {
                let (records, ttl) = follow_answer(&name, pending.rtype, response.answers);
                if records.is_empty() {
                    // NODATA (RFC 2308 section 2.2).
                    self.store(now, &pending, negative_ttl, CachedAnswer::NoRecords);
                    let rtype = pending.rtype;
                    self.finish(pending, Err(DnsError::NoRecords { name, rtype }));
                } else {
                    let ttl = Duration::from_secs(u64::from(ttl)).min(self.config.max_positive_ttl);
                    self.store(
                        now,
                        &pending,
                        Some(ttl),
                        CachedAnswer::Records(records.clone()),
                    );
                    self.finish(pending, Ok(records));
                }
            }
            RCODE_NXDOMAIN => {
                self.store(now, &pending, negative_ttl, CachedAnswer::NxDomain);
                self.finish(pending, Err(DnsError::NxDomain { name }));
            }
            // A failing or refusing server says nothing about the name: ask the next one, as
            // the glibc stub resolver does.
            RCODE_SERVFAIL => {
                self.retry_or_fail(now, id, pending, DnsError::ServerFailure { name })
            }
            RCODE_REFUSED => self.retry_or_fail(now, id, pending, DnsError::Refused { name }),
            rcode => self.retry_or_fail(now, id, pending, DnsError::ServerError { name, rcode }),
        }
    }

    /// Sends the next try of `pending` if any is left (putting it back in flight), else fails
    /// it with the most telling error seen.
    fn retry_or_fail(&mut self, now: Instant, id: u16, mut pending: InFlight, error: DnsError) {
        // A server's explicit failure says more than another server's silence.
        let failure = match pending.failure.take() {
            Some(earlier) if matches!(error, DnsError::Timeout { .. }) => earlier,
            _ => error,
        };
        let servers = u32::try_from(self.config.nameservers.len()).unwrap_or(u32::MAX);
        if pending.tries_sent < self.config.attempts.saturating_mul(servers) {
            pending.failure = Some(failure);
            self.send_next_try(now, &mut pending);
            self.in_flight.insert(id, pending);
        } else {
            self.finish(pending, Err(failure));
        }
    }

    /// Try k goes to server (first + k) mod n: each round visits every server once, in
    /// resolv.conf order (resolv.conf(5) `attempts`).
    fn send_next_try(&mut self, now: Instant, pending: &mut InFlight) {
        let servers = &self.config.nameservers;
        let index = (pending.first_server + pending.tries_sent as usize) % servers.len();
        // In bounds: `new` guarantees at least one server and the index is taken modulo len.
        let destination = servers[index];
        pending.tries_sent += 1;
        pending.deadline = now + self.config.timeout;
        if !pending.sent_to.contains(&destination) {
            pending.sent_to.push(destination);
        }
        self.transmits.push_back(DnsTransmit {
            destination,
            payload: pending.payload.clone(),
        });
    }

    fn finish(&mut self, pending: InFlight, result: Result<Vec<Record>, DnsError>) {
        for query in pending.waiters {
            self.emit(query, pending.name.clone(), pending.rtype, result.clone());
        }
    }

    fn emit(
        &mut self,
        query: QueryId,
        name: String,
        rtype: RecordType,
        result: Result<Vec<Record>, DnsError>,
    ) {
        self.events.push_back(DnsEvent {
            query,
            name,
            rtype,
            result,
        });
    }

    /// The cached outcome, with TTLs counted down, if one is still valid.
    fn cached(
        &mut self,
        now: Instant,
        name: &str,
        rtype: RecordType,
    ) -> Option<Result<Vec<Record>, DnsError>> {
        let key = (name.to_string(), rtype);
        let entry = self.cache.get(&key)?;
        if entry.expires <= now {
            self.cache.remove(&key);
            return None;
        }
        let elapsed = u32::try_from(now.duration_since(entry.stored).as_secs()).unwrap_or(u32::MAX);
        let name = name.to_string();
        Some(match &entry.answer {
            CachedAnswer::Records(records) => Ok(records
                .iter()
                .map(|record| Record {
                    ttl: record.ttl.saturating_sub(elapsed),
                    ..record.clone()
                })
                .collect()),
            CachedAnswer::NxDomain => Err(DnsError::NxDomain { name }),
            CachedAnswer::NoRecords => Err(DnsError::NoRecords { name, rtype }),
        })
    }

    /// Caches an outcome for `ttl`; `None` or zero means not cacheable (RFC 2308 section 5:
    /// negative answers without an SOA are not cached).
    fn store(
        &mut self,
        now: Instant,
        pending: &InFlight,
        ttl: Option<Duration>,
        answer: CachedAnswer,
    ) {
        let Some(ttl) = ttl.filter(|ttl| !ttl.is_zero()) else {
            return;
        };
        if self.config.cache_capacity == 0 {
            return;
        }
        if self.cache.len() >= self.config.cache_capacity {
            self.cache.retain(|_, entry| entry.expires > now);
        }
        if self.cache.len() >= self.config.cache_capacity {
            let soonest = self
                .cache
                .iter()
                // Ties broken by key so that eviction does not depend on HashMap order.
                .min_by(|a, b| a.1.expires.cmp(&b.1.expires).then_with(|| a.0.cmp(b.0)))
                .map(|(key, _)| key.clone());
            if let Some(key) = soonest {
                self.cache.remove(&key);
            }
        }
        self.cache.insert(
            (pending.name.clone(), pending.rtype),
            CacheEntry {
                stored: now,
                expires: now + ttl,
                answer,
            },
        );
    }
}

/// The records answering `name`/`rtype`, following CNAMEs inside the answer section (RFC 1034
/// section 3.6.2: a recursive server returns the chain and the target's records together),
/// and the smallest TTL along the way, which bounds how long the result may be cached.
fn follow_answer(name: &str, rtype: RecordType, answers: Vec<Record>) -> (Vec<Record>, u32) {
    let mut current = name.to_string();
    let mut ttl = u32::MAX;
    for _ in 0..=MAX_CNAME_CHAIN {
        let found: Vec<Record> = answers
            .iter()
            .filter(|r| r.name == current && r.data.rtype() == rtype)
            .cloned()
            .collect();
        if !found.is_empty() {
            let ttl = found.iter().map(|r| r.ttl).fold(ttl, u32::min);
            return (found, ttl);
        }
        let alias = answers.iter().find_map(|r| match &r.data {
            RecordData::Cname(target) if r.name == current => Some((target.clone(), r.ttl)),
            _ => None,
        });
        match alias {
            Some((target, alias_ttl)) => {
                ttl = ttl.min(alias_ttl);
                current = target;
            }
            None => break,
        }
    }
    (Vec::new(), 0)
}

/// Compares addresses the way a dual-stack socket reports them: `::ffff:a.b.c.d` is a.b.c.d,
/// and IPv6 flow info and scope do not matter.
fn canonical(addr: SocketAddr) -> (IpAddr, u16) {
    (addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests;
