//! A room's hub: one process per room (per host), started by the room's
//! first member and gone after its last one leaves. Members connect to
//! its Unix socket (`DIR/ROOM/hub.sock`); it puts every event in one
//! order and writes it to every member, runs the room's bot, and, with a
//! broker, passes events through the broker so the room spans hosts.
//! Owns the listener, the member connections and their bounded queues,
//! the bot and the broker link. Invariants: one thread, nothing blocks
//! (a member whose queue passes the limit is cut, never waited for); the
//! order every member sees is the order the hub (or the broker) took the
//! events in; while the hub leaves, `hub.lock` is held so no member
//! starts a second hub for the room.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::bot::{Bot, Says};
use super::broker::{Broker, Target};
use super::wire::{take_frames, Event};
use super::{lock_file, HUB_SOCK};

/// Longest poll wait: the linger and broker retries are checked this often.
const TICK: Duration = Duration::from_millis(100);
/// Bytes waiting for one member process before it is cut: a member reads
/// the hub at once whatever its client does, so only a stopped or stuck
/// process gets here.
const MEMBER_QUEUE: usize = 8 << 20;
const BOT_GRACE: Duration = Duration::from_millis(500);
/// How long a mark for a cut member is kept for it to find (its process,
/// once it runs again, sees the hub's end as a loss and tries to rejoin).
const CUT_MEMORY: Duration = Duration::from_secs(600);

/// What the member that starts the hub tells it (as arguments).
#[derive(Debug, Default)]
pub struct HubConfig {
    pub dir: PathBuf,
    pub room: String,
    pub max_members: Option<usize>,
    /// How long the hub stays with no members; `None`: for good.
    pub linger: Option<Duration>,
    pub bot: Vec<String>,
    pub broker: Option<String>,
    pub subject: String,
    /// Whether members want joins and leaves (`--room-events`): without,
    /// a join is not written to every member (N writes for nothing).
    pub events: bool,
}

impl HubConfig {
    /// As arguments after `--room-hub`.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            self.dir.to_string_lossy().into_owned(),
            self.room.clone(),
            self.max_members.map_or("-".into(), |n| n.to_string()),
            self.linger
                .map_or("keep".into(), |d| d.as_millis().to_string()),
            self.broker.clone().unwrap_or("-".into()),
            self.subject.clone(),
            if self.events { "events" } else { "-" }.into(),
        ];
        a.extend(self.bot.iter().cloned());
        a
    }

    pub fn from_args(a: &[String]) -> Option<HubConfig> {
        let [dir, room, max, linger, broker, subject, events, bot @ ..] = a else {
            return None;
        };
        Some(HubConfig {
            dir: dir.into(),
            room: room.clone(),
            max_members: if max == "-" {
                None
            } else {
                Some(max.parse().ok()?)
            },
            linger: if linger == "keep" {
                None
            } else {
                Some(Duration::from_millis(linger.parse().ok()?))
            },
            broker: (broker != "-").then(|| broker.clone()),
            subject: subject.clone(),
            events: events == "events",
            bot: bot.to_vec(),
        })
    }
}

struct Member {
    stream: UnixStream,
    /// Empty until its Join arrived.
    id: String,
    input: Vec<u8>,
    out: Vec<u8>,
    gone: bool,
    /// Cut for not reading: its rejoin is refused for CUT_MEMORY.
    cut: bool,
}

struct Hub {
    cfg: HubConfig,
    listener: Option<UnixListener>,
    members: Vec<Member>,
    bot: Option<Bot>,
    broker: Option<Broker>,
    empty_since: Option<Instant>,
    /// The broker's loss was logged and told; its return is told next.
    broker_down: bool,
}

