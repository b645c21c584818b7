//! Presence authorization rules (RFC 5025, `application/auth-policy+xml`) in the
//! common-policy format (RFC 4745): who may watch the user and how (`sub-handling`).
//!
//! Typed: each rule's identity conditions (`<one id>`), its `sub-handling` and whether it
//! grants every attribute. Other conditions, actions (the gateway keeps its own fields
//! there, as actions a server does not know are ignored, RFC 4745 section 10.2) and
//! transformations are kept as [`Element`]s.

use std::fmt;

use crate::xml::{self, escape_attr, Element, Limits, XmlError};

/// The common-policy namespace (RFC 4745).
pub const COMMON_POLICY_NS: &str = "urn:ietf:params:xml:ns:common-policy";
/// The pres-rules namespace (RFC 5025).
pub const PRES_RULES_NS: &str = "urn:ietf:params:xml:ns:pres-rules";
/// The pres-rules content type.
pub const PRES_RULES_CONTENT_TYPE: &str = "application/auth-policy+xml";
/// Largest document accepted.
pub const MAX_PRES_RULES_SIZE: usize = 512 * 1024;

const LIMITS: Limits = Limits {
    max_size: MAX_PRES_RULES_SIZE,
    max_depth: 24,
    max_elements: 50_000,
};

/// What a watcher matching a rule gets (RFC 5025 section 3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubHandling {
    /// Refused (the subscription is rejected).
    Block,
    /// The user is asked (the subscription stays pending).
    Confirm,
    /// Accepted, but the watcher sees nothing real.
    PoliteBlock,
    /// Accepted.
    Allow,
}

impl SubHandling {
    /// The element text.
    pub fn as_str(self) -> &'static str {
        match self {
            SubHandling::Block => "block",
            SubHandling::Confirm => "confirm",
            SubHandling::PoliteBlock => "polite-block",
            SubHandling::Allow => "allow",
        }
    }

    /// The value named `s`.
    pub fn parse(s: &str) -> Option<SubHandling> {
        Some(match s.trim() {
            "block" => SubHandling::Block,
            "confirm" => SubHandling::Confirm,
            "polite-block" => SubHandling::PoliteBlock,
            "allow" => SubHandling::Allow,
            _ => return None,
        })
    }
}

/// Why bytes are not a pres-rules document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RulesError {
    /// Not well-formed or over the limits.
    Xml(XmlError),
    /// The root is not a common-policy `<ruleset>`.
    NotRuleset,
    /// A rule without `id`.
    RuleWithoutId,
    /// A `sub-handling` value RFC 5025 does not define.
    BadSubHandling(String),
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesError::Xml(e) => write!(f, "pres-rules: {e}"),
            RulesError::NotRuleset => f.write_str("not a common-policy ruleset"),
            RulesError::RuleWithoutId => f.write_str("pres-rules rule without id"),
            RulesError::BadSubHandling(s) => write!(f, "pres-rules sub-handling {s:?}"),
        }
    }
}

impl std::error::Error for RulesError {}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Its id (an XML ID: starts with a letter or `_`).
    pub id: String,
    /// The watchers it applies to (`<identity><one id="sip:..."/></identity>`).
    pub identities: Vec<String>,
    /// Other conditions (kept).
    pub conditions_extra: Vec<Element>,
    /// `sub-handling`.
    pub sub_handling: Option<SubHandling>,
    /// Other actions (kept).
    pub actions_extra: Vec<Element>,
    /// `<transformations>` as read (kept); `None` writes "everything" for allow rules.
    pub transformations: Option<Element>,
}

/// A ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    /// The rules in order.
    pub rules: Vec<Rule>,
}

impl Ruleset {
    /// Parses a document.
    pub fn parse(bytes: &[u8]) -> Result<Ruleset, RulesError> {
        let root = xml::parse(bytes, LIMITS).map_err(RulesError::Xml)?;
        if !root.is(COMMON_POLICY_NS, "ruleset") {
            return Err(RulesError::NotRuleset);
        }
        let mut rules = Vec::new();
        for r in root.into_elements() {
            if r.is(COMMON_POLICY_NS, "rule") {
                rules.push(rule(r)?);
            }
        }
        Ok(Ruleset { rules })
    }

    /// The document (UTF-8).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256 + 512 * self.rules.len());
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<cr:ruleset xmlns:cr=\"{COMMON_POLICY_NS}\" xmlns:pr=\"{PRES_RULES_NS}\">\n"
        ));
        for r in &self.rules {
            write_rule(&mut out, r);
        }
        out.push_str("</cr:ruleset>\n");
        out
    }
}

// The tree is consumed: kept elements move into the rule instead of being copied. Only the
// first `conditions`, `actions` and `transformations` count (as RFC 4745 allows one each).
fn rule(e: Element) -> Result<Rule, RulesError> {
    let id = e.attr("id").ok_or(RulesError::RuleWithoutId)?.to_owned();
    let mut r = Rule {
        id,
        ..Rule::default()
    };
    let (mut conditions, mut actions) = (false, false);
    for part in e.into_elements() {
        if part.is(COMMON_POLICY_NS, "conditions") && !conditions {
            conditions = true;
            for cond in part.into_elements() {
                condition(&mut r, cond);
            }
        } else if part.is(COMMON_POLICY_NS, "actions") && !actions {
            actions = true;
            for act in part.into_elements() {
                if act.is(PRES_RULES_NS, "sub-handling") {
                    let text = act.text();
                    r.sub_handling = Some(SubHandling::parse(&text).ok_or_else(|| {
                        RulesError::BadSubHandling(text.chars().take(32).collect())
                    })?);
                } else {
                    r.actions_extra.push(act);
                }
            }
        } else if part.is(COMMON_POLICY_NS, "transformations") && r.transformations.is_none() {
            r.transformations = Some(part);
        }
    }
    Ok(r)
}

