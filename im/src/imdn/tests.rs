use super::*;

const RFC_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn" xmlns:x="urn:example:ext">
  <message-id>34jk324j</message-id>
  <datetime>2008-04-04T12:16:49-05:00</datetime>
  <recipient-uri>im:bob@example.com</recipient-uri>
  <original-recipient-uri>im:bob@example.com</original-recipient-uri>
  <x:extra><x:status>ignored</x:status></x:extra>
  <delivery-notification>
    <status>
      <delivered/>
    </status>
  </delivery-notification>
</imdn>"#;

#[test]
fn parses_the_rfc_example_and_skips_extensions() {
    let d = Imdn::parse(RFC_SAMPLE.as_bytes()).unwrap();
    assert_eq!(d.message_id, "34jk324j");
    assert_eq!(d.datetime, "2008-04-04T12:16:49-05:00");
    assert_eq!(d.recipient_uri.as_deref(), Some("im:bob@example.com"));
    assert_eq!(d.kind, NotificationKind::Delivery);
    assert_eq!(d.status, ImdnStatus::Delivered);
}

#[test]
fn prefixed_namespace_and_escapes() {
    let doc = r#"<i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn"><i:message-id>a&amp;b&#x41;</i:message-id><i:datetime>2024-01-02T03:04:05Z</i:datetime><i:display-notification><i:status><i:displayed/></i:status></i:display-notification></i:imdn>"#;
    let d = Imdn::parse(doc.as_bytes()).unwrap();
    assert_eq!(d.message_id, "a&bA");
    assert_eq!(
        (d.kind, d.status),
        (NotificationKind::Display, ImdnStatus::Displayed)
    );
}

#[test]
fn round_trips_every_status() {
    for status in [
        ImdnStatus::Delivered,
        ImdnStatus::Displayed,
        ImdnStatus::Failed,
        ImdnStatus::Forbidden,
        ImdnStatus::Error,
        ImdnStatus::Processed,
        ImdnStatus::Stored,
    ] {
        let d = Imdn {
            message_id: "<id> & \"x\"".into(),
            datetime: "2024-01-02T03:04:05.678+01:00".into(),
            recipient_uri: Some("sip:bob@example.com".into()),
            original_recipient_uri: None,
            kind: status.kind(),
            status,
        };
        assert_eq!(Imdn::parse(d.to_xml().as_bytes()).unwrap(), d);
        assert_eq!(ImdnStatus::parse(status.as_str()), Some(status));
    }
}

#[test]
fn errors_say_what_is_wrong() {
    let doc = |inner: &str| format!(r#"<imdn xmlns="urn:ietf:params:xml:ns:imdn">{inner}</imdn>"#);
    let ok_parts = "<message-id>m</message-id><datetime>2024-01-02T03:04:05Z</datetime>";
    let cases: Vec<(String, ImdnError)> = vec![
        (r#"<imdn><message-id>m</message-id></imdn>"#.into(), ImdnError::NotImdn),
        (doc("<datetime>2024-01-02T03:04:05Z</datetime><delivery-notification><status><delivered/></status></delivery-notification>"), ImdnError::Missing("message-id")),
        (doc(ok_parts), ImdnError::Missing("notification")),
        (doc(&format!("{ok_parts}<display-notification><status><delivered/></status></display-notification>")), ImdnError::BadStatus),
        (doc(&format!("{ok_parts}<delivery-notification><status><bogus/></status></delivery-notification>")), ImdnError::BadStatus),
        (doc(&format!("{ok_parts}<delivery-notification><status/></delivery-notification>")), ImdnError::BadStatus),
        (doc("<message-id>m</message-id><datetime>soon</datetime><delivery-notification><status><delivered/></status></delivery-notification>"), ImdnError::BadDateTime),
        (doc(&format!("{ok_parts}<message-id>n</message-id>")), ImdnError::Duplicate("message-id")),
        (format!("<!DOCTYPE imdn [<!ENTITY x \"y\">]>{}", doc(ok_parts)), ImdnError::Doctype),
        ("".into(), ImdnError::NotImdn),
    ];
    for (text, want) in cases {
        assert_eq!(Imdn::parse(text.as_bytes()), Err(want.clone()), "{text}");
        assert!(!want.to_string().is_empty());
    }
    assert!(matches!(
        Imdn::parse(b"<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><a></b></imdn>"),
        Err(ImdnError::Xml(_))
    ));
    assert!(matches!(
        Imdn::parse(&[0xff, 0xfe]),
        Err(ImdnError::NotUtf8)
    ));
    let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
    assert!(Imdn::parse(doc(&deep).as_bytes()).is_err());
    assert_eq!(
        Imdn::parse(&vec![b' '; MAX_IMDN_SIZE + 1]),
        Err(ImdnError::TooLarge)
    );
}

/// Deterministic mutations (the fuzz target's job in the normal suite).
#[test]
fn mutations_never_panic() {
    let seeds = [RFC_SAMPLE.as_bytes().to_vec(), crate::mutation::imdn_seed()];
    crate::mutation::for_each_mutation(&seeds, |bytes| {
        if let Ok(d) = Imdn::parse(bytes) {
            assert!(d.status.allowed_in(d.kind));
            assert_eq!(Imdn::parse(d.to_xml().as_bytes()).as_ref(), Ok(&d));
        }
    });
}
