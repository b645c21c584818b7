//! The static demo client (issue 6): a small page speaking sylkRTC-2 to this gateway, served
//! from the WebSocket listeners at `/` and `/webrtcgateway/`.
//!
//! The files under `src/web/assets/` are embedded in the binary (`include_str!`), so there is
//! no build step and nothing to deploy next to the gateway. [`lookup`] maps a request path to
//! an asset and [`response`] builds the complete HTTP/1.1 answer.

use std::fmt::Write as _;

/// One embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// File name under `src/web/assets/` (also its URL name).
    pub name: &'static str,
    /// Value of the `Content-Type` header.
    pub content_type: &'static str,
    /// The file.
    pub body: &'static str,
}

/// Every embedded file; `index.html` is the page itself.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/chat.js"),
    },
    Asset {
        name: "chat-session.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/chat-session.js"),
    },
    Asset {
        name: "msrp-chat.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/msrp-chat.js"),
    },
    Asset {
        name: "contacts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/contacts.js"),
    },
    Asset {
        name: "sylkrtc-client.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sylkrtc-client.js"),
    },
    Asset {
        name: "md5.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/md5.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/style.css"),
    },
];

/// The page's Content-Security-Policy: only its own scripts and styles, WebSocket back to this
/// origin, no frames, no plugins, no inline code.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// The asset for a request path (without query), if any: `/` and `/webrtcgateway/` are the
/// page, `/NAME` and `/webrtcgateway/NAME` the other files. Everything else is `None` (404).
pub fn lookup(path: &str) -> Option<&'static Asset> {
    let name = path
        .strip_prefix("/webrtcgateway/")
        .or_else(|| path.strip_prefix('/'))?;
    let name = if name.is_empty() { "index.html" } else { name };
    ASSETS.iter().find(|a| a.name == name)
}

/// The complete `200 OK` response for `asset`; the body is left out for HEAD (`head_only`).
/// The connection closes after it (the WebSocket listener serves one request per connection).
pub fn response(asset: &Asset, head_only: bool) -> String {
    let mut out = String::with_capacity(asset.body.len() + 400);
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n\
         Content-Security-Policy: {CSP}\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\nServer: sylk-gateway\r\n\r\n",
        asset.content_type,
        asset.body.len()
    );
    if !head_only {
        out.push_str(asset.body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_assets() {
        assert_eq!(lookup("/").unwrap().name, "index.html");
        assert_eq!(lookup("/webrtcgateway/").unwrap().name, "index.html");
        assert_eq!(lookup("/app.js").unwrap().name, "app.js");
        assert_eq!(
            lookup("/webrtcgateway/sylkrtc-client.js").unwrap().name,
            "sylkrtc-client.js"
        );
        for unknown in [
            "",
            "/webrtcgateway",
            "/webrtcgateway/ws",
            "/index.htm",
            "/../app.js",
            "/assets/app.js",
            "/webrtcgateway//app.js",
            "app.js",
        ] {
            assert_eq!(lookup(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn response_headers_and_body() {
        let page = lookup("/").unwrap();
        let r = response(page, false);
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"));
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
        assert!(head.contains("\r\nCache-Control: no-cache\r\n"));
        assert!(head.contains("script-src 'self'"));
        assert!(body.contains("<script type=\"module\" src=\"app.js\"></script>"));
        let head_only = response(page, true);
        assert_eq!(head_only, format!("{head}\r\n\r\n"));
    }

    #[test]
    fn the_page_references_only_embedded_files_and_no_inline_code() {
        let page = lookup("/").unwrap().body;
        for reference in [
            "src=\"app.js\"",
            "href=\"style.css\"",
            "href=\"sylkrtc-client.js\"",
        ] {
            assert!(page.contains(reference), "{reference}");
        }
        // The CSP forbids inline scripts and styles: the page must have none.
        assert!(
            !page.contains("<script>") && !page.contains("<style") && !page.contains("style=\"")
        );
        assert!(!page.contains("onclick"));
        // No CDN or other external resource.
        for asset in ASSETS {
            assert!(
                !asset.body.contains("http://") && !asset.body.contains("https://"),
                "{}: external URL",
                asset.name
            );
        }
        // Module imports resolve to embedded files.
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line.rsplit("'./").next().unwrap().trim_end_matches("';");
                assert!(
                    lookup(&format!("/{target}")).is_some(),
                    "{}: {line}",
                    asset.name
                );
            }
        }
    }
}
