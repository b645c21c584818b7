//! The binary as an operator sees it: --help, --check-config, config errors (exit 2 naming
//! the key), and SIGTERM with nothing in progress: the drain lets every idle WebSocket go
//! with 1001 at once and exits 0 right away (calls in progress: `tests/drain.rs`).

mod common;

use std::process::Command;

use common::*;
use serde_json::json;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sylk-gateway"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_the_flags() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--ws-listen",
        "--wss-listen",
        "--log-level",
        "--trace-websocket",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = tempdir::TempDir::new("cfg");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[websocket]\nping_interval = \"soon\"\n").unwrap();
    let out = run(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ping_interval"));
    std::fs::write(&path, "[sylkrtc]\nmax_accounts_per_connection = 0\n").unwrap();
    let out = run(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sylkrtc.max_accounts_per_connection"));
    let out = run(&["--ws-listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("websocket.ws_listen"));
    let out = run(&["--config", "/nonexistent/file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_config_validates_without_starting() {
    let dir = tempdir::TempDir::new("check");
    let path = dir.path().join("ok.toml");
    std::fs::write(&path, "[shutdown]\ndrain_timeout = 10\n").unwrap();
    let out = run(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "configuration OK\n");
    std::fs::write(&path, "[metrics]\nlisten = \"here\"\n").unwrap();
    let out = run(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics.listen"));
}

#[test]
fn sigterm_with_nothing_in_progress_closes_with_1001_and_exits_at_once() {
    let mut gw = Gateway::start("", &[]);
    let mut a = connect_v2(&gw);
    let b = connect_v2(&gw);
    call(
        &mut a,
        json!({"sylkrtc":"account-add","transaction":"t","account":"alice@example.com","password":HA1}),
    );
    // Read the close frames on other threads while the gateway shuts down: tungstenite
    // echoes the close, which lets the gateway finish before its grace period.
    let readers: Vec<_> = [a, b]
        .into_iter()
        .map(|mut ws| {
            std::thread::spawn(move || loop {
                match ws.read() {
                    Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                    Ok(_) => continue,
                    Err(e) => panic!("no close frame: {e}"),
                }
            })
        })
        .collect();
    let signalled = std::time::Instant::now();
    let status = gw.terminate();
    // The default drain_timeout is 300 s, but nothing was in progress.
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        signalled.elapsed()
    );
    for r in readers {
        assert_eq!(r.join().unwrap(), Some(CloseCode::Away));
    }
    assert!(status.success(), "{status:?}");
    // After shutdown the listener is gone.
    assert!(std::net::TcpStream::connect(gw.ws).is_err());
}

#[test]
fn trace_switch_logs_frames_without_the_ha1() {
    let dir = tempdir::TempDir::new("trace");
    let out_path = dir.path().join("stderr.log");
    let err = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sylk-gateway"))
        .args([
            "--ws-listen",
            "127.0.0.1:0",
            "--wss-listen",
            "off",
            "--trace-websocket",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(err)
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ws://")
        .unwrap()
        .strip_suffix("/webrtcgateway/ws")
        .unwrap()
        .to_owned();
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{addr}/webrtcgateway/ws"
    ))
    .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sylkRTC-2".parse().unwrap());
    let (mut ws, _) =
        tungstenite::client(req, std::net::TcpStream::connect(&addr).unwrap()).unwrap();
    recv_json(&mut ws);
    call(
        &mut ws,
        json!({"sylkrtc":"account-add","transaction":"t","account":"alice@example.com","password":HA1}),
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = ws.read();
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(&out_path).unwrap();
    assert!(log.contains("ws <- "), "{log}");
    assert!(log.contains("account-add"), "{log}");
    assert!(log.contains("<redacted>"), "{log}");
    assert!(!log.contains(HA1), "HA1 leaked into the log");
    assert!(log.contains("conn=1"), "{log}");
}
