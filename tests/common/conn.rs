//! A sylkRTC-2 connection for the end-to-end tests that drive the protocol themselves: replies
//! matched by transaction, events kept in arrival order while a reply is awaited.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::peers::Kamailio;
use super::{connect_v2, send_json, Client, Gateway};

/// One sylkRTC-2 connection that keeps events that arrive while it waits for a reply.
pub struct Conn {
    pub ws: Client,
    backlog: VecDeque<Value>,
    next_tx: u32,
}

impl Conn {
    pub fn open(gw: &Gateway) -> Conn {
        let ws = connect_v2(gw);
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Conn {
            ws,
            backlog: VecDeque::new(),
            next_tx: 0,
        }
    }

    pub fn read(&mut self, deadline: Instant) -> Option<Value> {
        use tungstenite::Message;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("websocket: {e}"),
            }
        }
        None
    }

    /// Sends `request` (its transaction is set here) and returns the ack or error.
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

    pub fn error(&mut self, request: Value) -> String {
        let reply = self.request(request.clone());
        assert_eq!(reply["sylkrtc"], "error", "{request} -> {reply}");
        reply["error"].as_str().unwrap().to_owned()
    }

    /// The first event (kept or new) matching `pred`, within `timeout`.
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

    /// Whether an event matching `pred` arrives within `timeout`.
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
}
