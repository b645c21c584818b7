//! The `m=message` lines of chat sessions: ours written from the engine's URI and Use-Path
//! (RFC 4975 section 8, RFC 4976 section 6), the peer's read once, and who connects
//! (RFC 6135: `a=setup`; without it the offerer connects, as RFC 4975 section 5.4 has it).

use media::sdp::{MediaSection, MsrpLine, Setup};
use msrp::uri::format_path;
use msrp::{MsrpUri, Role};

/// What we accept in SENDs: CPIM, with anything wrapped inside (the client parses it).
const ACCEPT_TYPES: &[&str] = &["message/cpim"];
const ACCEPT_WRAPPED_TYPES: &[&str] = &["*"];

/// The peer's `m=message` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::gateway) struct PeerLine {
    /// Its `a=path`: relays first, the peer's own URI last.
    pub path: Vec<MsrpUri>,
    /// Its `a=setup`.
    pub setup: Option<Setup>,
    /// `TCP/TLS/MSRP`.
    pub tls: bool,
}

impl PeerLine {
    /// Reads an active MSRP section; `Err` says why it cannot be used.
    pub fn read(m: &MediaSection) -> Result<PeerLine, &'static str> {
        if !m.is_msrp() || !m.is_active() {
            return Err("m=message refused");
        }
        let path = m.msrp_path().ok_or("no a=path")?;
        let path = MsrpUri::parse_list(path, msrp::frame::MAX_PATH).map_err(|_| "bad a=path")?;
        let types = m.accept_types();
        if !types
            .iter()
            .any(|t| t.eq_ignore_ascii_case("message/cpim") || *t == "*")
        {
            return Err("the peer does not accept message/cpim");
        }
        Ok(PeerLine {
            path,
            setup: m.setup_role(),
            tls: m.is_msrp_tls(),
        })
    }
}

/// The `a=setup` we offer: `actpass` when a peer may connect to us (we listen, or our
/// relay's URI comes first in our path), else `active`.
pub(super) fn offer_setup(can_listen: bool, over_relay: bool) -> Setup {
    if can_listen || over_relay {
        Setup::ActPass
    } else {
        Setup::Active
    }
}

/// Our role once the peer answered our offer (RFC 6135 section 4.1): it connects when it
/// says `active`; without `a=setup` the offerer connects.
pub(super) fn role_after_answer(answered: Option<Setup>) -> Role {
    match answered {
        Some(Setup::Active) => Role::Passive,
        _ => Role::Active,
    }
}

/// Our role and the `a=setup` of our answer to an offer saying `offered`; `None` when we
/// cannot take the role it leaves us (we would have to listen and cannot). Over a relay we
/// always connect to the relay, and the peer's connection lands on the relay too.
pub(super) fn answer_role(
    offered: Option<Setup>,
    can_listen: bool,
    over_relay: bool,
) -> Option<(Role, Setup)> {
    match offered {
        Some(Setup::HoldConn) => None,
        Some(Setup::Passive) | Some(Setup::ActPass) => Some((Role::Active, Setup::Active)),
        // `active`, or absent (RFC 4975: the offerer connects): the peer connects to our path.
        Some(Setup::Active) | None if can_listen || over_relay => {
            Some((Role::Passive, Setup::Passive))
        }
        Some(Setup::Active) | None => None,
    }
}

/// Our `m=message` line: the relay's Use-Path then our URI in `a=path`.
pub(super) fn our_line(
    local: &MsrpUri,
    use_path: &[MsrpUri],
    tls: bool,
    setup: Setup,
) -> MediaSection {
    let mut path = use_path.to_vec();
    path.push(local.clone());
    MediaSection::msrp(&MsrpLine {
        port: local.port_or_default(),
        tls,
        path: &format_path(&path),
        accept_types: ACCEPT_TYPES,
        accept_wrapped_types: ACCEPT_WRAPPED_TYPES,
        setup,
    })
}

/// The answer's line refusing an offered `m=message` (RFC 3264 section 6: port 0, same
/// protocol and formats).
pub(super) fn refused_line(offered: &MediaSection) -> MediaSection {
    MediaSection::new(
        offered.kind.clone(),
        0,
        &offered.protocol,
        offered.formats.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_rfc_6135() {
        assert_eq!(offer_setup(true, false), Setup::ActPass);
        assert_eq!(offer_setup(false, false), Setup::Active);
        assert_eq!(offer_setup(false, true), Setup::ActPass);
        assert_eq!(role_after_answer(Some(Setup::Active)), Role::Passive);
        assert_eq!(role_after_answer(Some(Setup::Passive)), Role::Active);
        assert_eq!(
            role_after_answer(None),
            Role::Active,
            "the offerer connects"
        );
        assert_eq!(
            answer_role(Some(Setup::ActPass), true, false),
            Some((Role::Active, Setup::Active))
        );
        assert_eq!(
            answer_role(None, true, false),
            Some((Role::Passive, Setup::Passive)),
            "an RFC 4975 offerer connects"
        );
        assert_eq!(answer_role(Some(Setup::Active), false, false), None);
        assert_eq!(
            answer_role(Some(Setup::Active), false, true),
            Some((Role::Passive, Setup::Passive))
        );
        assert_eq!(answer_role(Some(Setup::HoldConn), true, true), None);
    }

    #[test]
    fn lines_round_trip() {
        let local = MsrpUri::parse("msrp://127.0.0.1:4000/s1;tcp").unwrap();
        let relay = MsrpUri::parse("msrp://127.0.0.1:2855/r1;tcp").unwrap();
        let line = our_line(&local, std::slice::from_ref(&relay), false, Setup::ActPass);
        let peer = PeerLine::read(&line).unwrap();
        assert_eq!(peer.path, vec![relay, local]);
        assert_eq!(peer.setup, Some(Setup::ActPass));
        assert_eq!(
            PeerLine::read(&refused_line(&line)),
            Err("m=message refused")
        );
    }
}
