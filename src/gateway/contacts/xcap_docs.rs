//! The addressbook in the user's XCAP documents: `resource-lists` (RFC 4826) for contacts
//! and groups, `pres-rules` (RFC 5025 over common-policy, RFC 4745) for policies.
//!
//! - Contacts are the entries of the top-level list [`CONTACTS_LIST`]: the entry's `uri` is
//!   the contact's default (else first) URI, its `display-name` the contact's name, and an
//!   extension element `<contact id=".." xmlns="`[`SYLK_NS`]`">` holds the rest of the
//!   contact as JSON, so nothing a client stored is lost.
//! - Every other top-level list is a group: its `name` is the group id, its `display-name`
//!   the group name, an extension `<group>` element the rest; its entries are the members,
//!   each with a `<member contact="..">` element naming the contact.
//! - Each policy is a rule: `<identity><one id=uri>` for the watcher, `sub-handling` from
//!   `presence.policy` (allow, block, polite-block, confirm; `default` writes none), and a
//!   `<policy>` element in `actions` (unknown actions are ignored, RFC 4745 section 10.2)
//!   for the rest.
//!
//! Updates change the documents as read, so entries, lists, rules and elements another
//! client wrote stay as they were. Entries and lists without our elements are shown too:
//! a foreign entry becomes a contact whose id is its URI, a foreign list a group.

use presence::pres_rules::{Rule, Ruleset, SubHandling};
use presence::resource_lists::{Entry as ListEntry, List, ResourceLists, RESOURCE_LISTS_NS};
use presence::xml::{Element, Node};
use serde_json::{Map, Value};
use store::addressbook::EntryKind;

use super::AddressbookError;
use crate::sylkrtc::contacts::{
    Addressbook, Contact, ContactUri, Entry, Group, Policy, UpdateAction,
};
use crate::sylkrtc::request::AddressbookUpdate;

/// Our extension namespace.
pub const SYLK_NS: &str = "urn:ag-projects:xml:ns:sylk-gateway:addressbook";
/// The top-level list holding every contact.
pub const CONTACTS_LIST: &str = "contacts";

/// Which document an update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// `resource-lists`.
    Lists,
    /// `pres-rules`.
    Rules,
}

/// Both documents as last read (or written), with their entity tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XcapDocs {
    /// `resource-lists`.
    pub lists: ResourceLists,
    /// Its ETag (`None`: no document on the server).
    pub lists_etag: Option<String>,
    /// `pres-rules`.
    pub rules: Ruleset,
    /// Its ETag.
    pub rules_etag: Option<String>,
}

impl XcapDocs {
    /// The addressbook the documents hold.
    pub fn addressbook(&self) -> Addressbook {
        let mut ab = Addressbook::default();
        if let Some(l) = self.lists.list(CONTACTS_LIST) {
            ab.contacts = l.entries.iter().map(contact_of).collect();
        }
        for l in &self.lists.lists {
            if l.name.as_deref() == Some(CONTACTS_LIST) {
                continue;
            }
            ab.groups.push(group_of(l, &ab.contacts));
        }
        ab.policies = self.rules.rules.iter().map(policy_of).collect();
        ab
    }

