//! The HTTP/1.1 side of the WebSocket opening handshake (RFC 6455 section 4.2), and the
//! operational endpoints a listener may also serve (`/metrics`, `/health`, `/ready`,
//! `POST /admin/drain`), which [`handle_request`] hands to the reactor as an
//! [`Upgrade::Endpoint`] because only the reactor has what they report.

use std::fmt::Write as _;

use crate::sylkrtc::Dialect;
use crate::web;

use super::WEBSOCKET_PATH;

/// Largest upgrade request accepted; browsers send well under 2 KiB.
pub const MAX_REQUEST_SIZE: usize = 8 * 1024;
const MAX_HEADERS: usize = 48;

/// What to do with the bytes received so far on a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// The request is not complete yet.
    Incomplete,
    /// Upgrade: send `response`; the WebSocket starts at byte `consumed` of the input.
    Accept {
        /// The negotiated dialect.
        dialect: Dialect,
        /// The browser's Origin, if any (for logs).
        origin: Option<String>,
        /// The 101 response.
        response: String,
        /// Length of the HTTP request in the input.
        consumed: usize,
    },
    /// No upgrade: send `response` (a refusal, or a file of the demo page) and close.
    Reject {
        /// HTTP status code, e.g. 404 or 406 (200 for a file of [`crate::web`]).
        status: u16,
        /// The complete HTTP response.
        response: String,
    },
    /// An operational endpoint: the reactor builds the response.
    Endpoint {
        /// Which.
        endpoint: Endpoint,
        /// `HEAD`: headers only.
        head: bool,
    },
}

/// The operational endpoints (README "Running in production").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /metrics`: the Prometheus text exposition.
    Metrics,
    /// `GET /health`: the process is alive and its loop turns.
    Health,
    /// `GET /ready`: it takes new connections and calls (503 while draining).
    Ready,
    /// `POST /admin/drain`: start draining, as SIGTERM does.
    Drain,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The WebSocket at [`super::WEBSOCKET_PATH`] and the demo page.
    pub web: bool,
    /// Draining: WebSocket upgrades get 503 with `Retry-After` (the demo page still loads).
    pub draining: Option<u32>,
    /// `GET /metrics`.
    pub metrics: bool,
    /// `POST /admin/drain`.
    pub admin: bool,
}

impl Service {
    /// A WebSocket listener without operational extras (`/health` and `/ready` are always
    /// served).
    pub const WEB: Service = Service {
        web: true,
        draining: None,
        metrics: false,
        admin: false,
    };

    /// The separate metrics listener: metrics, health, readiness and the drain switch.
    pub const ADMIN: Service = Service {
        web: false,
        draining: None,
        metrics: true,
        admin: true,
    };
}

/// Decides on an upgrade request. `origins` is the allow-list (`*` allows any and none);
/// with a list, a request without an Origin header passes when `allow_missing_origin`
/// (RFC 6455 section 10.2: the check protects against browser pages, which always send one;
/// RFC 6454 section 7.3: `null` is an opaque origin and never matches a list entry).
pub fn handle_upgrade_request(
    input: &[u8],
    origins: &[String],
    allow_missing_origin: bool,
) -> Upgrade {
    handle_request(input, origins, allow_missing_origin, &Service::WEB)
}

