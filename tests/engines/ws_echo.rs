//! jawas-test-ws-echo: a WebSocket echo engine for the system tests, and
//! the example of a connection hand-off. The HTTP layer reads the upgrade
//! request; the handler answers 101 on the layer, takes the connection
//! (`Conn::hand_off`, with the bytes already read past the head) and lets
//! tungstenite echo text and binary frames until the client closes.
//! Start-up (`--help`, `--version`, `--check`, exit codes) is the engine
//! runtime's, reached through jawas-http's re-export of jawas-engine.

use jawas_http::jawas_engine::{self, Args, Connection, Engine, Error, Opt};
use jawas_http::{Conn, Limits, Request, Response};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::Role;
use tungstenite::WebSocket;

fn io_error(e: tungstenite::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn handle(conn: &mut Conn, req: Request) -> std::io::Result<bool> {
    let wants_ws = req
        .header_list("Upgrade")
        .any(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.header("Sec-WebSocket-Key").filter(|_| wants_ws) else {
        let resp = Response::error(426).header("Upgrade", "websocket");
        return conn.send(Some(&req), resp);
    };
    let resp = Response::new(101)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Accept", derive_accept_key(key.as_bytes()));
    conn.send(Some(&req), resp)?;
    let up = conn.hand_off()?;
    let mut ws = WebSocket::from_partially_read(up.stream, up.buffered, Role::Server, None);
    loop {
        match ws.read() {
            Ok(m) if m.is_text() || m.is_binary() => ws.send(m).map_err(io_error)?,
            Ok(_) => {} // pings are answered by tungstenite; a close is echoed
            Err(tungstenite::Error::ConnectionClosed) => return Ok(false),
            Err(e) => return Err(io_error(e)),
        }
    }
}

struct WsEcho;

impl Engine for WsEcho {
    const NAME: &'static str = "jawas-test-ws-echo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &[""];
    const ABOUT: &'static str = "A WebSocket echo server for the system tests.";
    const OPTIONS: &'static [Opt] = &[];

    fn init(args: &Args) -> Result<Self, Error> {
        match args.positionals().first() {
            Some(a) => Err(Error::usage(format!("unexpected argument '{a}'"))),
            None => Ok(WsEcho),
        }
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        let mut conn = Conn::from_connection(conn, Limits::default());
        jawas_engine::status(jawas_http::serve(&mut conn, handle))
    }
}

fn main() {
    jawas_engine::run::<WsEcho>()
}
