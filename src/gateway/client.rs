//! One WebSocket client's sylkRTC state, and its arrival and departure.

use super::calls::ClientSessions;
use super::{AccountId, ClientId, ConnRef, Engines, Gateway};
use crate::sylkrtc::{Dialect, Event};

/// One WebSocket client's sylkRTC state.
#[derive(Debug)]
pub(super) struct Client {
    pub conn: ConnRef,
    pub dialect: Dialect,
    /// Connection id used in log lines.
    pub log_id: u64,
    /// The accounts this connection added. Small (10 by default), so a Vec.
    pub accounts: Vec<AccountId>,
    /// Its sessions (calls).
    pub sessions: ClientSessions,
}

impl Gateway {
    /// Registers a client whose handshake completed and sends it the ready event.
    pub(super) fn client_open(&mut self, conn: ConnRef, dialect: Dialect, log_id: u64) {
        let id = ClientId(self.clients.insert(Client {
            conn,
            dialect,
            log_id,
            accounts: Vec::new(),
            sessions: ClientSessions::default(),
        }));
        if let Some(stale) = self.clients_by_conn.insert(conn, id) {
            // The reactor never reuses a handle while its connection lives; if it did, the
            // older client must not linger unreachable.
            log::warn!("conn={log_id} handle reused while its client was alive");
            self.clients.remove(stale.0);
        }
        log::info!("conn={log_id} sylkrtc: ready ({})", dialect.subprotocol());
        self.send_event(id, &Event::Ready);
    }

    /// Frees everything a departed client owned: its calls end on the SIP side (BYE,
    /// CANCEL or the decline code) and its accounts unregister.
    pub(super) fn client_closed(
        &mut self,
        now: std::time::Instant,
        client: ClientId,
        e: &mut Engines<'_>,
    ) {
        if !self.clients.contains(client.0) {
            return;
        }
        self.end_client_calls(now, client, e);
        let Some(c) = self.clients.remove(client.0) else {
            return;
        };
        for account in c.accounts {
            self.remove_account(now, account, e);
        }
        log::info!("conn={} sylkrtc: client state released", c.log_id);
    }
}
