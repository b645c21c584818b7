//! Completed transactions, counted by role, method and final status, for the metrics
//! endpoint. A transaction is counted once, with the first final status it sends or
//! receives (not when it terminates: an INVITE client transaction lingers 32 s in RFC 6026's
//! Accepted state); one that gets none counts as the status the TU acts on (RFC 3261
//! section 8.1.3.1): 408 after Timer B or F, 503 after a transport error.

use std::collections::BTreeMap;

use crate::msg::Method;

/// Which side of the transaction we were (RFC 3261 section 17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnRole {
    /// We sent the request.
    Client,
    /// We received it.
    Server,
}

impl TxnRole {
    /// `client` or `server`, for labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnRole::Client => "client",
            TxnRole::Server => "server",
        }
    }
}

/// The method as a label: the RFC methods by name, every extension method as `other`, so
/// a peer inventing methods cannot grow the table.
pub fn method_label(method: &Method) -> &'static str {
    match method {
        Method::Invite => "INVITE",
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Register => "REGISTER",
        Method::Options => "OPTIONS",
        Method::Info => "INFO",
        Method::Update => "UPDATE",
        Method::Prack => "PRACK",
        Method::Subscribe => "SUBSCRIBE",
        Method::Notify => "NOTIFY",
        Method::Refer => "REFER",
        Method::Message => "MESSAGE",
        Method::Publish => "PUBLISH",
        Method::Extension(_) => "other",
    }
}

/// Completed transactions per `(role, method label, final status)`. At most 2 x 15 x 600
/// keys; a key is allocated the first time it is seen, never per message after that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnStats {
    finished: BTreeMap<(TxnRole, &'static str, u16), u64>,
}

impl TxnStats {
    /// Counts one completed transaction. Statuses outside 100-699 (which the parser does not
    /// produce) are counted as 0.
    pub(super) fn record(&mut self, role: TxnRole, method: &Method, status: u16) {
        let status = if (100..700).contains(&status) {
            status
        } else {
            0
        };
        *self
            .finished
            .entry((role, method_label(method), status))
            .or_default() += 1;
    }

    /// `(role, method, status, count)`, ordered by role, method and status.
    pub fn iter(&self) -> impl Iterator<Item = (TxnRole, &'static str, u16, u64)> + '_ {
        self.finished
            .iter()
            .map(|(&(role, method, status), &n)| (role, method, status, n))
    }

    /// How many finished with exactly this role, method label and status.
    pub fn count(&self, role: TxnRole, method: &str, status: u16) -> u64 {
        self.iter()
            .filter(|&(r, m, s, _)| r == role && m == method && s == status)
            .map(|(_, _, _, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_methods_share_one_label() {
        let mut s = TxnStats::default();
        s.record(TxnRole::Server, &Method::Extension("FOO".into()), 501);
        s.record(TxnRole::Server, &Method::Extension("BAR".into()), 501);
        s.record(TxnRole::Client, &Method::Invite, 200);
        s.record(TxnRole::Client, &Method::Invite, 9999);
        assert_eq!(s.count(TxnRole::Server, "other", 501), 2);
        assert_eq!(s.count(TxnRole::Client, "INVITE", 200), 1);
        assert_eq!(s.count(TxnRole::Client, "INVITE", 0), 1);
        assert_eq!(s.iter().count(), 3);
    }
}
