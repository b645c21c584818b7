//! The gateway under valgrind, for figures that do not depend on how busy the shared
//! machine is.
//!
//! `HEAP=1`: massif, and the bench asks it (with `vgdb`) for a detailed heap snapshot at the
//! same points where it reads RSS, so the report can say how many heap bytes one idle
//! connection and one call hold, and who holds them. Each allocation in a snapshot is charged
//! to the frame of our own code nearest to the allocator (`sylk_gateway::...` or
//! `media::...`), so a call's heap reads as "bridge transmit ring", "SIP call entry",
//! "WebSocket read buffer" rather than as `RawVec::grow`. The snapshot files are kept for
//! `ms_print`.
//!
//! `CALLGRIND=1`: callgrind, its counters zeroed when the steady-state window opens and
//! dumped when it closes (`callgrind_control -z` / `-d`), for the instructions the gateway
//! executes per forwarded packet: repeatable to a fraction of a percent where CPU time on
//! two shared cores varies by 2x between runs. The dump is kept for `callgrind_annotate`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The massif command line the gateway runs under.
pub fn massif(out: &Path) -> String {
    format!(
        "valgrind --tool=massif --threshold=0.01 --massif-out-file={}",
        out.display()
    )
}

/// The callgrind command line the gateway runs under.
pub fn callgrind(dir: &Path) -> String {
    format!(
        "valgrind --tool=callgrind --callgrind-out-file={}",
        dir.join("callgrind.out.%p").display()
    )
}

/// `callgrind_control <args> <pid>`; true when it succeeded.
fn callgrind_control(pid: u32, args: &[&str]) -> bool {
    Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Zeroes the counters of the callgrind in process `pid`.
pub fn callgrind_zero(pid: u32) -> bool {
    callgrind_control(pid, &["-z"])
}

/// Dumps the counters since the last zero and returns the instructions executed (`Ir`) and
/// the dump's path.
pub fn callgrind_dump(pid: u32, dir: &Path) -> Option<(u64, PathBuf)> {
    if !callgrind_control(pid, &["-d", "steady"]) {
        return None;
    }
    // The dump is callgrind.out.<pid>.<n>; take the newest.
    let prefix = format!("callgrind.out.{pid}.");
    let newest = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())?;
    let text = std::fs::read_to_string(&newest).ok()?;
    let ir = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((ir, newest))
}

/// One detailed snapshot.
#[derive(Default)]
pub struct HeapSnap {
    /// Bytes asked for by live allocations.
    pub heap: u64,
    /// The allocator's per-block overhead on top (headers, alignment).
    pub extra: u64,
    /// Live bytes by owning frame.
    pub owners: HashMap<String, u64>,
}

/// Asks massif in process `pid` for a detailed snapshot into `file` and reads it back,
/// allocations charged to frames of the gateway crate and `media`.
pub fn snapshot(pid: u32, file: &Path) -> Option<HeapSnap> {
    snapshot_owned_by(pid, file, &["sylk_gateway::", "media::"])
}

/// [`snapshot`], each allocation charged to its nearest frame whose function path contains
/// one of `ours` (e.g. `msrp::` for the MSRP engine's own buffers).
pub fn snapshot_owned_by(pid: u32, file: &Path, ours: &[&str]) -> Option<HeapSnap> {
    let _ = std::fs::remove_file(file);
    let status = Command::new("vgdb")
        .arg(format!("--pid={pid}"))
        .arg("detailed_snapshot")
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    parse(&std::fs::read_to_string(file).ok()?, ours)
}

/// Where the snapshots and dumps go.
pub fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("sylk-call-load-valgrind-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fn parse(text: &str, ours: &[&str]) -> Option<HeapSnap> {
    let mut snap = HeapSnap::default();
    let mut lines = text.lines().peekable();
    for l in lines.by_ref() {
        if let Some(v) = l.strip_prefix("mem_heap_B=") {
            snap.heap = v.trim().parse().ok()?;
        } else if let Some(v) = l.strip_prefix("mem_heap_extra_B=") {
            snap.extra = v.trim().parse().ok()?;
        } else if l.starts_with("heap_tree=") {
            break;
        }
    }
    let nodes: Vec<(usize, u64, &str)> = lines.filter_map(node).collect();
    if let Some(&(root_children, _, _)) = nodes.first() {
        // The root's children are the allocation sites.
        let mut i = 1;
        for _ in 0..root_children {
            i = charge(&nodes, i, ours, &mut snap.owners);
        }
    }
    Some(snap)
}

/// `n<children>: <bytes> <label>`, indented.
fn node(line: &str) -> Option<(usize, u64, &str)> {
    let l = line.trim_start().strip_prefix('n')?;
    let (children, rest) = l.split_once(": ")?;
    let (bytes, label) = rest.split_once(' ')?;
    Some((children.parse().ok()?, bytes.parse().ok()?, label))
}

/// The function name of a frame label (`0x1234: path::to::fn (file.rs:12)`).
fn function(label: &str) -> &str {
    let f = label.split_once(": ").map_or(label, |(_, f)| f);
    f.rsplit_once(" (").map_or(f, |(f, _)| f)
}

fn is_ours(f: &str, ours: &[&str]) -> bool {
    ours.iter().any(|o| f.contains(o))
}

/// Short owner name: the path without generic noise, at most 100 characters.
fn owner(f: &str) -> String {
    let f = f.trim_start_matches('<');
    let mut s: String = f.chars().take(100).collect();
    if f.len() > 100 {
        s.push_str("...");
    }
    s
}

/// Charges the subtree at `i` to its nearest own frame; returns the index after it.
fn charge(
    nodes: &[(usize, u64, &str)],
    i: usize,
    ours: &[&str],
    owners: &mut HashMap<String, u64>,
) -> usize {
    let (children, bytes, label) = nodes[i];
    let f = function(label);
    if is_ours(f, ours) {
        *owners.entry(owner(f)).or_default() += bytes;
        return skip(nodes, i);
    }
    if children == 0 {
        let key = if label.contains("below massif's threshold") {
            "(small allocations, not attributed)".to_owned()
        } else {
            format!("(no own frame) {}", owner(f))
        };
        *owners.entry(key).or_default() += bytes;
        return i + 1;
    }
    let mut j = i + 1;
    for _ in 0..children {
        j = charge(nodes, j, ours, owners);
    }
    j
}

fn skip(nodes: &[(usize, u64, &str)], i: usize) -> usize {
    let mut j = i + 1;
    for _ in 0..nodes[i].0 {
        j = skip(nodes, j);
    }
    j
}

/// The owners whose bytes grew most from `before` to `after`, per `n` (largest first).
pub fn growth(before: &HeapSnap, after: &HeapSnap, n: usize, top: usize) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = after
        .owners
        .iter()
        .map(|(k, &b)| {
            let a = before.owners.get(k).copied().unwrap_or(0);
            (k.clone(), (b as f64 - a as f64) / n.max(1) as f64)
        })
        .filter(|(_, d)| d.abs() >= 1.0)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v.truncate(top);
    v
}
