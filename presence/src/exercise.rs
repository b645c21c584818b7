//! Invariant checks over every parser of the crate, shared by the fuzz target bodies
//! (`fuzz/targets/{pidf,resource_lists,pres_rules,rlmi}.rs`) and the deterministic mutation test,
//! so both check the same. They panic, by design, only on a broken invariant: malformed
//! input must come back as an error, and an accepted document must survive being written
//! and read again.

use crate::pidf::{PidfBuilder, Presence};
use crate::pres_rules::Ruleset;
use crate::resource_lists::ResourceLists;
use crate::rlmi;

/// A PIDF document: parsing never panics; what it says can be published and read back.
pub fn pidf(data: &[u8]) {
    if let Ok(p) = Presence::parse(data) {
        let activities: Vec<&str> = p.activities.iter().map(String::as_str).collect();
        let doc = PidfBuilder {
            entity: &p.entity,
            open: p.basic == crate::pidf::Basic::Open,
            activities: &activities,
            note: p.note.as_deref(),
            timestamp: None,
            tuple_id: "t",
            person_id: "p",
        }
        .build();
        let back = Presence::parse(doc.as_bytes()).expect("a built PIDF parses");
        assert_eq!(back.entity, p.entity.trim());
        assert_eq!(back.activities.len(), p.activities.len());
    }
}

/// A resource-lists document: an accepted one round-trips exactly.
pub fn resource_lists(data: &[u8]) {
    if let Ok(rl) = ResourceLists::parse(data) {
        let text = rl.to_xml();
        assert_eq!(
            ResourceLists::parse(text.as_bytes()).as_ref(),
            Ok(&rl),
            "round trip of {text}"
        );
    }
}

/// A pres-rules document: an accepted one round-trips exactly.
pub fn pres_rules(data: &[u8]) {
    if let Ok(rs) = Ruleset::parse(data) {
        let text = rs.to_xml();
        let back = Ruleset::parse(text.as_bytes()).expect("a written ruleset parses");
        assert_eq!(back.rules.len(), rs.rules.len());
        for (a, b) in back.rules.iter().zip(&rs.rules) {
            assert_eq!(
                (&a.id, &a.identities, a.sub_handling),
                (&b.id, &b.identities, b.sub_handling)
            );
        }
    }
}

/// A resource-list NOTIFY body under a fixed multipart Content-Type.
pub fn rlmi(data: &[u8]) {
    const CT: &str = "multipart/related;type=\"application/rlmi+xml\";boundary=\"b-1\"";
    let _ = rlmi::parse_list_notify(CT, data);
}
