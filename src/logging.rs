//! Structured log lines on standard error: `<UTC time> <LEVEL> <target>: <message>`, where
//! messages carry `key=value` context such as `conn=17`.
//!
//! Our own crates log at the configured level; dependencies (rustls, tungstenite, rtc) only
//! from `warn` up unless `trace` is asked for, since their debug output is per packet.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use engine::drops::{self, DropKind};

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    level: LevelFilter,
}

impl StderrLogger {
    fn level_for(&self, target: &str) -> LevelFilter {
        let ours = target.starts_with("sylk_gateway")
            || target.starts_with("media")
            || target.starts_with("engine");
        if ours || self.level == LevelFilter::Trace {
            self.level
        } else {
            self.level.min(LevelFilter::Warn)
        }
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level_for(metadata.target())
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
        let line = format!(
            "{} {:<5} {}: {}\n",
            utc_timestamp(SystemTime::now()),
            record.level(),
            record.target(),
            record.args()
        );
        // One write per line so lines from a crash and normal output do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the logger; later calls are ignored.
pub fn init(level: LevelFilter) {
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
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
        let l = StderrLogger {
            level: LevelFilter::Debug,
        };
        assert_eq!(l.level_for("sylk_gateway::ws"), LevelFilter::Debug);
        assert_eq!(l.level_for("rustls::conn"), LevelFilter::Warn);
        assert_eq!(l.level_for("engine::drops"), LevelFilter::Debug);
    }
}
