//! jawas-ws: any program becomes a WebSocket service. The HTTP layer
//! reads the upgrade request; `handshake` decides on it; after 101 the
//! connection is handed off to tungstenite, PROGRAM starts (`program`)
//! and the pump (`pump`) moves messages: each text message is a line on
//! PROGRAM's stdin, each line PROGRAM writes is a text message (or raw
//! bytes both ways with --binary). Closing: see docs/websocket.md.

mod env;
mod files;
mod handshake;
mod program;
mod pump;
mod room;
mod route;

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use jawas_engine::{exit, Args, Connection, Engine, Error, Opt};
use jawas_http::{Conn, Duplex, Limits, Request, Response};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::WebSocket;

use handshake::{Decision, OriginPolicy};
use program::{Framing, Program};
use pump::{End, SocketFds};

/// How long PROGRAM has to exit after its stdin closes, and again after
/// SIGTERM, before the next signal.
const GRACE: Duration = Duration::from_millis(500);
/// How long the client has to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a room member cut for reading slowly has to read to the
/// close frame behind its queue.
const LAGGING_CLOSE_WAIT: Duration = Duration::from_secs(10);
const DEFAULT_MAX: usize = 1 << 20;
/// Bytes read from the client at a time.
const READ_BUFFER: usize = 4096;

struct Ws {
    /// PROGRAM and its arguments; empty with `--dir`.
    argv: Vec<String>,
    /// `--dir`: real path of the directory whose programs serve the paths.
    dir: Option<PathBuf>,
    /// `--static`: real path of the directory that answers plain requests.
    files: Option<PathBuf>,
    binary: bool,
    pty: bool,
    max: usize,
    origins: OriginPolicy,
    protocols: Vec<String>,
    ping: Option<Duration>,
    idle: Option<Duration>,
    /// `--room`, `--room-path`: connections join a room.
    rooms: Option<room::RoomConfig>,
}

