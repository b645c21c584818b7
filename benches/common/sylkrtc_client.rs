//! A bench's sylkRTC-2 WebSocket client connection to the gateway (blocking tungstenite).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;
use tungstenite::Message;

/// One client connection.
pub type Ws = tungstenite::WebSocket<TcpStream>;

/// Connects to the gateway's WebSocket at `addr` offering `sylkRTC-2` (the handshake may
/// take 30 s); later reads give up after `read_timeout`.
pub fn connect(addr: SocketAddr, read_timeout: Duration) -> Ws {
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/webrtcgateway/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sylkRTC-2".parse().unwrap());
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (ws, _) = tungstenite::client(req, stream).expect("handshake");
    ws.get_ref().set_read_timeout(Some(read_timeout)).unwrap();
    ws
}

/// Sends one request.
pub fn send(ws: &mut Ws, v: &Value) {
    ws.send(Message::Text(v.to_string().into())).unwrap();
}
