//! A parsed session description and what applies to each of its media sections.

use super::media_section::MediaSection;
use super::model::{Attribute, Connection, Fingerprint, MediaDirection, MediaType, Origin};
use super::SdpError;

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`
    pub origin: Origin,
    /// `s=`; `-` when empty (RFC 8866 section 5.3 requires a non-empty value).
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines as written after `b=`.
    pub bandwidths: Vec<String>,
    /// The first `t=` line; `0 0` when missing (some SIP stacks omit it).
    pub timing: String,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// Media sections in order.
    pub media: Vec<MediaSection>,
}

impl SessionDescription {
    /// The session-level attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// The direction that applies to media section `index`: its own attribute, else the
    /// session-level one, else sendrecv (RFC 3264 section 5.1).
    pub fn media_direction(&self, index: usize) -> MediaDirection {
        self.media
            .get(index)
            .and_then(MediaSection::direction_attribute)
            .or_else(|| {
                self.attributes.iter().rev().find_map(|a| {
                    a.value
                        .is_none()
                        .then(|| MediaDirection::from_attribute(&a.name))
                        .flatten()
                })
            })
            .unwrap_or_default()
    }

    /// The media section's attribute `name`, else the session-level one (ICE credentials and
    /// fingerprints may appear at either level, RFC 8839 section 5.4, RFC 8122 section 5).
    fn media_or_session_attribute(&self, index: usize, name: &str) -> Option<&str> {
        self.media
            .get(index)
            .and_then(|m| m.attribute(name))
            .or_else(|| self.attribute(name))
    }

    /// `a=ice-ufrag` and `a=ice-pwd` that apply to media section `index` (RFC 8839 section 5.4).
    pub fn ice_credentials(&self, index: usize) -> Option<(&str, &str)> {
        Some((
            self.media_or_session_attribute(index, "ice-ufrag")?,
            self.media_or_session_attribute(index, "ice-pwd")?,
        ))
    }

    /// Checks that every active audio or video section of a browser's description has ICE
    /// credentials and a DTLS fingerprint (at media or session level, or on another section
    /// of its BUNDLE group, whose transport it shares, RFC 8843 section 7.1.3): without them
    /// the call can never connect, so it is refused before anything is dialled. Other kinds
    /// (data channels) are rejected by the answer anyway.
    pub fn check_webrtc_transport(&self) -> Result<(), SdpError> {
        let bundle = self.bundle_group();
        let in_bundle = |i: usize| {
            self.media
                .get(i)
                .and_then(|m| m.mid())
                .is_some_and(|mid| bundle.contains(&mid))
        };
        let bundled = |i: usize, has: &dyn Fn(usize) -> bool| {
            in_bundle(i) && (0..self.media.len()).any(|j| in_bundle(j) && has(j))
        };
        let has_ice = |i: usize| self.ice_credentials(i).is_some();
        let has_fingerprint = |i: usize| self.fingerprint(i).is_some();
        for (media_index, m) in self.media.iter().enumerate() {
            if !m.is_active() || !matches!(m.kind, MediaType::Audio | MediaType::Video) {
                continue;
            }
            if !has_ice(media_index) && !bundled(media_index, &has_ice) {
                return Err(SdpError::MissingIceCredentials { media_index });
            }
            if !has_fingerprint(media_index) && !bundled(media_index, &has_fingerprint) {
                return Err(SdpError::MissingFingerprint { media_index });
            }
        }
        Ok(())
    }

    /// `a=fingerprint` that applies to media section `index`.
    pub fn fingerprint(&self, index: usize) -> Option<Fingerprint<'_>> {
        let (hash_function, value) = self
            .media_or_session_attribute(index, "fingerprint")?
            .split_once(' ')?;
        Some(Fingerprint {
            hash_function,
            value: value.trim(),
        })
    }

    /// The mids of the `a=group:BUNDLE` line (RFC 8843 section 7.1), empty without one.
    pub fn bundle_group(&self) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case("group"))
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let mut parts = v.split_ascii_whitespace();
                (parts.next() == Some("BUNDLE")).then(|| parts.collect())
            })
            .unwrap_or_default()
    }

    /// The connection address that applies to media section `index` (media-level `c=` wins).
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }
}
