//! ICE (RFC 8445) for the leg: `rtc`'s sans-IO agent with our host candidate, remote
//! candidates from SDP and trickle, the selected pair, and which sources may send DTLS or
//! media.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::ice::agent::agent_config::AgentConfig;
use rtc::ice::agent::{Agent, Event as IceEvent};
use rtc::ice::candidate::candidate_host::CandidateHostConfig;
use rtc::ice::candidate::{unmarshal_candidate, Candidate, CandidateConfig, CandidateType};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::ice::state::ConnectionState;
use rtc::sansio::Protocol;
use rtc::shared::{TransportContext, TransportProtocol};

use super::super::{WebrtcLegConfig, WebrtcLegEvent};
use super::description;
use super::identity::DtlsIdentity;
use super::{engine_err, queue_copy, WebrtcLeg};
use crate::error::WebrtcError;

/// ICE timing: a check every 50 ms while connecting, consent (RFC 7675) every 2 s after;
/// disconnected after 5 s without a response, failed after 25 s (RFC 7675 sec. 5.1's 30 s
/// consent timeout, less the first interval).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
const ICE_KEEPALIVE: Duration = Duration::from_secs(2);
const ICE_DISCONNECTED: Duration = Duration::from_secs(5);
const ICE_FAILED: Duration = Duration::from_secs(25);

/// Once connected, the agent is run at most this often. `rtc`'s agent asks for a tick every
/// 200 ms whatever its keepalive interval (its timeout interval never exceeds its default
/// check interval), about 4,400 instructions each: most of an idle call's CPU. Consent
/// (every [`ICE_KEEPALIVE`]) and the disconnected/failed timers need no finer grain.
const ICE_CONNECTED_TICK: Duration = Duration::from_millis(1000);

/// Lengths of our ICE username fragment and password in `ice-char`s (RFC 8839 sec. 5.4: at
/// least 4 and 22). The password authenticates connectivity checks (RFC 8445 sec. 7.2.2),
/// so it comes from the injected CSPRNG: 32 letters and digits are about 190 bits.
pub(super) const ICE_UFRAG_LEN: usize = 16;

pub(super) const ICE_PWD_LEN: usize = 32;

/// The ICE agent of one leg with our host candidate added: `rtc`'s agent, host candidates
/// only (the reactor owns the sockets), mDNS off. Returns it and the candidate's address.
pub(super) fn new_agent(
    now: Instant,
    config: &WebrtcLegConfig,
    identity: &DtlsIdentity,
    controlling: bool,
    ufrag: &str,
    pwd: &str,
) -> Result<(Agent, SocketAddr), WebrtcError> {
    let agent_config = AgentConfig {
        lite: config.ice_lite,
        is_controlling: controlling && !config.ice_lite,
        local_ufrag: ufrag.to_owned(),
        local_pwd: pwd.to_owned(),
        candidate_types: vec![CandidateType::Host],
        network_types: vec![NetworkType::Udp4, NetworkType::Udp6],
        multicast_dns_mode: MulticastDnsMode::Disabled,
        check_interval: ICE_CHECK_INTERVAL,
        keepalive_interval: Some(ICE_KEEPALIVE),
        disconnected_timeout: Some(ICE_DISCONNECTED),
        failed_timeout: Some(ICE_FAILED),
        ..Default::default()
    };
    let mut agent = Agent::new(now, Arc::new(agent_config), identity.provider.clone())
        .map_err(engine_err("create the ICE agent"))?;
    let ip = config.advertised_ip.unwrap_or(config.local_addr.ip());
    let candidate_addr = SocketAddr::new(ip, config.local_addr.port());
    let candidate =
        host_candidate(candidate_addr).map_err(engine_err("create the host candidate"))?;
    agent
        .add_local_candidate(candidate)
        .map_err(engine_err("add the host candidate"))?;
    Ok((agent, candidate_addr))
}

/// The host candidate (RFC 8445 sec. 5.1.1.1) of a UDP socket at `addr`, component 1 (RTP,
/// rtcp-mux). The one builder of host candidates: the leg's own, and the simulated browsers
/// of the tests.
pub fn host_candidate(addr: SocketAddr) -> Result<Candidate, rtc::shared::error::Error> {
    CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
}

