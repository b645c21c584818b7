//! The packaging as shipped, checked with real tools (this machine has systemd's tools but
//! no service manager running, and a Docker client but no engine):
//!
//! - the systemd unit (`packaging/systemd/`): `systemd-analyze verify` in a scratch root
//!   holding the unit, its drop-in, the built binary at `/usr/bin/sylk-gateway` and the
//!   host's own units (any warning fails), `systemd-analyze security --offline` under an
//!   exposure threshold of 2.0, and its `ExecStartPre` run (configuration check);
//! - the container recipe (`packaging/container/Containerfile`): hadolint, the Dockerfile
//!   linter, with no finding; its structure (two stages, the build stage's Rust is the one
//!   this suite builds with, a Debian runtime, a non-root numeric `USER`, every `COPY`
//!   source in the context); the build stage's `RUN` executed as written in the repository
//!   (the build context, `/out` mapped to a scratch directory); and the image's command
//!   (`ENTRYPOINT` + `CMD`) run as the recipe's user id with no capabilities and the
//!   image's configuration mounted, answering `/ready` and exiting 0 on its `STOPSIGNAL`.
//!   Not run: the runtime stage's `apt-get`/`useradd` line (it would change this machine).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peers::require;
use common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn repo(path: &str) -> PathBuf {
    Path::new(ROOT).join(path)
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A scratch root for `systemd-analyze --root`: the unit and drop-in where an operator
/// installs them, the binary and `kill` where the unit names them, the host's units.
fn unit_root(dir: &Path, with_drop_in: bool) {
    let copy = |from: &Path, to: &str| {
        let to = dir.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("{from:?}: {e}"));
    };
    copy(
        &repo("packaging/systemd/sylk-gateway.service"),
        "etc/systemd/system/sylk-gateway.service",
    );
    if with_drop_in {
        copy(
            &repo("packaging/systemd/low-ports.conf"),
            "etc/systemd/system/sylk-gateway.service.d/low-ports.conf",
        );
    }
    copy(
        Path::new(env!("CARGO_BIN_EXE_sylk-gateway")),
        "usr/bin/sylk-gateway",
    );
    copy(Path::new("/bin/kill"), "bin/kill");
    copy(
        &repo("sylk-gateway.sample.toml"),
        "etc/sylk-gateway/sylk-gateway.toml",
    );
    let units = dir.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).unwrap();
    let (ok, text) = run(Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(&units));
    assert!(ok, "{text}");
}

#[test]
fn systemd_unit_verifies_is_hardened_and_its_commands_run() {
    require("systemd-analyze");
    for with_drop_in in [false, true] {
        let dir = tempdir::TempDir::new("unit");
        unit_root(dir.path(), with_drop_in);
        let (ok, text) = run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", dir.path().display()))
            .arg("sylk-gateway.service"));
        // verify exits 0 on unknown keys and bad values too: any output is a finding.
        assert!(
            ok && text.trim().is_empty(),
            "systemd-analyze verify (drop-in: {with_drop_in}):\n{text}"
        );
        let (ok, text) = run(Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
            .arg(format!("--root={}", dir.path().display()))
            .arg("sylk-gateway.service"));
        let exposure = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or("")
            .to_owned();
        assert!(
            ok || with_drop_in,
            "exposure above 2.0 without the drop-in: {exposure}\n{text}"
        );
        eprintln!("drop-in {with_drop_in}: {exposure}");
    }
    let unit = std::fs::read_to_string(repo("packaging/systemd/sylk-gateway.service")).unwrap();
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=sylk-gateway",
        "ConfigurationDirectory=sylk-gateway",
        "CapabilityBoundingSet=\n",
        "AmbientCapabilities=\n",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(line), "the unit lacks {line:?}");
    }
    // The stop timeout covers the default drain.
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec");
    assert!(
        stop > 300,
        "TimeoutStopSec={stop} cuts the 300 s drain short"
    );
    // ExecStartPre as written, with the installed paths mapped to the scratch root.
    let dir = tempdir::TempDir::new("unit-run");
    unit_root(dir.path(), false);
    let pre = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre="))
        .expect("ExecStartPre");
    let args: Vec<String> = pre
        .split_whitespace()
        .map(|a| match a.strip_prefix('/') {
            Some(path) => dir.path().join(path).display().to_string(),
            None => a.to_owned(),
        })
        .collect();
    let (ok, text) = run(Command::new(&args[0]).args(&args[1..]));
    assert!(ok && text == "configuration OK\n", "{pre}: {text}");
}

/// One instruction of the recipe: keyword and its arguments (continuations joined).
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        current.push_str(trimmed);
        let (keyword, args) = current.split_once(' ').unwrap_or((&current, ""));
        out.push(Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        });
        current.clear();
    }
    out
}

