//! Structured log lines on standard error, one per event. Text (the default):
//! `<UTC time> <LEVEL> <target>: <message>`, where messages carry `key=value` context with
//! stable keys, so one call can be followed from the WebSocket to SIP:
//!
//! - `conn=<n>`: the WebSocket connection (numbered from 1 per process);
//! - `account=<user@domain>`: the sylkRTC account;
//! - `call=<session id>`: the sylkRTC session;
//! - `sip_call_id=<Call-ID>`: the SIP dialog.
//!
//! `log.format = "json"` writes one JSON object per line instead (`ts`, `level`, `target`,
//! `msg`, and those keys as fields when the message carries them) for log shippers.
//!
//! Our own crates log at the configured level; dependencies (rustls, tungstenite, rtc) only
//! from `warn` up unless `trace` is asked for, since their debug output is per packet. The
//! level can change at run time ([`set_level`], on SIGHUP).
//!
//! Secrets never reach a log line: HA1 values are redacted from traced frames
//! (`gateway::trace`) and no SIP message is logged whole (Authorization and
//! Proxy-Authorization headers carry a digest of the HA1).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use engine::drops::{self, DropKind};

use log::{LevelFilter, Log, Metadata, Record};

use crate::config::LogFormat;

/// The stable context keys, in the order JSON lines list them.
pub const KEYS: [&str; 4] = ["conn", "account", "call", "sip_call_id"];

/// The level in force, changed by [`set_level`]; `LevelFilter as usize`.
static LEVEL: AtomicUsize = AtomicUsize::new(LevelFilter::Info as usize);

fn current_level() -> LevelFilter {
    match LEVEL.load(Ordering::Relaxed) {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

struct StderrLogger {
    format: LogFormat,
}

/// The most verbose level `target` logs at when `level` is configured.
fn level_for(level: LevelFilter, target: &str) -> LevelFilter {
    let crate_name = target.split("::").next().unwrap_or(target);
    let ours = matches!(
        crate_name,
        "sylk_gateway" | "media" | "sip" | "engine" | "msrp" | "xcap"
    );
    if crate_name == "tungstenite" {
        // Its debug and trace lines print whole messages, account-add's HA1 included; our
        // own frame trace (`log.trace_websocket`) redacts it.
        return level.min(LevelFilter::Info);
    }
    if ours || level == LevelFilter::Trace {
        level
    } else {
        level.min(LevelFilter::Warn)
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= level_for(current_level(), metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // rtc's ICE agent warns about every STUN message it discards, and anyone can send
        // those to a media port: count them and log them at most once per interval.
        if record.target().starts_with("rtc_ice") && record.level() > log::Level::Error {
            drops::record(
                Instant::now(),
                DropKind::MediaUnknownSource,
                format_args!("{}: {}", record.target(), record.args()),
            );
            return;
        }
        let time = utc_timestamp(SystemTime::now());
        let mut line = match self.format {
            LogFormat::Text => format!(
                "{time} {:<5} {}: {}",
                record.level(),
                record.target(),
                record.args()
            ),
            LogFormat::Json => json_line(
                &time,
                record.level().as_str(),
                record.target(),
                &record.args().to_string(),
            ),
        };
        line.push('\n');
        // One write per line so lines from a crash and normal output do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// One JSON log line: `ts`, `level`, `target`, `msg`, then each stable key the message
/// carries as `key=value` (the first occurrence) as its own field.
pub fn json_line(ts: &str, level: &str, target: &str, msg: &str) -> String {
    let mut object = serde_json::Map::new();
    object.insert("ts".into(), ts.into());
    object.insert("level".into(), level.into());
    object.insert("target".into(), target.into());
    object.insert("msg".into(), msg.into());
    for key in KEYS {
        if let Some(value) = context_value(msg, key) {
            object.insert(key.into(), value.into());
        }
    }
    serde_json::Value::Object(object).to_string()
}

/// The value of `key=value` in `msg`, where `key` starts a word and the value runs to the
/// next space; `-` (unknown) counts as absent.
fn context_value<'m>(msg: &'m str, key: &str) -> Option<&'m str> {
    let mut rest = msg;
    while let Some(at) = rest.find(key) {
        let before_ok = at == 0 || rest.as_bytes()[at - 1] == b' ';
        let after = &rest[at + key.len()..];
        if before_ok {
            if let Some(value) = after.strip_prefix('=') {
                let value = value.split(' ').next().unwrap_or("");
                return (!value.is_empty() && value != "-").then_some(value);
            }
        }
        rest = after;
    }
    None
}

/// Installs the logger; later calls are ignored.
pub fn init(level: LevelFilter, format: LogFormat) {
    if log::set_boxed_logger(Box::new(StderrLogger { format })).is_ok() {
        set_level(level);
    }
}

/// Changes the level in force (SIGHUP).
pub fn set_level(level: LevelFilter) {
    LEVEL.store(level as usize, Ordering::Relaxed);
    log::set_max_level(level);
}

/// The level in force.
pub fn level() -> LevelFilter {
    current_level()
}

/// RFC 3339 UTC time with milliseconds, e.g. `2026-11-24T01:02:03.456Z`.
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_914_123_456);
        assert_eq!(utc_timestamp(t), "2026-11-29T01:02:03.456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn dependencies_are_quieter() {
        assert_eq!(
            level_for(LevelFilter::Debug, "engine::drops"),
            LevelFilter::Debug
        );
        assert_eq!(
            level_for(LevelFilter::Debug, "sylk_gateway::ws"),
            LevelFilter::Debug
        );
        assert_eq!(
            level_for(LevelFilter::Debug, "sip::stack"),
            LevelFilter::Debug
        );
        assert_eq!(
            level_for(LevelFilter::Debug, "rustls::conn"),
            LevelFilter::Warn
        );
        assert_eq!(
            level_for(LevelFilter::Trace, "rustls::conn"),
            LevelFilter::Trace
        );
        // Never below info: it would log whole frames, HA1 included.
        assert_eq!(
            level_for(LevelFilter::Trace, "tungstenite::protocol"),
            LevelFilter::Info
        );
    }

    #[test]
    fn json_lines_carry_the_stable_keys_as_fields() {
        let line = json_line(
            "2026-01-01T00:00:00.000Z",
            "INFO",
            "sylk_gateway::gateway",
            "conn=7 account=alice@example.com call=s1 sip_call_id=abc@h ended: \"486\"",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["conn"], "7");
        assert_eq!(v["account"], "alice@example.com");
        assert_eq!(v["call"], "s1");
        assert_eq!(v["sip_call_id"], "abc@h");
        assert_eq!(v["level"], "INFO");
        assert!(v["msg"].as_str().unwrap().ends_with("ended: \"486\""));
        // `-` is unknown; a key inside another word is not a key.
        let v: serde_json::Value =
            serde_json::from_str(&json_line("t", "INFO", "x", "conn=- reconnect=5")).unwrap();
        assert!(v.get("conn").is_none() && v.get("call").is_none(), "{v}");
        assert_eq!(context_value("xcall=1 call=2", "call"), Some("2"));
    }
}