    /// Applies a checked update to the documents; says which one to write.
    pub fn apply(&mut self, update: &AddressbookUpdate) -> Result<Doc, AddressbookError> {
        let id = update.id.as_str();
        let unknown = || AddressbookError::Unknown {
            kind: update.kind,
            id: update.id.clone(),
        };
        let exists = || AddressbookError::Exists {
            kind: update.kind,
            id: update.id.clone(),
        };
        match (update.action, &update.entry, update.kind) {
            (UpdateAction::Delete, _, EntryKind::Contact) | (_, None, EntryKind::Contact) => {
                let list = self.lists.list_mut(CONTACTS_LIST);
                let before = list.entries.len();
                list.entries.retain(|e| contact_id(e) != id);
                if list.entries.len() == before {
                    return Err(unknown());
                }
                for g in &mut self.lists.lists {
                    g.entries.retain(|e| member_of(e).as_deref() != Some(id));
                }
                Ok(Doc::Lists)
            }
            (UpdateAction::Delete, _, EntryKind::Group) | (_, None, EntryKind::Group) => {
                let before = self.lists.lists.len();
                self.lists.lists.retain(|l| !is_group(l, id));
                if self.lists.lists.len() == before {
                    return Err(unknown());
                }
                Ok(Doc::Lists)
            }
            (UpdateAction::Delete, _, EntryKind::Policy) | (_, None, EntryKind::Policy) => {
                let before = self.rules.rules.len();
                self.rules.rules.retain(|r| policy_id(r) != id);
                if self.rules.rules.len() == before {
                    return Err(unknown());
                }
                Ok(Doc::Rules)
            }
            (action, Some(Entry::Contact(c)), _) => {
                let list = self.lists.list_mut(CONTACTS_LIST);
                let at = list.entries.iter().position(|e| contact_id(e) == id);
                match (action, at) {
                    (UpdateAction::Add, Some(_)) => return Err(exists()),
                    (UpdateAction::Update, None) => return Err(unknown()),
                    (_, Some(i)) => write_contact(&mut list.entries[i], c),
                    (_, None) => {
                        let mut e = ListEntry::default();
                        write_contact(&mut e, c);
                        list.entries.push(e);
                    }
                }
                // Members of groups follow the contact's URI and name.
                for g in &mut self.lists.lists {
                    if g.name.as_deref() == Some(CONTACTS_LIST) {
                        continue;
                    }
                    for e in &mut g.entries {
                        if member_of(e).as_deref() == Some(id) {
                            e.uri = entry_uri(c);
                            e.display_name = non_empty(&c.name);
                        }
                    }
                }
                Ok(Doc::Lists)
            }
            (action, Some(Entry::Group(g)), _) => {
                let at = self.lists.lists.iter().position(|l| is_group(l, id));
                match (action, at) {
                    (UpdateAction::Add, Some(_)) => return Err(exists()),
                    (UpdateAction::Update, None) => return Err(unknown()),
                    (_, Some(i)) => write_group(&mut self.lists.lists[i], g),
                    (_, None) => {
                        let mut l = List::default();
                        write_group(&mut l, g);
                        self.lists.lists.push(l);
                    }
                }
                Ok(Doc::Lists)
            }
            (action, Some(Entry::Policy(p)), _) => {
                let at = self.rules.rules.iter().position(|r| policy_id(r) == id);
                match (action, at) {
                    (UpdateAction::Add, Some(_)) => return Err(exists()),
                    (UpdateAction::Update, None) => return Err(unknown()),
                    (_, Some(i)) => write_policy(&mut self.rules.rules[i], p),
                    (_, None) => {
                        let mut r = Rule::default();
                        write_policy(&mut r, p);
                        self.rules.rules.push(r);
                    }
                }
                Ok(Doc::Rules)
            }
        }
    }
}

/// The extension element `name` of ours among `extra`.
fn ours<'a>(extra: &'a [Element], name: &str) -> Option<&'a Element> {
    extra.iter().find(|e| e.is(SYLK_NS, name))
}

/// Replaces (or adds) our element `name` among `extra`, keeping the others in place.
fn set_ours(extra: &mut Vec<Element>, element: Element) {
    match extra.iter_mut().find(|e| e.is(SYLK_NS, &element.name)) {
        Some(slot) => *slot = element,
        None => extra.push(element),
    }
}

/// The JSON object an element of ours carries (empty when it is not one).
fn json_of(e: Option<&Element>) -> Map<String, Value> {
    match e.map(|e| serde_json::from_str::<Value>(&e.text())) {
        Some(Ok(Value::Object(m))) => m,
        _ => Map::new(),
    }
}