/// `jawas-ws --room-hub ARGS`: runs the hub until the room is empty (and
/// its linger over). Exit status as an engine's.
pub fn main(args: &[String]) -> i32 {
    let Some(cfg) = HubConfig::from_args(args) else {
        log!("jawas-ws --room-hub: bad arguments (this mode is started by jawas-ws itself)");
        return 100;
    };
    raise_nofile();
    let room_dir = cfg.dir.join(&cfg.room);
    let path = room_dir.join(HUB_SOCK);
    // The member that started us holds hub.lock, and found no hub answering:
    // a socket file left is a dead hub's.
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path).and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    }) {
        Ok(l) => l,
        Err(e) => {
            log!(
                "jawas-ws room {}: cannot listen on {}: {e}",
                cfg.room,
                path.display()
            );
            return 111;
        }
    };
    // With a broker the bot runs on the host whose hub holds its lease
    // (tend_bot); alone, here and now.
    let bot = if cfg.bot.is_empty() || cfg.broker.is_some() {
        None
    } else {
        start_bot(&cfg)
    };
    let broker = match cfg.broker.as_deref().map(Target::parse) {
        None => None,
        Some(Ok(t)) => Some(Broker::new(t, format!("{}{}", cfg.subject, cfg.room))),
        Some(Err(e)) => {
            log!("jawas-ws room {}: {e}", cfg.room);
            return 100;
        }
    };
    let mut hub = Hub {
        cfg,
        listener: Some(listener),
        members: Vec::new(),
        bot,
        broker,
        empty_since: Some(Instant::now()),
        broker_down: false,
    };
    if let (Some(b), false) = (hub.broker.as_mut(), hub.cfg.bot.is_empty()) {
        let key = format!("{}{}.bot", hub.cfg.subject, hub.cfg.room);
        b.want_lease(key, super::new_id("hub"));
    }
    hub.first_connect();
    hub.run();
    if let Some(b) = hub.bot.as_mut() {
        b.stop(BOT_GRACE);
    }
    if let Some(b) = hub.broker.as_mut() {
        b.release_lease();
    }
    0
}

impl Hub {
    fn run(&mut self) {
        loop {
            if self.should_leave() && self.leave() {
                return;
            }
            self.connect_broker();
            self.tend_bot();
            let mut set: Vec<libc::pollfd> = Vec::new();
            let entry = |fd: RawFd, events| libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            if let Some(l) = &self.listener {
                set.push(entry(l.as_raw_fd(), libc::POLLIN));
            }
            for m in &self.members {
                let out = if m.out.is_empty() { 0 } else { libc::POLLOUT };
                set.push(entry(m.stream.as_raw_fd(), libc::POLLIN | out));
            }
            let extra: Vec<(RawFd, i16)> = self
                .bot
                .iter()
                .flat_map(|b| b.poll_entries())
                .chain(self.broker.iter().flat_map(|b| b.poll_entries()))
                .collect();
            set.extend(extra.iter().map(|&(fd, ev)| entry(fd, ev)));
            // SAFETY: `set` is a live, exclusively borrowed array of
            // `set.len()` pollfd entries for the whole call.
            let n = unsafe {
                libc::poll(
                    set.as_mut_ptr(),
                    set.len() as libc::nfds_t,
                    TICK.as_millis() as i32,
                )
            };
            if n < 0 && Errno::last() != Errno::EINTR {
                log!("jawas-ws room {}: poll: {}", self.cfg.room, Errno::last());
                return;
            }
            // Only the members poll found ready: a room of N members must
            // not cost N reads for each message.
            let first = usize::from(self.listener.is_some());
            let count = self.members.len();
            for i in 0..count {
                if set[first + i].revents != 0 {
                    self.serve_member(i);
                }
            }
            if first == 1 && set[0].revents != 0 {
                self.accept();
            }
            self.pump_bot();
            self.pump_broker();
            self.reap();
        }
    }

    fn should_leave(&self) -> bool {
        match (self.empty_since, self.cfg.linger) {
            (Some(t), Some(linger)) => t.elapsed() >= linger,
            _ => false,
        }
    }

    /// With no member left: holds hub.lock, takes any connection that
    /// came meanwhile (then stays), else removes the socket and returns
    /// true. A connection that lands after the socket is gone sees it
    /// closed and its member starts a new hub.
    fn leave(&mut self) -> bool {
        let room_dir = self.cfg.dir.join(&self.cfg.room);
        let _lock = lock_file(&room_dir);
        self.accept();
        if !self.members.is_empty() {
            self.empty_since = None;
            return false;
        }
        let _ = std::fs::remove_file(room_dir.join(HUB_SOCK));
        self.listener = None;
        forget_old_cuts(&room_dir);
        true
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.members.push(Member {
                        stream,
                        id: String::new(),
                        input: Vec::new(),
                        out: Vec::new(),
                        gone: false,
                        cut: false,
                    });
                    self.empty_since = None;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Reads member `i`'s frames and acts on them; writes its queue.
    fn serve_member(&mut self, i: usize) {
        let mut buf = [0u8; 65536];
        let mut events = Vec::new();
        {
            let m = &mut self.members[i];
            flush(m);
            loop {
                match m.stream.read(&mut buf) {
                    Ok(0) => {
                        m.gone = true;
                        break;
                    }
                    Ok(n) => m.input.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        m.gone = true;
                        break;
                    }
                }
            }
            match take_frames(&mut m.input) {
                Ok(evs) => events = evs,
                Err(()) => m.gone = true,
            }
        }
        for ev in events {
            self.on_member_event(i, ev);
        }
    }

