//! The Prometheus text exposition (format 0.0.4) of `GET /metrics`, built at scrape time.
//!
//! The model is pull: every engine keeps plain counters in a stats struct of its own
//! (`Gateway::stats`, `SipStack::transaction_stats`, `Bridges::counters`, the reactor's
//! [`ReactorStats`](crate::reactor::ReactorStats), ...), bumps them where the event happens
//! (no allocation, no atomics, no global state on the media path) and the renderer reads
//! them when Prometheus asks. Gauges (connections, calls by state, registrations by state)
//! are counted from the engines' tables at that moment.
//!
//! # Adding a metric
//!
//! 1. Count it where it happens, in a field of the owning engine's stats struct (a `u64`
//!    for a counter, an [`engine::Histogram`] for a latency), or compute it from the
//!    engine's tables for a gauge, behind a `&self` accessor.
//! 2. Add one line to that engine's [`Collect`] impl in [`sources`], e.g.
//!    `out.counter("sylk_things_total", "Things that happened.", &[("kind", k)], n);`.
//!    A new engine gets a `Collect` impl there and one line in
//!    `Switchboard`'s impl (or the reactor's [`render`](crate::reactor) call).
//! 3. Name it `sylk_<what>_<unit>` (`_total` for counters, `_seconds`/`_bytes` for units),
//!    keep label values to a fixed set (never a peer's text), and list it in the README's
//!    metrics table. `tests/metrics.rs` checks the exposition with `promtool check metrics`.
//!
//! All samples of one family must come from one place in one go: the writer emits `# HELP`
//! and `# TYPE` when a family starts and checks (in debug builds and tests) that no family
//! is started twice.

pub mod process;
pub mod sources;

use std::fmt::Write as _;
use std::time::Duration;

use engine::Histogram;

/// Something that reports metrics.
pub trait Collect {
    /// Writes this source's families to `out`.
    fn collect(&self, out: &mut Exposition);
}

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The text being built.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    /// Families started so far, in order (the last one is open).
    families: Vec<&'static str>,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Exposition {
        Exposition {
            out: String::with_capacity(16 * 1024),
            families: Vec::new(),
        }
    }

    /// One counter sample.
    pub fn counter(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], v: u64) {
        self.family(name, help, Kind::Counter);
        self.sample(name, "", labels, None, &v);
    }

    /// Starts a counter family whose samples appear as their label sets first occur
    /// (`HELP` and `TYPE` only), so the family is listed from the first scrape on. Follow
    /// with its [`counter`](Self::counter) samples, if any.
    pub fn counter_family(&mut self, name: &'static str, help: &str) {
        self.family(name, help, Kind::Counter);
    }

    /// One counter sample with a fractional value (seconds), without labels.
    pub fn counter_f64(&mut self, name: &'static str, help: &str, v: f64) {
        self.family(name, help, Kind::Counter);
        self.sample(name, "", &[], None, &Float(v));
    }

    /// One gauge sample.
    pub fn gauge(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.family(name, help, Kind::Gauge);
        self.sample(name, "", labels, None, &Float(v));
    }

    /// One histogram (its buckets, sum and count) in seconds.
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &[(&str, &str)],
        h: &Histogram,
    ) {
        self.family(name, help, Kind::Histogram);
        let mut le = String::with_capacity(16);
        for (bound, n) in h.cumulative() {
            le.clear();
            let _ = write!(le, "{}", Float(bound.as_secs_f64()));
            self.sample(name, "_bucket", labels, Some(&le), &n);
        }
        self.sample(name, "_bucket", labels, Some("+Inf"), &h.count());
        self.sample(name, "_sum", labels, None, &Float(h.sum().as_secs_f64()));
        self.sample(name, "_count", labels, None, &h.count());
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }

    fn family(&mut self, name: &'static str, help: &str, kind: Kind) {
        if self.families.last() == Some(&name) {
            return;
        }
        debug_assert!(
            !self.families.contains(&name),
            "metric family {name} written in two places"
        );
        self.families.push(name);
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        le: Option<&str>,
        value: &dyn std::fmt::Display,
    ) {
        let out = &mut self.out;
        out.push_str(name);
        out.push_str(suffix);
        let extra = le.map(|v| ("le", v));
        if !labels.is_empty() || extra.is_some() {
            out.push('{');
            for (i, (k, v)) in labels.iter().copied().chain(extra).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label(out, v);
                out.push('"');
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }
}

/// A float as the exposition format writes it (`+Inf`, `NaN`, shortest round-trip text).
struct Float(f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_nan() {
            f.write_str("NaN")
        } else if self.0.is_infinite() {
            f.write_str(if self.0 > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes `\` and newlines.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A duration in seconds, for gauges.
pub fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut out = Exposition::new();
        out.counter("a_total", "As.", &[("k", "x\"y\\z\nw")], 3);
        out.counter("a_total", "As.", &[("k", "v")], 4);
        out.gauge("b", "B with\nnewline.", &[], 0.5);
        let mut h = Histogram::new(&[1_000, 250_000]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_secs(2));
        out.histogram("c_seconds", "Cs.", &[("d", "in")], &h);
        let text = out.finish();
        let expected = "\
# HELP a_total As.
# TYPE a_total counter
a_total{k=\"x\\\"y\\\\z\\nw\"} 3
a_total{k=\"v\"} 4
# HELP b B with\\nnewline.
# TYPE b gauge
b 0.5
# HELP c_seconds Cs.
# TYPE c_seconds histogram
c_seconds_bucket{d=\"in\",le=\"0.001\"} 1
c_seconds_bucket{d=\"in\",le=\"0.25\"} 1
c_seconds_bucket{d=\"in\",le=\"+Inf\"} 2
c_seconds_sum{d=\"in\"} 2.0005
c_seconds_count{d=\"in\"} 2
";
        assert_eq!(text, expected);
    }

    #[test]
    #[should_panic(expected = "written in two places")]
    fn a_family_cannot_be_split() {
        let mut out = Exposition::new();
        out.counter("a_total", "As.", &[], 1);
        out.counter("b_total", "Bs.", &[], 1);
        out.counter("a_total", "As.", &[], 2);
    }
}
