//! Registration state machine with virtual time and a scripted registrar.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::msg::{Host, ResponseBuilder};
use crate::transport::Transport;

const HA1_HEX: &str = "ecaa8d1fc2b4bda0e8e0c6e7a9ec0bb3";

fn config() -> RegistrationConfig {
    RegistrationConfig {
        user: "alice".into(),
        domain: "example.test".into(),
        display_name: Some("Alice".into()),
        user_agent: "test-agent".into(),
        expires: 600,
        contact_user: "sylk-token1".into(),
        call_id: "call1@x".into(),
        from_tag: "ftag".into(),
        path: false,
        instance: None,
    }
}

fn target(port: u16) -> Target {
    Target {
        transport: Transport::Udp,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        domain: "example.test".into(),
    }
}

fn new_reg() -> Registration {
    Registration::new(config(), Ha1::from_hex(HA1_HEX).unwrap())
}

fn actions(r: &mut Registration) -> Vec<RegAction> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn via() -> Via {
    Via::new(
        "UDP",
        Host::Ipv4([127, 0, 0, 1].into()),
        Some(5070),
        "z9hG4bKabc",
    )
}

/// Builds the REGISTER for a Send action and checks the invariants every one must keep.
fn sent(r: &mut Registration, expires: u32) -> SipRequest {
    let req = r
        .build_register(&via(), "127.0.0.1:5070;transport=udp", expires, "cn1")
        .unwrap();
    assert_eq!(*req.method(), Method::Register);
    assert_eq!(req.uri().as_str(), "sip:example.test");
    assert_eq!(req.call_id(), "call1@x");
    assert_eq!(req.expires(), Some(expires));
    assert_eq!(req.header("User-Agent"), Some("test-agent"));
    let contact = &req.contacts().as_slice()[0];
    assert_eq!(contact.uri.user(), Some("sylk-token1"));
    assert_eq!(contact.expires(), Some(expires));
    req
}

fn reply(req: &SipRequest, status: u16, reason: &str, extra: &[(&str, &str)]) -> SipResponse {
    let mut b = ResponseBuilder::from_request(req, status, reason, Some("rtag"));
    for (n, v) in extra {
        b = b.header(n, v);
    }
    b.build().unwrap()
}

/// The one action, which must report a failure: its sylkRTC reason text.
fn failure(actions: Vec<RegAction>) -> String {
    match &actions[..] {
        [RegAction::Report(RegistrationStatus::Failed(f))] => f.to_string(),
        other => panic!("expected one failure report, got {other:?}"),
    }
}

fn registered(t0: Instant) -> Registration {
    let mut r = new_reg();
    r.start(t0);
    actions(&mut r);
    r.handle_located(t0, Ok(vec![target(5060)].into()));
    actions(&mut r);
    let req = sent(&mut r, 600);
    r.handle_response(
        t0,
        &reply(
            &req,
            200,
            "OK",
            &[("Contact", "<sip:sylk-token1@127.0.0.1:5070>;expires=600")],
        ),
    );
    assert_eq!(
        actions(&mut r),
        [RegAction::Report(RegistrationStatus::Registered)]
    );
    r
}

#[test]
fn challenge_then_registered_then_refreshed() {
    let t0 = Instant::now();
    let mut r = new_reg();
    r.start(t0);
    assert_eq!(
        actions(&mut r),
        [
            RegAction::Report(RegistrationStatus::Registering),
            RegAction::Locate(SipUriParts {
                scheme: SipScheme::Sip,
                host: "example.test".into(),
                port: None,
                transport: None
            })
        ]
    );
    r.handle_located(t0, Ok(vec![target(5060)].into()));
    assert_eq!(
        actions(&mut r),
        [RegAction::Send {
            target: target(5060),
            expires: 600
        }]
    );
    let first = sent(&mut r, 600);
    assert_eq!(first.cseq().seq, 1);
    assert!(first.header("Authorization").is_none());
    r.handle_response(
        t0,
        &reply(
            &first,
            401,
            "Unauthorized",
            &[(
                "WWW-Authenticate",
                "Digest realm=\"example.test\", nonce=\"n1\", qop=\"auth\"",
            )],
        ),
    );
    assert_eq!(
        actions(&mut r),
        [RegAction::Send {
            target: target(5060),
            expires: 600
        }]
    );
    let second = sent(&mut r, 600);
    assert_eq!(
        second.cseq().seq,
        2,
        "CSeq rises within the binding (RFC 3261 10.2.4)"
    );
    let auth = second
        .header("Authorization")
        .expect("credentials after 401");
    assert!(
        auth.contains("username=\"alice\"") && auth.contains("nc=00000001"),
        "{auth}"
    );
    // The registrar grants less than asked: refresh follows the granted value.
    r.handle_response(
        t0,
        &reply(
            &second,
            200,
            "OK",
            &[(
                "Contact",
                "<sip:other@10.0.0.1>;expires=3600, <sip:sylk-token1@127.0.0.1:5070>;expires=300",
            )],
        ),
    );
    assert_eq!(
        actions(&mut r),
        [RegAction::Report(RegistrationStatus::Registered)]
    );
    assert!(r.is_registered());
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(240)));
    r.handle_timeout(t0 + Duration::from_secs(239));
    assert!(actions(&mut r).is_empty());
    let t1 = t0 + Duration::from_secs(240);
    r.handle_timeout(t1);
    assert_eq!(
        actions(&mut r),
        [RegAction::Send {
            target: target(5060),
            expires: 600
        }]
    );
    let refresh = sent(&mut r, 600);
    assert!(refresh
        .header("Authorization")
        .unwrap()
        .contains("nc=00000002"));
    r.handle_response(t1, &reply(&refresh, 200, "OK", &[("Expires", "600")]));
    assert!(actions(&mut r).is_empty(), "no event when nothing changed");
    assert_eq!(r.poll_timeout(), Some(t1 + Duration::from_secs(540)));
}

