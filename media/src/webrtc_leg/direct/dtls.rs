//! DTLS-SRTP (RFC 5763, RFC 5764) for the leg: our certificate against the browser's SDP
//! fingerprint, the handshake over the ICE transport, and the SRTP keys it exports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::crypto::HashAlgorithm;
use rtc::dtls::config::{
    ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig,
    VerifyPeerCertificateFn,
};
use rtc::dtls::endpoint::EndpointEvent;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;

use super::super::WebrtcLegEvent;
use super::description::DtlsRole;
use super::identity::hex_fingerprint;
use super::{engine_err, queue_copy, WebrtcLeg};
use crate::error::WebrtcError;
use crate::srtp::{SrtpProfile, SrtpSession};

impl WebrtcLeg {
    /// DTLS settings for this call: our certificate, the SRTP profiles we accept (AEAD
    /// first, about half the CPU of AES-CM + HMAC-SHA1), mutual authentication, and the check
    /// of the peer's certificate against the SDP fingerprint (RFC 8122 sec. 5, RFC 5763
    /// sec. 5): without it anybody reaching the port could take the call's media.
    pub(super) fn handshake_config(
        &self,
        fingerprint: &str,
        role: DtlsRole,
    ) -> Result<Arc<HandshakeConfig>, WebrtcError> {
        let expected: String = fingerprint.chars().filter(|c| !c.is_whitespace()).collect();
        let provider = self.identity.provider.clone();
        let verify: VerifyPeerCertificateFn = Arc::new(
            move |certs: &[Vec<u8>],
                  _chains: &[rustls::pki_types::CertificateDer<'static>]|
                  -> Result<(), rtc::shared::error::Error> {
                let cert = certs
                    .first()
                    .ok_or(rtc::shared::error::Error::ErrNonCertificate)?;
                let digest = provider
                    .crypto()
                    .hash(HashAlgorithm::Sha256, cert)
                    .map_err(|e| rtc::shared::error::Error::Other(e.to_string()))?;
                if hex_fingerprint(&digest).eq_ignore_ascii_case(&expected) {
                    Ok(())
                } else {
                    Err(rtc::shared::error::Error::ErrNoMatchingCertificateFingerprint)
                }
            },
        );
        let config = ConfigBuilder::default()
            .with_crypto_provider(self.identity.provider.clone())
            .with_certificates(vec![self.identity.certificate.clone()])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32,
            ])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(role == DtlsRole::Client, None)
            .map_err(engine_err("configure DTLS"))?;
        Ok(Arc::new(config))
    }

    /// RFC 5763 sec. 5: the active side starts the handshake once ICE has a working pair
    /// (sending the ClientHello earlier would only be dropped by the browser).
    pub(super) fn start_dtls_client(&mut self, now: Instant) {
        let (Some(config), Some(endpoint)) = (self.client_config.clone(), self.dtls.as_mut())
        else {
            return;
        };
        if let Err(e) = endpoint.connect(now, self.dtls_key, config, None) {
            log::debug!("DTLS connect: {e}");
        }
        self.client_config = None;
        self.drain_dtls();
    }

    /// Queue the DTLS endpoint's datagrams toward the selected pair.
    pub(super) fn drain_dtls(&mut self) {
        let Some(endpoint) = self.dtls.as_mut() else {
            return;
        };
        while let Some(msg) = endpoint.poll_transmit() {
            if let Some(to) = self.peer {
                queue_copy(&mut self.out, self.candidate_addr, to, &msg.message);
            }
        }
    }

    pub(super) fn handle_dtls(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), WebrtcError> {
        if self.peer.is_none() {
            // The controlled side may see the peer's ClientHello before its own checks
            // finished; the source passed a check (validated by the caller).
            self.peer = Some(from);
        }
        let Some(endpoint) = self.dtls.as_mut() else {
            return Ok(());
        };
        let result = endpoint.read(now, self.dtls_key, None, BytesMut::from(bytes));
        self.drain_dtls();
        match result {
            Ok(events) => {
                for event in events {
                    match event {
                        EndpointEvent::HandshakeComplete => self.on_handshake_complete(now),
                        EndpointEvent::PeerClosed => {
                            log::debug!("browser closed DTLS (RFC 5246 sec. 7.2.1 close_notify)");
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Err(e) => {
                // A fatal alert or a certificate that does not match the fingerprint ends
                // the handshake: report it now instead of waiting for the deadline.
                if !self.dtls_connected && !self.dtls_failed && is_fatal_dtls_error(&e) {
                    self.dtls_failed = true;
                    self.dtls_deadline = None;
                    self.push_event(WebrtcLegEvent::DtlsFailed);
                }
                Err(WebrtcError::Engine {
                    op: "read DTLS",
                    source: e,
                })
            }
        }
    }

    /// Derive the SRTP keys (RFC 5764 sec. 4.2) and start media.
    pub(super) fn on_handshake_complete(&mut self, now: Instant) {
        if self.dtls_connected || self.dtls_failed {
            return;
        }
        let keyed = self.dtls.as_ref().and_then(|endpoint| {
            let state = endpoint.get_connection_state(self.dtls_key)?;
            let id = state.srtp_protection_profile() as u16;
            let profile = SrtpProfile::from_dtls_id(id)?;
            let material = state
                .export_keying_material(
                    "EXTRACTOR-dtls_srtp",
                    &[],
                    SrtpSession::dtls_keying_material_len(profile),
                )
                .ok()?;
            let session = SrtpSession::from_dtls_keying_material(
                profile,
                material.as_ref(),
                state.is_client(),
            )
            .ok()?;
            Some((profile, session))
        });
        match keyed {
            Some((profile, session)) => {
                self.srtp = Some(session);
                self.srtp_profile = Some(profile);
                self.dtls_connected = true;
                self.dtls_deadline = None;
                // RFC 3550 sec. 6.2: the first report after half an interval.
                let first = self.next_rtcp_interval() / 2;
                self.rtcp_due = Some(now + first);
                self.push_event(WebrtcLegEvent::DtlsConnected);
            }
            None => {
                // No SRTP profile negotiated (RFC 5764 sec. 4.1.1 makes use_srtp mandatory
                // for DTLS-SRTP) or no keys: media cannot flow.
                self.dtls_failed = true;
                self.dtls_deadline = None;
                self.push_event(WebrtcLegEvent::DtlsFailed);
            }
        }
    }
}

pub(super) fn is_fatal_dtls_error(e: &rtc::shared::error::Error) -> bool {
    use rtc::shared::error::Error as E;
    matches!(
        e,
        E::ErrNoMatchingCertificateFingerprint
            | E::ErrNonCertificate
            | E::ErrAlertFatalOrClose
            | E::ErrCipherSuiteNoIntersection
            | E::ErrServerNoMatchingSrtpProfile
            | E::ErrClientNoMatchingSrtpProfile
            | E::ErrServerRequiredButNoClientEms
            | E::ErrClientRequiredButNoServerEms
            | E::ErrNoCertificates
            | E::ErrInvalidCertificate
            | E::ErrClientCertificateRequired
    )
}
