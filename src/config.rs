//! Configuration: the TOML file's types, the embedded defaults and validation.
//!
//! With no file the gateway runs on loopback with the dev certificate from `certs/` compiled
//! into the binary, so `cargo run` works from a fresh clone. Every key is documented in
//! `sylk-gateway.sample.toml`; keep the two in step.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod local;

pub use local::{LocalConfig, DEFAULT_LOCAL_DOMAIN};
mod chat;
mod contacts;
mod messaging;

pub use chat::ChatConfig;
pub use contacts::{AddressbookConfig, ContactsConfig, PresenceConfig, XcapConfig};
pub use messaging::{MessagingConfig, DEFAULT_DATABASE};

/// The dev-only certificate for `localhost`/`127.0.0.1`, embedded so the default `wss://`
/// listener works without any file next to the binary.
pub const DEV_CERTIFICATE_PEM: &[u8] = include_bytes!("../certs/localhost.crt");
/// The private key of [`DEV_CERTIFICATE_PEM`].
pub const DEV_PRIVATE_KEY_PEM: &[u8] = include_bytes!("../certs/localhost.key");

/// Why a configuration was refused. The binary prints it and exits with code 2.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The path given with `--config`.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The file is not valid TOML or a key has the wrong type (the message names the key).
    Syntax(String),
    /// A key has a value of the right type that is not acceptable.
    Invalid {
        /// Dotted key name, e.g. `websocket.ws_listen`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "cannot read config file {}: {error}", path.display())
            }
            ConfigError::Syntax(msg) => write!(f, "config file error: {msg}"),
            ConfigError::Invalid { key, reason } => write!(f, "config key {key}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where the TLS certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// The dev certificate compiled into the binary.
    EmbeddedDev,
    /// PEM files on disk.
    Files {
        /// Certificate chain (PEM).
        certificate: PathBuf,
        /// Private key (PEM, PKCS#8, PKCS#1 or SEC1).
        private_key: PathBuf,
    },
}

/// Settings of the WebSocket side (`[websocket]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// Plain `ws://` listen address; `None` disables it.
    pub ws_listen: Option<SocketAddr>,
    /// `wss://` listen address; `None` disables it.
    pub wss_listen: Option<SocketAddr>,
    /// Certificate for `wss://`.
    pub tls: TlsSource,
    /// Allowed `Origin` values; `*` allows any, including none.
    pub origins: Vec<String>,
    /// With an allow-list, whether a request without any `Origin` header passes (native
    /// clients send none; browsers always send one, so this opens nothing to web pages).
    pub allow_missing_origin: bool,
    /// Interval between server pings; zero disables them.
    pub ping_interval: Duration,
    /// Largest accepted message (and frame) from a client, in bytes.
    pub max_message_size: usize,
    /// Largest amount of output queued for one connection before it is closed, in bytes.
    pub max_queued_output: usize,
    /// Most simultaneous WebSocket connections.
    pub max_connections: usize,
}

impl WebSocketConfig {
    /// Pong timeout: half the ping interval, as SylkServer's Autobahn auto-ping does.
    pub fn pong_timeout(&self) -> Duration {
        self.ping_interval / 2
    }
}

/// Settings of the sylkRTC layer and its accounts (`[sylkrtc]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SylkRtcConfig {
    /// SIP domains accounts may belong to; `*` allows any.
    pub sip_domains: Vec<String>,
    /// Most accounts one connection may add.
    pub max_accounts_per_connection: usize,
}

impl SylkRtcConfig {
    /// Whether an account in `domain` may be added (case-insensitive, as DNS names are).
    pub fn domain_allowed(&self, domain: &str) -> bool {
        self.sip_domains
            .iter()
            .any(|d| d == "*" || d.eq_ignore_ascii_case(domain))
    }
}

pub use sip::transport::Transport as SipTransport;

/// Settings of the SIP side (`[sip]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP and TCP listen address.
    pub listen: SocketAddr,
    /// TLS listen address; `None` disables incoming TLS (outgoing TLS still works).
    pub tls_listen: Option<SocketAddr>,
    /// Host (IP or name) put into Via and Contact instead of the listen IP, for NAT.
    pub advertised_host: Option<String>,
    /// Every request goes to this proxy instead of an RFC 3263 lookup of the target.
    pub outbound_proxy: Option<String>,
    /// Transports used for outgoing requests, in order of preference.
    pub transports: Vec<SipTransport>,
    /// Requested registration lifetime in seconds (SylkServer/Janus `register_ttl`).
    pub register_expires: u32,
    /// User-Agent of accounts that do not name their own.
    pub user_agent: String,
    /// Verify TLS server certificates (disable only in a lab).
    pub tls_verify: bool,
    /// Extra CA certificates (PEM) trusted for TLS, besides the system roots.
    pub tls_ca_file: Option<PathBuf>,
    /// DNS servers for RFC 3263 lookups; empty means those of `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// Status code for declining an unanswered incoming call (`session-terminate`),
    /// SylkServer's `[Janus] decline_code`.
    pub decline_code: u16,
    /// The RFC 4028 session interval our INVITEs ask for (and our answers grant when the
    /// caller supports timers but asks for none); 0: none asked for (a peer's is honoured).
    pub session_expires: u32,
    /// How push tokens (`account-devicetoken`) go into the REGISTER Contact.
    pub push_parameters: PushParameters,
    /// REGISTERs carry a Path header naming this instance (RFC 3327), for several instances
    /// behind one registrar.
    pub register_path: bool,
    /// Each registration's Contact carries an RFC 5626 instance id and reg-id.
    pub register_instance_id: bool,
}

