//! Deterministic mutations of valid documents through every parser of the crate (the
//! fuzz targets' job in the normal suite): every truncation, every byte replaced by a few
//! interesting values, structural insertions at every position; none may panic and
//! accepted documents must round-trip ([`crate::exercise`]).

use crate::exercise;

fn for_each_mutation(seed: &[u8], mut check: impl FnMut(&[u8])) {
    const REPLACEMENTS: &[u8] = &[0, b'<', b'>', b'"', b'/', b'&', b' ', b'\n', 0xff];
    const INSERTIONS: &[&[u8]] = &[b"<", b"</", b"&amp;", b"<x/>", b"\"", b"--", b"\xc3"];
    for len in 0..=seed.len() {
        check(&seed[..len]);
    }
    for i in 0..seed.len() {
        let mut m = seed.to_vec();
        for &r in REPLACEMENTS {
            m[i] = r;
            check(&m);
        }
        for ins in INSERTIONS {
            let mut m = seed.to_vec();
            m.splice(i..i, ins.iter().copied());
            check(&m);
        }
    }
}

const PIDF: &[u8] = br#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:b@x"><tuple id="t"><status><basic>open</basic></status><note>n</note></tuple><dm:person id="p"><rpid:activities><rpid:away/></rpid:activities><dm:note>hi</dm:note></dm:person></presence>"#;

const LISTS: &[u8] = br#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:s="urn:s"><list name="a"><display-name>A</display-name><entry uri="sip:b@x"><display-name>B</display-name><s:c id="1" k="v">t</s:c></entry><list name="n"><entry uri="sip:c@x"/></list></list></resource-lists>"#;

const RULES: &[u8] = br#"<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules"><cr:rule id="r"><cr:conditions><cr:identity><cr:one id="sip:b@x"/></cr:identity></cr:conditions><cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions></cr:rule></cr:ruleset>"#;

#[test]
fn mutated_pidf_never_panics() {
    for_each_mutation(PIDF, exercise::pidf);
}

#[test]
fn mutated_resource_lists_never_panic_and_round_trip() {
    for_each_mutation(LISTS, exercise::resource_lists);
}

#[test]
fn mutated_pres_rules_never_panic_and_round_trip() {
    for_each_mutation(RULES, exercise::pres_rules);
}

#[test]
fn mutated_rlmi_never_panics() {
    let body = b"--b-1\r\nContent-ID: <r>\r\nContent-Type: application/rlmi+xml\r\n\r\n<list xmlns=\"urn:ietf:params:xml:ns:rlmi\" uri=\"sip:l@x\" version=\"1\" fullState=\"true\"><resource uri=\"sip:b@x\"><instance id=\"i\" state=\"active\" cid=\"p\"/></resource></list>\r\n--b-1\r\nContent-ID: <p>\r\nContent-Type: application/pidf+xml\r\n\r\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:b@x\"/>\r\n--b-1--\r\n";
    for_each_mutation(body, exercise::rlmi);
}
