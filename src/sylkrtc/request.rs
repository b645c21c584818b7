//! Client requests: decoding and validation of both dialects (their request names are the
//! same; spec section 6.1).

use std::fmt;

use serde_json::Value;

use super::aor::{Aor, InvalidAor};
use super::fields::{invalid, Fields};
use sip::auth::Ha1;

/// A validated request and the transaction its reply must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Client-chosen id echoed in the `ack`/`error`.
    pub transaction: String,
    /// What the client asks for.
    pub request: Request,
}

/// The outcome of decoding one text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A valid request.
    Request(Envelope),
    /// A request that can be answered, but only with this error.
    Invalid {
        /// The transaction to answer.
        transaction: String,
        /// Why the request was refused; its Display is the error text.
        error: RequestError,
    },
    /// Nothing to answer: logged and dropped, the connection stays up (spec section 4.2).
    Dropped(DropReason),
}

/// Why a frame could not be answered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not valid JSON.
    NotJson,
    /// Valid JSON but not an object.
    NotObject,
    /// No string `sylkrtc` key.
    NoType,
    /// No string `transaction` key, so no reply can be matched by the client.
    NoTransaction,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::NotJson => "invalid JSON",
            DropReason::NotObject => "JSON is not an object",
            DropReason::NoType => "could not get message type (no string 'sylkrtc' key)",
            DropReason::NoTransaction => "request without a string 'transaction'",
        })
    }
}

/// Why a request was refused. The Display text goes to the client as the `error` value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// A mandatory field is absent or `null`.
    MissingField {
        /// The request name.
        request: &'static str,
        /// The field name.
        field: &'static str,
    },
    /// A field has the wrong type or an unacceptable value.
    InvalidField {
        /// The field name.
        field: &'static str,
        /// The value as JSON, shortened.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A field's value is not one of a fixed set.
    NotAllowed {
        /// The field name.
        field: &'static str,
        /// The value given.
        value: String,
        /// The accepted values.
        allowed: &'static [&'static str],
    },
    /// A SIP address field is not `user@domain`.
    InvalidUri(InvalidAor),
    /// The `sylkrtc` value names no known request.
    UnknownRequest(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::MissingField { request, field } => {
                write!(
                    f,
                    "Mandatory property '{field}' of '{request}' request is missing"
                )
            }
            RequestError::InvalidField {
                field,
                value,
                expected,
            } => write!(
                f,
                "Invalid value for '{field}' property: {value} (expected {expected})"
            ),
            RequestError::NotAllowed {
                field,
                value,
                allowed,
            } => write!(
                f,
                "Invalid value for '{field}' property: '{value}' (expected: {})",
                allowed.join(", ")
            ),
            RequestError::InvalidUri(e) => e.fmt(f),
            RequestError::UnknownRequest(name) => write!(f, "Unknown request type: {name}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// `account-add`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountAdd {
    /// The account's AOR.
    pub account: Aor,
    /// The digest HA1 (sylkrtc.js computes `md5(user:realm:password)`, spec section 8.4).
    pub ha1: Ha1,
    /// Display name for From headers, quotes and blanks stripped.
    pub display_name: Option<String>,
    /// User-Agent for this account's SIP requests.
    pub user_agent: Option<String>,
    /// Header-name prefixes of incoming INVITE headers to pass to the client.
    pub incoming_header_prefixes: Vec<String>,
}

/// An ICE candidate trickled by the client (a serialised `RTCIceCandidate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCandidate {
    /// The `candidate:` attribute value; may be empty for end-of-candidates.
    pub candidate: String,
    /// The media stream id it belongs to.
    pub sdp_mid: Option<String>,
    /// The m-line index it belongs to.
    pub sdp_mline_index: Option<u16>,
}

