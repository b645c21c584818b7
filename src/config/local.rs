//! `[local]`: the domain a standalone gateway serves in-process (its registrar, calls and
//! messages between its users), so that it works with no SIP server at all.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{invalid, ConfigError};

/// The domain served by default: the embedded configuration is a working appliance.
pub const DEFAULT_LOCAL_DOMAIN: &str = "sylk.local";

/// The local domain (`[local]`).
#[derive(Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// The domain, `None` when off.
    pub domain: Option<String>,
    /// Anyone may register any user of the domain, without a password (a lab).
    pub open: bool,
    /// The users and their HA1 (`MD5(user:domain:password)` as 32 hex digits, or SHA-256 as
    /// 64).
    pub users: BTreeMap<String, String>,
}

impl Default for LocalConfig {
    fn default() -> LocalConfig {
        LocalConfig {
            domain: Some(DEFAULT_LOCAL_DOMAIN.to_owned()),
            open: true,
            users: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for LocalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the HA1s.
        f.debug_struct("LocalConfig")
            .field("domain", &self.domain)
            .field("open", &self.open)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `[local]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLocal {
    domain: Option<String>,
    open: Option<bool>,
    users: Option<BTreeMap<String, String>>,
}

pub(super) fn apply_local(l: &mut LocalConfig, file: FileLocal) -> Result<(), ConfigError> {
    if let Some(d) = file.domain {
        l.domain = if d == "off" {
            None
        } else {
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(invalid(
                    "local.domain",
                    "must be a domain name (letters, digits, '.', '-') or \"off\"",
                ));
            }
            Some(d.to_ascii_lowercase())
        };
    }
    if let Some(open) = file.open {
        l.open = open;
    }
    if let Some(users) = file.users {
        for (user, ha1) in &users {
            let user_ok = !user.is_empty()
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'+".contains(&b));
            if !user_ok {
                return Err(invalid(
                    "local.users",
                    "user names are letters, digits and - _ . ! ~ * ' +",
                ));
            }
            let ha1_ok = matches!(ha1.len(), 32 | 64) && ha1.bytes().all(|b| b.is_ascii_hexdigit());
            if !ha1_ok {
                return Err(invalid(
                    "local.users",
                    "each value is an HA1: 32 hex digits (MD5) or 64 (SHA-256)",
                ));
            }
        }
        l.users = users;
    }
    if l.domain.is_some() && !l.open && l.users.is_empty() {
        return Err(invalid(
            "local.users",
            "list the users of local.domain (user = \"HA1\"), or set local.open = true",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn local_domain_users_and_open_mode() {
        let c = Config::default();
        assert_eq!(c.local.domain.as_deref(), Some("sylk.local"));
        assert!(c.local.open);
        let c = Config::from_toml(
            "[local]\ndomain = \"Example.Lan\"\nopen = false\n\
             [local.users]\nalice = \"0123456789abcdef0123456789abcdef\"\n",
            &Default::default(),
        )
        .unwrap();
        assert_eq!(c.local.domain.as_deref(), Some("example.lan"));
        assert!(!c.local.open);
        assert_eq!(c.local.users.len(), 1);
        assert!(!format!("{:?}", c.local).contains("0123456789abcdef"));
        let off = Config::from_toml("[local]\ndomain = \"off\"\n", &Default::default()).unwrap();
        assert_eq!(off.local.domain, None);
        for bad in [
            "[local]\ndomain = \"a b\"\n",
            "[local]\nopen = false\n",
            "[local.users]\nalice = \"xyz\"\n",
            "[local.users]\n\"a@b\" = \"0123456789abcdef0123456789abcdef\"\n",
        ] {
            assert!(
                Config::from_toml(bad, &Default::default()).is_err(),
                "{bad}"
            );
        }
    }
}