/// The form of the push parameters in a registration's Contact (`sip.push_parameters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushParameters {
    /// `"rfc8599"`: `pn-provider`, `pn-prid`, `pn-param` (RFC 8599 section 4.1).
    #[default]
    Rfc8599,
    /// `"sylkserver"`: SylkServer's `pn-app`, `pn-tok`, `pn-type`, `pn-device`, `pn-silent`.
    SylkServer,
}

impl PushParameters {
    /// Parses the configuration value.
    pub fn parse(value: &str) -> Option<PushParameters> {
        match value.trim() {
            "rfc8599" => Some(PushParameters::Rfc8599),
            "sylkserver" => Some(PushParameters::SylkServer),
            _ => None,
        }
    }
}

/// When the gateway's own SIP offers use SRTP with SDES keys (`media.sip_srtp`, RFC 4568).
///
/// Whatever the setting, a SIP peer's `RTP/SAVP` offer is answered with SDES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SipSrtp {
    /// `"auto"`: offer plain `RTP/AVP`; if the callee refuses the INVITE with 488 Not
    /// Acceptable Here (RFC 3261 section 21.4.26), send it once more offering `RTP/SAVP` with
    /// `a=crypto` keys. An INVITE without SDP gets a plain offer in the 200.
    #[default]
    Auto,
    /// `"mandatory"`: every offer is `RTP/SAVP` with `a=crypto` keys, in INVITEs and in the
    /// 200 to an INVITE without SDP; an answer that drops to plain RTP ends the call.
    Mandatory,
    /// `"off"`: plain `RTP/AVP` offers only, no retry after 488.
    Off,
}

impl SipSrtp {
    /// Parses the configuration value (`auto`, `mandatory`, `off`).
    pub fn parse(value: &str) -> Option<SipSrtp> {
        match value.trim() {
            "auto" => Some(SipSrtp::Auto),
            "mandatory" => Some(SipSrtp::Mandatory),
            "off" => Some(SipSrtp::Off),
            _ => None,
        }
    }

    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            SipSrtp::Auto => "auto",
            SipSrtp::Mandatory => "mandatory",
            SipSrtp::Off => "off",
        }
    }
}

/// Settings of the media side (`[media]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// IP the RTP and WebRTC sockets bind to.
    pub address: std::net::IpAddr,
    /// IP written into SDP and ICE candidates instead (NAT).
    pub advertised_address: Option<std::net::IpAddr>,
    /// UDP port range for RTP/RTCP pairs and WebRTC sockets, inclusive.
    pub rtp_ports: (u16, u16),
    /// Report a call's media as dead after this long without RTP on a leg.
    pub inactivity_timeout: Duration,
    /// Answer ICE as ICE-lite (for a gateway on a public address).
    pub ice_lite: bool,
    /// SRTP (SDES) in the gateway's own SIP offers.
    pub sip_srtp: SipSrtp,
    /// Most calls one connection may have.
    pub max_calls_per_connection: usize,
    /// Most calls in total.
    pub max_calls: usize,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `<UTC time> <LEVEL> <target>: <message>` with `key=value` context.
    #[default]
    Text,
    /// One JSON object per line, the stable keys (`conn`, `account`, `call`,
    /// `sip_call_id`) as fields, for log shippers.
    Json,
}

/// Logging settings (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Most verbose level written.
    pub level: log::LevelFilter,
    /// Line format.
    pub format: LogFormat,
    /// Trace every WebSocket frame in and out (HA1 values redacted).
    pub trace_websocket: bool,
}

/// The operational endpoints (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// A separate listener for `/metrics`, `/health`, `/ready` and `POST /admin/drain`;
    /// `None`: `/metrics` is served on the WebSocket listeners and there is no drain switch.
    pub listen: Option<SocketAddr>,
}

