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
}

#[test]
fn addressbook_and_presence_requests_are_typed() {
    assert_eq!(
        request(r#"{"sylkrtc":"account-fetch-addressbook","transaction":"t","account":"sip:a@b"}"#),
        Request::AccountFetchAddressbook {
            account: Aor::parse("a@b").unwrap()
        }
    );
    let Request::AccountUpdateAddressbook(u) = request(
        r#"{"sylkrtc":"account-update-addressbook","transaction":"t","account":"a@b","action":"add","type":"contact",
            "data":{"id":"c1","name":"Bob","uris":[{"id":"u","uri":"sip:bob@b"}],"presence":{"policy":"allow","subscribe":true}}}"#,
    ) else {
        panic!()
    };
    assert_eq!((u.id.as_str(), u.entry.is_some()), ("c1", true));
    // sylkrtc.js deletes policies and groups by id alone.
    let Request::AccountUpdateAddressbook(u) = request(
        r#"{"sylkrtc":"account-update-addressbook","transaction":"t","account":"a@b","action":"delete","type":"policy","data":"p1"}"#,
    ) else {
        panic!()
    };
    assert_eq!((u.id.as_str(), u.entry), ("p1", None));
    assert!(error(
        r#"{"sylkrtc":"account-update-addressbook","transaction":"t","account":"a@b","action":"add","type":"policy","data":{"id":"p"}}"#
    )
    .starts_with("Invalid value for 'data' property: missing field `uri`"));
    assert_eq!(
        error(
            r#"{"sylkrtc":"account-update-addressbook","transaction":"t","account":"a@b","action":"move","type":"contact","data":{}}"#
        ),
        "Invalid value for 'action' property: 'move' (expected: add, update, delete)"
    );
    assert!(error(
        r#"{"sylkrtc":"account-update-addressbook","transaction":"t","account":"a@b","action":"add","type":"contact","data":{"id":""}}"#
    )
    .contains("an id of 1 to 256 characters"));
    let Request::AccountPublishPresence(p) = request(
        r#"{"sylkrtc":"account-publish-presence","transaction":"t","account":"a@b","state":"away","note":"lunch"}"#,
    ) else {
        panic!()
    };
    assert_eq!(p.note.as_deref(), Some("lunch"));
    assert_eq!(
        error(
            r#"{"sylkrtc":"account-publish-presence","transaction":"t","account":"a@b","state":"gone"}"#
        ),
        "Invalid value for 'state' property: 'gone' (expected: online, away, busy, offline)"
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

#[test]
fn session_transfer_is_blind_with_uri_or_attended_with_replaces() {
    let blind = request(
        r#"{"sylkrtc":"session-transfer","transaction":"t","session":"s1","uri":"sip:carol@example.test"}"#,
    );
    let Request::SessionTransfer { uri, replaces, .. } = blind else {
        panic!()
    };
    assert_eq!(
        uri.map(|u| u.as_str().to_owned()).as_deref(),
        Some("carol@example.test")
    );
    assert_eq!(replaces, None);
    let attended = request(
        r#"{"sylkrtc":"session-transfer","transaction":"t","session":"s1","replaces":"s2"}"#,
    );
    let Request::SessionTransfer { uri, replaces, .. } = attended else {
        panic!()
    };
    assert!(uri.is_none());
    assert_eq!(replaces.as_deref(), Some("s2"));
    assert!(
        error(r#"{"sylkrtc":"session-transfer","transaction":"t","session":"s1"}"#).contains("uri")
    );
    assert!(error(
        r#"{"sylkrtc":"session-transfer","transaction":"t","session":"s1","replaces":7}"#
    )
    .contains("replaces"));
}
