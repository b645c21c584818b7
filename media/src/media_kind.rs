//! Audio or video: the kind of stream the bridge carries, one of each at most per call.

use crate::sdp::MediaType;

/// Audio or video; the bridge carries at most one stream of each. (The `m=` line's media
/// type, which may also be `application`, `text`, ..., is [`MediaType`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// An audio stream (Opus, G.722, PCMU, PCMA, telephone-event).
    Audio,
    /// A video stream (VP8, H.264).
    Video,
}

impl MediaKind {
    /// Both kinds, audio first (the order of the per-kind arrays).
    pub const ALL: [MediaKind; 2] = [MediaKind::Audio, MediaKind::Video];

    /// The stream kind of an SDP media type; `None` for media the bridge does not carry
    /// (`application` data channels, `text`, ...).
    pub fn from_sdp(media_type: &MediaType) -> Option<Self> {
        match media_type {
            MediaType::Audio => Some(Self::Audio),
            MediaType::Video => Some(Self::Video),
            _ => None,
        }
    }

    /// The SDP media type of this kind.
    pub fn to_sdp(self) -> MediaType {
        match self {
            Self::Audio => MediaType::Audio,
            Self::Video => MediaType::Video,
        }
    }

    /// The index of this kind in per-kind arrays: 0 audio, 1 video.
    pub fn index(self) -> usize {
        match self {
            Self::Audio => 0,
            Self::Video => 1,
        }
    }
}