impl WebrtcLeg {
    /// A trickled remote candidate (RFC 8838); empty = end-of-candidates.
    pub fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), WebrtcError> {
        if self.remote.is_none() {
            return Err(WebrtcError::NoRemoteDescription);
        }
        // Empty = end-of-candidates (RFC 8838 sec. 4.3): nothing to do, checks go on.
        let trimmed = candidate.trim().trim_start_matches("a=");
        if trimmed.is_empty() || trimmed == "end-of-candidates" {
            return Ok(());
        }
        self.cached_deadline = None;
        self.add_candidate_line(trimmed)
    }

    pub(super) fn add_candidate_line(&mut self, line: &str) -> Result<(), WebrtcError> {
        let value = line.trim();
        let value = value.strip_prefix("a=").unwrap_or(value);
        let value = value.strip_prefix("candidate:").unwrap_or(value);
        let candidate = unmarshal_candidate(value).map_err(WebrtcError::InvalidCandidate)?;
        // Only UDP reaches our socket; mDNS names (`.local`) cannot be resolved with mDNS
        // off, and peer-reflexive discovery (RFC 8445 sec. 7.3.1.3) finds those peers anyway.
        if !matches!(
            candidate.network_type(),
            NetworkType::Udp4 | NetworkType::Udp6
        ) {
            return Ok(());
        }
        if candidate.address().parse::<IpAddr>().is_err() {
            return Ok(());
        }
        if self.agent.get_remote_candidates().len() >= description::MAX_REMOTE_CANDIDATES {
            return Err(WebrtcError::WrongState("too many remote candidates"));
        }
        self.agent
            .add_remote_candidate(candidate)
            .map(|_| ())
            .map_err(WebrtcError::InvalidCandidate)
    }

    pub(super) fn transport(&self, from: SocketAddr) -> TransportContext {
        TransportContext {
            local_addr: self.candidate_addr,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        }
    }

    /// Move the ICE agent's datagrams and events out; start DTLS once a pair is selected.
    pub(super) fn drain_ice(&mut self, now: Instant) {
        while let Some(msg) = self.agent.poll_write() {
            queue_copy(
                &mut self.out,
                self.candidate_addr,
                msg.transport.peer_addr,
                &msg.message,
            );
        }
        while let Some(event) = self.agent.poll_event() {
            match event.event {
                IceEvent::SelectedCandidatePairChange(_, remote) => {
                    self.peer = Some(remote.addr());
                }
                IceEvent::ConnectionStateChange(state) => match state {
                    ConnectionState::Connected if !self.ice_connected => {
                        self.ice_connected = true;
                        if let Some((_, remote)) = self.agent.get_selected_candidate_pair() {
                            self.peer = Some(remote.addr());
                        }
                        self.dtls_deadline = Some(now + self.dtls_timeout);
                        self.push_event(WebrtcLegEvent::IceConnected);
                        self.start_dtls_client(now);
                    }
                    ConnectionState::Failed if !self.ice_failed => {
                        self.ice_failed = true;
                        self.dtls_deadline = None;
                        self.push_event(WebrtcLegEvent::IceFailed);
                    }
                    _ => {}
                },
                IceEvent::RoleChange(controlling) => self.controlling = controlling,
                _ => {}
            }
        }
    }

    /// The agent's own deadline, spaced by [`ICE_CONNECTED_TICK`] once ICE is connected.
    pub(super) fn agent_deadline(&mut self) -> Option<Instant> {
        let deadline = self.agent.poll_timeout()?;
        if self.ice_connected && !self.ice_failed {
            Some(deadline.max(self.last_agent_tick + ICE_CONNECTED_TICK))
        } else {
            Some(deadline)
        }
    }

    /// Whether `from` may send us DTLS or media: the current pair, or a candidate ICE knows
    /// (which also refreshes that candidate's last-received time).
    pub(super) fn source_allowed(&mut self, now: Instant, from: SocketAddr) -> bool {
        if self.peer == Some(from) {
            return true;
        }
        let transport = self.transport(from);
        self.agent.is_valid_non_stun_traffic(now, transport)
    }
}
