//! ws-load: the WebSocket load generator of `tests/bench/ws.sh`, on
//! tungstenite's client (an implementation independent of both servers).
//! Every echoed reply is checked against what was sent; a wrong or
//! missing reply, or a session that fails anywhere, counts as a failure.
//!
//!     ws-load sessions URL CLIENTS SECS   connect, one echo, close; repeat
//!     ws-load echo URL CLIENTS SECS       one connection each, echo in a loop
//!     ws-load hold URL N READY STOP       hold N echoed connections open until
//!                                         the file STOP exists (at most 10 min)
//!
//! `sessions` and `echo` print one line: `ok N fail N secs S rate R`.

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

/// Connects to `url` (`ws://127.0.0.1:PORT/PATH`) with a 10 s limit on
/// every read and write.
fn open(url: &str) -> Result<Ws, String> {
    let hostport = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .ok_or("URL must be ws://HOST:PORT/...")?;
    let tcp = TcpStream::connect(hostport).map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let limit = Some(Duration::from_secs(10));
    tcp.set_read_timeout(limit).map_err(|e| e.to_string())?;
    tcp.set_write_timeout(limit).map_err(|e| e.to_string())?;
    let (ws, resp) = tungstenite::client(url, tcp).map_err(|e| format!("handshake: {e}"))?;
    if resp.status().as_u16() != 101 {
        return Err(format!("status {}", resp.status()));
    }
    Ok(ws)
}

/// Sends `text` and checks that the next message is the same text.
fn echo(ws: &mut Ws, text: &str) -> Result<(), String> {
    ws.send(Message::text(text))
        .map_err(|e| format!("send: {e}"))?;
    loop {
        match ws.read().map_err(|e| format!("read: {e}"))? {
            Message::Text(t) if t.as_str() == text => return Ok(()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return Err(format!("sent {text:?}, got {other:?}")),
        }
    }
}

/// Closes and waits for the server's close (or the end of the stream).
fn close(mut ws: Ws) -> Result<(), String> {
    ws.close(None).map_err(|e| format!("close: {e}"))?;
    loop {
        match ws.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            // websocketd drops the connection once its program has exited.
            Err(tungstenite::Error::Io(_)) | Err(tungstenite::Error::Protocol(_)) => return Ok(()),
            Err(e) => return Err(format!("closing: {e}")),
        }
    }
}

/// One session: connect, one echo, close.
fn session(url: &str, text: &str) -> Result<(), String> {
    let mut ws = open(url)?;
    echo(&mut ws, text)?;
    close(ws)
}

/// Runs `work(client, i)` on `clients` threads for `secs`; prints counts.
fn timed(clients: usize, secs: f64, work: impl Fn(usize, &AtomicBool) -> (u64, u64) + Sync) {
    let stop = AtomicBool::new(false);
    let (ok, fail) = (AtomicU64::new(0), AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let (work, stop, ok, fail) = (&work, &stop, &ok, &fail);
            s.spawn(move || {
                let (o, f) = work(c, stop);
                ok.fetch_add(o, Ordering::Relaxed);
                fail.fetch_add(f, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let took = start.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    let fail = fail.load(Ordering::Relaxed);
    println!(
        "ok {ok} fail {fail} secs {took:.2} rate {:.0}",
        ok as f64 / took
    );
}

fn sessions(url: &str, clients: usize, secs: f64) {
    timed(clients, secs, |c, stop| {
        let (mut ok, mut fail) = (0, 0);
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            match session(url, &format!("session {c} {i}")) {
                Ok(()) => ok += 1,
                Err(e) => {
                    if fail < 3 {
                        eprintln!("ws-load: client {c}: {e}");
                    }
                    fail += 1;
                }
            }
        }
        (ok, fail)
    });
}

fn echoes(url: &str, clients: usize, secs: f64) {
    timed(clients, secs, |c, stop| {
        let mut ws = match open(url) {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("ws-load: client {c}: {e}");
                return (0, 1);
            }
        };
        let (mut ok, mut i) = (0, 0u64);
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            if let Err(e) = echo(&mut ws, &format!("message {c} {i}")) {
                eprintln!("ws-load: client {c}: {e}");
                return (ok, 1);
            }
            ok += 1;
        }
        let _ = close(ws);
        (ok, 0)
    });
}

/// Opens `n` connections (each proven by one echo, so its program runs),
/// writes how many to `ready`, holds them until `stop` exists.
fn hold(url: &str, n: usize, ready: &Path, stop: &Path) {
    let mut held = Vec::with_capacity(n);
    let mut fail = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while held.len() < n && fail < 100 && Instant::now() < deadline {
        match open(url).and_then(|mut ws| echo(&mut ws, "held").map(|()| ws)) {
            Ok(ws) => held.push(ws),
            Err(e) => {
                eprintln!("ws-load: hold {}: {e}", held.len());
                fail += 1;
            }
        }
    }
    let _ = std::fs::write(ready, format!("{}\n", held.len()));
    while !stop.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Dropped without close frames: the servers see the connections end.
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> f64 {
        args.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let url = args.get(1).map(String::as_str).unwrap_or_else(|| usage());
    match args.first().map(String::as_str) {
        Some("sessions") => sessions(url, num(2) as usize, num(3)),
        Some("echo") => echoes(url, num(2) as usize, num(3)),
        Some("hold") if args.len() == 5 => hold(
            url,
            num(2) as usize,
            Path::new(&args[3]),
            Path::new(&args[4]),
        ),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: ws-load sessions|echo URL CLIENTS SECS | ws-load hold URL N READY STOP");
    std::process::exit(100)
}