/// The JSON-array (exec form) arguments of an instruction.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("{args}: not exec form: {e}"))
}

#[test]
fn container_recipe_lints_and_its_build_and_run_steps_work() {
    require("hadolint");
    let recipe_path = repo("packaging/container/Containerfile");
    let (ok, text) = run(Command::new("hadolint").arg(&recipe_path));
    assert!(ok && text.trim().is_empty(), "hadolint:\n{text}");
    let recipe = std::fs::read_to_string(&recipe_path).unwrap();
    let all = instructions(&recipe);
    let stages: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let build = &all[stages[0]..stages[1]];
    let runtime = &all[stages[1]..];

    // The build stage: the Rust this suite builds with, on Debian 12.
    let rustc = run(Command::new("rustc").arg("--version")).1;
    let version = rustc.split_whitespace().nth(1).unwrap();
    let minor = version.rsplit_once('.').unwrap().0;
    assert_eq!(
        build[0].args,
        format!("docker.io/library/rust:{minor}-bookworm AS build"),
        "the build stage should use the compiler this suite checks it with ({rustc})"
    );
    assert!(runtime[0]
        .args
        .starts_with("docker.io/library/debian:bookworm"));
    // Every COPY source of the context exists; target/ stays out of the context.
    for i in all.iter().filter(|i| i.keyword == "COPY") {
        if i.args.starts_with("--from=") {
            continue;
        }
        let source = i.args.split_whitespace().next().unwrap();
        assert!(
            repo(source).exists(),
            "COPY {source}: not in the repository"
        );
    }
    let ignore = std::fs::read_to_string(repo(".dockerignore")).expect(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target"));
    // The runtime user: numeric and not root.
    let user = runtime
        .iter()
        .rfind(|i| i.keyword == "USER")
        .expect("a USER in the runtime stage");
    let uid: u32 = user
        .args
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0);

    // The build stage's RUN, as written, in the repository (= the build context at /src).
    let out = tempdir::TempDir::new("container-out");
    let build_run: Vec<&Instruction> = build.iter().filter(|i| i.keyword == "RUN").collect();
    assert_eq!(build_run.len(), 1);
    let script = build_run[0]
        .args
        .replace("/out/", &format!("{}/", out.path().display()));
    let started = Instant::now();
    let (ok, text) = run(Command::new("sh").args(["-c", &script]).current_dir(ROOT));
    assert!(ok, "{script}:\n{text}");
    eprintln!("build step: {:?}", started.elapsed());
    let binary = out.path().join("sylk-gateway");
    let copied = runtime
        .iter()
        .find(|i| i.keyword == "COPY" && i.args.starts_with("--from=build /out/sylk-gateway "))
        .expect("the runtime stage copies the built binary");
    assert!(copied.args.ends_with(" /usr/bin/sylk-gateway"));

    // The image's command, as the image's user without capabilities, with the image's
    // configuration mounted where it expects it; loopback listeners (tests bind nothing
    // else).
    let state = tempdir::TempDir::new("container-state");
    let etc = state.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let config = etc.join("sylk-gateway.toml");
    std::fs::copy(repo("packaging/container/sylk-gateway.toml"), &config).unwrap();
    let data = state.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (ok, text) = run(Command::new("chown")
        .arg(format!("{uid}:{uid}"))
        .arg(&data)
        .arg(state.path()));
    assert!(ok, "{text}");
    let entrypoint = exec_form(
        &runtime
            .iter()
            .rfind(|i| i.keyword == "ENTRYPOINT")
            .expect("ENTRYPOINT")
            .args,
    );
    let cmd = exec_form(
        &runtime
            .iter()
            .rfind(|i| i.keyword == "CMD")
            .expect("CMD")
            .args,
    );
    assert_eq!(entrypoint, ["/usr/bin/sylk-gateway"]);
    let args: Vec<String> = cmd
        .iter()
        .map(|a| {
            if a == "/etc/sylk-gateway/sylk-gateway.toml" {
                config.display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    require("setpriv");
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&binary)
        .args(&args)
        .args(["--ws-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .current_dir(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let metrics: std::net::SocketAddr = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("listening metrics http://")?
                .strip_suffix("/metrics")?
                .parse()
                .ok()
        })
        .expect("the image's command listens");
    let (status, _, body) = http(metrics, "GET", "/ready");
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let stop = runtime
        .iter()
        .find(|i| i.keyword == "STOPSIGNAL")
        .map_or("SIGTERM".to_owned(), |i| i.args.clone());
    let (ok, text) = run(Command::new("kill")
        .arg(format!("-{}", stop.trim_start_matches("SIG")))
        .arg(child.id().to_string()));
    assert!(ok, "{text}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after {stop}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