/// Graceful shutdown (`[shutdown]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// How long calls in progress may go on after SIGTERM (or `POST /admin/drain`) before
    /// they are ended; zero ends them at once.
    pub drain_timeout: Duration,
}

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// WebSocket side.
    pub websocket: WebSocketConfig,
    /// sylkRTC layer.
    pub sylkrtc: SylkRtcConfig,
    /// SIP side.
    pub sip: SipConfig,
    /// Media side.
    pub media: MediaConfig,
    /// Messaging.
    pub messaging: MessagingConfig,
    /// Addressbook, XCAP and presence.
    pub contacts: ContactsConfig,
    /// Chat sessions over MSRP.
    pub msrp: ChatConfig,
    /// Logging.
    pub log: LogConfig,
    /// Operational endpoints.
    pub metrics: MetricsConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// The local domain (standalone mode).
    pub local: LocalConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            websocket: WebSocketConfig {
                ws_listen: Some(SocketAddr::from(([127, 0, 0, 1], 10888))),
                wss_listen: Some(SocketAddr::from(([127, 0, 0, 1], 10889))),
                tls: TlsSource::EmbeddedDev,
                origins: vec!["*".to_owned()],
                allow_missing_origin: true,
                ping_interval: Duration::from_secs(120),
                max_message_size: 64 * 1024,
                max_queued_output: 1024 * 1024,
                max_connections: 10_000,
            },
            sylkrtc: SylkRtcConfig {
                sip_domains: vec!["*".to_owned()],
                max_accounts_per_connection: 10,
            },
            sip: SipConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 5070)),
                tls_listen: None,
                advertised_host: None,
                outbound_proxy: None,
                transports: vec![SipTransport::Udp, SipTransport::Tcp, SipTransport::Tls],
                register_expires: 600,
                user_agent: format!("sylk-gateway/{}", env!("CARGO_PKG_VERSION")),
                tls_verify: true,
                tls_ca_file: None,
                nameservers: Vec::new(),
                decline_code: 486,
                session_expires: 1800,
                push_parameters: PushParameters::Rfc8599,
                register_path: false,
                register_instance_id: false,
            },
            media: MediaConfig {
                address: std::net::IpAddr::from([127, 0, 0, 1]),
                advertised_address: None,
                rtp_ports: (20000, 29999),
                inactivity_timeout: Duration::from_secs(60),
                ice_lite: false,
                sip_srtp: SipSrtp::Auto,
                max_calls_per_connection: 10,
                max_calls: 2000,
            },
            messaging: MessagingConfig {
                database: DEFAULT_DATABASE.to_owned(),
                max_age_days: 365,
                max_content_size: 64 * 1024,
                send_rate: 20,
                incoming_rate: 20,
                store_queue: 4096,
            },
            contacts: ContactsConfig::default(),
            msrp: ChatConfig {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                tls_listen: None,
                advertised_host: None,
                tls: false,
                relay: None,
                relays: Vec::new(),
                max_message_size: 1024 * 1024,
                auth_expires: 600,
            },
            log: LogConfig {
                level: log::LevelFilter::Info,
                format: LogFormat::Text,
                trace_websocket: false,
            },
            metrics: MetricsConfig { listen: None },
            shutdown: ShutdownConfig {
                drain_timeout: Duration::from_secs(300),
            },
            local: LocalConfig::default(),
        }
    }
}