fn condition(r: &mut Rule, cond: Element) {
    let only_ones = cond
        .elements()
        .all(|x| x.is(COMMON_POLICY_NS, "one") && x.attr("id").is_some() && x.children.is_empty());
    if cond.is(COMMON_POLICY_NS, "identity") && only_ones {
        let ones = cond.children_named(COMMON_POLICY_NS, "one");
        r.identities.extend(
            ones.filter_map(|o| o.attr("id"))
                .map(|i| i.trim().to_owned()),
        );
    } else {
        // `many`, `except`, validity, sphere...: not ours to understand, kept whole.
        r.conditions_extra.push(cond);
    }
}

/// Kept elements are written with `parent_ns` `None`: the document declares no default
/// namespace (it uses the `cr:`/`pr:` prefixes), so each declares its own.
fn write_rule(out: &mut String, r: &Rule) {
    out.push_str(&format!("  <cr:rule id=\"{}\">\n", escape_attr(&r.id)));
    if !r.identities.is_empty() || !r.conditions_extra.is_empty() {
        out.push_str("    <cr:conditions>");
        if !r.identities.is_empty() {
            out.push_str("<cr:identity>");
            for i in &r.identities {
                out.push_str(&format!("<cr:one id=\"{}\"/>", escape_attr(i)));
            }
            out.push_str("</cr:identity>");
        }
        for c in &r.conditions_extra {
            c.write(out, None);
        }
        out.push_str("</cr:conditions>\n");
    }
    if r.sub_handling.is_some() || !r.actions_extra.is_empty() {
        out.push_str("    <cr:actions>");
        if let Some(s) = r.sub_handling {
            out.push_str(&format!(
                "<pr:sub-handling>{}</pr:sub-handling>",
                s.as_str()
            ));
        }
        for a in &r.actions_extra {
            a.write(out, None);
        }
        out.push_str("</cr:actions>\n");
    }
    match (&r.transformations, r.sub_handling) {
        (Some(t), _) => {
            out.push_str("    ");
            t.write(out, None);
            out.push('\n');
        }
        // An allowed watcher sees everything (RFC 5025 section 3.3: nothing is shown
        // without a transformation granting it).
        (None, Some(SubHandling::Allow)) => out.push_str(
            "    <cr:transformations><pr:provide-services><pr:all-services/></pr:provide-services>\
             <pr:provide-persons><pr:all-persons/></pr:provide-persons>\
             <pr:provide-devices><pr:all-devices/></pr:provide-devices>\
             <pr:provide-all-attributes/></cr:transformations>\n",
        ),
        (None, _) => {}
    }
    out.push_str("  </cr:rule>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_with_kept_elements() {
        let doc = br#"<?xml version="1.0"?>
<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:x="urn:x">
 <cr:rule id="a1">
  <cr:conditions><cr:identity><cr:one id="sip:bob@example.test"/><cr:one id="sip:carol@example.test"/></cr:identity>
   <cr:validity><cr:from>2024-01-01T00:00:00Z</cr:from></cr:validity></cr:conditions>
  <cr:actions><pr:sub-handling>block</pr:sub-handling><x:note>n</x:note></cr:actions>
 </cr:rule>
 <cr:rule id="b"><cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions>
  <cr:transformations><pr:provide-persons><pr:all-persons/></pr:provide-persons></cr:transformations></cr:rule>
</cr:ruleset>"#;
        let rs = Ruleset::parse(doc).unwrap();
        assert_eq!(rs.rules.len(), 2);
        let a = &rs.rules[0];
        assert_eq!(
            a.identities,
            ["sip:bob@example.test", "sip:carol@example.test"]
        );
        assert_eq!(a.sub_handling, Some(SubHandling::Block));
        assert_eq!(a.conditions_extra.len(), 1);
        assert!(a.actions_extra[0].is("urn:x", "note"));
        assert!(rs.rules[1].transformations.is_some());
        assert_eq!(Ruleset::parse(rs.to_xml().as_bytes()).unwrap(), rs);
    }

    #[test]
    fn allow_rules_get_full_transformations_and_errors_are_typed() {
        let rs = Ruleset {
            rules: vec![Rule {
                id: "r1".into(),
                identities: vec!["sip:a@b".into()],
                sub_handling: Some(SubHandling::Allow),
                ..Rule::default()
            }],
        };
        let text = rs.to_xml();
        assert!(text.contains("provide-all-attributes"));
        let back = Ruleset::parse(text.as_bytes()).unwrap();
        assert_eq!(back.rules[0].sub_handling, Some(SubHandling::Allow));
        assert!(matches!(
            Ruleset::parse(b"<ruleset/>"),
            Err(RulesError::NotRuleset)
        ));
        assert!(matches!(
            Ruleset::parse(br#"<r:ruleset xmlns:r="urn:ietf:params:xml:ns:common-policy"><r:rule/></r:ruleset>"#),
            Err(RulesError::RuleWithoutId)
        ));
        assert!(matches!(
            Ruleset::parse(br#"<r:ruleset xmlns:r="urn:ietf:params:xml:ns:common-policy" xmlns:p="urn:ietf:params:xml:ns:pres-rules"><r:rule id="x"><r:actions><p:sub-handling>maybe</p:sub-handling></r:actions></r:rule></r:ruleset>"#),
            Err(RulesError::BadSubHandling(_))
        ));
    }
}
