//! A hub's link to a broker, so one room spans every host that uses the
//! same broker: Redis pub/sub (RESP) or NATS (its text protocol), both
//! written here in the small subset rooms need (publish, subscribe, the
//! messages back, NATS's PING) so they run in the hub's own poll loop
//! without threads or an async runtime. Owns the broker connections, their
//! buffers and the reconnect schedule. Invariants: nothing blocks after
//! the connect (sockets are non-blocking, writes wait in `out`); a failed
//! link is dropped whole and retried later, never half used.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a connect may take, and the wait between tries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_millis(500);
/// Bytes waiting for a broker that does not read before it is taken as gone.
const OUT_LIMIT: usize = 16 << 20;
/// The bot's lease (Redis): how long it lasts, and how often it is
/// renewed (or, by a hub without it, asked for).
const LEASE_TTL_MS: u64 = 3000;
const LEASE_EVERY: Duration = Duration::from_millis(1000);
/// Renews the lease only if it is still ours (it may have expired and
/// gone to another host): 1 renewed, 0 not ours.
const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
    return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/// Gives the lease up only if it is ours.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
    return redis.call('del', KEYS[1]) else return 0 end";

/// What a reply on the Redis publishing connection answers, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Publish,
    Acquire,
    Renew,
    Release,
}

/// A lease in Redis on one key: the room's bot runs on the host that
/// holds it, so a room spanning hosts has one bot.
struct Lease {
    key: String,
    holder: String,
    held: bool,
    next: Instant,
}

/// Which broker, where: `redis://host:port` or `nats://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub nats: bool,
    pub addr: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let (nats, rest) = if let Some(r) = url.strip_prefix("redis://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("nats://") {
            (true, r)
        } else {
            return Err(format!(
                "'{url}' is not redis://HOST:PORT or nats://HOST:PORT"
            ));
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(format!("'{url}': give just HOST:PORT after the scheme"));
        }
        let addr = if rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            rest.to_string()
        } else {
            format!("{rest}:{}", if nats { 4222 } else { 6379 })
        };
        Ok(Target { nats, addr })
    }
}

/// One TCP connection with its unread input and unwritten output.
struct Link {
    stream: TcpStream,
    input: Vec<u8>,
    out: Vec<u8>,
}

