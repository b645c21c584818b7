//! The `[messaging]` section: the message store (SQLite file, memory or PostgreSQL) and
//! messaging limits.

use super::{invalid, ConfigError, Overrides};
use serde::Deserialize;

/// Settings of messaging and its store (`[messaging]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingConfig {
    /// SQLite database file, `":memory:"` (messages last as long as the process), or a
    /// PostgreSQL URL (`postgres://user:password@host:port/db`, shared by instances).
    pub database: String,
    /// Messages older than this many days are deleted (SylkServer's TTL).
    pub max_age_days: u32,
    /// Largest message content, in bytes (larger: an error to the client, 413 to SIP).
    pub max_content_size: usize,
    /// Messages per second one account may send (burst: as many); more get `Too many
    /// messages`.
    pub send_rate: u32,
    /// Messages per second one SIP sender may send us (burst: as many); more get 503 with
    /// Retry-After.
    pub incoming_rate: u32,
    /// Most store requests outstanding at once; more get an error (or 503 to SIP).
    pub store_queue: usize,
}

/// The default message database, under the data directory `data/` of the working
/// directory.
pub const DEFAULT_DATABASE: &str = "data/messages.sqlite";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileMessaging {
    database: Option<String>,
    max_age_days: Option<u32>,
    max_content_size: Option<usize>,
    send_rate: Option<u32>,
    incoming_rate: Option<u32>,
    store_queue: Option<usize>,
}

pub(super) fn apply(
    m: &mut MessagingConfig,
    file: FileMessaging,
    o: &Overrides,
) -> Result<(), ConfigError> {
    if let Some(db) = o.database.as_deref().or(file.database.as_deref()) {
        if db.trim().is_empty() {
            return Err(invalid(
                "messaging.database",
                "must be a file path or \":memory:\"",
            ));
        }
        m.database = db.to_owned();
    }
    if let Some(d) = file.max_age_days {
        if d == 0 {
            return Err(invalid("messaging.max_age_days", "must be at least 1"));
        }
        m.max_age_days = d;
    }
    if let Some(n) = file.max_content_size {
        if !(1024..=1024 * 1024).contains(&n) {
            return Err(invalid(
                "messaging.max_content_size",
                "must be between 1024 and 1048576",
            ));
        }
        m.max_content_size = n;
    }
    for (key, value, slot) in [
        ("messaging.send_rate", file.send_rate, &mut m.send_rate),
        (
            "messaging.incoming_rate",
            file.incoming_rate,
            &mut m.incoming_rate,
        ),
    ] {
        if let Some(r) = value {
            if r == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
            *slot = r;
        }
    }
    if let Some(n) = file.store_queue {
        if !(1..=1_000_000).contains(&n) {
            return Err(invalid(
                "messaging.store_queue",
                "must be between 1 and 1000000",
            ));
        }
        m.store_queue = n;
    }
    Ok(())
}