impl Engine for Ws {
    const NAME: &'static str = "jawas-ws";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const USAGE: &'static [&'static str] = &[
        "-- PROGRAM [ARG]...",
        "--dir DIR",
        "--room NAME | --room-path PREFIX",
    ];
    const ABOUT: &'static str = "\
Serves one WebSocket connection with PROGRAM: each text message from the
client is one line on PROGRAM's stdin, each line PROGRAM writes to stdout is
one text message. PROGRAM runs in its own process group with a CGI-style
environment (REMOTE_ADDR, PATH_INFO, QUERY_STRING, HTTP_* ...). When PROGRAM
exits the socket closes (1000 on exit 0, 1011 otherwise); when the client
leaves, PROGRAM's stdin closes, then its group gets SIGTERM, then SIGKILL. A
request that is not a WebSocket upgrade gets 426, or with --static DIR a file
from DIR (GET/HEAD, index.html, validators). With --dir, the URL path
picks the program: /chat runs DIR/chat, the rest of the path is PATH_INFO.
With --room or --room-path, the connection joins a room: each message goes
to every member (JSON out; see docs/rooms.md); with a PROGRAM too, the
client talks to PROGRAM and PROGRAM's lines go to the room.";
    const OPTIONS: &'static [Opt] = &[
        Opt::flag(
            "binary",
            "Pass bytes both ways as binary messages instead of lines.",
        ),
        Opt::value(
            "dir",
            "DIR",
            "Instead of one PROGRAM, run the executable the URL path names under DIR \
             (/chat runs DIR/chat; the rest of the path is PATH_INFO). Names starting \
             with '.' and links leaving DIR are not found (404); a file that is not \
             executable is refused (403).",
        ),
        Opt::value(
            "static",
            "DIR",
            "Answer requests that are not upgrades with the files under DIR (GET and \
             HEAD, index.html for a directory), so one port serves a page and its socket.",
        ),
        Opt::flag(
            "pty",
            "Run PROGRAM with stdin and stdout on a pseudo-terminal (raw: no echo, no CR LF \
             translation), so C stdio and most runtimes line-buffer their output unasked.",
        ),
        Opt::value(
            "max-message",
            "BYTES",
            "Refuse client messages and frames longer than BYTES with close code 1009 \
             (default 1048576); longer output lines are sent in pieces of BYTES.",
        ),
        Opt::value(
            "origin",
            "ORIGIN",
            "Accept only pages from ORIGIN (repeatable): https://host[:port], or host[:port] \
             for http and https. Others get 403.",
        ),
        Opt::flag(
            "same-origin",
            "Accept only pages whose Origin names the host the request was sent to.",
        ),
        Opt::value(
            "ping",
            "SECS",
            "Ping a client silent for SECS; one silent for twice SECS (no pong) is taken as \
             gone and PROGRAM is stopped. Default: no pings.",
        ),
        Opt::value(
            "idle-timeout",
            "SECS",
            "Close with 1000 when no message has passed either way for SECS (pings do not \
             count). Default: no limit.",
        ),
        Opt::value(
            "protocol",
            "NAME",
            "A subprotocol this service speaks (repeatable); the first one the client offers \
             is chosen.",
        ),
        Opt::value(
            "room",
            "NAME",
            "Every connection joins room NAME (letters, digits, '-', '_'; at most 64): a \
             message from one member goes to all the others.",
        ),
        Opt::value(
            "room-path",
            "PREFIX",
            "The room is the rest of the URL path after PREFIX: with /rooms/, a socket \
             opened on /rooms/lobby joins lobby. Other paths get 404.",
        ),
        Opt::value(
            "room-dir",
            "DIR",
            "Where rooms' hub sockets live (one directory per room); give each service \
             its own. Default: /tmp/jawas-ws-rooms-UID.",
        ),
        Opt::flag("room-echo", "A member gets its own messages back too."),
        Opt::flag("room-events", "Members see joins and leaves."),
        Opt::value(
            "room-bot",
            "PROGRAM",
            "Run PROGRAM for each room while it has members: it reads the room's events \
             as lines on stdin and sends lines to the room or to one member.",
        ),
        Opt::value(
            "room-linger",
            "SECS",
            "Keep an empty room's hub (and bot) for SECS, or for good with 'keep'. \
             Default: 0.",
        ),
        Opt::value(
            "room-max",
            "N",
            "At most N members per room (per host with a broker); the next one is closed \
             with 1013.",
        ),
        Opt::value(
            "room-max-rooms",
            "N",
            "At most N rooms with members at once under --room-dir; a connection that \
             would open another is closed with 1013.",
        ),
        Opt::value(
            "room-rate",
            "N",
            "A member may send N messages per second (bursts of N); one sending faster is \
             closed with 1008.",
        ),
        Opt::value(
            "room-queue",
            "BYTES",
            "Bytes that may wait for a client that reads slowly before it is cut \
             (default 1048576).",
        ),
        Opt::value(
            "room-cut",
            "CODE",
            "Close code for a client cut for reading too slowly: 1013 (default) or 1008.",
        ),
        Opt::flag(
            "room-lost-close",
            "When the room's hub or broker goes away, close with 1011 instead of telling \
             the members with a system message and carrying on when it is back.",
        ),
        Opt::value(
            "room-broker",
            "URL",
            "Pass rooms through a broker so they span hosts: redis://HOST:PORT (pub/sub) \
             or nats://HOST:PORT.",
        ),
        Opt::value(
            "room-host-id",
            "ID",
            "This host's part of connection ids (default: from /etc/machine-id).",
        ),
    ];

    fn init(args: &Args) -> Result<Self, Error> {
        let argv = args.positionals().to_vec();
        let dir = args.value("dir").map(|d| open_dir("dir", d)).transpose()?;
        let files = args
            .value("static")
            .map(|d| open_dir("static", d))
            .transpose()?;
        let rooms = room::options::parse(args)?;
        if rooms.is_some() {
            if dir.is_some() {
                return Err(Error::usage("--room and --dir exclude each other"));
            }
            if args.flag("binary") || args.flag("pty") {
                return Err(Error::usage(
                    "rooms carry text: --binary and --pty do not apply",
                ));
            }
        }
        match (argv.is_empty(), &dir) {
            (true, None) if rooms.is_some() => {}
            (true, None) => {
                return Err(Error::usage(
                    "no PROGRAM given (jawas-ws [OPTION]... -- PROGRAM [ARG]..., or --dir DIR)",
                ))
            }
            (false, Some(_)) => {
                return Err(Error::usage(format!(
                    "--dir DIR and a PROGRAM ('{}') exclude each other",
                    argv[0]
                )))
            }
            _ => {}
        }
        let max = args
            .parse("max-message", |v| match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("'{v}' is not a positive number of bytes")),
            })?
            .unwrap_or(DEFAULT_MAX);
        Ok(Ws {
            argv,
            dir,
            files,
            binary: args.flag("binary"),
            pty: args.flag("pty"),
            max,
            origins: OriginPolicy {
                allowed: args.values("origin").map(str::to_string).collect(),
                same_origin: args.flag("same-origin"),
            },
            protocols: args.values("protocol").map(str::to_string).collect(),
            ping: args.parse("ping", jawas_engine::parse_secs)?,
            idle: args.parse("idle-timeout", jawas_engine::parse_secs)?,
            rooms,
        })
    }

    fn serve(&mut self, conn: Connection) -> Result<(), Error> {
        let mut conn = Conn::from_connection(conn, Limits::default());
        let mut outcome = Ok(false);
        let code = jawas_http::serve(&mut conn, |conn, req| {
            outcome = self.handle(conn, req);
            Ok(*outcome.as_ref().unwrap_or(&false))
        });
        outcome?;
        jawas_engine::status(code)
    }
}