impl Link {
    fn open(addr: &str) -> io::Result<Link> {
        let mut last = io::Error::new(ErrorKind::NotFound, format!("{addr}: no address"));
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_nonblocking(true)?;
                    return Ok(Link {
                        stream,
                        input: Vec::new(),
                        out: Vec::new(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(bytes);
        if self.out.len() > OUT_LIMIT {
            return Err(io::Error::other("the broker does not read"));
        }
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => drop(self.out.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is there; `Err` at the end of the connection.
    fn fill(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 65536];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(io::Error::other("the broker closed the connection")),
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn poll_entry(&self) -> (RawFd, i16) {
        let out = if self.out.is_empty() {
            0
        } else {
            libc::POLLOUT
        };
        (self.stream.as_raw_fd(), libc::POLLIN | out)
    }
}

/// The live connections: Redis needs one to subscribe (a subscribed
/// connection takes no other commands) and one to publish.
enum Links {
    Redis { sub: Link, publ: Link },
    Nats(Link),
}

pub struct Broker {
    target: Target,
    subject: String,
    links: Option<Links>,
    next_try: Instant,
    /// A connection being made, by a thread of its own.
    connecting: Option<mpsc::Receiver<io::Result<Links>>>,
    /// Replies awaited on Redis's publishing connection, oldest first.
    asked: VecDeque<Ask>,
    lease: Option<Lease>,
}

impl Broker {
    /// Not connected yet: call `reconnect`.
    pub fn new(target: Target, subject: String) -> Broker {
        Broker {
            target,
            subject,
            links: None,
            next_try: Instant::now(),
            connecting: None,
            asked: VecDeque::new(),
            lease: None,
        }
    }

    /// Competes for the lease on `key` as `holder` from now on.
    pub fn want_lease(&mut self, key: String, holder: String) {
        self.lease = Some(Lease {
            key,
            holder,
            held: false,
            next: Instant::now(),
        });
    }

    pub fn lease_held(&self) -> bool {
        self.lease.as_ref().is_some_and(|l| l.held)
    }

    /// When due: asks for the lease, or renews it.
    pub fn tend_lease(&mut self) -> io::Result<()> {
        let Some(l) = self.lease.as_mut() else {
            return Ok(());
        };
        let Some(Links::Redis { publ, .. }) = &mut self.links else {
            return Ok(());
        };
        if Instant::now() < l.next {
            return Ok(());
        }
        l.next = Instant::now() + LEASE_EVERY;
        let ttl = LEASE_TTL_MS.to_string();
        let (cmd, ask) = if l.held {
            let args: [&[u8]; 6] = [
                b"EVAL",
                RENEW.as_bytes(),
                b"1",
                l.key.as_bytes(),
                l.holder.as_bytes(),
                ttl.as_bytes(),
            ];
            (resp_command(&args), Ask::Renew)
        } else {
            let args: [&[u8]; 6] = [
                b"SET",
                l.key.as_bytes(),
                l.holder.as_bytes(),
                b"NX",
                b"PX",
                ttl.as_bytes(),
            ];
            (resp_command(&args), Ask::Acquire)
        };
        self.asked.push_back(ask);
        let r = publ.send(&cmd);
        self.check(r)
    }

    /// Gives the lease up (when the hub leaves), so another host's hub
    /// takes the bot over at once instead of after the lease's expiry.
    pub fn release_lease(&mut self) {
        let (Some(l), Some(Links::Redis { publ, .. })) = (self.lease.as_mut(), &mut self.links)
        else {
            return;
        };
        if l.held {
            l.held = false;
            let args: [&[u8]; 5] = [
                b"EVAL",
                RELEASE.as_bytes(),
                b"1",
                l.key.as_bytes(),
                l.holder.as_bytes(),
            ];
            self.asked.push_back(Ask::Release);
            let _ = publ.send(&resp_command(&args));
            // Leaving: give the command a moment to go out.
            let _ = publ.stream.set_nonblocking(false);
            let _ = publ
                .stream
                .set_write_timeout(Some(Duration::from_millis(200)));
            let _ = publ.flush();
        }
    }

    pub fn is_up(&self) -> bool {
        self.links.is_some()
    }

    pub fn addr(&self) -> &str {
        &self.target.addr
    }

    /// When down and a try is due: starts connecting (in a thread of
    /// its own, so a broker that does not answer never stalls the hub);
    /// when that connection is made, takes it. `Ok(true)`: up now.
    pub fn reconnect(&mut self) -> io::Result<bool> {
        if self.links.is_some() {
            return Ok(false);
        }
        if let Some(rx) = &self.connecting {
            let got = match rx.try_recv() {
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => {
                    Err(io::Error::other("the connecting thread ended"))
                }
                Ok(r) => r,
            };
            self.connecting = None;
            self.next_try = Instant::now() + RETRY;
            self.links = Some(got?);
            self.asked.clear();
            return Ok(true);
        }
        if Instant::now() < self.next_try {
            return Ok(false);
        }
        let (tx, rx) = mpsc::channel();
        let (target, subject) = (self.target.clone(), self.subject.clone());
        std::thread::spawn(move || {
            let _ = tx.send(open_links(&target, &subject));
        });
        self.connecting = Some(rx);
        Ok(false)
    }

    /// Descriptors and events to poll while up.
    pub fn poll_entries(&self) -> Vec<(RawFd, i16)> {
        match &self.links {
            None => Vec::new(),
            Some(Links::Nats(l)) => vec![l.poll_entry()],
            Some(Links::Redis { sub, publ }) => vec![sub.poll_entry(), publ.poll_entry()],
        }
    }

    /// Publishes `body` to the room's subject. An error means the link
    /// is gone (dropped; `reconnect` tries again).
    pub fn publish(&mut self, body: &[u8]) -> io::Result<()> {
        let r = match &mut self.links {
            None => return Err(io::Error::other("not connected")),
            Some(Links::Nats(l)) => {
                let mut m = format!("PUB {} {}\r\n", self.subject, body.len()).into_bytes();
                m.extend_from_slice(body);
                m.extend_from_slice(b"\r\n");
                l.send(&m)
            }
            Some(Links::Redis { publ, .. }) => {
                self.asked.push_back(Ask::Publish);
                publ.send(&resp_command(&[b"PUBLISH", self.subject.as_bytes(), body]))
            }
        };
        self.check(r)
    }

    /// After poll: reads and writes what it can. The bodies the broker
    /// delivered, in its order.
    pub fn pump(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let r = match &mut self.links {
            None => return Ok(Vec::new()),
            Some(Links::Nats(l)) => pump_nats(l),
            Some(Links::Redis { sub, publ }) => {
                pump_redis(sub, publ, &mut self.asked, self.lease.as_mut())
            }
        };
        self.check(r)
    }

    fn check<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if r.is_err() {
            self.links = None;
            self.asked.clear();
            // Unrenewed, it expires; another host may hold it by now.
            if let Some(l) = self.lease.as_mut() {
                l.held = false;
            }
            self.next_try = Instant::now() + RETRY;
        }
        r
    }
}

fn pump_nats(l: &mut Link) -> io::Result<Vec<Vec<u8>>> {
    l.flush()?;
    l.fill()?;
    let mut got = Vec::new();
    loop {
        let (op, used) = match parse_nats(&l.input) {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => return Err(io::Error::other(e)),
        };
        l.input.drain(..used);
        match op {
            Nats::Msg(body) => got.push(body),
            Nats::Ping => l.send(b"PONG\r\n")?,
            Nats::Err(e) => return Err(io::Error::other(format!("NATS: {e}"))),
            Nats::Other => {}
        }
    }
    Ok(got)
}

fn pump_redis(
    sub: &mut Link,
    publ: &mut Link,
    asked: &mut VecDeque<Ask>,
    mut lease: Option<&mut Lease>,
) -> io::Result<Vec<Vec<u8>>> {
    sub.flush()?;
    publ.flush()?;
    sub.fill()?;
    publ.fill()?;
    // PUBLISH answers with the number of receivers: read and forgotten,
    // unless it is an error. The lease's answers say whether it is held.
    while let Some((v, used)) = parse_resp(&publ.input).map_err(io::Error::other)? {
        publ.input.drain(..used);
        if let Resp::Error(e) = &v {
            return Err(io::Error::other(format!("Redis: {e}")));
        }
        let ask = asked.pop_front();
        if let Some(l) = lease.as_deref_mut() {
            l.held = lease_after(ask, &v, l.held);
        }
    }
    let mut got = Vec::new();
    while let Some((v, used)) = parse_resp(&sub.input).map_err(io::Error::other)? {
        sub.input.drain(..used);
        match v {
            Resp::Array(items) => {
                if let [Resp::Bulk(kind), _, Resp::Bulk(body)] = items.as_slice() {
                    if kind == b"message" {
                        got.push(body.clone());
                    }
                }
            }
            Resp::Error(e) => return Err(io::Error::other(format!("Redis: {e}"))),
            _ => {}
        }
    }
    Ok(got)
}

/// Whether the lease is held after the answer `v` to `ask`.
fn lease_after(ask: Option<Ask>, v: &Resp, held: bool) -> bool {
    match ask {
        Some(Ask::Acquire) => *v == Resp::Simple("OK".into()),
        Some(Ask::Renew) => *v == Resp::Int(1),
        Some(Ask::Release) => false,
        Some(Ask::Publish) | None => held,
    }
}

/// Connects to the broker and subscribes to `subject`.
fn open_links(target: &Target, subject: &str) -> io::Result<Links> {
    if target.nats {
        let mut l = Link::open(&target.addr)?;
        let hello = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"jawas-ws\"}}\r\nSUB {subject} 1\r\nPING\r\n"
        );
        l.send(hello.as_bytes())?;
        Ok(Links::Nats(l))
    } else {
        let mut sub = Link::open(&target.addr)?;
        sub.send(&resp_command(&[b"SUBSCRIBE", subject.as_bytes()]))?;
        let publ = Link::open(&target.addr)?;
        Ok(Links::Redis { sub, publ })
    }
}

/// A command as a RESP array of bulk strings.
fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut m = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        m.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        m.extend_from_slice(a);
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// A RESP value (null bulk strings and arrays read as empty ones).
#[derive(Debug, PartialEq, Eq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Resp>),
}

/// The line at the front of `b` (without CR LF) and the bytes it takes.
fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let i = b.windows(2).position(|w| w == b"\r\n")?;
    Some((&b[..i], i + 2))
}

/// One RESP value off the front of `b` and the bytes it took; `None`
/// while incomplete.
fn parse_resp(b: &[u8]) -> Result<Option<(Resp, usize)>, String> {
    let Some((l, mut used)) = line(b) else {
        return Ok(None);
    };
    let (&kind, rest) = l.split_first().ok_or("RESP: empty line")?;
    let text = String::from_utf8_lossy(rest).into_owned();
    let num = || {
        text.parse::<i64>()
            .map_err(|_| format!("RESP: '{text}' is not a number"))
    };
    let v = match kind {
        b'+' => Resp::Simple(text.clone()),
        b'-' => Resp::Error(text.clone()),
        b':' => Resp::Int(num()?),
        b'$' => {
            let n = num()?;
            if n < 0 {
                Resp::Bulk(Vec::new())
            } else {
                let n = n as usize;
                if b.len() < used + n + 2 {
                    return Ok(None);
                }
                let body = b[used..used + n].to_vec();
                used += n + 2;
                Resp::Bulk(body)
            }
        }
        b'*' => {
            let n = num()?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                let Some((v, u)) = parse_resp(&b[used..])? else {
                    return Ok(None);
                };
                items.push(v);
                used += u;
            }
            Resp::Array(items)
        }
        _ => return Err(format!("RESP: unknown type byte {kind:#04x}")),
    };
    Ok(Some((v, used)))
}