fn element(name: &str, attr: (&str, &str), fields: Map<String, Value>) -> Element {
    let text = Value::Object(fields).to_string();
    Element::new(Some(SYLK_NS), name)
        .with_attr(attr.0, attr.1)
        .with_text(&text)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The id of the contact an entry of the contacts list is (foreign entries: the URI).
fn contact_id(e: &ListEntry) -> String {
    ours(&e.extra, "contact")
        .and_then(|c| c.attr("id"))
        .map_or_else(|| e.uri.clone(), str::to_owned)
}

/// The contact a group member entry names.
fn member_of(e: &ListEntry) -> Option<String> {
    ours(&e.extra, "member")
        .and_then(|m| m.attr("contact"))
        .map(str::to_owned)
}

fn is_group(l: &List, id: &str) -> bool {
    l.name.as_deref() != Some(CONTACTS_LIST) && group_id(l) == id
}

fn group_id(l: &List) -> String {
    ours(&l.extra, "group")
        .and_then(|g| g.attr("id"))
        .map(str::to_owned)
        .or_else(|| l.name.clone())
        .unwrap_or_default()
}

/// The URI an entry carries for a contact: the default URI, else the first; a contact
/// without any gets a URN of its id (an entry needs a URI).
fn entry_uri(c: &Contact) -> String {
    c.default_uri
        .as_ref()
        .or(c.uris.first())
        .map(|u| u.uri.clone())
        .unwrap_or_else(|| format!("urn:x-sylk-contact:{}", c.id))
}

fn contact_of(e: &ListEntry) -> Contact {
    let id = contact_id(e);
    let mut fields = json_of(ours(&e.extra, "contact"));
    fields.insert("id".into(), Value::String(id.clone()));
    let name = e.display_name.clone().unwrap_or_default();
    fields.insert("name".into(), Value::String(name.clone()));
    match serde_json::from_value::<Contact>(Value::Object(fields)) {
        Ok(mut c) => {
            if c.uris.is_empty() && !e.uri.starts_with("urn:x-sylk-contact:") {
                c.uris.push(uri_of(&e.uri));
            }
            c
        }
        Err(_) => Contact {
            id,
            name,
            uris: vec![uri_of(&e.uri)],
            dialog: Default::default(),
            presence: Default::default(),
            attributes: None,
            default_uri: None,
            extra: Map::new(),
        },
    }
}

fn uri_of(uri: &str) -> ContactUri {
    ContactUri {
        id: uri.to_owned(),
        uri: uri.to_owned(),
        kind: None,
        default: None,
        attributes: None,
    }
}

fn write_contact(e: &mut ListEntry, c: &Contact) {
    e.uri = entry_uri(c);
    e.display_name = non_empty(&c.name);
    let mut fields = match serde_json::to_value(c) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    fields.remove("id");
    fields.remove("name");
    set_ours(&mut e.extra, element("contact", ("id", &c.id), fields));
}

fn group_of(l: &List, contacts: &[Contact]) -> Group {
    let id = group_id(l);
    let mut fields = json_of(ours(&l.extra, "group"));
    let members: Vec<Value> = l
        .entries
        .iter()
        .map(|e| {
            let known = member_of(e).and_then(|m| contacts.iter().find(|c| c.id == m));
            let c = known.cloned().unwrap_or_else(|| contact_of(e));
            serde_json::to_value(c).unwrap_or(Value::Null)
        })
        .collect();
    fields.insert("id".into(), Value::String(id.clone()));
    let name = l.display_name.clone().unwrap_or_default();
    fields.insert("name".into(), Value::String(name.clone()));
    fields.insert("contacts".into(), Value::Array(members));
    serde_json::from_value::<Group>(Value::Object(fields)).unwrap_or(Group {
        id,
        name,
        contacts: Vec::new(),
        attributes: None,
        extra: Map::new(),
    })
}

fn write_group(l: &mut List, g: &Group) {
    if l.name.is_none() {
        l.name = Some(g.id.clone());
    }
    l.display_name = non_empty(&g.name);
    let old: Vec<ListEntry> = std::mem::take(&mut l.entries);
    for c in &g.contacts {
        // A member kept keeps whatever else its entry carried.
        let mut e = old
            .iter()
            .find(|e| member_of(e).as_deref() == Some(c.id.as_str()))
            .cloned()
            .unwrap_or_default();
        e.uri = entry_uri(c);
        e.display_name = non_empty(&c.name);
        set_ours(
            &mut e.extra,
            Element::new(Some(SYLK_NS), "member").with_attr("contact", &c.id),
        );
        l.entries.push(e);
    }
    let mut fields = match serde_json::to_value(g) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for k in ["id", "name", "contacts"] {
        fields.remove(k);
    }
    set_ours(&mut l.extra, element("group", ("id", &g.id), fields));
}

fn policy_id(r: &Rule) -> String {
    ours(&r.actions_extra, "policy")
        .and_then(|p| p.attr("id"))
        .map_or_else(|| r.id.clone(), str::to_owned)
}

fn policy_of(r: &Rule) -> Policy {
    let id = policy_id(r);
    let mut fields = json_of(ours(&r.actions_extra, "policy"));
    fields.insert("id".into(), Value::String(id.clone()));
    let uri = r.identities.first().cloned().unwrap_or_default();
    fields.insert("uri".into(), Value::String(uri.clone()));
    let mut p = serde_json::from_value::<Policy>(Value::Object(fields)).unwrap_or(Policy {
        id,
        name: String::new(),
        uri,
        dialog: Default::default(),
        presence: Default::default(),
        attributes: None,
        extra: Map::new(),
    });
    p.presence.policy = r
        .sub_handling
        .map_or("default", SubHandling::as_str)
        .to_owned();
    p
}

fn write_policy(r: &mut Rule, p: &Policy) {
    if r.id.is_empty() {
        r.id = rule_id(&p.id);
    }
    r.identities = vec![p.uri.clone()];
    r.sub_handling = SubHandling::parse(&p.presence.policy);
    let mut fields = match serde_json::to_value(p) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    fields.remove("id");
    fields.remove("uri");
    set_ours(
        &mut r.actions_extra,
        element("policy", ("id", &p.id), fields),
    );
}

/// A rule id (an XML ID: a letter or `_`, then letters, digits, `-`, `_`, `.`) for a
/// policy id: the id itself when it is one, else `p_` and its bytes in hex.
fn rule_id(id: &str) -> String {
    let mut chars = id.chars();
    let ncname = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ncname {
        return id.to_owned();
    }
    let mut out = String::from("p_");
    for b in id.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The rls-services namespace (RFC 4826 section 4).
pub const RLS_SERVICES_NS: &str = "urn:ietf:params:xml:ns:rls-services";
/// The rls-services content type.
pub const RLS_SERVICES_CONTENT_TYPE: &str = "application/rls-services+xml";

/// Limits for a user's rls-services document (a handful of services in practice).
const RLS_LIMITS: presence::xml::Limits = presence::xml::Limits {
    max_size: 256 * 1024,
    max_depth: 16,
    max_elements: 10_000,
};

/// Why an rls-services document cannot take our service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RlsServicesError {
    /// Not well-formed, over the limits, or not `<rls-services>`.
    NotRlsServices,
}

/// The user's rls-services document (`None`: there is none) with the service `service_uri`
/// for `presence` over exactly `entries` (SIP URIs), as an inline `<list>` (RFC 4826
/// section 4.2): the contacts the user watches, not every entry of the `contacts` list.
/// `Ok(None)`: the service is there with those entries already, nothing to write. A service
/// of that URI with other contents is replaced in place; other services and elements are
/// kept (attributes with a namespace prefix are not: the reader drops them).
pub fn with_rls_service(
    existing: Option<&[u8]>,
    service_uri: &str,
    entries: &[String],
) -> Result<Option<String>, RlsServicesError> {
    let mut root = match existing {
        Some(bytes) => presence::xml::parse(bytes, RLS_LIMITS)
            .ok()
            .filter(|r| r.is(RLS_SERVICES_NS, "rls-services"))
            .ok_or(RlsServicesError::NotRlsServices)?,
        None => Element::new(Some(RLS_SERVICES_NS), "rls-services"),
    };
    let ns = Some(RLS_SERVICES_NS);
    let mut list = Element::new(Some(RESOURCE_LISTS_NS), "list");
    for uri in entries {
        list =
            list.with_child(Element::new(Some(RESOURCE_LISTS_NS), "entry").with_attr("uri", uri));
    }
    let service = Element::new(ns, "service")
        .with_attr("uri", service_uri)
        .with_child(list)
        .with_child(
            Element::new(ns, "packages")
                .with_child(Element::new(ns, "package").with_text("presence")),
        );
    let ours = root.children.iter_mut().find_map(|n| match n {
        Node::Element(e)
            if e.is(RLS_SERVICES_NS, "service") && e.attr("uri") == Some(service_uri) =>
        {
            Some(e)
        }
        _ => None,
    });
    match ours {
        Some(old) if service_entries(old).as_deref() == Some(entries) => return Ok(None),
        Some(old) => *old = service,
        None => root = root.with_child(service),
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    root.write(&mut out, None);
    out.push('\n');
    Ok(Some(out))
}

/// The entry URIs of a service's inline `<list>`; `None` when it names its list otherwise
/// (`<resource-list>`) or nests lists.
fn service_entries(service: &Element) -> Option<Vec<String>> {
    let list = service.child(RESOURCE_LISTS_NS, "list")?;
    if service.child(RLS_SERVICES_NS, "resource-list").is_some()
        || list.elements().any(|e| !e.is(RESOURCE_LISTS_NS, "entry"))
    {
        return None;
    }
    list.elements()
        .map(|e| e.attr("uri").map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sylkrtc::Aor;

    fn update(action: UpdateAction, kind: EntryKind, data: Value) -> AddressbookUpdate {
        let id = data["id"].as_str().unwrap().to_owned();
        let entry =
            (action != UpdateAction::Delete).then(|| Entry::from_json(kind, &data).unwrap());
        AddressbookUpdate {
            account: Aor::parse("alice@example.test").unwrap(),
            action,
            kind,
            id,
            entry,
        }
    }

    const FOREIGN: &[u8] = br#"<?xml version="1.0"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:o="urn:other">
  <list name="contacts"><entry uri="sip:carol@example.test"><display-name>Carol</display-name><o:fav/></entry></list>
  <list name="work"><display-name>Work</display-name><entry uri="sip:dan@example.test"/><o:x/></list>
</resource-lists>"#;

    #[test]
    fn foreign_documents_are_shown_and_kept_through_our_changes() {
        let mut docs = XcapDocs {
            lists: ResourceLists::parse(FOREIGN).unwrap(),
            ..XcapDocs::default()
        };
        let ab = docs.addressbook();
        assert_eq!(ab.contacts[0].id, "sip:carol@example.test");
        assert_eq!(ab.contacts[0].name, "Carol");
        assert_eq!(
            (ab.groups[0].id.as_str(), ab.groups[0].name.as_str()),
            ("work", "Work")
        );
        assert_eq!(ab.groups[0].contacts[0].uris[0].uri, "sip:dan@example.test");

        let bob = serde_json::json!({"id":"b 1","name":"Bob","uris":[{"id":"u","uri":"sip:bob@example.test"}],
            "presence":{"policy":"allow","subscribe":true},"attributes":{"k":"v"},"custom":[1,2]});
        assert_eq!(
            docs.apply(&update(UpdateAction::Add, EntryKind::Contact, bob.clone())),
            Ok(Doc::Lists)
        );
        let group = serde_json::json!({"id":"g","name":"Friends","contacts":[bob.clone()]});
        docs.apply(&update(UpdateAction::Add, EntryKind::Group, group))
            .unwrap();
        let policy = serde_json::json!({"id":"p 1","name":"Eve","uri":"sip:eve@example.test","presence":{"policy":"polite-block"}});
        assert_eq!(
            docs.apply(&update(UpdateAction::Add, EntryKind::Policy, policy)),
            Ok(Doc::Rules)
        );
        // Written and read back, as the server would keep them.
        let back = XcapDocs {
            lists: ResourceLists::parse(docs.lists.to_xml().as_bytes()).unwrap(),
            rules: Ruleset::parse(docs.rules.to_xml().as_bytes()).unwrap(),
            ..XcapDocs::default()
        };
        let text = back.lists.to_xml();
        assert!(text.contains("<fav xmlns=\"urn:other\"/>"), "{text}");
        assert!(text.contains("<x xmlns=\"urn:other\"/>"), "{text}");
        let ab = back.addressbook();
        let b = ab.contacts.iter().find(|c| c.id == "b 1").unwrap();
        assert_eq!(b.attributes.as_ref().unwrap()["k"], "v");
        assert_eq!(b.extra["custom"], serde_json::json!([1, 2]));
        assert!(b.presence.subscribe);
        let g = ab.groups.iter().find(|g| g.id == "g").unwrap();
        assert_eq!(g.contacts[0].id, "b 1");
        assert_eq!(ab.policies[0].id, "p 1");
        assert_eq!(ab.policies[0].presence.policy, "polite-block");
        assert_eq!(back.rules.rules[0].id, "p_702031");
        assert_eq!(
            back.rules.rules[0].sub_handling,
            Some(SubHandling::PoliteBlock)
        );

        // Adding twice and changing what is not there are refused; a delete cascades.
        let mut docs = back;
        assert!(matches!(
            docs.apply(&update(UpdateAction::Add, EntryKind::Contact, bob)),
            Err(AddressbookError::Exists { .. })
        ));
        assert!(matches!(
            docs.apply(&update(
                UpdateAction::Delete,
                EntryKind::Group,
                serde_json::json!({"id":"none"})
            )),
            Err(AddressbookError::Unknown { .. })
        ));
        docs.apply(&update(
            UpdateAction::Delete,
            EntryKind::Contact,
            serde_json::json!({"id":"b 1"}),
        ))
        .unwrap();
        let ab = docs.addressbook();
        assert!(ab
            .groups
            .iter()
            .find(|g| g.id == "g")
            .unwrap()
            .contacts
            .is_empty());
        assert_eq!(ab.contacts.len(), 1);
    }

    #[test]
    fn our_rls_service_lists_the_watched_uris_and_other_services_are_kept() {
        let uris = |l: &[&str]| l.iter().map(|u| u.to_string()).collect::<Vec<_>>();
        let two = uris(&["sip:b@b", "sip:c@b"]);
        let doc = with_rls_service(None, "sip:a-buddies@b", &two)
            .unwrap()
            .unwrap();
        assert!(
            doc.contains("<rls-services xmlns=\"urn:ietf:params:xml:ns:rls-services\"><service uri=\"sip:a-buddies@b\"><list xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><entry uri=\"sip:b@b\"/><entry uri=\"sip:c@b\"/></list>"),
            "{doc}"
        );
        assert_eq!(
            with_rls_service(Some(doc.as_bytes()), "sip:a-buddies@b", &two),
            Ok(None)
        );
        // Another set of watched URIs replaces the list, once.
        let one = uris(&["sip:c@b"]);
        let changed = with_rls_service(Some(doc.as_bytes()), "sip:a-buddies@b", &one)
            .unwrap()
            .unwrap();
        assert!(
            !changed.contains("sip:b@b") && changed.matches("sip:a-buddies@b").count() == 1,
            "{changed}"
        );
        assert_eq!(
            with_rls_service(Some(changed.as_bytes()), "sip:a-buddies@b", &one),
            Ok(None)
        );
        // The service as earlier versions wrote it (the whole contacts list) is rewritten.
        let by_ref = br#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"><service uri="sip:a-buddies@b"><resource-list>http://x/r</resource-list><packages><package>presence</package></packages></service></rls-services>"#;
        let rewritten = with_rls_service(Some(by_ref), "sip:a-buddies@b", &one)
            .unwrap()
            .unwrap();
        assert!(
            !rewritten.contains("resource-list>") && rewritten.contains("sip:c@b"),
            "{rewritten}"
        );
        let other = br#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"><service uri="sip:x@b"><list xmlns="urn:ietf:params:xml:ns:resource-lists"><entry uri="sip:y@b"/></list></service></rls-services>"#;
        let both = with_rls_service(Some(other), "sip:a-buddies@b", &two)
            .unwrap()
            .unwrap();
        assert!(
            both.contains("sip:x@b")
                && both.contains("sip:y@b")
                && both.contains("sip:a-buddies@b"),
            "{both}"
        );
        assert_eq!(
            with_rls_service(Some(b"<nope/>"), "sip:a-buddies@b", &two),
            Err(RlsServicesError::NotRlsServices)
        );
    }
}