/// The file as written: every key optional, unknown keys refused so typos are caught.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    websocket: FileWebSocket,
    #[serde(default)]
    sylkrtc: FileSylkRtc,
    #[serde(default)]
    sip: FileSip,
    #[serde(default)]
    media: FileMedia,
    #[serde(default)]
    messaging: messaging::FileMessaging,
    #[serde(default)]
    addressbook: contacts::FileAddressbook,
    #[serde(default)]
    xcap: contacts::FileXcap,
    #[serde(default)]
    presence: contacts::FilePresence,
    #[serde(default)]
    msrp: chat::FileMsrp,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    shutdown: FileShutdown,
    #[serde(default)]
    local: local::FileLocal,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShutdown {
    drain_timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMedia {
    address: Option<String>,
    advertised_address: Option<String>,
    rtp_ports: Option<String>,
    inactivity_timeout: Option<u64>,
    ice_lite: Option<bool>,
    webrtc_engine: Option<String>,
    sip_srtp: Option<String>,
    max_calls_per_connection: Option<usize>,
    max_calls: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSip {
    listen: Option<String>,
    tls_listen: Option<String>,
    advertised_host: Option<String>,
    outbound_proxy: Option<String>,
    transports: Option<Vec<String>>,
    register_expires: Option<u32>,
    user_agent: Option<String>,
    tls_verify: Option<bool>,
    tls_ca_file: Option<PathBuf>,
    nameservers: Option<Vec<String>>,
    decline_code: Option<u16>,
    session_expires: Option<u32>,
    push_parameters: Option<String>,
    register_path: Option<bool>,
    register_instance_id: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebSocket {
    ws_listen: Option<String>,
    wss_listen: Option<String>,
    tls_certificate: Option<PathBuf>,
    tls_private_key: Option<PathBuf>,
    origins: Option<Vec<String>>,
    allow_missing_origin: Option<bool>,
    ping_interval: Option<u64>,
    max_message_size: Option<usize>,
    max_queued_output: Option<usize>,
    max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSylkRtc {
    sip_domains: Option<Vec<String>>,
    max_accounts_per_connection: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    level: Option<String>,
    format: Option<String>,
    trace_websocket: Option<bool>,
}

/// Command-line values that override the file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Overrides {
    /// `--ws-listen ADDR|off`
    pub ws_listen: Option<String>,
    /// `--wss-listen ADDR|off`
    pub wss_listen: Option<String>,
    /// `--sip-listen ADDR`
    pub sip_listen: Option<String>,
    /// `--sip-tls-listen ADDR|off`
    pub sip_tls_listen: Option<String>,
    /// `--outbound-proxy URI`
    pub outbound_proxy: Option<String>,
    /// `--rtp-ports MIN-MAX`
    pub rtp_ports: Option<String>,
    /// `--media-address IP` (advertised)
    pub media_address: Option<String>,
    /// `--sip-srtp auto|mandatory|off`
    pub sip_srtp: Option<String>,
    /// `--database PATH` (`messaging.database`)
    pub database: Option<String>,
    /// `--msrp-listen ADDR|off`
    pub msrp_listen: Option<String>,
    /// `--log-level LEVEL`
    pub log_level: Option<String>,
    /// `--metrics-listen ADDR|off`
    pub metrics_listen: Option<String>,
    /// `--trace-websocket`
    pub trace_websocket: bool,
}

impl Config {
    /// Reads and validates the file at `path`, then applies `overrides`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|error| ConfigError::Read {
                path: p.to_owned(),
                error,
            })?,
            None => String::new(),
        };
        Config::from_toml(&text, overrides)
    }

    /// Validates TOML text (empty text means all defaults), then applies `overrides`.
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let file: FileConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let mut config = Config::default();
        let ws = &mut config.websocket;
        let fw = file.websocket;
        if let Some(v) = overrides.ws_listen.as_deref().or(fw.ws_listen.as_deref()) {
            ws.ws_listen = parse_listen("websocket.ws_listen", v)?;
        }
        if let Some(v) = overrides.wss_listen.as_deref().or(fw.wss_listen.as_deref()) {
            ws.wss_listen = parse_listen("websocket.wss_listen", v)?;
        }
        match (fw.tls_certificate, fw.tls_private_key) {
            (None, None) => {}
            (Some(certificate), Some(private_key)) => {
                ws.tls = TlsSource::Files {
                    certificate,
                    private_key,
                }
            }
            (Some(_), None) => {
                return Err(invalid(
                    "websocket.tls_private_key",
                    "must be set together with websocket.tls_certificate",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "websocket.tls_certificate",
                    "must be set together with websocket.tls_private_key",
                ))
            }
        }
        if let Some(origins) = fw.origins {
            if origins.is_empty() {
                return Err(invalid(
                    "websocket.origins",
                    "must not be empty (use [\"*\"] to allow any)",
                ));
            }
            ws.origins = origins;
        }
        if let Some(allow) = fw.allow_missing_origin {
            ws.allow_missing_origin = allow;
        }
        if let Some(secs) = fw.ping_interval {
            ws.ping_interval = Duration::from_secs(secs);
        }
        if let Some(n) = fw.max_message_size {
            if !(1024..=16 * 1024 * 1024).contains(&n) {
                return Err(invalid(
                    "websocket.max_message_size",
                    "must be between 1024 and 16777216",
                ));
            }
            ws.max_message_size = n;
        }
        if let Some(n) = fw.max_queued_output {
            if n < 64 * 1024 {
                return Err(invalid(
                    "websocket.max_queued_output",
                    "must be at least 65536",
                ));
            }
            ws.max_queued_output = n;
        }
        if let Some(n) = fw.max_connections {
            if n == 0 || n > 1_000_000 {
                return Err(invalid(
                    "websocket.max_connections",
                    "must be between 1 and 1000000",
                ));
            }
            ws.max_connections = n;
        }
        if ws.ws_listen.is_none() && ws.wss_listen.is_none() {
            return Err(invalid(
                "websocket.ws_listen",
                "ws_listen and wss_listen are both off; enable at least one",
            ));
        }
        let fs = file.sylkrtc;
        if let Some(domains) = fs.sip_domains {
            if domains.is_empty() {
                return Err(invalid(
                    "sylkrtc.sip_domains",
                    "must not be empty (use [\"*\"] to allow any)",
                ));
            }
            config.sylkrtc.sip_domains = domains;
        }
        if let Some(n) = fs.max_accounts_per_connection {
            if n == 0 || n > 1000 {
                return Err(invalid(
                    "sylkrtc.max_accounts_per_connection",
                    "must be between 1 and 1000",
                ));
            }
            config.sylkrtc.max_accounts_per_connection = n;
        }
        apply_sip(&mut config.sip, file.sip, overrides)?;
        apply_media(&mut config.media, file.media, overrides)?;
        messaging::apply(&mut config.messaging, file.messaging, overrides)?;
        contacts::apply(
            &mut config.contacts,
            file.addressbook,
            file.xcap,
            file.presence,
        )?;
        chat::apply(&mut config.msrp, file.msrp, overrides)?;
        if let Some(level) = overrides.log_level.as_deref().or(file.log.level.as_deref()) {
            config.log.level = level.parse().map_err(|_| {
                invalid(
                    "log.level",
                    "must be one of off, error, warn, info, debug, trace",
                )
            })?;
        }
        if let Some(format) = file.log.format.as_deref() {
            config.log.format = match format {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(invalid("log.format", "must be \"text\" or \"json\"")),
            };
        }
        config.log.trace_websocket =
            overrides.trace_websocket || file.log.trace_websocket.unwrap_or(false);
        if let Some(v) = overrides
            .metrics_listen
            .as_deref()
            .or(file.metrics.listen.as_deref())
        {
            config.metrics.listen = parse_listen("metrics.listen", v)?;
        }
        if let Some(secs) = file.shutdown.drain_timeout {
            if secs > 86_400 {
                return Err(invalid(
                    "shutdown.drain_timeout",
                    "must be at most 86400 seconds",
                ));
            }
            config.shutdown.drain_timeout = Duration::from_secs(secs);
        }
        local::apply_local(&mut config.local, file.local)?;
        Ok(config)
    }
}