/// A SIP header the client wants added (`headers: [{name, value}]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// `session-create`: an outgoing call.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCreate {
    /// The calling account.
    pub account: Aor,
    /// Client-chosen session id.
    pub session: String,
    /// The callee.
    pub uri: Aor,
    /// The browser's SDP offer.
    pub sdp: String,
    /// Extra SIP headers for the INVITE.
    pub headers: Vec<ExtraHeader>,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// `ping` (sylkRTC-2 keepalive): ack only.
    Ping,
    /// `account-add`.
    AccountAdd(AccountAdd),
    /// `account-remove`.
    AccountRemove {
        /// The account.
        account: Aor,
    },
    /// `account-register`.
    AccountRegister {
        /// The account.
        account: Aor,
    },
    /// `account-unregister`.
    AccountUnregister {
        /// The account.
        account: Aor,
    },
    /// `session-create`.
    SessionCreate(SessionCreate),
    /// `session-answer`.
    SessionAnswer {
        /// The session id.
        session: String,
        /// The browser's SDP answer.
        sdp: String,
        /// Extra SIP headers for the 200 OK.
        headers: Vec<ExtraHeader>,
    },
    /// `session-trickle`; an empty list means end-of-candidates.
    SessionTrickle {
        /// The session id.
        session: String,
        /// The candidates.
        candidates: Vec<IceCandidate>,
    },
    /// `session-terminate`.
    SessionTerminate {
        /// The session id.
        session: String,
    },
    /// A request that validated but whose feature a later release implements; answered with
    /// `not supported yet: <name>`.
    NotYetSupported {
        /// The request name.
        name: &'static str,
    },
}

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
    Headers,
    OneOf(&'static [&'static str]),
}

