//! SIGHUP on the real binary: the `wss://` certificate and the log level are read again
//! from the configuration file; new connections get the new certificate, the connection
//! opened before keeps working, and debug lines appear. Certificates are made by the
//! `openssl` command line tool for each run.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::peers::require;
use common::*;
use serde_json::json;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

/// A fresh self-signed certificate for 127.0.0.1 in `dir`/`name`.{crt,key}.
fn make_certificate(dir: &Path, name: &str) -> (String, Vec<u8>) {
    require("openssl");
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // As certs/regenerate.sh: webpki refuses a CA certificate as the end entity.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(ok.status.success(), "openssl: {ok:?}");
    (
        crt.to_str().unwrap().to_owned(),
        std::fs::read(&crt).unwrap(),
    )
}

/// A TLS client trusting exactly `pem`.
fn trusting(pem: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type WssClient = tungstenite::WebSocket<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

/// A sylkRTC-2 connection over wss:// verified by `tls`; `Err` when the handshake fails.
fn connect_wss(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<WssClient, String> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let server_name = "127.0.0.1".try_into().unwrap();
    let conn = rustls::ClientConnection::new(tls, server_name).unwrap();
    let stream = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!("wss://127.0.0.1:{}/webrtcgateway/ws", addr.port())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("sylkRTC-2"),
    );
    let (mut ws, _) = tungstenite::client(req, stream).map_err(|e| e.to_string())?;
    assert_eq!(recv_json(&mut ws), json!({"sylkrtc":"ready-event"}));
    Ok(ws)
}

fn config(cert: &str, level: &str) -> String {
    let key = cert.replace(".crt", ".key");
    format!(
        "[websocket]\ntls_certificate = \"{cert}\"\ntls_private_key = \"{key}\"\n\
         [log]\nlevel = \"{level}\"\n"
    )
}

#[test]
fn sighup_reloads_the_certificate_and_log_level_without_dropping_connections() {
    let certs = tempdir::TempDir::new("certs");
    let (cert_a, pem_a) = make_certificate(certs.path(), "a");
    let (cert_b, pem_b) = make_certificate(certs.path(), "b");
    let gw = Gateway::start(&config(&cert_a, "info"), &[]);
    let wss = gw.wss.unwrap();
    let mut before = connect_wss(wss, trusting(&pem_a)).expect("certificate a is served");
    assert!(connect_wss(wss, trusting(&pem_b)).is_err());
    // A debug line the gateway writes for a refused request: not at info.
    assert_eq!(http(gw.ws, "GET", "/nowhere").0, 404);

    // Point the configuration at certificate b, at debug level, and send SIGHUP.
    let config_path = gw.dir.path().join("gateway.toml");
    std::fs::write(&config_path, config(&cert_b, "debug")).unwrap();
    gw.signal("HUP");
    let reloaded = gw.wait_for_log("SIGHUP: log level", Duration::from_secs(5));
    assert!(
        reloaded.contains("DEBUG") && reloaded.contains("TLS certificate reloaded"),
        "{reloaded}"
    );
    assert!(
        !gw.log_lines()
            .iter()
            .any(|l| l.contains("upgrade refused with 404")),
        "no debug line before the reload"
    );

    // New connections get certificate b; the one opened before is still served.
    let mut after = connect_wss(wss, trusting(&pem_b)).expect("certificate b is served");
    assert!(connect_wss(wss, trusting(&pem_a)).is_err());
    let reply = call(&mut before, json!({"sylkrtc":"ping","transaction":"old"}));
    assert_eq!(reply, json!({"sylkrtc":"ack","transaction":"old"}));
    let reply = call(&mut after, json!({"sylkrtc":"ping","transaction":"new"}));
    assert_eq!(reply, json!({"sylkrtc":"ack","transaction":"new"}));
    // Debug lines now.
    assert_eq!(http(gw.ws, "GET", "/nowhere").0, 404);
    gw.wait_for_log("upgrade refused with 404", Duration::from_secs(5));

    // A configuration that does not load changes nothing and says so.
    std::fs::write(&config_path, "[log]\nlevel = \"loud\"\n").unwrap();
    gw.signal("HUP");
    let refused = gw.wait_for_log("configuration not reloaded", Duration::from_secs(5));
    assert!(refused.contains("log.level"), "{refused}");
    let reply = call(&mut before, json!({"sylkrtc":"ping","transaction":"still"}));
    assert_eq!(reply, json!({"sylkrtc":"ack","transaction":"still"}));
}
