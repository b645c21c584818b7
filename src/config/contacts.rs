//! The `[addressbook]`, `[xcap]` and `[presence]` sections: where contacts live (the
//! message store, or the user's XCAP documents) and how presence is watched and published.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};

/// Addressbook limits (`[addressbook]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressbookConfig {
    /// Most contacts, groups and policies one account may keep (adds beyond it fail).
    pub max_entries: usize,
}

/// Where an account's addressbook lives when it is on an XCAP server (`[xcap]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XcapConfig {
    /// The XCAP root for every domain without an entry in `domains`, e.g.
    /// `http://xcap.example.test/xcap-root`; `None`: the addressbook is in the store.
    pub root: Option<String>,
    /// XCAP roots per SIP domain.
    pub domains: BTreeMap<String, String>,
    /// How long one HTTP request may take (connect to last byte).
    pub timeout: Duration,
    /// Largest document accepted.
    pub max_document_size: usize,
}

impl XcapConfig {
    /// The XCAP root for accounts of `domain`, if any.
    pub fn root_for(&self, domain: &str) -> Option<&str> {
        self.domains
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, r)| r.as_str())
            .or(self.root.as_deref())
    }
}

/// Presence (`[presence]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Watch contacts and publish: off, the addressbook still works.
    pub enabled: bool,
    /// Most contact URIs subscribed per account (beyond: not watched, logged).
    pub max_subscriptions_per_account: usize,
    /// SUBSCRIBE duration asked for, seconds.
    pub subscribe_expires: u32,
    /// PUBLISH duration asked for, seconds.
    pub publish_expires: u32,
    /// Publish `busy` (`on-the-phone`) while the account has a call.
    pub auto_busy: bool,
    /// Largest NOTIFY body accepted (413 beyond).
    pub max_notify_size: usize,
    /// With an XCAP server: subscribe to the buddy list through an RLS (RFC 4662) where
    /// the server offers one, falling back to one subscription per contact.
    pub rls: bool,
}

/// The three sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactsConfig {
    /// `[addressbook]`.
    pub addressbook: AddressbookConfig,
    /// `[xcap]`.
    pub xcap: XcapConfig,
    /// `[presence]`.
    pub presence: PresenceConfig,
}