/// `(name, [(field, kind, mandatory)])` per request, from SylkServer HEAD's models
/// (spec section 6.2) plus sylkRTC-1's `videoroom-ctl`/`videoroom-terminate` (section 5.1).
/// One field of a generically validated request: name, kind, mandatory.
type FieldSpec = (&'static str, Kind, bool);

const GENERIC: &[(&str, &[FieldSpec])] = {
    use Kind::*;
    &[
        ("lookup-public-key", &[("uri", Aor, true)]),
        (
            "account-devicetoken",
            &[
                ("account", Aor, true),
                ("token", Str, false),
                ("platform", Str, false),
                ("device", Str, false),
                ("silent", Bool, false),
                ("app", Str, false),
                ("old_token", Str, false),
                ("new_token", Str, false),
            ],
        ),
        (
            "account-message",
            &[
                ("account", Aor, true),
                ("uri", Aor, true),
                ("message_id", Str, true),
                ("content", Str, true),
                ("content_type", Str, true),
                ("timestamp", Str, true),
                ("server_generated", Bool, false),
            ],
        ),
        (
            "account-disposition-notification",
            &[
                ("account", Aor, true),
                ("uri", Aor, true),
                ("message_id", Str, true),
                (
                    "state",
                    OneOf(&["delivered", "failed", "displayed", "forbidden", "error"]),
                    true,
                ),
                ("timestamp", Str, true),
            ],
        ),
        (
            "account-sync-conversations",
            &[
                ("account", Aor, true),
                ("message_id", Str, false),
                ("since", Str, false),
                ("limit", Int, false),
            ],
        ),
        (
            "account-mark-conversation-read",
            &[("account", Aor, true), ("contact", Aor, true)],
        ),
        (
            "account-remove-message",
            &[
                ("account", Aor, true),
                ("message_id", Str, true),
                ("contact", Aor, true),
            ],
        ),
        (
            "account-remove-conversation",
            &[("account", Aor, true), ("contact", Aor, true)],
        ),
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
            "session-update",
            &[
                ("session", Str, true),
                ("sdp", Str, true),
                ("headers", Headers, false),
            ],
        ),
        (
            "session-message",
            &[
                ("session", Str, true),
                ("message_id", Str, true),
                ("content", Str, true),
                ("content_type", Str, true),
                ("timestamp", Str, true),
            ],
        ),
        (
            "session-dtmf-info",
            &[
                ("session", Str, true),
                ("digit", Str, true),
                ("duration", Int, false),
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

/// Decodes one text frame. Never panics, whatever the input.
pub fn decode(text: &str) -> Decoded {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Decoded::Dropped(DropReason::NotJson);
    };
    let Value::Object(map) = value else {
        return Decoded::Dropped(DropReason::NotObject);
    };
    let Some(Value::String(kind)) = map.get("sylkrtc") else {
        return Decoded::Dropped(DropReason::NoType);
    };
    let Some(Value::String(transaction)) = map.get("transaction") else {
        return Decoded::Dropped(DropReason::NoTransaction);
    };
    let transaction = transaction.clone();
    match decode_request(kind, &map) {
        Ok(request) => Decoded::Request(Envelope {
            transaction,
            request,
        }),
        Err(error) => Decoded::Invalid { transaction, error },
    }
}

fn decode_request(
    kind: &str,
    map: &serde_json::Map<String, Value>,
) -> Result<Request, RequestError> {
    let name = request_name(kind).ok_or_else(|| RequestError::UnknownRequest(kind.to_owned()))?;
    let f = Fields { request: name, map };
    Ok(match name {
        "ping" => Request::Ping,
        "account-add" => Request::AccountAdd(account_add(&f)?),
        "account-remove" => Request::AccountRemove {
            account: f.aor("account")?,
        },
        "account-register" => Request::AccountRegister {
            account: f.aor("account")?,
        },
        "account-unregister" => Request::AccountUnregister {
            account: f.aor("account")?,
        },
        "session-create" => {
            let account = f.aor("account")?;
            let session = f.non_empty_str("session")?.to_owned();
            let uri = f.aor("uri")?;
            let sdp = f.str("sdp")?.to_owned();
            Request::SessionCreate(SessionCreate {
                account,
                session,
                uri,
                sdp,
                headers: headers(&f)?,
            })
        }
        "session-answer" => Request::SessionAnswer {
            session: f.str("session")?.to_owned(),
            sdp: f.str("sdp")?.to_owned(),
            headers: headers(&f)?,
        },
        "session-trickle" => Request::SessionTrickle {
            session: f.str("session")?.to_owned(),
            candidates: f.list("candidates", candidate)?,
        },
        "session-terminate" => Request::SessionTerminate {
            session: f.str("session")?.to_owned(),
        },
        generic => {
            validate_generic(&f)?;
            Request::NotYetSupported { name: generic }
        }
    })
}

/// Maps the wire name to a `'static` one, so errors and events can name it without copying.
fn request_name(kind: &str) -> Option<&'static str> {
    const TYPED: &[&str] = &[
        "ping",
        "account-add",
        "account-remove",
        "account-register",
        "account-unregister",
        "session-create",
        "session-answer",
        "session-trickle",
        "session-terminate",
    ];
    TYPED
        .iter()
        .copied()
        .chain(GENERIC.iter().map(|(name, _)| *name))
        .find(|name| *name == kind)
}

fn account_add(f: &Fields<'_>) -> Result<AccountAdd, RequestError> {
    let account = f.aor("account")?;
    let password = f.str("password")?;
    let ha1 = Ha1::from_hex(password).map_err(|_| RequestError::InvalidField {
        field: "password",
        value: "<redacted>".to_owned(),
        expected: "the HA1 as 32 (MD5) or 64 (SHA-256) hex digits",
    })?;
    let display_name = f
        .opt_str("display_name")?
        .map(|d| d.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace()))
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let user_agent = f.opt_str("user_agent")?.map(str::to_owned);
    let mut incoming_header_prefixes = f
        .opt_list("incoming_header_prefixes", |v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid("incoming_header_prefixes", v, "a list of strings"))
        })?
        .unwrap_or_default();
    // Declared unique in SylkServer's model: duplicates are dropped silently (spec 4.3).
    let mut seen = std::collections::HashSet::new();
    incoming_header_prefixes.retain(|p| seen.insert(p.clone()));
    Ok(AccountAdd {
        account,
        ha1,
        display_name,
        user_agent,
        incoming_header_prefixes,
    })
}

fn headers(f: &Fields<'_>) -> Result<Vec<ExtraHeader>, RequestError> {
    Ok(f.opt_list("headers", |v| {
        let Value::Object(map) = v else {
            return Err(invalid("headers", v, "a list of {name, value} objects"));
        };
        let h = Fields {
            request: f.request,
            map,
        };
        Ok(ExtraHeader {
            name: h.non_empty_str("name")?.to_owned(),
            value: h.str("value")?.to_owned(),
        })
    })?
    .unwrap_or_default())
}