impl Ws {
    /// One request: a file (`--static`), refused, or upgraded and served
    /// until the end. Whether the connection may carry another request.
    fn handle(&self, conn: &mut Conn, req: Request) -> Result<bool, Error> {
        if let (Some(root), false) = (&self.files, handshake::is_upgrade(&req)) {
            let resp = files::respond(root, &req);
            return conn
                .send(Some(&req), resp)
                .map_err(|e| Error::io("write", &e));
        }
        let resp = match handshake::decide(&req, &self.origins, &self.protocols) {
            Decision::Refuse(resp) => {
                conn.send(Some(&req), resp)
                    .map_err(|e| Error::io("write", &e))?;
                return Ok(false);
            }
            Decision::Accept(resp) => resp,
        };
        if let Some(rooms) = &self.rooms {
            let Some(name) = rooms.room_for(req.path()) else {
                conn.send(Some(&req), Response::error(404))
                    .map_err(|e| Error::io("write", &e))?;
                return Ok(false);
            };
            let vars = env::cgi_vars(&req, conn.peer(), None);
            conn.send(Some(&req), resp)
                .map_err(|e| Error::io("write", &e))?;
            let (mut ws, fds) = self.upgrade(conn)?;
            return self
                .run_room(rooms, &mut ws, &fds, &name, &vars)
                .map(|()| false);
        }
        let route = match self.dir.as_deref().map(|d| route::resolve(d, req.path())) {
            Some(Err(status)) => {
                conn.send(Some(&req), Response::error(status))
                    .map_err(|e| Error::io("write", &e))?;
                return Ok(false);
            }
            Some(Ok(r)) => Some(r),
            None => None,
        };
        let argv = match &route {
            Some(r) => vec![r.program.to_string_lossy().into_owned()],
            None => self.argv.clone(),
        };
        let vars = env::cgi_vars(&req, conn.peer(), route.as_ref());
        conn.send(Some(&req), resp)
            .map_err(|e| Error::io("write", &e))?;
        let (mut ws, fds) = self.upgrade(conn)?;
        self.run(&mut ws, &fds, &argv, &vars)?;
        Ok(false)
    }

