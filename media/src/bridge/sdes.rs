//! SDES-SRTP keys toward SIP (RFC 4568): the suites we offer, fresh keys from the injected
//! generator, and the SRTP context of an agreed m-line.

use engine::Rng;

use super::MediaLeg;
use crate::error::BridgeError;
use crate::rtp::srtp::SdesSrtp;
use crate::sdp::{
    Attribute, CryptoAttribute, CryptoSuite, MediaDirection, NegotiatedMedia, SdpError,
    SessionDescription, SipLocalMedia,
};

/// The suites of our own `RTP/SAVP` offers, most preferred first; their `a=crypto` tags are
/// 1, 2, 3 in this order (RFC 4568 section 9.1: the offerer numbers its lines, the answerer
/// names the one it accepts by tag). AES_CM_128_HMAC_SHA1_80 first: every SDES peer has it
/// (RFC 4568 section 6.2.1), and answerers commonly take the first line they support.
pub const SDES_OFFER_SUITES: [CryptoSuite; 3] = [
    CryptoSuite::AesCm128HmacSha1_80,
    CryptoSuite::AeadAes128Gcm,
    CryptoSuite::AesCm128HmacSha1_32,
];

/// One fresh key per [`SDES_OFFER_SUITES`] entry, tags 1..=n, for an `RTP/SAVP` offer.
pub(super) fn sdes_offer_cryptos(rng: &mut Rng) -> Result<Vec<CryptoAttribute>, BridgeError> {
    (1u32..)
        .zip(SDES_OFFER_SUITES)
        .map(|(tag, suite)| fresh_crypto(rng, tag, suite).ok_or(BridgeError::KeyGeneration))
        .collect()
}

/// The SDES-SRTP context of one agreed SIP m-line (RFC 4568 section 6.1): our key protects
/// what we send, the peer's unprotects what it sends. `None` for plain RTP; a line with only
/// one of the two keys is refused rather than run half in the clear.
pub(super) fn sdes_context(n: &NegotiatedMedia) -> Result<Option<SdesSrtp>, BridgeError> {
    let bad_crypto = || BridgeError::Sdp {
        leg: MediaLeg::Sip,
        error: SdpError::BadCrypto,
    };
    match (&n.local_crypto, &n.remote_crypto) {
        (Some(local), Some(remote)) => SdesSrtp::new(local, remote)
            .map(Some)
            .map_err(|_| bad_crypto()),
        (None, None) => Ok(None),
        _ => Err(bad_crypto()),
    }
}

/// A fresh SDES key for `suite` with `tag` (RFC 4568 section 6.1: master key and salt from
/// a cryptographic random source, the injected ChaCha generator); `None` if the suite's
/// key does not fit the attribute.
pub(super) fn fresh_crypto(rng: &mut Rng, tag: u32, suite: CryptoSuite) -> Option<CryptoAttribute> {
    let mut key_salt = [0u8; 64];
    let len = suite.key_len() + suite.salt_len();
    let buf = key_salt.get_mut(..len)?;
    rng.fill(buf);
    CryptoAttribute::new(tag, suite, buf).ok()
}

/// Turns our SIP answer into our offer for an INVITE without SDP (RFC 4568 section 5.1): an
/// offer lists every key we hold (tags as in the capabilities offer) instead of the single
/// line an answer has. The one the answer writer chose stays first, so the keying already
/// installed is unchanged until the ACK's answer picks.
pub(super) fn offer_every_key(sdp: &mut SessionDescription, local: &SipLocalMedia) {
    for (m, line) in sdp.media.iter_mut().zip(&local.lines) {
        if !m.has_attribute("crypto") {
            continue;
        }
        let chosen = m.cryptos().into_iter().next();
        m.attributes.retain(|a| a.name != "crypto");
        let mut ordered: Vec<&CryptoAttribute> = chosen.iter().collect();
        ordered.extend(line.cryptos.iter().filter(|c| {
            chosen
                .as_ref()
                .is_none_or(|k| !(k.tag == c.tag && k.suite == c.suite))
        }));
        // Crypto lines go before the direction attribute, as the writer puts them.
        let at = m
            .attributes
            .iter()
            .position(|a| a.value.is_none() && MediaDirection::from_attribute(&a.name).is_some())
            .unwrap_or(m.attributes.len());
        for (k, crypto) in ordered.into_iter().enumerate() {
            m.attributes
                .insert(at + k, Attribute::new("crypto", crypto.to_value()));
        }
    }
}
