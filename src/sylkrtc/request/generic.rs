//! Requests validated field by field against SylkServer HEAD's models until their feature
//! lands; they are answered `not supported yet: <name>`.

use super::session::candidate;
use super::{Fields, RequestError};
use crate::sylkrtc::aor::Aor;
use crate::sylkrtc::fields::invalid;

/// Field kinds for requests that are validated generically until their feature lands.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Aor,
    Bool,
    Int,
    StrList,
    AorList,
    Object,
    Candidates,
    OneOf(&'static [&'static str]),
}

/// `(name, [(field, kind, mandatory)])` per request, from SylkServer HEAD's models
/// (spec section 6.2) plus sylkRTC-1's `videoroom-ctl`/`videoroom-terminate` (section 5.1).
/// One field of a generically validated request: name, kind, mandatory.
type FieldSpec = (&'static str, Kind, bool);

const GENERIC: &[(&str, &[FieldSpec])] = {
    use Kind::*;
    &[
        ("account-fetch-addressbook", &[("account", Aor, true)]),
        (
            "account-update-addressbook",
            &[
                ("account", Aor, true),
                ("action", OneOf(&["add", "update", "delete"]), true),
                ("type", OneOf(&["contact", "group", "policy"]), true),
                ("data", Object, true),
            ],
        ),
        (
            "videoroom-join",
            &[
                ("session", Str, true),
                ("account", Aor, true),
                ("uri", Aor, true),
                ("sdp", Str, true),
                ("audio", Bool, false),
                ("video", Bool, false),
            ],
        ),
        ("videoroom-leave", &[("session", Str, true)]),
        ("videoroom-terminate", &[("session", Str, true)]),
        (
            "videoroom-ctl",
            &[("session", Str, true), ("option", Str, true)],
        ),
        (
            "videoroom-configure",
            &[
                ("session", Str, true),
                ("active_participants", StrList, true),
            ],
        ),
        (
            "videoroom-feed-attach",
            &[
                ("session", Str, true),
                ("publisher", Str, true),
                ("feed", Str, true),
            ],
        ),
        (
            "videoroom-feed-answer",
            &[
                ("session", Str, true),
                ("feed", Str, true),
                ("sdp", Str, true),
            ],
        ),
        (
            "videoroom-feed-detach",
            &[("session", Str, true), ("feed", Str, true)],
        ),
        (
            "videoroom-invite",
            &[("session", Str, true), ("participants", AorList, true)],
        ),
        (
            "videoroom-session-trickle",
            &[("session", Str, true), ("candidates", Candidates, true)],
        ),
        (
            "videoroom-session-update",
            &[("session", Str, true), ("options", Object, true)],
        ),
        (
            "videoroom-message",
            &[
                ("session", Str, true),
                ("message_id", Str, true),
                ("content", Str, true),
                ("content_type", Str, true),
            ],
        ),
        (
            "videoroom-composing-indication",
            &[
                ("session", Str, true),
                ("state", OneOf(&["active", "idle"]), true),
                ("refresh", Int, false),
            ],
        ),
        (
            "videoroom-mute-audio-participants",
            &[("session", Str, true)],
        ),
        (
            "videoroom-toggle-hand",
            &[("session", Str, true), ("session_id", Str, false)],
        ),
    ]
};

/// The names of the requests validated here.
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    GENERIC.iter().map(|(name, _)| *name)
}

/// Checks `f` against its request's field list.
pub(super) fn validate(f: &Fields<'_>) -> Result<(), RequestError> {
    let Some((_, spec)) = GENERIC.iter().find(|(name, _)| *name == f.request) else {
        return Ok(());
    };
    for &(field, kind, mandatory) in spec.iter() {
        let present = f.map.get(field).is_some_and(|v| !v.is_null());
        if !present {
            if mandatory {
                return Err(RequestError::MissingField {
                    request: f.request,
                    field,
                });
            }
            continue;
        }
        match kind {
            Kind::Str => f.str(field).map(drop)?,
            Kind::Aor => f.aor(field).map(drop)?,
            Kind::Bool => f.bool(field).map(drop)?,
            Kind::Int => {
                f.opt_u64(field)?;
            }
            Kind::StrList => {
                f.list(field, |v| {
                    v.as_str()
                        .map(drop)
                        .ok_or_else(|| invalid(field, v, "a list of strings"))
                })?;
            }
            Kind::AorList => {
                f.list(field, |v| match v.as_str() {
                    Some(s) => Aor::parse(s).map(drop).map_err(RequestError::InvalidUri),
                    None => Err(invalid(field, v, "a list of SIP addresses")),
                })?;
            }
            Kind::Object => f.object(field).map(drop)?,
            Kind::Candidates => {
                f.list(field, candidate)?;
            }
            Kind::OneOf(allowed) => f.one_of(field, allowed).map(drop)?,
        }
    }
    Ok(())
}