    /// One event a member sent: the hub stamps the sender, so a member
    /// cannot speak as another.
    fn on_member_event(&mut self, i: usize, ev: Event) {
        let id = self.members[i].id.clone();
        match ev {
            Event::Join(new) if id.is_empty() => {
                // A mark in the room directory, not the hub's memory: the
                // hub may have left and another started meanwhile.
                let mark = self.cfg.dir.join(&self.cfg.room).join(format!("cut.{new}"));
                if std::fs::remove_file(mark).is_ok() {
                    send(&mut self.members[i], &Event::Cut);
                    self.members[i].gone = true;
                    return;
                }
                let joined = self.members.iter().filter(|m| !m.id.is_empty()).count();
                if self.cfg.max_members.is_some_and(|max| joined >= max) {
                    send(&mut self.members[i], &Event::Full);
                    self.members[i].gone = true;
                    return;
                }
                self.members[i].id = new.clone();
                send(&mut self.members[i], &Event::Welcome);
                // Told only of a loss already declared, not of a
                // connection still being made.
                if self.broker_down {
                    send(&mut self.members[i], &Event::Broker(false));
                }
                self.publish(Event::Join(new));
            }
            Event::Msg { text, .. } if !id.is_empty() => {
                self.publish(Event::Msg { from: id, text });
            }
            Event::To { to, text, .. } if !id.is_empty() => {
                self.publish(Event::To { from: id, to, text });
            }
            _ => self.members[i].gone = true,
        }
    }

    /// An event of this host's room: through the broker when there is
    /// one (it comes back in the broker's order), else straight out.
    fn publish(&mut self, ev: Event) {
        let Some(broker) = self.broker.as_mut() else {
            self.deliver(&ev);
            return;
        };
        if !broker.is_up() {
            return; // members were told; their events are lost meanwhile
        }
        if let Err(e) = broker.publish(&ev.encode()) {
            self.broker_lost(&e.to_string());
        }
    }

    /// An event of the room to this host's members and bot.
    fn deliver(&mut self, ev: &Event) {
        let frame = ev.frame();
        match ev {
            Event::To { to, .. } => {
                for m in self.members.iter_mut().filter(|m| &m.id == to) {
                    queue(m, &frame);
                }
            }
            Event::Join(_) | Event::Leave(_) if !self.cfg.events => {}
            _ => {
                for m in self.members.iter_mut().filter(|m| !m.id.is_empty()) {
                    queue(m, &frame);
                }
            }
        }
        let Some(bot) = self.bot.as_mut() else { return };
        match ev {
            Event::Join(id) => bot.tell(&["join", id], None),
            Event::Leave(id) => bot.tell(&["leave", id], None),
            Event::Msg { from, text } if from != "bot" => bot.tell(&["msg", from], Some(text)),
            Event::To { from, to, text } if to == "bot" => bot.tell(&["dm", from], Some(text)),
            _ => {}
        }
    }

    fn pump_bot(&mut self) {
        let Some(bot) = self.bot.as_mut() else { return };
        match bot.pump() {
            Some(says) => {
                for s in says {
                    let from = "bot".to_string();
                    self.publish(match s {
                        Says::All(text) => Event::Msg { from, text },
                        Says::To(to, text) => Event::To { from, to, text },
                    });
                }
            }
            None => {
                log!(
                    "jawas-ws room {}: the bot ended its output; the room goes on without it",
                    self.cfg.room
                );
                if let Some(mut b) = self.bot.take() {
                    b.stop(BOT_GRACE);
                }
            }
        }
    }

    /// With a broker and a bot: asks for or renews the bot's lease, and
    /// starts or stops the bot as it is won or lost.
    fn tend_bot(&mut self) {
        let Some(broker) = self.broker.as_mut() else {
            return;
        };
        if self.cfg.bot.is_empty() {
            return;
        }
        if let Err(e) = broker.tend_lease() {
            return self.broker_lost(&e.to_string());
        }
        match (broker.lease_held(), self.bot.is_some()) {
            (true, false) => {
                log!(
                    "jawas-ws room {}: this host runs the room's bot",
                    self.cfg.room
                );
                self.bot = start_bot(&self.cfg);
            }
            (false, true) => {
                log!(
                    "jawas-ws room {}: the bot's lease is lost; stopping it here",
                    self.cfg.room
                );
                if let Some(mut b) = self.bot.take() {
                    b.stop(BOT_GRACE);
                }
            }
            _ => {}
        }
    }

