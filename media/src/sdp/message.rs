//! MSRP media sections (`m=message`, RFC 4975 section 8) and the SDP questions chat sessions
//! ask: the path, accepted types, the RFC 6135 `a=setup` role, and splicing an `m=message`
//! line into (or out of) a description the bridge translates.
//!
//! The bridge translates audio and video only; a session carrying chat beside them has its
//! `m=message` line taken out before the bridge sees the SIP side's SDP and put back, at the
//! same index, into what the bridge writes ([`SessionDescription::without_media`],
//! [`SessionDescription::with_media_at`]), so RFC 3264 index matching holds on both sides.

use std::net::IpAddr;

use super::model::{Attribute, Connection, MediaType};
use super::translate::LocalOrigin;
use super::{MediaSection, SessionDescription};

/// RFC 4145 `a=setup`, as RFC 6135 uses it for MSRP connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `active`: this end connects.
    Active,
    /// `passive`: this end waits for the connection.
    Passive,
    /// `actpass`: either (an offer only).
    ActPass,
    /// `holdconn`: no connection now.
    HoldConn,
}

impl Setup {
    /// Parses the attribute value.
    pub fn parse(value: &str) -> Option<Setup> {
        match value.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            "holdconn" => Some(Setup::HoldConn),
            _ => None,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// What one `m=message` line of ours says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpLine<'a> {
    /// The port of our first path URI (RFC 4975 section 8.1: the m-line port is ignored
    /// but should match).
    pub port: u16,
    /// `TCP/TLS/MSRP` rather than `TCP/MSRP`.
    pub tls: bool,
    /// `a=path`: our relays' Use-Path then our session URI.
    pub path: &'a str,
    /// `a=accept-types`.
    pub accept_types: &'a [&'a str],
    /// `a=accept-wrapped-types`; empty for none.
    pub accept_wrapped_types: &'a [&'a str],
    /// `a=setup` (RFC 6135).
    pub setup: Setup,
}

impl MediaSection {
    /// An `m=message <port> TCP/MSRP *` section (RFC 4975 section 8) from `line`.
    pub fn msrp(line: &MsrpLine<'_>) -> MediaSection {
        let protocol = if line.tls { "TCP/TLS/MSRP" } else { "TCP/MSRP" };
        let mut m = MediaSection::new(
            MediaType::Other("message".to_owned()),
            line.port,
            protocol,
            vec!["*".to_owned()],
        );
        m.attributes
            .push(Attribute::new("accept-types", line.accept_types.join(" ")));
        if !line.accept_wrapped_types.is_empty() {
            m.attributes.push(Attribute::new(
                "accept-wrapped-types",
                line.accept_wrapped_types.join(" "),
            ));
        }
        m.attributes.push(Attribute::new("path", line.path));
        m.attributes
            .push(Attribute::new("setup", line.setup.as_str()));
        m
    }

    /// Whether this is an MSRP section: `m=message` over `TCP/MSRP` or `TCP/TLS/MSRP`.
    pub fn is_msrp(&self) -> bool {
        self.kind.as_str().eq_ignore_ascii_case("message")
            && matches!(
                self.protocol.to_ascii_uppercase().as_str(),
                "TCP/MSRP" | "TCP/TLS/MSRP"
            )
    }

    /// Whether the MSRP section asks for TLS (`TCP/TLS/MSRP`, `msrps` URIs).
    pub fn is_msrp_tls(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("TCP/TLS/MSRP")
    }

    /// The `a=path` value (RFC 4975 section 8.1): URIs separated by spaces, the peer's own
    /// last.
    pub fn msrp_path(&self) -> Option<&str> {
        self.attribute("path")
    }

