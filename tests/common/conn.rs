//! A sylkRTC-2 client connection for the end-to-end tests that drive the protocol themselves
//! (messaging, chat sessions, scale-out, standalone): replies matched by transaction, events
//! that arrive while it waits for a reply kept in arrival order for later.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::Message;

use super::peers::Kamailio;
use super::{send_json, Client};

/// A sylkRTC-2 connection to `addr` that keeps events arriving while it waits for a reply.
pub struct Conn {
    pub ws: Client,
    backlog: VecDeque<Value>,
    next_tx: u32,
    closed: bool,
}

impl Conn {
    pub fn try_open(addr: SocketAddr) -> Option<Conn> {
        let mut req = format!("ws://{addr}/webrtcgateway/ws")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("sylkRTC-2"),
        );
        let stream = TcpStream::connect(addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (ws, _) = tungstenite::client(req, stream).ok()?;
        let mut c = Conn {
            ws,
            backlog: VecDeque::new(),
            next_tx: 0,
            closed: false,
        };
        let ready = c.read(Instant::now() + Duration::from_secs(5))?;
        assert_eq!(ready["sylkrtc"], "ready-event");
        Some(c)
    }

    pub fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr).unwrap_or_else(|| panic!("no sylkRTC connection through {addr}"))
    }

    pub fn close(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
        self.closed = true;
    }

    /// The next message, `None` at the deadline or once the server closed.
    pub fn read(&mut self, deadline: Instant) -> Option<Value> {
        while Instant::now() < deadline && !self.closed {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(Message::Close(_)) => self.closed = true,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => self.closed = true,
            }
        }
        None
    }

    pub fn request(&mut self, mut request: Value) -> Value {
        self.next_tx += 1;
        let tx = format!("t{}", self.next_tx);
        request["transaction"] = tx.clone().into();
        send_json(&mut self.ws, &request);
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(v) = self.read(deadline) {
            if v["transaction"] == tx.as_str() {
                return v;
            }
            self.backlog.push_back(v);
        }
        panic!("no reply to {request}");
    }

    pub fn ack(&mut self, request: Value) {
        let reply = self.request(request.clone());
        assert_eq!(reply["sylkrtc"], "ack", "{request} -> {reply}");
    }

    /// Drops the events kept so far (a test moving on to the next step).
    pub fn forget_events(&mut self) {
        self.backlog.clear();
    }

    /// The error text of a request that must fail.
    pub fn error(&mut self, request: Value) -> String {
        let reply = self.request(request.clone());
        assert_eq!(reply["sylkrtc"], "error", "{request} -> {reply}");
        reply["error"].as_str().unwrap().to_owned()
    }

    /// Whether an event matching `pred` arrives (or was kept) within `timeout`; it stays kept.
    pub fn gets(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> bool {
        if self.backlog.iter().any(&pred) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        while let Some(v) = self.read(deadline) {
            let hit = pred(&v);
            self.backlog.push_back(v);
            if hit {
                return true;
            }
        }
        false
    }

    /// Adds and registers `user` at `kam`; returns once `registered`.
    pub fn register(&mut self, kam: &Kamailio, user: &str, display_name: Option<&str>) {
        let aor = format!("{user}@example.test");
        let mut add = json!({"sylkrtc":"account-add","account":aor,"password":kam.ha1(user)});
        if let Some(d) = display_name {
            add["display_name"] = d.into();
        }
        self.ack(add);
        self.ack(json!({"sylkrtc":"account-register","account":aor}));
        let state = self.event(Duration::from_secs(10), |v| {
            v["event"] == "registration-state" && v["state"] != "registering"
        });
        assert_eq!(state["state"], "registered", "{state}");
    }

    pub fn event(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = Instant::now() + timeout;
        while let Some(v) = self.read(deadline) {
            if pred(&v) {
                return v;
            }
            self.backlog.push_back(v);
        }
        panic!(
            "no matching event within {timeout:?}; got {:?}",
            self.backlog
        );
    }

    /// Every event kept or arriving until the server closes the connection or `timeout`.
    pub fn drain_until_closed(&mut self, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        while let Some(v) = self.read(deadline) {
            self.backlog.push_back(v);
        }
        assert!(
            self.closed,
            "the connection was not closed within {timeout:?}"
        );
        self.backlog.drain(..).collect()
    }

    /// Adds and registers `aor` with `ha1`; returns once `registered`.
    pub fn register_as(&mut self, aor: &str, ha1: &str) {
        self.ack(json!({"sylkrtc":"account-add","account":aor,"password":ha1}));
        self.ack(json!({"sylkrtc":"account-register","account":aor}));
        let state = self.event(Duration::from_secs(15), |v| {
            v["event"] == "registration-state" && v["state"] != "registering"
        });
        assert_eq!(state["state"], "registered", "{state}");
    }

    /// `account-message` from `from` to `to` (both `user@domain`), content `text of ID`.
    pub fn send_message(&mut self, from: &str, to: &str, id: &str) {
        self.ack(
            json!({"sylkrtc":"account-message","account":from,"uri":to,"message_id":id,
            "content":format!("text of {id}"),"content_type":"text/plain",
            "timestamp":"2026-01-02T03:04:05.000Z"}),
        );
    }

    pub fn disposition(&mut self, id: &str) -> Value {
        self.event(Duration::from_secs(30), |v| {
            v["event"] == "disposition-notification" && v["message_id"] == id
        })
    }

    /// `account-sync-conversations`: the message ids of the account's journal.
    pub fn sync_ids(&mut self, aor: &str) -> Vec<String> {
        self.ack(json!({"sylkrtc":"account-sync-conversations","account":aor}));
        let sync = self.event(Duration::from_secs(10), |v| {
            v["event"] == "sync-conversations"
        });
        sync["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message_id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Matches the `message` event of message `id`.
pub fn is_message(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v: &Value| v["event"] == "message" && v["message_id"] == id
}