fn apply_sip(sip: &mut SipConfig, file: FileSip, o: &Overrides) -> Result<(), ConfigError> {
    if let Some(v) = o.sip_listen.as_deref().or(file.listen.as_deref()) {
        sip.listen = parse_listen("sip.listen", v)?
            .ok_or_else(|| invalid("sip.listen", "the SIP UDP/TCP listener cannot be off"))?;
    }
    if let Some(v) = o.sip_tls_listen.as_deref().or(file.tls_listen.as_deref()) {
        sip.tls_listen = parse_listen("sip.tls_listen", v)?;
    }
    if let Some(h) = file.advertised_host {
        if h.is_empty() || h.contains(|c: char| c.is_whitespace() || c == '<' || c == '>') {
            return Err(invalid(
                "sip.advertised_host",
                "must be an IP address or host name",
            ));
        }
        sip.advertised_host = Some(h);
    }
    if let Some(p) = o
        .outbound_proxy
        .as_deref()
        .or(file.outbound_proxy.as_deref())
    {
        let p = p.trim();
        if !p.is_empty() && !p.eq_ignore_ascii_case("off") {
            if sip::msg::Uri::parse(p).map_or(true, |u| !u.is_sip()) {
                return Err(invalid(
                    "sip.outbound_proxy",
                    "must be a sip: or sips: URI, e.g. sip:127.0.0.1:5060;transport=tcp",
                ));
            }
            sip.outbound_proxy = Some(p.to_owned());
        }
    }
    if let Some(list) = file.transports {
        let mut out = Vec::new();
        for t in &list {
            let t = match t.to_ascii_lowercase().as_str() {
                "udp" => SipTransport::Udp,
                "tcp" => SipTransport::Tcp,
                "tls" => SipTransport::Tls,
                _ => return Err(invalid("sip.transports", "entries must be udp, tcp or tls")),
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
        if out.is_empty() {
            return Err(invalid(
                "sip.transports",
                "must name at least one transport",
            ));
        }
        sip.transports = out;
    }
    if let Some(e) = file.register_expires {
        if !(60..=86_400).contains(&e) {
            return Err(invalid(
                "sip.register_expires",
                "must be between 60 and 86400 seconds",
            ));
        }
        sip.register_expires = e;
    }
    if let Some(ua) = file.user_agent {
        if ua.trim().is_empty() || ua.contains(['\r', '\n']) {
            return Err(invalid("sip.user_agent", "must be a non-empty single line"));
        }
        sip.user_agent = ua;
    }
    if let Some(v) = file.tls_verify {
        sip.tls_verify = v;
    }
    if let Some(v) = file.register_path {
        sip.register_path = v;
    }
    if let Some(v) = file.register_instance_id {
        sip.register_instance_id = v;
    }
    sip.tls_ca_file = file.tls_ca_file.or(sip.tls_ca_file.take());
    if let Some(code) = file.decline_code {
        if !(400..=699).contains(&code) {
            return Err(invalid(
                "sip.decline_code",
                "must be a 4xx, 5xx or 6xx status code",
            ));
        }
        sip.decline_code = code;
    }
    if let Some(secs) = file.session_expires {
        if secs != 0 && !(90..=86_400).contains(&secs) {
            return Err(invalid(
                "sip.session_expires",
                "must be 0 (off) or between 90 (RFC 4028 Min-SE) and 86400 seconds",
            ));
        }
        sip.session_expires = secs;
    }
    if let Some(v) = file.push_parameters {
        sip.push_parameters = PushParameters::parse(&v).ok_or_else(|| {
            invalid(
                "sip.push_parameters",
                "must be \"rfc8599\" or \"sylkserver\"",
            )
        })?;
    }
    if let Some(list) = file.nameservers {
        sip.nameservers = list
            .iter()
            .map(|n| {
                n.parse::<SocketAddr>()
                    .or_else(|_| {
                        n.parse::<std::net::IpAddr>()
                            .map(|ip| SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| invalid("sip.nameservers", "entries must be IP or IP:port"))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

fn apply_media(m: &mut MediaConfig, file: FileMedia, o: &Overrides) -> Result<(), ConfigError> {
    let ip = |key: &'static str, v: &str| {
        v.trim()
            .parse::<std::net::IpAddr>()
            .map_err(|_| invalid(key, "must be an IP address"))
    };
    if let Some(a) = file.address {
        m.address = ip("media.address", &a)?;
    }
    if let Some(a) = o
        .media_address
        .as_deref()
        .or(file.advertised_address.as_deref())
    {
        m.advertised_address = Some(ip("media.advertised_address", a)?);
    }
    if let Some(r) = o.rtp_ports.as_deref().or(file.rtp_ports.as_deref()) {
        let bad = || {
            invalid(
                "media.rtp_ports",
                "must be MIN-MAX with 1024 <= MIN < MAX <= 65535 and room for two pairs",
            )
        };
        let (lo, hi) = r.split_once('-').ok_or_else(bad)?;
        let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
        if lo < 1024 || hi < lo.saturating_add(3) {
            return Err(bad());
        }
        m.rtp_ports = (lo, hi);
    }
    if let Some(secs) = file.inactivity_timeout {
        if secs == 0 {
            return Err(invalid(
                "media.inactivity_timeout",
                "must be at least 1 second",
            ));
        }
        m.inactivity_timeout = Duration::from_secs(secs);
    }
    if let Some(v) = file.ice_lite {
        m.ice_lite = v;
    }
    // One WebRTC engine remains (issue 10): the key stays accepted for existing configs.
    match file.webrtc_engine.as_deref() {
        None | Some("direct") => {}
        Some("peer-connection") => {
            return Err(invalid(
                "media.webrtc_engine",
                "\"peer-connection\" (rtc's RTCPeerConnection engine) was retired; \
                 \"direct\" is the only engine, remove the key or set it to \"direct\"",
            ))
        }
        Some(_) => return Err(invalid("media.webrtc_engine", "must be \"direct\"")),
    }
    if let Some(v) = o.sip_srtp.as_deref().or(file.sip_srtp.as_deref()) {
        m.sip_srtp = SipSrtp::parse(v).ok_or_else(|| {
            invalid(
                "media.sip_srtp",
                "must be \"auto\", \"mandatory\" or \"off\"",
            )
        })?;
    }
    if let Some(n) = file.max_calls_per_connection {
        if n == 0 {
            return Err(invalid(
                "media.max_calls_per_connection",
                "must be at least 1",
            ));
        }
        m.max_calls_per_connection = n;
    }
    if let Some(n) = file.max_calls {
        if n == 0 {
            return Err(invalid("media.max_calls", "must be at least 1"));
        }
        m.max_calls = n;
    }
    Ok(())
}

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.to_owned(),
    }
}

/// Parses a listen address; `off` (or an empty string) disables the listener.
fn parse_listen(key: &'static str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| ConfigError::Invalid {
        key,
        reason: format!("'{value}' is not an IP:port address (or 'off')"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_loopback_defaults() {
        let c = Config::from_toml("", &Overrides::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(
            c.websocket.ws_listen.unwrap().to_string(),
            "127.0.0.1:10888"
        );
        assert_eq!(
            c.websocket.wss_listen.unwrap().to_string(),
            "127.0.0.1:10889"
        );
        assert_eq!(c.websocket.pong_timeout(), Duration::from_secs(60));
    }

    #[test]
    fn sample_file_is_valid_and_matches_defaults() {
        let text = include_str!("../sylk-gateway.sample.toml");
        let c = Config::from_toml(text, &Overrides::default()).unwrap();
        assert_eq!(
            c,
            Config::default(),
            "every key of the sample is the default"
        );
        assert_eq!(c.sylkrtc, Config::default().sylkrtc);
        assert_eq!(c.websocket.ws_listen, Config::default().websocket.ws_listen);
        assert_eq!(c.media.sip_srtp, SipSrtp::Auto);
        assert_eq!(c.messaging, Config::default().messaging);
        assert!(
            text.contains("sip_srtp = \"auto\""),
            "the sample documents media.sip_srtp"
        );
    }

    #[test]
    fn webrtc_engine_accepts_direct_and_refuses_the_retired_engine() {
        let pick = |v: &str| {
            Config::from_toml(
                &format!("[media]\nwebrtc_engine = \"{v}\"\n"),
                &Overrides::default(),
            )
        };
        assert!(pick("direct").is_ok());
        let e = pick("peer-connection").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("media.webrtc_engine"), "{text}");
        assert!(text.contains("retired"), "{text}");
        let e = pick("janus").unwrap_err();
        assert!(e.to_string().contains("media.webrtc_engine"), "{e}");
    }

    #[test]
    fn cli_overrides_file() {
        let o = Overrides {
            ws_listen: Some("127.0.0.1:1".into()),
            wss_listen: Some("off".into()),
            ..Default::default()
        };
        let c = Config::from_toml("[websocket]\nws_listen = \"127.0.0.1:2\"\n", &o).unwrap();
        assert_eq!(c.websocket.ws_listen.unwrap().port(), 1);
        assert_eq!(c.websocket.wss_listen, None);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml("[websocket]\nws_listen = \"nope\"\n", &Overrides::default())
            .unwrap_err();
        assert!(e.to_string().contains("websocket.ws_listen"), "{e}");
        let e = Config::from_toml("[websocket]\nws_lisen = \"x\"\n", &Overrides::default())
            .unwrap_err();
        assert!(e.to_string().contains("ws_lisen"), "{e}");
        let e = Config::from_toml(
            "[websocket]\nping_interval = \"x\"\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("ping_interval"), "{e}");
        let e = Config::from_toml("[log]\nlevel = \"loud\"\n", &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("log.level"), "{e}");
        let e = Config::from_toml(
            "[websocket]\nws_listen = \"off\"\nwss_listen = \"off\"\n",
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("websocket.ws_listen"), "{e}");
    }

    #[test]
    fn sip_section_and_flags() {
        let o = Overrides {
            sip_listen: Some("127.0.0.1:5999".into()),
            outbound_proxy: Some("sip:127.0.0.1:5060;transport=tcp".into()),
            ..Default::default()
        };
        let c = Config::from_toml(
            "[sip]\ntransports = [\"tcp\", \"udp\"]\nregister_expires = 300\n",
            &o,
        )
        .unwrap();
        assert_eq!(c.sip.listen.port(), 5999);
        assert_eq!(c.sip.transports, [SipTransport::Tcp, SipTransport::Udp]);
        assert_eq!(c.sip.register_expires, 300);
        assert_eq!(
            c.sip.outbound_proxy.as_deref(),
            Some("sip:127.0.0.1:5060;transport=tcp")
        );
        for (text, key) in [
            ("[sip]\ntransports = [\"sctp\"]\n", "sip.transports"),
            ("[sip]\nregister_expires = 5\n", "sip.register_expires"),
            (
                "[sip]\noutbound_proxy = \"http://x\"\n",
                "sip.outbound_proxy",
            ),
            ("[sip]\nlisten = \"off\"\n", "sip.listen"),
        ] {
            let e = Config::from_toml(text, &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn media_section_and_flags() {
        let o = Overrides {
            rtp_ports: Some("30000-30099".into()),
            media_address: Some("203.0.113.5".into()),
            ..Default::default()
        };
        let c = Config::from_toml("[media]\ninactivity_timeout = 30\n", &o).unwrap();
        assert_eq!(c.media.rtp_ports, (30000, 30099));
        assert_eq!(
            c.media.advertised_address,
            Some("203.0.113.5".parse().unwrap())
        );
        assert_eq!(c.media.inactivity_timeout, Duration::from_secs(30));
        for text in [
            "[media]\nrtp_ports = \"5-4\"\n",
            "[media]\nrtp_ports = \"30000\"\n",
        ] {
            let e = Config::from_toml(text, &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("media.rtp_ports"), "{e}");
        }
    }

    #[test]
    fn sip_srtp_from_file_and_flag() {
        let none = Overrides::default();
        for (text, want) in [
            ("", SipSrtp::Auto),
            ("[media]\nsip_srtp = \"auto\"\n", SipSrtp::Auto),
            ("[media]\nsip_srtp = \"mandatory\"\n", SipSrtp::Mandatory),
            ("[media]\nsip_srtp = \"off\"\n", SipSrtp::Off),
        ] {
            let c = Config::from_toml(text, &none).unwrap();
            assert_eq!(c.media.sip_srtp, want, "{text}");
            assert_eq!(SipSrtp::parse(want.as_str()), Some(want));
        }
        let flag = Overrides {
            sip_srtp: Some("off".into()),
            ..Default::default()
        };
        let c = Config::from_toml("[media]\nsip_srtp = \"mandatory\"\n", &flag).unwrap();
        assert_eq!(
            c.media.sip_srtp,
            SipSrtp::Off,
            "the flag overrides the file"
        );
        for text in [
            "[media]\nsip_srtp = \"yes\"\n",
            "[media]\nsip_srtp = true\n",
        ] {
            let e = Config::from_toml(text, &none).unwrap_err();
            assert!(e.to_string().contains("sip_srtp"), "{e}");
        }
    }

    #[test]
    fn messaging_section_and_flag() {
        let c = Config::from_toml(
            "[messaging]\ndatabase = \":memory:\"\nmax_age_days = 30\nsend_rate = 5\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.messaging.database, ":memory:");
        assert_eq!(c.messaging.max_age_days, 30);
        assert_eq!(c.messaging.send_rate, 5);
        let flag = Overrides {
            database: Some("/tmp/x.sqlite".into()),
            ..Default::default()
        };
        let c = Config::from_toml("[messaging]\ndatabase = \"a\"\n", &flag).unwrap();
        assert_eq!(c.messaging.database, "/tmp/x.sqlite");
        for text in [
            "[messaging]\nmax_age_days = 0\n",
            "[messaging]\nmax_content_size = 10\n",
            "[messaging]\nsend_rate = 0\n",
            "[messaging]\ndatabse = \"x\"\n",
        ] {
            let e = Config::from_toml(text, &Overrides::default()).unwrap_err();
            assert!(
                e.to_string().contains("messaging") || e.to_string().contains("databse"),
                "{e}"
            );
        }
    }

    #[test]
    fn operations_sections() {
        let none = Overrides::default();
        let c = Config::from_toml(
            "[metrics]\nlisten = \"127.0.0.1:9100\"\n[shutdown]\ndrain_timeout = 0\n\
             [log]\nformat = \"json\"\n",
            &none,
        )
        .unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.shutdown.drain_timeout, Duration::ZERO);
        assert_eq!(c.log.format, LogFormat::Json);
        let flag = Overrides {
            metrics_listen: Some("off".into()),
            ..Default::default()
        };
        let c = Config::from_toml("[metrics]\nlisten = \"127.0.0.1:9100\"\n", &flag).unwrap();
        assert_eq!(c.metrics.listen, None, "the flag overrides the file");
        for (text, key) in [
            ("[metrics]\nlisten = \"nowhere\"\n", "metrics.listen"),
            (
                "[shutdown]\ndrain_timeout = 100000\n",
                "shutdown.drain_timeout",
            ),
            ("[log]\nformat = \"xml\"\n", "log.format"),
        ] {
            let e = Config::from_toml(text, &none).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn msrp_section_and_flag() {
        let c = Config::from_toml(
            "[msrp]\nrelay = \"msrp://127.0.0.1:2855;tcp\"\nmax_message_size = 65536\n\
             [msrp.relays]\n\"Example.COM\" = \"msrps://10.0.0.9;tcp\"\n",
            &Overrides {
                msrp_listen: Some("off".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.msrp.listen, None);
        assert_eq!(
            c.msrp.relay_for("other.org"),
            Some("msrp://127.0.0.1:2855;tcp")
        );
        assert_eq!(
            c.msrp.relay_for("example.com"),
            Some("msrps://10.0.0.9;tcp")
        );
        assert_eq!(c.msrp.max_message_size, 65536);
        for bad in [
            "[msrp]\nrelay = \"sip:relay\"\n",
            "[msrp]\nrelay = \"msrp://r/sess;tcp\"\n",
            "[msrp]\ntls = true\n",
            "[msrp]\nmax_message_size = 10\n",
            "[msrp]\nlisten = \"nowhere\"\n",
        ] {
            let e = Config::from_toml(bad, &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("msrp."), "{bad}: {e}");
        }
    }

    #[test]
    fn domain_allow_list() {
        let mut s = Config::default().sylkrtc;
        assert!(s.domain_allowed("anything.example"));
        s.sip_domains = vec!["Example.com".into()];
        assert!(s.domain_allowed("example.com"));
        assert!(!s.domain_allowed("other.com"));
    }
}