/// Decides on a request to a listener that serves `service` (Origin rules as
/// [`handle_upgrade_request`]).
pub fn handle_request(
    input: &[u8],
    origins: &[String],
    allow_missing_origin: bool,
    service: &Service,
) -> Upgrade {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if input.len() < MAX_REQUEST_SIZE => {
            return Upgrade::Incomplete
        }
        Ok(httparse::Status::Partial) => {
            return reject(
                431,
                "Request Header Fields Too Large",
                &[],
                "request too large\n",
            )
        }
        Err(httparse::Error::TooManyHeaders) => {
            return reject(
                431,
                "Request Header Fields Too Large",
                &[],
                "too many headers\n",
            )
        }
        Err(_) => return reject(400, "Bad Request", &[], "malformed HTTP request\n"),
    };
    if consumed > MAX_REQUEST_SIZE {
        return reject(
            431,
            "Request Header Fields Too Large",
            &[],
            "request too large\n",
        );
    }
    let all_headers: &[httparse::Header<'_>] = req.headers;
    let header = |name: &'static str| header_values(all_headers, name);
    let has_token = |name: &'static str, token: &str| {
        header(name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let path = req.path.unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let endpoint = match path {
        "/metrics" if service.metrics => Some((Endpoint::Metrics, "GET, HEAD")),
        "/health" => Some((Endpoint::Health, "GET, HEAD")),
        "/ready" => Some((Endpoint::Ready, "GET, HEAD")),
        "/admin/drain" if service.admin => Some((Endpoint::Drain, "POST")),
        _ => None,
    };
    if let Some((endpoint, allow)) = endpoint {
        let method = req.method.unwrap_or("");
        let allowed = match endpoint {
            Endpoint::Drain => method == "POST",
            _ => method == "GET" || method == "HEAD",
        };
        if !allowed {
            return reject(
                405,
                "Method Not Allowed",
                &[("Allow", allow)],
                "wrong method\n",
            );
        }
        return Upgrade::Endpoint {
            endpoint,
            head: method == "HEAD",
        };
    }
    if !service.web {
        return reject(404, "Not Found", &[], "not found\n");
    }
    if path != WEBSOCKET_PATH {
        // The demo client (`/`, `/webrtcgateway/` and its files); anything else is 404.
        let Some(asset) = web::lookup(path) else {
            return reject(404, "Not Found", &[], "not found\n");
        };
        return match req.method {
            Some(method @ ("GET" | "HEAD")) => Upgrade::Reject {
                status: 200,
                response: web::response(asset, method == "HEAD"),
            },
            _ => reject(
                405,
                "Method Not Allowed",
                &[("Allow", "GET, HEAD")],
                "use GET\n",
            ),
        };
    }
    if req.method != Some("GET") {
        return reject(405, "Method Not Allowed", &[("Allow", "GET")], "use GET\n");
    }
    if !has_token("Upgrade", "websocket") || !has_token("Connection", "upgrade") {
        return reject(
            426,
            "Upgrade Required",
            &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
            "this resource only speaks WebSocket\n",
        );
    }
    // RFC 6455 section 4.4: answer an unsupported version with the versions we speak.
    if !header("Sec-WebSocket-Version").any(|v| v.trim() == "13") {
        return reject(
            426,
            "Upgrade Required",
            &[("Sec-WebSocket-Version", "13")],
            "WebSocket version 13 required\n",
        );
    }
    let Some(key) = header("Sec-WebSocket-Key").next().map(str::trim) else {
        return reject(400, "Bad Request", &[], "missing Sec-WebSocket-Key\n");
    };
    // The key is a base64-encoded 16-byte nonce (section 4.1): 24 characters ending "==".
    if key.len() != 24 || !key.ends_with("==") {
        return reject(400, "Bad Request", &[], "invalid Sec-WebSocket-Key\n");
    }
    let origin = header("Origin").next().map(str::to_owned);
    let allowed = match &origin {
        _ if origins.iter().any(|o| o == "*") => true,
        None => allow_missing_origin,
        Some(o) if o == "null" => false,
        Some(o) => origins.iter().any(|a| a == o),
    };
    if !allowed {
        return reject(403, "Forbidden", &[], "origin not allowed\n");
    }
    if let Some(seconds) = service.draining {
        let seconds = seconds.to_string();
        return reject(
            503,
            "Service Unavailable",
            &[("Retry-After", &seconds)],
            "the gateway is shutting down\n",
        );
    }
    let offered = header("Sec-WebSocket-Protocol").flat_map(|v| v.split(','));
    let Some(dialect) = Dialect::negotiate(offered) else {
        // SylkServer refuses with 406 "No compatible protocol specified" (spec section 3).
        return reject(
            406,
            "Not Acceptable",
            &[],
            "No compatible protocol specified\n",
        );
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {}\r\nServer: sylk-gateway\r\n\r\n",
        dialect.subprotocol()
    );
    Upgrade::Accept {
        dialect,
        origin,
        response,
        consumed,
    }
}

/// The values of every header called `name` (case-insensitive), skipping non-UTF-8 ones.
fn header_values<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
}

/// A complete non-upgrade response that closes the connection.
pub fn reject(status: u16, reason: &str, extra: &[(&str, &str)], body: &str) -> Upgrade {
    Upgrade::Reject {
        status,
        response: response(
            status,
            reason,
            "text/plain; charset=utf-8",
            extra,
            body,
            false,
        ),
    }
}