impl Default for ContactsConfig {
    fn default() -> Self {
        ContactsConfig {
            addressbook: AddressbookConfig { max_entries: 1000 },
            xcap: XcapConfig {
                root: None,
                domains: BTreeMap::new(),
                timeout: Duration::from_secs(10),
                max_document_size: 1024 * 1024,
            },
            presence: PresenceConfig {
                enabled: true,
                max_subscriptions_per_account: 200,
                subscribe_expires: 3600,
                publish_expires: 3600,
                auto_busy: true,
                max_notify_size: 256 * 1024,
                rls: true,
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAddressbook {
    max_entries: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileXcap {
    root: Option<String>,
    domains: Option<BTreeMap<String, String>>,
    timeout: Option<u64>,
    max_document_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePresence {
    enabled: Option<bool>,
    max_subscriptions_per_account: Option<usize>,
    subscribe_expires: Option<u32>,
    publish_expires: Option<u32>,
    auto_busy: Option<bool>,
    max_notify_size: Option<usize>,
    rls: Option<bool>,
}

/// An `http://` or `https://` XCAP root with a host and no query or fragment.
fn check_root(key: &'static str, root: &str) -> Result<String, ConfigError> {
    let root = root.trim().trim_end_matches('/');
    let rest = root
        .strip_prefix("http://")
        .or_else(|| root.strip_prefix("https://"));
    match rest {
        Some(r)
            if !r.is_empty()
                && !r.starts_with('/')
                && !r.contains(['?', '#', ' '])
                && xcap::XcapRoot::parse(root).is_ok() =>
        {
            Ok(root.to_owned())
        }
        _ => Err(invalid(
            key,
            "must be an http:// or https:// URL, e.g. https://xcap.example.test/xcap-root",
        )),
    }
}

pub(super) fn apply(
    c: &mut ContactsConfig,
    addressbook: FileAddressbook,
    xcap: FileXcap,
    presence: FilePresence,
) -> Result<(), ConfigError> {
    if let Some(n) = addressbook.max_entries {
        if !(1..=100_000).contains(&n) {
            return Err(invalid(
                "addressbook.max_entries",
                "must be between 1 and 100000",
            ));
        }
        c.addressbook.max_entries = n;
    }
    if let Some(root) = xcap.root.filter(|r| !r.trim().is_empty()) {
        c.xcap.root = Some(check_root("xcap.root", &root)?);
    }
    for (domain, root) in xcap.domains.unwrap_or_default() {
        let root = check_root("xcap.domains", &root)?;
        c.xcap.domains.insert(domain.to_ascii_lowercase(), root);
    }
    if let Some(t) = xcap.timeout {
        if !(1..=300).contains(&t) {
            return Err(invalid("xcap.timeout", "must be between 1 and 300 seconds"));
        }
        c.xcap.timeout = Duration::from_secs(t);
    }
    if let Some(n) = xcap.max_document_size {
        if !(4096..=16 * 1024 * 1024).contains(&n) {
            return Err(invalid(
                "xcap.max_document_size",
                "must be between 4096 and 16777216",
            ));
        }
        c.xcap.max_document_size = n;
    }
    let p = &mut c.presence;
    if let Some(v) = presence.enabled {
        p.enabled = v;
    }
    if let Some(n) = presence.max_subscriptions_per_account {
        if n > 10_000 {
            return Err(invalid(
                "presence.max_subscriptions_per_account",
                "must be at most 10000",
            ));
        }
        p.max_subscriptions_per_account = n;
    }
    for (key, value, slot) in [
        (
            "presence.subscribe_expires",
            presence.subscribe_expires,
            &mut p.subscribe_expires,
        ),
        (
            "presence.publish_expires",
            presence.publish_expires,
            &mut p.publish_expires,
        ),
    ] {
        if let Some(s) = value {
            if !(10..=86_400).contains(&s) {
                return Err(invalid(key, "must be between 10 and 86400 seconds"));
            }
            *slot = s;
        }
    }
    if let Some(v) = presence.auto_busy {
        p.auto_busy = v;
    }
    if let Some(n) = presence.max_notify_size {
        if !(1024..=16 * 1024 * 1024).contains(&n) {
            return Err(invalid(
                "presence.max_notify_size",
                "must be between 1024 and 16777216",
            ));
        }
        p.max_notify_size = n;
    }
    if let Some(v) = presence.rls {
        p.rls = v;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Overrides};

    fn err(text: &str) -> String {
        match Config::from_toml(text, &Overrides::default()) {
            Err(ConfigError::Invalid { key, reason }) => format!("{key}: {reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_and_xcap_roots_are_checked() {
        let c = Config::from_toml(
            "[addressbook]\nmax_entries = 5\n[presence]\nenabled = false\nauto_busy = false\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.contacts.addressbook.max_entries, 5);
        assert!(!c.contacts.presence.enabled && !c.contacts.presence.auto_busy);
        let c = Config::from_toml(
            "[xcap]\nroot = \"http://127.0.0.1:1/xcap-root/\"\n[xcap.domains]\n\"B.test\" = \"https://x.b.test/r\"\n",
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            c.contacts.xcap.root_for("a.test"),
            Some("http://127.0.0.1:1/xcap-root")
        );
        assert_eq!(
            c.contacts.xcap.root_for("b.TEST"),
            Some("https://x.b.test/r")
        );
        assert!(err("[xcap]\nroot = \"ftp://x\"\n").starts_with("xcap.root: must be an http"));
        assert!(err("[xcap.domains]\n\"a.test\" = \"x/r\"\n").starts_with("xcap.domains:"));
        assert!(
            err("[presence]\nsubscribe_expires = 5\n").starts_with("presence.subscribe_expires")
        );
        assert!(err("[addressbook]\nmax_entries = 0\n").starts_with("addressbook.max_entries"));
    }
}