fn candidate(v: &Value) -> Result<IceCandidate, RequestError> {
    let Value::Object(map) = v else {
        return Err(invalid(
            "candidates",
            v,
            "a list of RTCIceCandidate objects",
        ));
    };
    let c = Fields {
        request: "session-trickle",
        map,
    };
    let sdp_mid = c.opt_str("sdpMid")?.map(str::to_owned);
    let sdp_mline_index = match c.opt_u64("sdpMLineIndex")? {
        Some(i) => Some(
            u16::try_from(i)
                .map_err(|_| invalid("sdpMLineIndex", &Value::from(i), "an m-line index"))?,
        ),
        None => None,
    };
    // WebRTC requires one of the two to place the candidate (RFC 8839 section 5.1 /
    // RTCIceCandidateInit); SylkServer demands both, browsers always send both.
    if sdp_mid.is_none() && sdp_mline_index.is_none() {
        return Err(RequestError::MissingField {
            request: "session-trickle",
            field: "sdpMid",
        });
    }
    Ok(IceCandidate {
        candidate: c.str("candidate")?.to_owned(),
        sdp_mid,
        sdp_mline_index,
    })
}

fn validate_generic(f: &Fields<'_>) -> Result<(), RequestError> {
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
            Kind::Headers => {
                headers(f)?;
            }
            Kind::OneOf(allowed) => f.one_of(field, allowed).map(drop)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::auth::HashFamily;

    const HA1: &str = "0123456789abcdef0123456789ABCDEF";

    fn request(text: &str) -> Request {
        match decode(text) {
            Decoded::Request(e) => e.request,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn error(text: &str) -> String {
        match decode(text) {
            Decoded::Invalid { error, .. } => error.to_string(),
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn drops_what_cannot_be_answered() {
        assert_eq!(decode("{"), Decoded::Dropped(DropReason::NotJson));
        assert_eq!(decode("[1]"), Decoded::Dropped(DropReason::NotObject));
        assert_eq!(
            decode(r#"{"transaction":"t"}"#),
            Decoded::Dropped(DropReason::NoType)
        );
        assert_eq!(
            decode(r#"{"sylkrtc":5,"transaction":"t"}"#),
            Decoded::Dropped(DropReason::NoType)
        );
        assert_eq!(
            decode(r#"{"sylkrtc":"ping"}"#),
            Decoded::Dropped(DropReason::NoTransaction)
        );
        assert_eq!(
            decode(r#"{"sylkrtc":"ping","transaction":7}"#),
            Decoded::Dropped(DropReason::NoTransaction)
        );
    }

    #[test]
    fn account_add_is_lenient_like_sylkserver() {
        let r = request(&format!(
            r#"{{"sylkrtc":"account-add","transaction":"t","account":"sip:Alice@Example.COM",
               "password":"{HA1}","display_name":" \"Alice A\" ","user_agent":null,
               "unknown":[1,2],"incoming_header_prefixes":["X-A","X-A","X-B"]}}"#
        ));
        let Request::AccountAdd(a) = r else { panic!() };
        assert_eq!(a.account.as_str(), "Alice@example.com");
        assert_eq!(a.ha1.family(), HashFamily::Md5);
        assert_eq!(a.display_name.as_deref(), Some("Alice A"));
        assert_eq!(a.user_agent, None);
        assert_eq!(a.incoming_header_prefixes, ["X-A", "X-B"]);
        assert!(!format!("{:?}", a.ha1).contains("0123"));
        let sha = "ab".repeat(32);
        let Request::AccountAdd(a) = request(&format!(
            r#"{{"sylkrtc":"account-add","transaction":"t","account":"a@b","password":"{sha}"}}"#
        )) else {
            panic!()
        };
        assert_eq!(a.ha1.family(), HashFamily::Sha256);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            error(r#"{"sylkrtc":"account-add","transaction":"t","account":"a@b"}"#),
            "Mandatory property 'password' of 'account-add' request is missing"
        );
        assert_eq!(
            error(r#"{"sylkrtc":"account-add","transaction":"t","account":"a@b","password":null}"#),
            "Mandatory property 'password' of 'account-add' request is missing"
        );
        assert_eq!(
            error(r#"{"sylkrtc":"account-add","transaction":"t","account":"a@b","password":"x"}"#),
            "Invalid value for 'password' property: <redacted> (expected the HA1 as 32 (MD5) or 64 (SHA-256) hex digits)"
        );
        assert_eq!(
            error(r#"{"sylkrtc":"account-remove","transaction":"t","account":5}"#),
            "Invalid value for 'account' property: 5 (expected a string)"
        );
        assert_eq!(
            error(r#"{"sylkrtc":"account-register","transaction":"t","account":"nope"}"#),
            "invalid SIP URI: nope"
        );
        assert_eq!(
            error(
                r#"{"sylkrtc":"session-create","transaction":"t","account":"a@b","session":"s","uri":"c@d","sdp":5}"#
            ),
            "Invalid value for 'sdp' property: 5 (expected a string)"
        );
        assert_eq!(
            error(r#"{"sylkrtc":"account-disposition-notification","transaction":"t","account":"a@b","uri":"c@d","message_id":"m","state":"x","timestamp":"t"}"#),
            "Invalid value for 'state' property: 'x' (expected: delivered, failed, displayed, forbidden, error)"
        );
        assert_eq!(
            error(r#"{"sylkrtc":"frobnicate","transaction":"t"}"#),
            "Unknown request type: frobnicate"
        );
        assert_eq!(
            error(r#"{"sylkrtc":"PING","transaction":"t"}"#),
            "Unknown request type: PING"
        );
    }

    #[test]
    fn session_requests_decode() {
        let Request::SessionCreate(c) = request(
            r#"{"sylkrtc":"session-create","transaction":"t","account":"a@b","session":"s1",
                "uri":"sip:bob@example.com","sdp":"v=0","headers":[{"name":"X-Foo","value":"1"}]}"#,
        ) else {
            panic!()
        };
        assert_eq!(c.uri.as_str(), "bob@example.com");
        assert_eq!(
            c.headers,
            [ExtraHeader {
                name: "X-Foo".into(),
                value: "1".into()
            }]
        );
        let Request::SessionTrickle { candidates, .. } = request(
            r#"{"sylkrtc":"session-trickle","transaction":"t","session":"s1","candidates":[
                {"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"x"}]}"#,
        ) else {
            panic!()
        };
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].sdp_mid.as_deref(), Some("0"));
        assert!(matches!(
            request(r#"{"sylkrtc":"session-trickle","transaction":"t","session":"s1","candidates":[]}"#),
            Request::SessionTrickle { candidates, .. } if candidates.is_empty()
        ));
        assert_eq!(
            error(
                r#"{"sylkrtc":"session-trickle","transaction":"t","session":"s1","candidates":[{"candidate":"c"}]}"#
            ),
            "Mandatory property 'sdpMid' of 'session-trickle' request is missing"
        );
    }

    #[test]
    fn later_features_validate_then_say_not_yet() {
        assert_eq!(
            request(
                r#"{"sylkrtc":"videoroom-join","transaction":"t","session":"s","account":"a@b","uri":"room@b","sdp":"v=0"}"#
            ),
            Request::NotYetSupported {
                name: "videoroom-join"
            }
        );
        assert_eq!(
            error(
                r#"{"sylkrtc":"videoroom-join","transaction":"t","session":"s","account":"a@b","uri":"room@b"}"#
            ),
            "Mandatory property 'sdp' of 'videoroom-join' request is missing"
        );
        assert_eq!(
            request(r#"{"sylkrtc":"account-fetch-addressbook","transaction":"t","account":"a@b"}"#),
            Request::NotYetSupported {
                name: "account-fetch-addressbook"
            }
        );
    }

    #[test]
    fn garbage_never_panics() {
        let seeds = [
            r#"{"sylkrtc":"account-add","transaction":"t","account":"a@b","password":"0123456789abcdef0123456789abcdef"}"#,
            r#"{"sylkrtc":"session-trickle","transaction":"t","session":"s","candidates":[{"candidate":"c","sdpMLineIndex":70000}]}"#,
            r#"{"sylkrtc":"videoroom-invite","transaction":"t","session":"s","participants":["a@b",5]}"#,
        ];
        let mut x: u32 = 1;
        for seed in seeds {
            for _ in 0..3000 {
                let mut bytes = seed.as_bytes().to_vec();
                for _ in 0..4 {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let i = x as usize % bytes.len();
                    bytes[i] = (x >> 8) as u8;
                }
                let _ = decode(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}
