//! Parsing the text of `/etc/resolv.conf` (resolv.conf(5)) and `/etc/hosts` (hosts(5)).
//!
//! The reactor reads the files; these functions only see their text, so they are pure and
//! testable. Lines we cannot use are skipped and reported as [`SystemConfigWarning`]s for the
//! log rather than failing startup, matching glibc, which also ignores what it cannot parse.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use super::RecordType;

/// resolv.conf(5): MAXNS, the number of `nameserver` lines glibc uses.
const MAX_NAMESERVERS: usize = 3;
/// resolv.conf(5): `timeout` defaults to 5 s and is capped at 30.
const DEFAULT_TIMEOUT_SECS: u64 = 5;
const MAX_TIMEOUT_SECS: u64 = 30;
/// resolv.conf(5): `attempts` defaults to 2 and is capped at 5.
const DEFAULT_ATTEMPTS: u32 = 2;
const MAX_ATTEMPTS: u32 = 5;

/// A line of resolv.conf or hosts that was ignored, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfigWarning {
    /// `"resolv.conf"` or `"hosts"`.
    pub file: &'static str,
    /// 1-based line number.
    pub line: usize,
    /// Why the line was ignored.
    pub reason: &'static str,
}

impl fmt::Display for SystemConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: {}", self.file, self.line, self.reason)
    }
}

/// What resolv.conf contributes to [`super::ResolverConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvConf {
    pub nameservers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: u32,
    pub rotate: bool,
}

impl ResolvConf {
    /// Parses resolv.conf text. With no usable `nameserver` line the local machine is used,
    /// 127.0.0.1:53, as resolv.conf(5) specifies.
    pub fn parse(text: &str, warnings: &mut Vec<SystemConfigWarning>) -> Self {
        let mut conf = ResolvConf {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            attempts: DEFAULT_ATTEMPTS,
            rotate: false,
        };
        for (index, line) in text.lines().enumerate() {
            let mut warn = |reason| {
                warnings.push(SystemConfigWarning {
                    file: "resolv.conf",
                    line: index + 1,
                    reason,
                })
            };
            // resolv.conf(5): `#` or `;` in the first column start a comment.
            if line.starts_with(['#', ';']) {
                continue;
            }
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => match words.next().map(parse_nameserver) {
                    Some(Some(addr)) if conf.nameservers.len() < MAX_NAMESERVERS => {
                        conf.nameservers.push(addr)
                    }
                    Some(Some(_)) => warn("more than 3 nameservers; ignored as glibc does"),
                    _ => warn("nameserver address not understood"),
                },
                Some("options") => {
                    for option in words {
                        if let Some(value) = option.strip_prefix("timeout:") {
                            match value.parse::<u64>() {
                                Ok(secs) => {
                                    conf.timeout =
                                        Duration::from_secs(secs.clamp(1, MAX_TIMEOUT_SECS))
                                }
                                Err(_) => warn("bad timeout: value"),
                            }
                        } else if let Some(value) = option.strip_prefix("attempts:") {
                            match value.parse::<u32>() {
                                Ok(n) => conf.attempts = n.clamp(1, MAX_ATTEMPTS),
                                Err(_) => warn("bad attempts: value"),
                            }
                        } else if option == "rotate" {
                            conf.rotate = true;
                        }
                        // Other options (ndots, edns0, ...) do not apply to this resolver.
                    }
                }
                // search/domain/sortlist: see the module docs of `dns` on search lists.
                _ => {}
            }
        }
        if conf.nameservers.is_empty() {
            conf.nameservers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        conf
    }
}

/// `1.2.3.4`, `2001:db8::1` or `fe80::1%2` (numeric scope only: mapping an interface name to
/// an index would need a system call, which the engine does not make).
fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    if let Some((addr, scope)) = text.split_once('%') {
        let addr = addr.parse().ok()?;
        let scope = scope.parse().ok()?;
        return Some(SocketAddr::V6(SocketAddrV6::new(addr, 53, 0, scope)));
    }
    text.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

