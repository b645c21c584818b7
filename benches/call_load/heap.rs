//! `HEAP=1`: the gateway runs under valgrind's massif and the bench asks it (with `vgdb`) for
//! a detailed heap snapshot at the same points where it reads RSS, so the report can say how
//! many heap bytes one idle connection and one call hold, and who holds them.
//!
//! Each allocation in a snapshot is charged to the frame of our own code nearest to the
//! allocator (`sylk_gateway::...` or `media::...`), so a call's heap reads as "bridge transmit
//! ring", "SIP call entry", "WebSocket read buffer" rather than as `RawVec::grow`. The
//! snapshot files stay in the bench's temporary directory's parent for `ms_print`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The massif command line the gateway runs under.
pub fn wrapper(out: &Path) -> String {
    format!(
        "valgrind --tool=massif --threshold=0.01 --massif-out-file={}",
        out.display()
    )
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

/// Asks massif in process `pid` for a detailed snapshot into `file` and reads it back.
pub fn snapshot(pid: u32, file: &Path) -> Option<HeapSnap> {
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
    parse(&std::fs::read_to_string(file).ok()?)
}

/// Where the snapshots go.
pub fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("sylk-call-load-heap-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fn parse(text: &str) -> Option<HeapSnap> {
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
            i = charge(&nodes, i, &mut snap.owners);
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

fn is_ours(f: &str) -> bool {
    f.contains("sylk_gateway::") || f.contains("media::")
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
fn charge(nodes: &[(usize, u64, &str)], i: usize, owners: &mut HashMap<String, u64>) -> usize {
    let (children, bytes, label) = nodes[i];
    let f = function(label);
    if is_ours(f) {
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
        j = charge(nodes, j, owners);
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
