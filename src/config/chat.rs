//! The `[msrp]` section: chat sessions over MSRP (RFC 4975), their listeners and the RFC 4976
//! relays accounts authenticate at.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{invalid, parse_listen, ConfigError, Overrides};

/// Settings of chat sessions over MSRP (`[msrp]`, RFC 4975 and RFC 4976).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatConfig {
    /// Plain TCP listener for peers that connect to us (`a=setup:passive`, or an offerer's
    /// default); `None`: the gateway only connects out (it then answers only offers that let
    /// it be active). Port 0 lets the kernel pick.
    pub listen: Option<SocketAddr>,
    /// TLS listener (`msrps://`, the `websocket.tls_*` certificate); needed for `tls`.
    pub tls_listen: Option<SocketAddr>,
    /// Host written into our MSRP URIs and `c=` instead of the listen IP (NAT).
    pub advertised_host: Option<std::net::IpAddr>,
    /// Offer `TCP/TLS/MSRP` (`msrps://`) rather than plain TCP.
    pub tls: bool,
    /// The RFC 4976 relay every account uses (`msrp://` or `msrps://` URI), unless
    /// `relays` names one for its domain.
    pub relay: Option<String>,
    /// Relays per account domain.
    pub relays: Vec<(String, String)>,
    /// Largest message, sent or received, in bytes.
    pub max_message_size: usize,
    /// `Expires` asked of the relay in AUTH, seconds.
    pub auth_expires: u32,
}

impl ChatConfig {
    /// The relay for accounts of `domain`, if any.
    pub fn relay_for(&self, domain: &str) -> Option<&str> {
        self.relays
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, r)| r.as_str())
            .or(self.relay.as_deref())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMsrp {
    listen: Option<String>,
    tls_listen: Option<String>,
    advertised_host: Option<String>,
    tls: Option<bool>,
    relay: Option<String>,
    relays: Option<std::collections::BTreeMap<String, String>>,
    max_message_size: Option<usize>,
    auth_expires: Option<u32>,
}

pub(super) fn apply(m: &mut ChatConfig, file: FileMsrp, o: &Overrides) -> Result<(), ConfigError> {
    if let Some(v) = o.msrp_listen.as_deref().or(file.listen.as_deref()) {
        m.listen = parse_listen("msrp.listen", v)?;
    }
    if let Some(v) = file.tls_listen.as_deref() {
        m.tls_listen = parse_listen("msrp.tls_listen", v)?;
    }
    if let Some(h) = file.advertised_host {
        m.advertised_host = Some(
            h.parse()
                .map_err(|_| invalid("msrp.advertised_host", "must be an IP address"))?,
        );
    }
    if let Some(t) = file.tls {
        m.tls = t;
    }
    if m.tls && m.tls_listen.is_none() {
        return Err(invalid(
            "msrp.tls",
            "needs msrp.tls_listen (a peer may have to connect to us)",
        ));
    }
    let relay_uri = |key: &'static str, v: &str| -> Result<String, ConfigError> {
        let uri = msrp::MsrpUri::parse(v.trim()).map_err(|e| {
            invalid(
                key,
                &format!("'{v}' is not an MSRP URI ({e}), e.g. msrps://relay.example.com:2855;tcp"),
            )
        })?;
        if uri.session_id.is_some() {
            return Err(invalid(key, "a relay URI has no session id"));
        }
        Ok(uri.to_string())
    };
    if let Some(r) = file.relay {
        m.relay = Some(relay_uri("msrp.relay", &r)?);
    }
    if let Some(relays) = file.relays {
        m.relays = relays
            .into_iter()
            .map(|(d, r)| Ok((d.to_ascii_lowercase(), relay_uri("msrp.relays", &r)?)))
            .collect::<Result<_, ConfigError>>()?;
    }
    if let Some(n) = file.max_message_size {
        if !(4096..=64 * 1024 * 1024).contains(&n) {
            return Err(invalid(
                "msrp.max_message_size",
                "must be between 4096 and 67108864",
            ));
        }
        m.max_message_size = n;
    }
    if let Some(e) = file.auth_expires {
        if !(30..=86_400).contains(&e) {
            return Err(invalid("msrp.auth_expires", "must be between 30 and 86400"));
        }
        m.auth_expires = e;
    }
    Ok(())
}