#[test]
fn a_second_challenge_for_the_same_realm_fails_instead_of_looping() {
    let t0 = Instant::now();
    let mut r = new_reg();
    r.start(t0);
    r.handle_located(t0, Ok(vec![target(5060)].into()));
    actions(&mut r);
    let challenge = [(
        "WWW-Authenticate",
        "Digest realm=\"example.test\", nonce=\"n1\"",
    )];
    let req = sent(&mut r, 600);
    r.handle_response(t0, &reply(&req, 401, "Unauthorized", &challenge));
    actions(&mut r);
    let req = sent(&mut r, 600);
    r.handle_response(t0, &reply(&req, 401, "Unauthorized", &challenge));
    assert_eq!(failure(actions(&mut r)), "401 Unauthorized");
    assert_eq!(
        r.poll_timeout(),
        None,
        "an initial failure is not retried by itself"
    );
}

#[test]
fn interval_too_brief_raises_expiry_once_per_answer() {
    let t0 = Instant::now();
    let mut r = new_reg();
    r.expires = 60;
    r.start(t0);
    r.handle_located(t0, Ok(vec![target(5060)].into()));
    actions(&mut r);
    let req = sent(&mut r, 60);
    r.handle_response(
        t0,
        &reply(&req, 423, "Interval Too Brief", &[("Min-Expires", "1800")]),
    );
    assert_eq!(
        actions(&mut r),
        [RegAction::Send {
            target: target(5060),
            expires: 1800
        }]
    );
    let req = sent(&mut r, 1800);
    r.handle_response(
        t0,
        &reply(&req, 423, "Interval Too Brief", &[("Min-Expires", "1800")]),
    );
    assert_eq!(failure(actions(&mut r)), "423 Interval Too Brief");
}

#[test]
fn timeouts_fail_over_then_report_408() {
    let t0 = Instant::now();
    let mut r = new_reg();
    r.start(t0);
    r.handle_located(t0, Ok(vec![target(5060), target(5062)].into()));
    actions(&mut r);
    r.handle_no_response(t0, false);
    assert_eq!(
        actions(&mut r),
        [RegAction::Send {
            target: target(5062),
            expires: 600
        }]
    );
    r.handle_no_response(t0, false);
    assert_eq!(failure(actions(&mut r)), "408 Request Timeout");
}

#[test]
fn dns_failure_is_reported_with_its_text() {
    let t0 = Instant::now();
    let mut r = new_reg();
    r.start(t0);
    actions(&mut r);
    r.handle_located(
        t0,
        Err(LocateError::NoRecords {
            host: "example.test".into(),
        }),
    );
    assert_eq!(
        actions(&mut r),
        [RegAction::Report(RegistrationStatus::Failed(
            RegistrationFailure::Dns(LocateError::NoRecords {
                host: "example.test".into(),
            })
        ))]
    );
    r.start(t0);
    actions(&mut r);
    r.handle_located(t0, Err(LocateError::NoRecords { host: "x".into() }));
    assert_eq!(
        failure(actions(&mut r)),
        "DNS lookup error: no records for x"
    );
}

#[test]
fn stop_when_registered_sends_expires_zero_and_finishes_silently() {
    let t0 = Instant::now();
    let mut r = registered(t0);
    r.stop(t0);
    assert_eq!(
        actions(&mut r),
        [RegAction::Send {
            target: target(5060),
            expires: 0
        }]
    );
    let req = sent(&mut r, 0);
    r.handle_response(t0, &reply(&req, 200, "OK", &[]));
    assert_eq!(actions(&mut r), [RegAction::Finished]);
}