/// A complete HTTP/1.1 response that closes the connection; `head`: without the body (the
/// length is still the body's, RFC 9110 section 9.3.2).
pub fn response(
    status: u16,
    reason: &str,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
    head: bool,
) -> String {
    let mut out = String::with_capacity(160 + if head { 0 } else { body.len() });
    let _ = write!(out, "HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in extra {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(
        out,
        "Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Server: sylk-gateway\r\n\r\n",
        body.len()
    );
    if !head {
        out.push_str(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, extra: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    fn any() -> Vec<String> {
        vec!["*".into()]
    }

    fn status(u: &Upgrade) -> u16 {
        match u {
            Upgrade::Reject { status, .. } => *status,
            Upgrade::Accept { .. } => 101,
            Upgrade::Incomplete => 0,
            Upgrade::Endpoint { .. } => 1,
        }
    }

    #[test]
    fn accepts_and_computes_the_rfc_example_key() {
        let req = request("/webrtcgateway/ws", "Sec-WebSocket-Protocol: sylkRTC-2\r\n") + "tail";
        let Upgrade::Accept {
            dialect,
            response,
            consumed,
            ..
        } = handle_upgrade_request(req.as_bytes(), &any(), true)
        else {
            panic!()
        };
        assert_eq!(dialect, Dialect::V2);
        // RFC 6455 section 1.3's worked example.
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.contains("Sec-WebSocket-Protocol: sylkRTC-2\r\n"));
        assert_eq!(&req[consumed..], "tail");
    }

    #[test]
    fn refusals() {
        let v1 = "Sec-WebSocket-Protocol: sylkRTC-1\r\n";
        assert_eq!(
            status(&handle_upgrade_request(
                request("/other", v1).as_bytes(),
                &any(),
                true
            )),
            404
        );
        assert_eq!(
            status(&handle_upgrade_request(
                request("/webrtcgateway/ws", "").as_bytes(),
                &any(),
                true
            )),
            406
        );
        assert_eq!(
            status(&handle_upgrade_request(
                request(
                    "/webrtcgateway/ws",
                    "Sec-WebSocket-Protocol: chat, superchat\r\n"
                )
                .as_bytes(),
                &any(),
                true
            )),
            406
        );
        let only = vec!["https://good.example".to_owned()];
        let bad_origin = format!("{v1}Origin: https://evil.example\r\n");
        assert_eq!(
            status(&handle_upgrade_request(
                request("/webrtcgateway/ws", &bad_origin).as_bytes(),
                &only,
                false
            )),
            403
        );
        let good_origin = format!("{v1}Origin: https://good.example\r\n");
        assert_eq!(
            status(&handle_upgrade_request(
                request("/webrtcgateway/ws", &good_origin).as_bytes(),
                &only,
                false
            )),
            101
        );
        assert_eq!(
            status(&handle_upgrade_request(
                request("/webrtcgateway/ws", v1).as_bytes(),
                &only,
                false
            )),
            403
        );
        // Issue 16: no Origin at all (a native client) passes by default; a listed-but-wrong
        // one and the opaque `null` stay refused either way.
        assert_eq!(
            status(&handle_upgrade_request(
                request("/webrtcgateway/ws", v1).as_bytes(),
                &only,
                true
            )),
            101
        );
        let null_origin = format!("{v1}Origin: null\r\n");
        for allow_missing in [true, false] {
            for (input, list) in [(&null_origin, &only), (&bad_origin, &only)] {
                assert_eq!(
                    status(&handle_upgrade_request(
                        request("/webrtcgateway/ws", input).as_bytes(),
                        list,
                        allow_missing
                    )),
                    403
                );
            }
        }
        let plain = "GET /webrtcgateway/ws HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            status(&handle_upgrade_request(plain.as_bytes(), &any(), true)),
            426
        );
        let post = request("/webrtcgateway/ws", v1).replacen("GET", "POST", 1);
        assert_eq!(
            status(&handle_upgrade_request(post.as_bytes(), &any(), true)),
            405
        );
        let old = request("/webrtcgateway/ws", v1).replace("Version: 13", "Version: 8");
        assert_eq!(
            status(&handle_upgrade_request(old.as_bytes(), &any(), true)),
            426
        );
        assert_eq!(
            status(&handle_upgrade_request(
                b"\x00\x01garbage\r\n\r\n",
                &any(),
                true
            )),
            400
        );
        assert_eq!(
            status(&handle_upgrade_request(
                b"GET /webrtcgateway/ws HTTP/1.1\r\nHost",
                &any(),
                true
            )),
            0
        );
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_REQUEST_SIZE));
        assert_eq!(
            status(&handle_upgrade_request(huge.as_bytes(), &any(), true)),
            431
        );
    }

    fn plain(method: &str, path: &str) -> Upgrade {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        handle_upgrade_request(req.as_bytes(), &any(), true)
    }

    fn response_of(u: &Upgrade) -> &str {
        match u {
            Upgrade::Reject { response, .. } => response,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serves_the_demo_page_and_its_files() {
        for (path, ctype) in [
            ("/", "text/html"),
            ("/webrtcgateway/", "text/html"),
            ("/?x=1", "text/html"),
            ("/app.js", "text/javascript"),
            ("/webrtcgateway/sylkrtc-client.js", "text/javascript"),
            ("/webrtcgateway/style.css", "text/css"),
        ] {
            let u = plain("GET", path);
            assert_eq!(status(&u), 200, "{path}");
            let r = response_of(&u);
            let (head, body) = r.split_once("\r\n\r\n").unwrap();
            assert!(
                head.contains(&format!("Content-Type: {ctype}; charset=utf-8\r\n")),
                "{head}"
            );
            assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
            assert!(head.contains("Cache-Control: no-cache\r\n"));
            assert!(head.contains("Content-Security-Policy: default-src 'none'; script-src 'self'"));
            assert!(!body.is_empty());
        }
        // HEAD: the same headers, no body.
        let head = plain("HEAD", "/");
        assert_eq!(status(&head), 200);
        let r = response_of(&head);
        assert!(r.ends_with("\r\n\r\n"));
        let len = crate::web::lookup("/").unwrap().body.len();
        assert!(r.contains(&format!("Content-Length: {len}\r\n")));
        // Upgrade headers on a file path do not make it a WebSocket.
        assert_eq!(
            status(&handle_upgrade_request(
                request("/", "Sec-WebSocket-Protocol: sylkRTC-2\r\n").as_bytes(),
                &any(),
                true
            )),
            200
        );
    }

    #[test]
    fn endpoints_are_routed_by_service() {
        let ask = |method: &str, path: &str, service: &Service| {
            let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            handle_request(req.as_bytes(), &any(), true, service)
        };
        let endpoint = |e, head| Upgrade::Endpoint { endpoint: e, head };
        // The web listener: health and readiness always, metrics only when asked for, never
        // the drain switch.
        let web = Service::WEB;
        assert_eq!(
            ask("GET", "/health", &web),
            endpoint(Endpoint::Health, false)
        );
        assert_eq!(ask("HEAD", "/ready", &web), endpoint(Endpoint::Ready, true));
        assert_eq!(status(&ask("GET", "/metrics", &web)), 404);
        assert_eq!(status(&ask("POST", "/admin/drain", &web)), 404);
        let with_metrics = Service {
            metrics: true,
            ..Service::WEB
        };
        assert_eq!(
            ask("GET", "/metrics?x=1", &with_metrics),
            endpoint(Endpoint::Metrics, false)
        );
        // The admin listener: no WebSocket, no demo page; drain by POST only.
        let admin = Service::ADMIN;
        assert_eq!(
            ask("POST", "/admin/drain", &admin),
            endpoint(Endpoint::Drain, false)
        );
        let get = ask("GET", "/admin/drain", &admin);
        assert_eq!(status(&get), 405);
        assert!(response_of(&get).contains("Allow: POST\r\n"));
        assert_eq!(status(&ask("POST", "/metrics", &admin)), 405);
        assert_eq!(status(&ask("GET", "/", &admin)), 404);
        let upgrade = request("/webrtcgateway/ws", "Sec-WebSocket-Protocol: sylkRTC-2\r\n");
        assert_eq!(
            status(&handle_request(upgrade.as_bytes(), &any(), true, &admin)),
            404
        );
        // Draining: upgrades get 503 with Retry-After, the page and endpoints still answer.
        let draining = Service {
            draining: Some(5),
            ..Service::WEB
        };
        let refused = handle_request(upgrade.as_bytes(), &any(), true, &draining);
        assert_eq!(status(&refused), 503);
        assert!(response_of(&refused).contains("Retry-After: 5\r\n"));
        assert_eq!(status(&ask("GET", "/", &draining)), 200);
        assert_eq!(
            ask("GET", "/ready", &draining),
            endpoint(Endpoint::Ready, false)
        );
    }

    #[test]
    fn head_responses_keep_the_length_without_the_body() {
        let r = response(200, "OK", "text/plain", &[], "hello", true);
        assert!(
            r.ends_with("Content-Length: 5\r\nConnection: close\r\nServer: sylk-gateway\r\n\r\n")
        );
        let r = response(200, "OK", "text/plain", &[], "hello", false);
        assert!(r.ends_with("\r\n\r\nhello"));
    }

    #[test]
    fn other_paths_and_methods_stay_refused() {
        assert_eq!(status(&plain("POST", "/")), 405);
        assert!(response_of(&plain("PUT", "/app.js")).contains("Allow: GET, HEAD\r\n"));
        for path in [
            "/favicon.ico",
            "/webrtcgateway",
            "/webrtcgateway/x",
            "/../etc/passwd",
        ] {
            assert_eq!(status(&plain("GET", path)), 404, "{path}");
        }
        // The socket path still only speaks WebSocket.
        assert_eq!(status(&plain("GET", "/webrtcgateway/ws")), 426);
        assert_eq!(status(&plain("HEAD", "/webrtcgateway/ws")), 405);
    }
}