    /// At the start, waits (a second at most) for the broker, so the
    /// first member's join and first messages are not lost to a
    /// connection still being made; the member waits for its welcome.
    fn first_connect(&mut self) {
        let end = Instant::now() + Duration::from_secs(1);
        while self.broker.as_ref().is_some_and(|b| !b.is_up()) && Instant::now() < end {
            self.connect_broker();
            if self.broker_down {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn connect_broker(&mut self) {
        let Some(broker) = self.broker.as_mut() else {
            return;
        };
        match broker.reconnect() {
            Ok(true) => {
                log!(
                    "jawas-ws room {}: connected to the broker at {}",
                    self.cfg.room,
                    broker.addr()
                );
                if std::mem::take(&mut self.broker_down) {
                    self.tell_all(&Event::Broker(true));
                }
            }
            Ok(false) => {}
            Err(e) => {
                let addr = broker.addr().to_string();
                self.broker_lost(&format!("cannot connect to {addr}: {e}"));
            }
        }
    }

    fn pump_broker(&mut self) {
        let Some(broker) = self.broker.as_mut() else {
            return;
        };
        match broker.pump() {
            Ok(bodies) => {
                for b in bodies {
                    // Anything else is not ours: another program on the subject.
                    if let Some(
                        ev @ (Event::Join(_)
                        | Event::Leave(_)
                        | Event::Msg { .. }
                        | Event::To { .. }),
                    ) = Event::decode(&b)
                    {
                        self.deliver(&ev);
                    }
                }
            }
            Err(e) => self.broker_lost(&e.to_string()),
        }
    }

    /// Logs the loss (once per outage) and tells the members.
    fn broker_lost(&mut self, why: &str) {
        if !self.broker_down {
            self.broker_down = true;
            log!(
                "jawas-ws room {}: broker lost: {why}; retrying",
                self.cfg.room
            );
            self.tell_all(&Event::Broker(false));
        }
    }

    fn tell_all(&mut self, ev: &Event) {
        let frame = ev.frame();
        for m in self.members.iter_mut().filter(|m| !m.id.is_empty()) {
            queue(m, &frame);
        }
    }

    /// Drops members whose connection ended or who were cut; their leave
    /// is an event of the room.
    fn reap(&mut self) {
        while let Some(i) = self.members.iter().position(|m| m.gone) {
            let m = self.members.swap_remove(i);
            if m.cut && !m.id.is_empty() {
                let room_dir = self.cfg.dir.join(&self.cfg.room);
                let _ = std::fs::write(room_dir.join(format!("cut.{}", m.id)), b"");
            }
            if !m.id.is_empty() {
                self.publish(Event::Leave(m.id));
            }
        }
        if self.members.is_empty() && self.empty_since.is_none() {
            self.empty_since = Some(Instant::now());
        }
    }
}

fn start_bot(cfg: &HubConfig) -> Option<Bot> {
    match Bot::start(&cfg.bot, &cfg.room) {
        Ok(b) => Some(b),
        Err(e) => {
            log!(
                "jawas-ws room {}: cannot start the bot {}: {e}",
                cfg.room,
                cfg.bot[0]
            );
            None
        }
    }
}

/// A descriptor per member: the soft limit goes up to the hard one.
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Removes marks of cut members that did not come back within CUT_MEMORY.
fn forget_old_cuts(room_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(room_dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > CUT_MEMORY));
        if old && e.file_name().to_string_lossy().starts_with("cut.") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn send(m: &mut Member, ev: &Event) {
    queue(m, &ev.frame());
}

/// Queues a frame for a member; one whose queue is past the limit is cut.
fn queue(m: &mut Member, frame: &[u8]) {
    if m.gone {
        return;
    }
    if m.out.len() + frame.len() > MEMBER_QUEUE {
        log!("jawas-ws room: member {} does not read the hub; cut", m.id);
        m.gone = true;
        m.cut = true;
        m.out.clear();
        return;
    }
    m.out.extend_from_slice(frame);
    flush(m);
}

fn flush(m: &mut Member) {
    while !m.out.is_empty() {
        match m.stream.write(&m.out) {
            Ok(0) => break,
            Ok(n) => drop(m.out.drain(..n)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => {
                m.gone = true;
                m.out.clear();
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_survives_the_command_line() {
        let cfg = HubConfig {
            dir: "/run/rooms".into(),
            room: "lobby".into(),
            max_members: Some(3),
            linger: Some(Duration::from_millis(1500)),
            bot: vec!["/bin/bot".into(), "-v".into()],
            broker: Some("redis://h:1".into()),
            subject: "jawas.room.".into(),
            events: true,
        };
        let back = HubConfig::from_args(&cfg.to_args()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{cfg:?}"));
        let bare = HubConfig {
            linger: None,
            ..HubConfig::default()
        };
        let back = HubConfig::from_args(&bare.to_args()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{bare:?}"));
        assert!(HubConfig::from_args(&["a".into()]).is_none());
    }
}