    /// The `a=accept-types` tokens.
    pub fn accept_types(&self) -> Vec<&str> {
        self.attribute("accept-types")
            .map(|v| v.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }

    /// The `a=accept-wrapped-types` tokens.
    pub fn accept_wrapped_types(&self) -> Vec<&str> {
        self.attribute("accept-wrapped-types")
            .map(|v| v.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }

    /// The parsed `a=setup`, if any.
    pub fn setup_role(&self) -> Option<Setup> {
        self.setup().and_then(Setup::parse)
    }
}

impl SessionDescription {
    /// The index of the first active MSRP `m=message` section.
    pub fn msrp_index(&self) -> Option<usize> {
        self.media.iter().position(|m| m.is_msrp() && m.is_active())
    }

    /// Whether an active audio or video section is present (the bridge has work).
    pub fn has_active_rtp_media(&self) -> bool {
        self.media
            .iter()
            .any(|m| m.kind.is_rtp_media() && m.is_rtp() && m.is_active())
    }

    /// This description without media section `index` (what the bridge is given).
    pub fn without_media(&self, index: usize) -> SessionDescription {
        let mut d = self.clone();
        if index < d.media.len() {
            d.media.remove(index);
        }
        d
    }

    /// This description with `section` inserted at `index` (clamped to the end): the
    /// `m=message` line put back into what the bridge wrote.
    pub fn with_media_at(&self, index: usize, section: MediaSection) -> SessionDescription {
        let mut d = self.clone();
        let at = index.min(d.media.len());
        d.media.insert(at, section);
        d
    }

    /// A description with one `m=message` section only (a chat-only session), on
    /// `address`, with the next `o=` of `origin`.
    pub fn chat_only(
        address: IpAddr,
        origin: &mut LocalOrigin,
        section: MediaSection,
    ) -> SessionDescription {
        SessionDescription {
            origin: origin.next_origin(address),
            session_name: "sylk-gateway".to_owned(),
            connection: Some(Connection::from_ip(address)),
            bandwidths: Vec::new(),
            timing: "0 0".to_owned(),
            attributes: Vec::new(),
            media: vec![section],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
        m=message 2855 TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n\
        a=accept-wrapped-types:*\r\na=path:msrp://10.0.0.1:2855/abc;tcp\r\na=setup:actpass\r\n";

    #[test]
    fn reads_the_msrp_section_and_splices_it_out_and_back() {
        let d = SessionDescription::parse(OFFER.as_bytes()).unwrap();
        let i = d.msrp_index().unwrap();
        assert_eq!(i, 1);
        let m = &d.media[i];
        assert!(m.is_msrp() && !m.is_msrp_tls());
        assert_eq!(m.msrp_path(), Some("msrp://10.0.0.1:2855/abc;tcp"));
        assert_eq!(m.accept_types(), vec!["message/cpim", "text/plain"]);
        assert_eq!(m.accept_wrapped_types(), vec!["*"]);
        assert_eq!(m.setup_role(), Some(Setup::ActPass));
        assert!(d.has_active_rtp_media());
        let audio_only = d.without_media(i);
        assert_eq!(audio_only.media.len(), 1);
        assert_eq!(audio_only.msrp_index(), None);
        let back = audio_only.with_media_at(i, m.clone());
        assert_eq!(back, d);
    }

    #[test]
    fn writes_an_m_message_line_as_rfc_4975_shows_it() {
        let line = MsrpLine {
            port: 2855,
            tls: true,
            path: "msrps://relay:2855/r1;tcp msrps://10.0.0.2:2855/s1;tcp",
            accept_types: &["message/cpim"],
            accept_wrapped_types: &["*"],
            setup: Setup::Active,
        };
        let mut origin = LocalOrigin::new(7, 1);
        let d = SessionDescription::chat_only(
            "10.0.0.2".parse().unwrap(),
            &mut origin,
            MediaSection::msrp(&line),
        );
        let text = d.to_sdp_string();
        assert!(text.contains("m=message 2855 TCP/TLS/MSRP *\r\n"), "{text}");
        assert!(text.contains("a=accept-types:message/cpim\r\na=accept-wrapped-types:*\r\n"));
        assert!(text.contains(
            "a=path:msrps://relay:2855/r1;tcp msrps://10.0.0.2:2855/s1;tcp\r\na=setup:active\r\n"
        ));
        let again = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!(again.msrp_index(), Some(0));
        assert!(!again.has_active_rtp_media());
    }
}