/// What a NATS server sends, as far as rooms care.
#[derive(Debug, PartialEq, Eq)]
enum Nats {
    Msg(Vec<u8>),
    Ping,
    Err(String),
    /// INFO, PONG, +OK.
    Other,
}

/// One NATS operation off the front of `b` and the bytes it took.
fn parse_nats(b: &[u8]) -> Result<Option<(Nats, usize)>, String> {
    let Some((l, used)) = line(b) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(l);
    let mut words = text.split_ascii_whitespace();
    let op = words.next().unwrap_or("").to_ascii_uppercase();
    let v = match op.as_str() {
        "MSG" => {
            let args: Vec<&str> = words.collect();
            let n = match args.as_slice() {
                [_, _, n] | [_, _, _, n] => n
                    .parse::<usize>()
                    .map_err(|_| format!("NATS: bad MSG line '{text}'"))?,
                _ => return Err(format!("NATS: bad MSG line '{text}'")),
            };
            if b.len() < used + n + 2 {
                return Ok(None);
            }
            return Ok(Some((Nats::Msg(b[used..used + n].to_vec()), used + n + 2)));
        }
        "PING" => Nats::Ping,
        "-ERR" => Nats::Err(text[4..].trim().to_string()),
        "INFO" | "PONG" | "+OK" => Nats::Other,
        _ => return Err(format!("NATS: unknown operation '{text}'")),
    };
    Ok(Some((v, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = |nats, addr: &str| {
            Ok(Target {
                nats,
                addr: addr.into(),
            })
        };
        assert_eq!(
            Target::parse("redis://127.0.0.1:7000"),
            t(false, "127.0.0.1:7000")
        );
        assert_eq!(Target::parse("redis://cache"), t(false, "cache:6379"));
        assert_eq!(Target::parse("nats://[::1]:4223/"), t(true, "[::1]:4223"));
        assert_eq!(Target::parse("nats://bus"), t(true, "bus:4222"));
        for bad in ["http://x", "redis://", "redis://a/b", "redis://u@h:1", "x"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    type Case<T> = (&'static [u8], Option<(T, usize)>);

    #[test]
    fn resp_values() {
        let msg = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$4\r\na\r\nb\r\n";
        let cases: &[Case<Resp>] = &[
            (b"+OK\r\n", Some((Resp::Simple("OK".into()), 5))),
            (b"-ERR no\r\n", Some((Resp::Error("ERR no".into()), 9))),
            (b":12\r\nrest", Some((Resp::Int(12), 5))),
            (b"$-1\r\n", Some((Resp::Bulk(vec![]), 5))),
            (b"$3\r\nab", None),
            (b"*2\r\n:1\r\n", None),
            (b":1", None),
            (
                msg,
                Some((
                    Resp::Array(vec![
                        Resp::Bulk(b"message".to_vec()),
                        Resp::Bulk(b"c".to_vec()),
                        Resp::Bulk(b"a\r\nb".to_vec()),
                    ]),
                    msg.len(),
                )),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_resp(input).unwrap(), want, "{input:?}");
        }
        assert!(parse_resp(b"?x\r\n").is_err());
        assert!(parse_resp(b":x\r\n").is_err());
        assert_eq!(
            resp_command(&[b"PUBLISH", b"c", b"x y"]),
            b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$3\r\nx y\r\n"
        );
    }

    #[test]
    fn lease_answers() {
        let ok = Resp::Simple("OK".into());
        let nil = Resp::Bulk(vec![]);
        let cases = [
            (Some(Ask::Acquire), &ok, false, true),
            (Some(Ask::Acquire), &nil, false, false),
            (Some(Ask::Renew), &Resp::Int(1), true, true),
            (Some(Ask::Renew), &Resp::Int(0), true, false),
            (Some(Ask::Publish), &Resp::Int(3), true, true),
            (Some(Ask::Publish), &Resp::Int(3), false, false),
            (Some(Ask::Release), &Resp::Int(1), true, false),
        ];
        for (ask, v, held, want) in cases {
            assert_eq!(lease_after(ask, v, held), want, "{ask:?} {v:?} {held}");
        }
    }

    #[test]
    fn nats_operations() {
        let cases: &[Case<Nats>] = &[
            (b"PING\r\n", Some((Nats::Ping, 6))),
            (b"INFO {\"a\":1}\r\n", Some((Nats::Other, 14))),
            (b"+OK\r\n", Some((Nats::Other, 5))),
            (
                b"-ERR 'Authorization Violation'\r\n",
                Some((Nats::Err("'Authorization Violation'".into()), 32)),
            ),
            (
                b"MSG s 1 3\r\na\r\n\r\n",
                Some((Nats::Msg(b"a\r\n".to_vec()), 16)),
            ),
            (
                b"MSG s 1 r 1\r\nx\r\n",
                Some((Nats::Msg(b"x".to_vec()), 16)),
            ),
            (b"MSG s 1 3\r\nab", None),
            (b"PIN", None),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_nats(input).unwrap(), want, "{input:?}");
        }
        assert!(parse_nats(b"MSG s\r\n").is_err());
        assert!(parse_nats(b"HELLO\r\n").is_err());
    }
}