#[test]
fn stop_while_registering_unregisters_after_the_answer() {
    let t0 = Instant::now();
    let mut r = new_reg();
    r.start(t0);
    r.handle_located(t0, Ok(vec![target(5060)].into()));
    actions(&mut r);
    let req = sent(&mut r, 600);
    r.stop(t0);
    assert!(actions(&mut r).is_empty());
    r.handle_response(t0, &reply(&req, 200, "OK", &[("Expires", "600")]));
    assert_eq!(
        actions(&mut r),
        [RegAction::Send {
            target: target(5060),
            expires: 0
        }]
    );
    r.handle_no_response(t0, false);
    assert_eq!(actions(&mut r), [RegAction::Finished]);
}

#[test]
fn stop_before_anything_was_sent_finishes_at_once() {
    let t0 = Instant::now();
    let mut r = new_reg();
    r.start(t0);
    actions(&mut r);
    r.stop(t0);
    assert_eq!(actions(&mut r), [RegAction::Finished]);
}

#[test]
fn failed_refresh_reports_and_retries_with_backoff() {
    let t0 = Instant::now();
    let mut r = registered(t0);
    let t1 = r.poll_timeout().unwrap();
    r.handle_timeout(t1);
    actions(&mut r);
    let req = sent(&mut r, 600);
    r.handle_response(t1, &reply(&req, 500, "Server Internal Error", &[]));
    assert_eq!(failure(actions(&mut r)), "500 Server Internal Error");
    assert_eq!(r.poll_timeout(), Some(t1 + FIRST_RETRY));
    r.handle_timeout(t1 + FIRST_RETRY);
    let a = actions(&mut r);
    assert!(matches!(
        a[0],
        RegAction::Report(RegistrationStatus::Registering)
    ));
    assert!(matches!(a[1], RegAction::Locate(_)));
    // A second failure doubles the delay.
    let t2 = t1 + FIRST_RETRY;
    r.handle_located(
        t2,
        Err(LocateError::NoRecords {
            host: "example.test".into(),
        }),
    );
    actions(&mut r);
    assert_eq!(r.poll_timeout(), Some(t2 + FIRST_RETRY * 2));
}

#[test]
fn host_port_split() {
    assert_eq!(
        split_host_port("example.test"),
        ("example.test".into(), None)
    );
    assert_eq!(
        split_host_port("127.0.0.1:5080"),
        ("127.0.0.1".into(), Some(5080))
    );
    assert_eq!(split_host_port("[::1]:5080"), ("::1".into(), Some(5080)));
    assert_eq!(split_host_port("[::1]"), ("::1".into(), None));
}

/// RFC 3327 and RFC 5626: with the extensions on, the REGISTER names this hop in Path, says
/// it supports both, and its Contact carries the instance id and reg-id; the registrar's 200
/// (which echoes the Contact with its parameters) binds us as before.
#[test]
fn path_and_instance_id_go_on_the_register() {
    let mut c = config();
    c.path = true;
    c.instance = Some("urn:uuid:f81d4fae-7dec-41d0-a765-00a0c91e6bf6".into());
    let mut r = Registration::new(c, Ha1::from_hex(HA1_HEX).unwrap());
    let t0 = Instant::now();
    r.start(t0);
    let _ = actions(&mut r);
    r.handle_located(t0, Ok(vec![target(5060)].into()));
    let _ = actions(&mut r);
    let req = sent(&mut r, 600);
    assert_eq!(
        req.header("Path"),
        Some("<sip:127.0.0.1:5070;transport=udp;lr>")
    );
    assert_eq!(req.header("Supported"), Some("path, outbound"));
    let text = String::from_utf8(req.to_bytes()).unwrap();
    assert!(
        text.contains(
            "Contact: <sip:sylk-token1@127.0.0.1:5070;transport=udp>;expires=600;\
             +sip.instance=\"<urn:uuid:f81d4fae-7dec-41d0-a765-00a0c91e6bf6>\";reg-id=1\r\n"
        ),
        "{text}"
    );
    let ok = reply(
        &req,
        200,
        "OK",
        &[(
            "Contact",
            "<sip:sylk-token1@127.0.0.1:5070;transport=udp>;expires=300;\
             +sip.instance=\"<urn:uuid:f81d4fae-7dec-41d0-a765-00a0c91e6bf6>\";reg-id=1",
        )],
    );
    r.handle_response(t0, &ok);
    assert!(actions(&mut r).contains(&RegAction::Report(RegistrationStatus::Registered)));
}
