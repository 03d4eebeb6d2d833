//! room-load: the load generator of `tests/bench/rooms.sh`, on
//! tungstenite's client (independent of both servers it measures: jawas-ws
//! rooms and a Node.js `ws` broadcast server). Members connect to URL;
//! one more, the sender, sends messages `T<seq> <micros>` that the server
//! fans out to every other member; each member takes the `T` mark out of
//! whatever the server wraps it in (JSON for jawas-ws, nothing for Node).
//!
//!     room-load latency URL MEMBERS MSGS PER_SEC
//!         MSGS messages at PER_SEC; prints delivered, expected, p50, p99
//!         and max delivery latency in ms over every (message, member).
//!     room-load throughput URL MEMBERS SECS WINDOW
//!         the sender sends as fast as the slowest member keeps up (at most
//!         WINDOW messages ahead of it); prints fanned-out deliveries/s.
//!
//! A member missing or repeating a message counts as a failure (printed).

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

fn open(url: &str) -> Result<Ws, String> {
    let hostport = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .ok_or("URL must be ws://HOST:PORT/...")?;
    let tcp = TcpStream::connect(hostport).map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let (ws, _) = tungstenite::client(url, tcp).map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// `(seq, micros)` from a message carrying `T<seq> <micros>`.
fn mark(text: &str) -> Option<(u64, u64)> {
    let at = text.find('T')?;
    let mut it = text[at + 1..].split(|c: char| !c.is_ascii_digit());
    let seq = it.next()?.parse().ok()?;
    let us = it.next()?.parse().ok()?;
    Some((seq, us))
}

struct Shared {
    start: Instant,
    /// Per member: messages received in order so far.
    got: Vec<AtomicU64>,
    /// Per member (its own lock, never contended until the end).
    lat: Vec<Mutex<Vec<u64>>>,
    failures: AtomicU64,
    stop: AtomicBool,
}

fn member(mut ws: Ws, i: usize, sh: Arc<Shared>, keep_latency: bool) {
    let mut next = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        let text = match ws.read() {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(_) => continue,
            Err(_) => break,
        };
        let Some((seq, us)) = mark(&text) else {
            continue; // a welcome or a system message
        };
        if seq != next {
            eprintln!("member {i}: got T{seq}, wanted T{next}");
            sh.failures.fetch_add(1, Ordering::Relaxed);
        }
        next = seq + 1;
        sh.got[i].store(next, Ordering::Release);
        if keep_latency {
            let l = (sh.start.elapsed().as_micros() as u64).saturating_sub(us);
            sh.lat[i].lock().unwrap().push(l);
        }
    }
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: room-load latency URL MEMBERS MSGS PER_SEC | throughput URL MEMBERS SECS WINDOW");
        std::process::exit(100)
    };
    if a.len() != 6 {
        usage();
    }
    let (mode, url) = (a[1].as_str(), a[2].as_str());
    let n: usize = a[3].parse().unwrap_or_else(|_| usage());
    let x: u64 = a[4].parse().unwrap_or_else(|_| usage());
    let y: u64 = a[5].parse().unwrap_or_else(|_| usage());
    let sh = Arc::new(Shared {
        start: Instant::now(),
        got: (0..n).map(|_| AtomicU64::new(0)).collect(),
        lat: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
        failures: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    for i in 0..n {
        let ws = open(url).unwrap_or_else(|e| {
            eprintln!("member {i}: {e}");
            std::process::exit(1)
        });
        let sh = sh.clone();
        let keep = mode == "latency";
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || member(ws, i, sh, keep))
            .unwrap();
    }
    let mut sender = open(url).unwrap_or_else(|e| {
        eprintln!("sender: {e}");
        std::process::exit(1)
    });
    // Every member is in the room before the first message.
    std::thread::sleep(Duration::from_millis(500));
    let send = |ws: &mut Ws, seq: u64| {
        let us = sh.start.elapsed().as_micros();
        ws.send(Message::text(format!("T{seq} {us}")))
            .unwrap_or_else(|e| {
                eprintln!("sender: {e}");
                std::process::exit(1)
            });
    };
    let min_got = || {
        sh.got
            .iter()
            .map(|g| g.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    };
    let (msgs, secs) = match mode {
        "latency" => {
            let gap = Duration::from_secs_f64(1.0 / y.max(1) as f64);
            let t0 = Instant::now();
            for seq in 0..x {
                let due = t0 + gap * seq as u32;
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
                send(&mut sender, seq);
            }
            (x, 0.0)
        }
        "throughput" => {
            let t0 = Instant::now();
            let mut seq = 0;
            while t0.elapsed() < Duration::from_secs(x) {
                if seq >= min_got() + y {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                    continue;
                }
                send(&mut sender, seq);
                seq += 1;
            }
            (seq, t0.elapsed().as_secs_f64())
        }
        _ => usage(),
    };
    let end = Instant::now() + Duration::from_secs(20);
    while min_got() < msgs && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let delivered: u64 = sh.got.iter().map(|g| g.load(Ordering::Acquire)).sum();
    let failures = sh.failures.load(Ordering::Relaxed);
    if mode == "throughput" {
        println!(
            "members {n} messages {msgs} delivered {delivered} expected {} secs {secs:.1} rate {:.0} failures {failures}",
            msgs * n as u64,
            delivered as f64 / secs
        );
    }
    sh.stop.store(true, Ordering::Relaxed);
    drop(sender);
    // Members blocked in read end when the server closes or in 20 s;
    // the process exits without waiting for them.
    if mode == "latency" {
        let mut lat: Vec<u64> = sh
            .lat
            .iter()
            .flat_map(|l| l.lock().unwrap().clone())
            .collect();
        lat.sort_unstable();
        println!(
            "members {n} messages {msgs} delivered {delivered} expected {} p50 {:.2} p99 {:.2} max {:.2} failures {failures}",
            msgs * n as u64,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
    }
    std::process::exit(0);
}