/// Static name-to-address table from `/etc/hosts`, consulted before any DNS query (the
/// `files dns` order of a default nsswitch.conf).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsFile {
    /// Lower-case name without trailing dot -> addresses in file order, deduplicated.
    entries: HashMap<String, Vec<IpAddr>>,
}

impl HostsFile {
    /// Parses hosts(5) text: `address canonical-name [aliases...]`, `#` starts a comment.
    pub fn parse(text: &str, warnings: &mut Vec<SystemConfigWarning>) -> Self {
        let mut hosts = HostsFile::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            let mut words = line.split_whitespace();
            let Some(address) = words.next() else {
                continue;
            };
            let Ok(ip) = address.parse::<IpAddr>() else {
                warnings.push(SystemConfigWarning {
                    file: "hosts",
                    line: index + 1,
                    reason: "address not understood",
                });
                continue;
            };
            for name in words {
                let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
                let addresses = hosts.entries.entry(name).or_default();
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
        }
        hosts
    }

    /// Addresses for `name` of the family `rtype` asks for (A or AAAA); empty for other types
    /// or unknown names.
    pub fn lookup(&self, name: &str, rtype: RecordType) -> Vec<IpAddr> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let Some(addresses) = self.entries.get(&name) else {
            return Vec::new();
        };
        addresses
            .iter()
            .copied()
            .filter(|ip| match rtype {
                RecordType::A => ip.is_ipv4(),
                RecordType::Aaaa => ip.is_ipv6(),
                _ => false,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_options_and_comments() {
        let text = "# generated\n; also a comment\nsearch example.com\n\
                    nameserver 192.0.2.1\nnameserver 2001:db8::53\n\
                    nameserver fe80::1%3\nnameserver 192.0.2.4\n\
                    nameserver bogus\noptions ndots:2 timeout:3 attempts:9 rotate\n";
        let mut warnings = Vec::new();
        let conf = ResolvConf::parse(text, &mut warnings);
        assert_eq!(
            conf.nameservers,
            vec![
                "192.0.2.1:53".parse().unwrap(),
                "[2001:db8::53]:53".parse().unwrap(),
                SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 3)),
            ]
        );
        assert_eq!(conf.timeout, Duration::from_secs(3));
        assert_eq!(conf.attempts, MAX_ATTEMPTS, "attempts is capped at 5");
        assert!(conf.rotate);
        let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![7, 8], "4th nameserver and the bogus one");
    }

    #[test]
    fn resolv_conf_defaults_to_local_server() {
        let conf = ResolvConf::parse("options timeout:0\n", &mut Vec::new());
        assert_eq!(
            conf.nameservers,
            vec!["127.0.0.1:53".parse::<std::net::SocketAddr>().unwrap()]
        );
        assert_eq!(
            conf.timeout,
            Duration::from_secs(1),
            "timeout:0 is raised to 1 s"
        );
        assert_eq!(conf.attempts, DEFAULT_ATTEMPTS);
        assert!(!conf.rotate);
    }

    #[test]
    fn hosts_file_by_family_case_and_comments() {
        let text = "127.0.0.1 localhost\n::1 localhost ip6-localhost # loopback\n\
                    192.0.2.7 SIP.Example.COM. sip # trailing comment\nnot-an-ip foo\n\
                    192.0.2.7 sip.example.com\n";
        let mut warnings = Vec::new();
        let hosts = HostsFile::parse(text, &mut warnings);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, 4);
        assert_eq!(
            hosts.lookup("LOCALHOST.", RecordType::A),
            vec![IpAddr::from([127, 0, 0, 1])]
        );
        assert_eq!(
            hosts.lookup("localhost", RecordType::Aaaa),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            hosts.lookup("sip.example.com", RecordType::A),
            vec![IpAddr::from([192, 0, 2, 7])],
            "duplicates are merged"
        );
        assert!(hosts.lookup("sip.example.com", RecordType::Srv).is_empty());
        assert!(hosts.lookup("foo", RecordType::A).is_empty());
    }
}