    /// After the 101: the socket as a WebSocket, plus its descriptors
    /// (non-blocking, so the pump can wait on the client and PROGRAM at once).
    fn upgrade(&self, conn: &mut Conn) -> Result<(WebSocket<Duplex>, SocketFds), Error> {
        let up = conn.hand_off().map_err(|e| Error::io("hand-off", &e))?;
        let dup = |f: &std::fs::File| f.try_clone().map_err(|e| Error::io("dup", &e));
        let fds = SocketFds {
            input: dup(up.stream.input())?,
            output: dup(up.stream.output())?,
        };
        for fd in [fds.input.as_raw_fd(), fds.output.as_raw_fd()] {
            fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| Error::system(format!("socket: {e}")))?;
        }
        // 4 KiB reads instead of tungstenite's 128 KiB buffer: that buffer
        // is zeroed and so resident, most of a held connection's memory.
        let mut config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(self.max))
            .max_frame_size(Some(self.max));
        if let Some(rooms) = &self.rooms {
            // A room's client queue: the write buffer, bounded (the pump
            // cuts a client past it).
            config = config
                .write_buffer_size(rooms.queue / 2)
                .max_write_buffer_size(rooms.queue);
        }
        let ws = WebSocket::from_partially_read(up.stream, up.buffered, Role::Server, Some(config));
        Ok((ws, fds))
    }

    /// PROGRAM on the socket, from its start to nothing of it left.
    fn run(
        &self,
        ws: &mut WebSocket<Duplex>,
        fds: &SocketFds,
        argv: &[String],
        vars: &[(String, String)],
    ) -> Result<(), Error> {
        let framing = Framing {
            binary: self.binary,
            max: self.max,
            pty: self.pty,
        };
        let mut prog = match Program::start(argv, vars, framing) {
            Ok(p) => p,
            Err(e) => {
                pump::close(ws, fds, CloseCode::Error, CLOSE_WAIT);
                return Err(Error::system(format!("cannot start {}: {e}", argv[0])));
            }
        };
        let end = pump::run(ws, fds, &mut prog, self.ping, self.idle);
        match end {
            End::BackendDone => {
                let status = prog.finish(GRACE);
                let ok = status.is_some_and(|s| s.success());
                let code = if ok {
                    CloseCode::Normal
                } else {
                    CloseCode::Error
                };
                pump::close(ws, fds, code, CLOSE_WAIT);
            }
            End::Refused(code) => {
                pump::close(ws, fds, code, CLOSE_WAIT);
                prog.finish(GRACE);
                return Err(Error::exit_code(exit::PEER));
            }
            End::Stopping => {
                pump::close(ws, fds, CloseCode::Away, CLOSE_WAIT);
                prog.finish(GRACE);
            }
            End::Idle => {
                pump::close(ws, fds, CloseCode::Normal, CLOSE_WAIT);
                prog.finish(GRACE);
            }
            End::Lagging => {
                pump::close(ws, fds, CloseCode::Again, CLOSE_WAIT);
                prog.finish(GRACE);
            }
            End::ClientClosed | End::ClientGone => {
                prog.finish(GRACE);
            }
        }
        Ok(())
    }

    /// A member of room `name` (with PROGRAM, if one is given), from the
    /// join to the end.
    fn run_room(
        &self,
        rooms: &room::RoomConfig,
        ws: &mut WebSocket<Duplex>,
        fds: &SocketFds,
        name: &str,
        vars: &[(String, String)],
    ) -> Result<(), Error> {
        let (member, welcome) = match room::member::Member::join(rooms, name) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("jawas-ws: cannot join room {name}: {e}");
                pump::close(ws, fds, e.close_code(), CLOSE_WAIT);
                return Ok(());
            }
        };
        let mut backend = if self.argv.is_empty() {
            RoomBackend::Alone(member)
        } else {
            let framing = Framing {
                binary: false,
                max: self.max,
                pty: false,
            };
            match Program::start(&self.argv, vars, framing) {
                Ok(program) => {
                    RoomBackend::Program(room::with_program::WithProgram { member, program })
                }
                Err(e) => {
                    pump::close(ws, fds, CloseCode::Error, CLOSE_WAIT);
                    return Err(Error::system(format!("cannot start {}: {e}", self.argv[0])));
                }
            }
        };
        // Written now; a socket too full for it is the pump's to flush.
        let _ = ws.write(welcome);
        let _ = ws.flush();
        let end = pump::run(ws, fds, backend.as_backend(), self.ping, self.idle);
        let (member, status) = match &mut backend {
            RoomBackend::Alone(m) => (&*m, None),
            RoomBackend::Program(p) => {
                let s = p.program.finish(GRACE);
                (&p.member, Some(s.is_some_and(|s| s.success())))
            }
        };
        let code = match end {
            End::BackendDone if status == Some(false) => CloseCode::Error,
            End::BackendDone => member.close_code(),
            End::Lagging => {
                // The close frame goes after the queue: let it in, and
                // give the client longer to read its way to it.
                ws.set_config(|c| c.max_write_buffer_size = usize::MAX);
                drop(backend);
                pump::close(ws, fds, rooms.slow_code, LAGGING_CLOSE_WAIT);
                return Ok(());
            }
            End::Refused(code) => {
                pump::close(ws, fds, code, CLOSE_WAIT);
                return Err(Error::exit_code(exit::PEER));
            }
            End::Stopping => CloseCode::Away,
            End::Idle => CloseCode::Normal,
            End::ClientClosed | End::ClientGone => return Ok(()),
        };
        drop(backend);
        pump::close(ws, fds, code, CLOSE_WAIT);
        Ok(())
    }
}

/// A room member alone, or with its PROGRAM.
enum RoomBackend<'a> {
    Alone(room::member::Member<'a>),
    Program(room::with_program::WithProgram<'a>),
}

impl RoomBackend<'_> {
    fn as_backend(&mut self) -> &mut dyn pump::Backend {
        match self {
            RoomBackend::Alone(m) => m,
            RoomBackend::Program(p) => p,
        }
    }
}

/// `--dir DIR`, `--static DIR`: its real path (so every file's real path
/// can be checked against it); it must be a directory.
fn open_dir(opt: &str, dir: &str) -> Result<PathBuf, Error> {
    let real =
        std::fs::canonicalize(dir).map_err(|e| Error::config(format!("--{opt} '{dir}': {e}")))?;
    if !real.is_dir() {
        return Err(Error::config(format!("--{opt} '{dir}': not a directory")));
    }
    Ok(real)
}

fn main() {
    // A room's hub is this same program, started by the room's first
    // member (room::mod), not by jawasd: no engine options, no connection.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(room::HUB_FLAG) {
        std::process::exit(room::hub::main(&args[2..]));
    }
    jawas_engine::run::<Ws>()
}
