//! jawas-ws rooms through the real jawasd, with Python's `websockets`
//! package as the members' client: broadcast to 200 members (each message
//! once, in one order for all, with the fan-out latency printed),
//! addressed messages, the bot (joins, leaves, messages, answers), a slow
//! member cut without delaying the others, members killed with SIGKILL
//! (client and engine), the hub killed and rooms recovering, limits
//! (members, rooms, rate), and rooms across two jawasd instances through
//! Redis and through NATS (Debian packages redis-server and nats-server,
//! started here on loopback), the broker restarted under them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jawas_tests::browser::drive_chromium;
use jawas_tests::{children_of, free_port, wait_for_port, Jawasd, TempDir};

/// Shared by every client script: imports, and helpers to read a
/// member's JSON messages.
const PRELUDE: &str = "import sys, os, json, time, asyncio
try:
    import websockets
    from websockets.sync.client import connect
    from websockets.exceptions import ConnectionClosed
except ImportError:
    print('MISSING websockets')
    sys.exit(3)
URL = sys.argv[1]
ARGS = sys.argv[2:]
def recv(ws, t=10):
    return json.loads(ws.recv(timeout=t))
def until(ws, pred, t=10):
    # The first message matching pred, skipping others.
    end = time.time() + t
    while True:
        m = recv(ws, max(0.01, end - time.time()))
        if pred(m):
            return m
def close_code(ws, t=10):
    try:
        while True:
            ws.recv(timeout=t)
    except ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None
";

/// Runs `body` (Python, after PRELUDE) with `url` and `args`; its stdout.
fn client(url: &str, args: &[&str], body: &str) -> String {
    let out = python(url, args, body).output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stdout.contains("MISSING websockets"),
        "the tests need Python's websockets package: python3 -m pip install websockets"
    );
    assert!(
        out.status.success(),
        "client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn python(url: &str, args: &[&str], body: &str) -> Command {
    let mut c = Command::new("python3");
    c.arg("-c")
        .arg(format!("{PRELUDE}{body}\n"))
        .arg(url)
        .args(args);
    c
}

/// jawasd with one jawas-ws room service given `args` (rooms under the
/// test's directory unless `args` say otherwise).
fn server(args: &[&str], prepare: impl FnOnce(&Path)) -> Jawasd {
    let dir = TempDir::new();
    prepare(dir.path());
    let mut all: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    if !args.contains(&"--room-dir") {
        all.push("\"--room-dir\", \"{dir}/rooms\"".into());
    }
    let config = format!(
        "[services.ws]\nlisten = \"127.0.0.1:0\"\nengine = \"jawas-ws\"\nargs = [{}]\ncapture_stderr = true\n",
        all.join(", ")
    );
    Jawasd::builder(&config).dir(dir).start()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

/// Pids of the room hubs whose command line names `dir`.
fn hubs(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("--room-hub") && cmd.contains(&needle) {
            out.push(pid);
        }
    }
    out
}

/// Writes an executable file (a script with its own #! line).
fn executable(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn kill9(pid: i32) {
    // SAFETY: kill takes a pid and a signal number; no memory is passed.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn broadcast_to_200_members_once_and_in_order() {
    let d = server(&["--room", "all", "--room-echo"], |_| {});
    let out = client(
        &url(d.addr("ws"), "/"),
        &[],
        "
N, SENDERS, EACH = 200, 10, 5
async def main():
    members = []
    for i in range(N):
        ws = await websockets.connect(URL, max_queue=None)
        w = json.loads(await ws.recv())
        assert w['type'] == 'welcome', w
        members.append((ws, w['id']))
    got = [[] for _ in range(N)]
    lat = []
    async def reader(i):
        ws = members[i][0]
        while len(got[i]) < SENDERS * EACH:
            m = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if m['type'] == 'message':
                got[i].append((m['from'], m['text']))
                lat.append(time.time() - float(m['text'].split()[1]))
    readers = [asyncio.create_task(reader(i)) for i in range(N)]
    for k in range(EACH):
        for s in range(SENDERS):
            await members[s][0].send('%d-%d %f' % (s, k, time.time()))
        await asyncio.sleep(0.02)
    await asyncio.gather(*readers)
    first = got[0]
    assert len(first) == SENDERS * EACH
    assert len(set(t for _, t in first)) == SENDERS * EACH, 'a message came twice'
    for i in range(N):
        assert got[i] == first, 'member %d saw another order' % i
    for s in range(SENDERS):
        mine = [t.split()[0] for f, t in first if f == members[s][1]]
        assert mine == ['%d-%d' % (s, k) for k in range(EACH)], mine
    lat.sort()
    print('LATENCY p50=%.1fms p99=%.1fms max=%.1fms deliveries=%d' % (
        lat[len(lat)//2]*1000, lat[len(lat)*99//100]*1000, lat[-1]*1000, len(lat)))
    for ws, _ in members:
        await ws.close()
asyncio.run(main())
print('OK')",
    );
    eprintln!("{out}");
    assert!(out.contains("OK"), "{out}");
}

#[test]
fn addressed_messages_and_events() {
    let d = server(&["--room-path", "/rooms/", "--room-events"], |_| {});
    let out = client(
        &url(d.addr("ws"), "/rooms/lobby"),
        &[],
        "
# A member is in the room from its welcome on: each waits for its own
# before the next connects, so each sees the later ones join.
with connect(URL) as a:
  ia = recv(a)['id']
  with connect(URL) as b:
   ib = recv(b)['id']
   with connect(URL) as c:
    ic = recv(c)['id']
    assert len({ia, ib, ic}) == 3
    assert until(a, lambda m: m['type'] == 'join')['id'] == ib
    assert until(a, lambda m: m['type'] == 'join')['id'] == ic
    a.send(json.dumps({'to': ic, 'text': 'for c only'}))
    b.send('to everyone')
    # Two senders: either may be first.
    got = [until(c, lambda m: m['type'] == 'message') for _ in range(2)]
    assert {'type': 'message', 'from': ia, 'to': ic, 'text': 'for c only'} in got, got
    assert {'type': 'message', 'from': ib, 'text': 'to everyone'} in got, got
    m = until(a, lambda m: m['type'] == 'message')
    assert m['text'] == 'to everyone', 'a saw something not for it: %r' % m
    b.close()
    assert until(a, lambda m: m['type'] == 'leave')['id'] == ib
print('OK')",
    );
    assert!(out.contains("OK"), "{out}");
    // Another path is another room; a path naming none is refused.
    let out = client(
        &url(d.addr("ws"), "/rooms/a"),
        &[
            &url(d.addr("ws"), "/rooms/b"),
            &url(d.addr("ws"), "/elsewhere"),
        ],
        "
with connect(URL) as a, connect(ARGS[0]) as b:
    recv(a); recv(b)
    a.send('in a')
    try:
        print('LEAK', b.recv(timeout=0.5))
    except TimeoutError:
        pass
try:
    connect(ARGS[1])
except Exception as e:
    print('REFUSED', e)
print('OK')",
    );
    assert!(!out.contains("LEAK"), "{out}");
    assert!(out.contains("REFUSED") && out.contains("404"), "{out}");
}

#[test]
fn the_bot_sees_joins_leaves_and_messages_and_answers() {
    let d = server(&["--room", "game", "--room-bot", "{dir}/bot.py"], |dir| {
        executable(
            dir,
            "bot.py",
            &format!(
                "#!/usr/bin/env python3
import sys
log = open('{}/bot.log', 'a', buffering=1)
for line in sys.stdin:
    f = line.rstrip('\\n').split('\\t')
    log.write(' '.join(f) + '\\n')
    if f[0] == 'join':
        print('to\\t%s\\twelcome %s' % (f[1], f[1]), flush=True)
    elif f[0] == 'msg' and f[2] == 'ping':
        print('pong for %s' % f[1], flush=True)
    elif f[0] == 'dm':
        print('to\\t%s\\tsecret ok: %s' % (f[1], f[2]), flush=True)
",
                dir.display()
            ),
        );
    });
    let out = client(
        &url(d.addr("ws"), "/"),
        &[],
        "
with connect(URL) as a:
    ia = recv(a)['id']
    m = until(a, lambda m: m['type'] == 'message')
    assert m == {'type': 'message', 'from': 'bot', 'to': ia, 'text': 'welcome ' + ia}, m
    with connect(URL) as b:
        ib = recv(b)['id']
        until(b, lambda m: m.get('text') == 'welcome ' + ib)
        b.send('ping')
        m = until(a, lambda m: m['from'] == 'bot')
        assert m == {'type': 'message', 'from': 'bot', 'text': 'pong for ' + ib}, m
        b.send(json.dumps({'to': 'bot', 'text': 'my\\tmove'}))
        m = until(b, lambda m: m['from'] == 'bot' and 'secret' in m['text'])
        assert m['text'] == 'secret ok: my\\tmove' and m['to'] == ib, m
        try:
            m = until(a, lambda m: 'secret' in m.get('text', ''), 0.5)
            print('LEAK', m)
        except TimeoutError:
            pass
    print('IDS', ia, ib)
    time.sleep(0.3)
print('OK')",
    );
    assert!(out.contains("OK") && !out.contains("LEAK"), "{out}");
    let ids: Vec<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("IDS "))
        .unwrap()
        .split(' ')
        .collect();
    let log = std::fs::read_to_string(d.dir().join("bot.log")).unwrap();
    for want in [
        format!("join {}", ids[0]),
        format!("join {}", ids[1]),
        format!("msg {} ping", ids[1]),
        format!("dm {} my\\tmove", ids[1]),
        format!("leave {}", ids[1]),
    ] {
        assert!(log.contains(&want), "bot log lacks {want:?}:\n{log}");
    }
    // The room empties: its hub and bot go.
    let end = Instant::now() + Duration::from_secs(5);
    while !hubs(d.dir()).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        hubs(d.dir()).is_empty(),
        "the empty room's hub is still running"
    );
}

#[test]
fn an_empty_room_keeps_its_hub_for_the_linger_then_lets_it_go() {
    let d = server(&["--room", "l", "--room-linger", "1.5"], |_| {});
    client(
        &url(d.addr("ws"), "/"),
        &[],
        "with connect(URL) as a:\n    recv(a)",
    );
    let left = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hubs(d.dir()).len(), 1, "the hub left before its linger");
    while !hubs(d.dir()).is_empty() && left.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = left.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "the hub left after {took:?}"
    );
}

#[test]
fn a_slow_member_is_cut_without_delaying_the_others() {
    let d = server(&["--room", "feed", "--room-queue", "65536"], |_| {});
    let out = client(
        &url(d.addr("ws"), "/"),
        &[],
        "
# The slow member's client reads nothing: websockets stops reading the
# socket after max_queue messages, so everything backs up to the engine.
slow = connect(URL, max_queue=1)
fast = connect(URL)
src = connect(URL)
recv(fast); recv(src)
lat = []
pad = 'x' * 4000
for i in range(3000):
    src.send('%f %s' % (time.time(), pad))
    m = recv(fast)
    lat.append(time.time() - float(m['text'].split()[0]))
lat.sort()
print('FAST p50=%.1fms p99=%.1fms max=%.1fms' % (lat[1500]*1000, lat[2970]*1000, lat[-1]*1000))
assert lat[2970] < 0.25, 'the others were slowed down'
print('SLOW CLOSE', close_code(slow, 20))
fast.close(); src.close()
print('OK')",
    );
    eprintln!("{out}");
    assert!(out.contains("OK"), "{out}");
    assert!(out.contains("SLOW CLOSE 1013"), "{out}");
}

#[test]
fn a_stopped_member_process_is_cut_by_the_hub_without_delaying_the_others() {
    let d = server(&["--room", "stop"], |_| {});
    let u = url(d.addr("ws"), "/");
    let before: Vec<i32> = children_of(d.pid()).iter().map(|c| c.0).collect();
    let mut stopped = python(
        &u,
        &[],
        "
with connect(URL, max_queue=None) as ws:
    recv(ws)
    print('READY', flush=True)
    sys.stdin.readline()
    print('CLOSE', close_code(ws, 20), flush=True)
",
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(stopped.stdout.take().unwrap()));
    assert_eq!(lines.next().map(Result::unwrap).as_deref(), Some("READY"));
    let engine = children_of(d.pid())
        .into_iter()
        .map(|c| c.0)
        .find(|p| !before.contains(p))
        .expect("the member's engine");
    // SAFETY: kill takes a pid and a signal number; no memory is passed.
    unsafe { libc::kill(engine, libc::SIGSTOP) };
    // More than the hub keeps for one member (8 MiB) passes while the
    // engine is stopped; the others' latency stays low.
    let out = client(
        &u,
        &[],
        "
fast = connect(URL)
src = connect(URL)
recv(fast); recv(src)
lat = []
pad = 'x' * 4000
for i in range(3000):
    src.send('%f %s' % (time.time(), pad))
    m = recv(fast)
    lat.append(time.time() - float(m['text'].split()[0]))
lat.sort()
print('FAST p50=%.1fms p99=%.1fms' % (lat[1500]*1000, lat[2970]*1000))
assert lat[2970] < 0.25, 'the others were slowed down'
print('OK')",
    );
    assert!(out.contains("OK"), "{out}");
    assert!(
        d.wait_log("does not read the hub; cut", Duration::from_secs(5)),
        "{}",
        d.log()
    );
    // SAFETY: as above.
    unsafe { libc::kill(engine, libc::SIGCONT) };
    std::io::Write::write_all(stopped.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let close = lines.next().map(Result::unwrap);
    let _ = stopped.wait();
    assert_eq!(close.as_deref(), Some("CLOSE 1013"), "{}", d.log());
}

#[test]
fn members_killed_with_sigkill_are_removed() {
    let d = server(&["--room", "k", "--room-events"], |_| {});
    let u = url(d.addr("ws"), "/");
    // A client killed: its engine sees the connection end.
    let mut watcher = python(
        &u,
        &[],
        "
with connect(URL) as a:
    recv(a)
    print('READY', flush=True)
    j = until(a, lambda m: m['type'] == 'join', 20)
    print('JOIN', j['id'], flush=True)
    l = until(a, lambda m: m['type'] == 'leave', 20)
    print('LEAVE', l['id'], flush=True)
    j = until(a, lambda m: m['type'] == 'join', 20)
    print('JOIN', j['id'], flush=True)
    l = until(a, lambda m: m['type'] == 'leave', 20)
    print('LEAVE', l['id'], flush=True)
",
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(watcher.stdout.take().unwrap()));
    let mut next = || lines.next().unwrap().unwrap();
    assert_eq!(next(), "READY");
    let mut victim = python(
        &u,
        &[],
        "with connect(URL) as b:\n    recv(b)\n    time.sleep(60)",
    )
    .spawn()
    .unwrap();
    let joined = next();
    victim.kill().unwrap(); // SIGKILL
    let _ = victim.wait();
    assert_eq!(next(), joined.replace("JOIN", "LEAVE"));
    // An engine killed: the hub sees its connection end.
    let before: Vec<i32> = children_of(d.pid()).iter().map(|c| c.0).collect();
    let mut victim = python(
        &u,
        &[],
        "with connect(URL) as b:\n    recv(b)\n    time.sleep(60)",
    )
    .spawn()
    .unwrap();
    let joined = next();
    let engine = children_of(d.pid())
        .into_iter()
        .map(|c| c.0)
        .find(|p| !before.contains(p))
        .expect("the new member's engine");
    kill9(engine);
    assert_eq!(next(), joined.replace("JOIN", "LEAVE"));
    let _ = victim.kill();
    let _ = victim.wait();
    let _ = watcher.wait();
}

#[test]
fn a_killed_hub_is_replaced_and_members_carry_on() {
    let d = server(&["--room", "h"], |_| {});
    let mut c = python(
        &url(d.addr("ws"), "/"),
        &[],
        "
with connect(URL) as a, connect(URL) as b:
    recv(a); recv(b)
    print('READY', flush=True)
    m = until(a, lambda m: m['type'] == 'system')
    print('SYSTEM', m['text'], flush=True)
    until(a, lambda m: m['type'] == 'system' and 'back' in m['text'])
    until(b, lambda m: m['type'] == 'system' and 'back' in m['text'])
    b.send('after')
    print('GOT', until(a, lambda m: m['type'] == 'message')['text'], flush=True)
",
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(c.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    let hub = hubs(d.dir());
    assert_eq!(hub.len(), 1, "one hub for the room");
    kill9(hub[0]);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let _ = c.wait();
    assert!(rest[0].contains("hub went away"), "{rest:?}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("GOT after"),
        "{rest:?}"
    );
    assert!(
        d.wait_log("hub went away", Duration::from_secs(5)),
        "{}",
        d.log()
    );
}

#[test]
fn with_lost_close_a_lost_hub_closes_its_members_with_1011() {
    let d = server(&["--room", "lc", "--room-lost-close"], |_| {});
    let mut c = python(
        &url(d.addr("ws"), "/"),
        &[],
        "
with connect(URL) as a:
    recv(a)
    print('READY', flush=True)
    print('CLOSE', close_code(a), flush=True)
",
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(c.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    let hub = hubs(d.dir());
    assert_eq!(hub.len(), 1, "one hub for the room");
    kill9(hub[0]);
    assert_eq!(
        lines.next().map(Result::unwrap).as_deref(),
        Some("CLOSE 1011")
    );
    let _ = c.wait();
}

#[test]
fn limits_members_rooms_and_rate() {
    let d = server(
        &[
            "--room-path",
            "/r/",
            "--room-max",
            "2",
            "--room-max-rooms",
            "2",
            "--room-rate",
            "5",
            "--max-message",
            "1000",
        ],
        |_| {},
    );
    let base = format!("ws://{}/r/", d.addr("ws"));
    let out = client(
        &base,
        &[],
        "
with connect(URL + 'a') as a1, connect(URL + 'a') as a2:
    recv(a1); recv(a2)
    with connect(URL + 'a') as a3:
        print('THIRD', close_code(a3))
    with connect(URL + 'b') as b1:
        recv(b1)
        with connect(URL + 'c') as c1:
            print('THIRD ROOM', close_code(c1))
    # Bursts of 5 are fine; 20 at once are over the rate.
    for i in range(5):
        a1.send('m%d' % i)
    for i in range(5):
        recv(a2)
    time.sleep(1.1)
    for i in range(20):
        try:
            a1.send('m%d' % i)
        except ConnectionClosed:
            break
    print('FLOOD', close_code(a1))
with connect(URL + 'a') as big:
    recv(big)
    big.send('x' * 1001)
    print('BIG', close_code(big))
print('OK')",
    );
    assert!(out.contains("OK"), "{out}");
    assert!(out.contains("THIRD 1013"), "{out}");
    assert!(out.contains("THIRD ROOM 1013"), "{out}");
    assert!(out.contains("FLOOD 1008"), "{out}");
    assert!(out.contains("BIG 1009"), "{out}");
}

#[test]
fn a_program_in_the_room_speaks_for_its_connection() {
    let d = server(
        &[
            "--room",
            "p",
            "--",
            "sh",
            "-c",
            "while read l; do [ \"$l\" = bye ] && exit 3; echo \"said: $l\"; done",
        ],
        |_| {},
    );
    let out = client(
        &url(d.addr("ws"), "/"),
        &[],
        "
with connect(URL) as a:
    ia = recv(a)['id']
    with connect(URL) as b:
        ib = recv(b)['id']
        a.send('hi')
        m = until(b, lambda m: m['type'] == 'message')
        assert m == {'type': 'message', 'from': ia, 'text': 'said: hi'}, m
        # b's client talks to b's program, which speaks to the room as b.
        b.send('from b')
        m = until(a, lambda m: m['type'] == 'message')
        assert m == {'type': 'message', 'from': ib, 'text': 'said: from b'}, m
        a.send('bye')
        print('A CLOSE', close_code(a))
print('OK')",
    );
    assert!(out.contains("OK"), "{out}");
    assert!(
        out.contains("A CLOSE 1011"),
        "PROGRAM's exit 3 closes with 1011: {out}"
    );
}

#[test]
fn a_rooms_directory_others_can_write_is_refused() {
    let d = server(&["--room", "x", "--room-dir", "{dir}/shared"], |dir| {
        use std::os::unix::fs::PermissionsExt;
        let shared = dir.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    });
    let out = client(
        &url(d.addr("ws"), "/"),
        &[],
        "with connect(URL) as ws:\n    print('CLOSE', close_code(ws))",
    );
    assert!(out.contains("CLOSE 1011"), "{out}");
    assert!(
        d.wait_log("only it can write", Duration::from_secs(5)),
        "{}",
        d.log()
    );
}

#[test]
fn bad_room_arguments_are_usage_errors() {
    let dir = TempDir::new();
    executable(dir.path(), "bot", "#!/bin/sh\ncat\n");
    type Case = (&'static [&'static str], i32, &'static str);
    let cases: &[Case] = &[
        (&["--check", "--room", "lobby"], 0, "jawas-ws: ok"),
        (
            &["--check", "--room", "lobby", "--", "cat"],
            0,
            "jawas-ws: ok",
        ),
        (
            &["--check", "--room", "a b"],
            100,
            "--room 'a b': a room name is",
        ),
        (
            &["--check", "--room", "x", "--room-path", "/r/"],
            100,
            "exclude each other",
        ),
        (
            &["--check", "--room-path", "r/"],
            100,
            "--room-path 'r/': must start with '/'",
        ),
        (
            &["--check", "--room", "x", "--dir", "."],
            100,
            "--room and --dir",
        ),
        (
            &["--check", "--room", "x", "--binary"],
            100,
            "rooms carry text",
        ),
        (
            &["--check", "--room", "x", "--room-broker", "http://h"],
            100,
            "redis://HOST:PORT",
        ),
        (
            &["--check", "--room", "x", "--room-cut", "1000"],
            100,
            "--room-cut '1000': 1008 or 1013",
        ),
        (
            &["--check", "--room", "x", "--room-queue", "100"],
            100,
            "at least 4096",
        ),
        (&["--check", "--room", "x", "--room-rate", "0"], 100, "'0'"),
        (
            &["--check", "--room", "x", "--room-max", "none"],
            100,
            "'none'",
        ),
        (
            &["--check", "--room", "x", "--room-host-id", "a.b"],
            100,
            "--room-host-id 'a.b'",
        ),
        (
            &["--check", "--room", "x", "--room-bot", "/nonexistent"],
            100,
            "--room-bot '/nonexistent'",
        ),
        (
            &[
                "--check",
                "--room",
                "x",
                "--room-bot",
                "bot",
                "--room-broker",
                "nats://h",
            ],
            100,
            "NATS",
        ),
        (
            &[
                "--check",
                "--room",
                "x",
                "--room-bot",
                "bot",
                "--room-broker",
                "redis://h",
            ],
            0,
            "jawas-ws: ok",
        ),
    ];
    for (args, code, needle) in cases {
        let (got, _, err, _) = jawas_tests::run_engine("jawas-ws", dir.path(), args);
        assert_eq!(got, *code, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, out, _, _) = jawas_tests::run_engine("jawas-ws", dir.path(), &["--help"]);
    assert_eq!(code, 0);
    jawas_tests::assert_help_lists(
        &out,
        &[
            ("--room NAME", "joins room NAME"),
            ("--room-path PREFIX", "URL path"),
            ("--room-bot PROGRAM", "for each room"),
            ("--room-broker URL", "span hosts"),
            ("--room-cut CODE", "1013"),
        ],
    );
}

/// The chat page's side in headless Chromium: waits until `#log` says it
/// joined, runs ARGS[0] in the page, then waits until the log contains
/// every one of ARGS[1] (a `|`-separated list) and prints the log.
const CHAT_PAGE: &str = "    def wait_for(needles):
        text = ''
        while time.monotonic() < deadline:
            text = text_of(session, 'log')
            if all(w in text for w in needles): break
            time.sleep(0.1)
        return text
    wait_for(['(you are '])
    call('Runtime.evaluate', {'expression': ARGS[0]}, session)
    print(wait_for(ARGS[1].split('|')))
";

/// The repository's root (for the demo page and the example bot).
fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_demo_chat_page_in_chromium_talks_with_a_member_and_the_bot() {
    let root = repo();
    let page = root.join("etc/chat");
    let bot = root.join("engines/examples/room-bot.py");
    let d = server(
        &[
            "--static",
            page.to_str().unwrap(),
            "--room-path",
            "/rooms/",
            "--room-events",
            "--room-bot",
            bot.to_str().unwrap(),
        ],
        |_| {},
    );
    // A Python member answers the page's message.
    let mut member = python(
        &url(d.addr("ws"), "/rooms/t"),
        &[],
        "
with connect(URL) as ws:
    recv(ws)
    print('READY', flush=True)
    m = until(ws, lambda m: m.get('text') == 'from chromium', 30)
    ws.send(json.dumps({'to': m['from'], 'text': 'hello page'}))
    time.sleep(1)
",
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(member.stdout.take().unwrap()));
    assert_eq!(lines.next().map(Result::unwrap).as_deref(), Some("READY"));
    let act = "const t = document.getElementById('text');                t.value = 'from chromium'; document.getElementById('f').requestSubmit();                t.value = '/who'; document.getElementById('f').requestSubmit();";
    let log = drive_chromium(
        &format!("http://{}/#t", d.addr("ws")),
        CHAT_PAGE,
        &[act, "hello page|here: |welcome!"],
    );
    let _ = member.wait();
    for want in [
        "to me: hello page",
        "bot to me: here: ",
        "bot to me: welcome! 2 here",
    ] {
        assert!(log.contains(want), "the page's log lacks {want:?}:\n{log}");
    }
}

/// A broker process on a loopback port, in its own directory, killed
/// when dropped.
struct Broker {
    child: Option<Child>,
    port: u16,
    nats: bool,
    dir: TempDir,
}

impl Broker {
    fn start(nats: bool) -> Broker {
        let mut b = Broker {
            child: None,
            port: free_port(),
            nats,
            dir: TempDir::new(),
        };
        b.restart();
        b
    }

    fn restart(&mut self) {
        let port = self.port.to_string();
        let (prog, package, args): (&str, &str, Vec<&str>) = if self.nats {
            (
                "nats-server",
                "nats-server",
                vec!["-a", "127.0.0.1", "-p", &port],
            )
        } else {
            (
                "redis-server",
                "redis-server",
                vec![
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
            )
        };
        let child = Command::new(find(prog))
            .args(&args)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{prog}: {e}: install the Debian package {package} (tests/deps.sh)")
            });
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        assert!(
            wait_for_port(addr, Duration::from_secs(10)),
            "{prog} did not come up"
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        let scheme = if self.nats { "nats" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `prog` on PATH, or in an sbin directory (Debian puts nats-server in
/// /usr/sbin, which a user's PATH may lack); else `prog` itself, whose
/// start then fails naming the package.
fn find(prog: &str) -> std::path::PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| prog.into())
}

/// Two jawasd (two "hosts": their own room directories and host ids)
/// sharing one broker: a room spans both; the broker restarted, members
/// are told and the room works again.
fn across_two_hosts(nats: bool) {
    let mut broker = Broker::start(nats);
    let u = broker.url();
    let one = server(
        &["--room", "x", "--room-broker", &u, "--room-host-id", "one"],
        |_| {},
    );
    let two = server(
        &["--room", "x", "--room-broker", &u, "--room-host-id", "two"],
        |_| {},
    );
    let mut c = python(
        &url(one.addr("ws"), "/"),
        &[&url(two.addr("ws"), "/")],
        "
with connect(URL) as a, connect(ARGS[0]) as b:
    ia, ib = recv(a)['id'], recv(b)['id']
    assert ia.startswith('one-') and ib.startswith('two-'), (ia, ib)
    time.sleep(0.3)
    a.send('from one')
    assert until(b, lambda m: m['type'] == 'message') == {'type': 'message', 'from': ia, 'text': 'from one'}
    b.send(json.dumps({'to': ia, 'text': 'dm from two'}))
    assert until(a, lambda m: m['type'] == 'message')['text'] == 'dm from two'
    print('READY', flush=True)
    print('A', until(a, lambda m: m['type'] == 'system', 20)['text'], flush=True)
    print('B', until(b, lambda m: m['type'] == 'system', 20)['text'], flush=True)
    until(a, lambda m: m['type'] == 'system' and 'back' in m['text'], 20)
    until(b, lambda m: m['type'] == 'system' and 'back' in m['text'], 20)
    b.send('after the restart')
    print('GOT', until(a, lambda m: m['type'] == 'message')['text'], flush=True)
",
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(c.stdout.take().unwrap()));
    assert_eq!(lines.next().map(Result::unwrap).as_deref(), Some("READY"));
    broker.stop();
    let a = lines.next().unwrap().unwrap();
    let b = lines.next().unwrap().unwrap();
    assert!(
        a.contains("unreachable") && b.contains("unreachable"),
        "{a} / {b}"
    );
    broker.restart();
    let got = lines.next().map(Result::unwrap);
    let status = c.wait().unwrap();
    assert_eq!(
        got.as_deref(),
        Some("GOT after the restart"),
        "{}",
        one.log()
    );
    assert!(status.success());
    assert!(
        one.wait_log("broker lost", Duration::from_secs(5)),
        "{}",
        one.log()
    );
}

#[test]
fn one_bot_per_room_across_hosts_through_a_redis_lease() {
    let broker = Broker::start(false);
    let u = broker.url();
    let shared = TempDir::new();
    let bot = shared.path().join("bot.py");
    executable(
        shared.path(),
        "bot.py",
        &format!(
            "#!/usr/bin/env python3
import os, sys
log = open('{}/bot.log', 'a', buffering=1)
log.write('start %d\\n' % os.getpid())
for line in sys.stdin:
    f = line.rstrip('\\n').split('\\t')
    log.write(' '.join(f) + '\\n')
    if f[0] == 'msg' and f[2] == 'ping':
        print('pong for %s' % f[1], flush=True)
",
            shared.path().display()
        ),
    );
    let bot = bot.to_str().unwrap();
    let args = |host| {
        [
            "--room",
            "b",
            "--room-broker",
            &u,
            "--room-host-id",
            host,
            "--room-bot",
            bot,
        ]
    };
    let one = server(&args("one"), |_| {});
    let two = server(&args("two"), |_| {});
    let out = client(
        &url(one.addr("ws"), "/"),
        &[&url(two.addr("ws"), "/")],
        "
def pongs(ws, t=1.0):
    n = 0
    try:
        while True:
            m = recv(ws, t)
            if m.get('from') == 'bot': n += 1
    except TimeoutError:
        return n
# a's host comes first and takes the bot's lease; b's host joins.
a = connect(URL)
recv(a)
time.sleep(1.5)
b = connect(ARGS[0])
ib = recv(b)['id']
time.sleep(0.5)
a.send('ping')
print('PONGS', pongs(a), pongs(b, 0.2))
# a's host empties: its hub leaves and gives the lease up; b's host
# takes it and runs the bot from then on.
a.close()
time.sleep(2.5)
b.send('ping')
m = until(b, lambda m: m.get('from') == 'bot', 10)
print('AFTER', m['text'] == 'pong for ' + ib)
b.close()
print('OK')",
    );
    assert!(out.contains("OK"), "{out}");
    assert!(
        out.contains("PONGS 1 1"),
        "one bot answered, once, to both hosts: {out}"
    );
    assert!(out.contains("AFTER True"), "{out}");
    let log = std::fs::read_to_string(shared.path().join("bot.log")).unwrap();
    assert_eq!(
        log.matches("start ").count(),
        2,
        "the bot moved hosts once: {log}"
    );
}

#[test]
fn rooms_span_two_hosts_through_redis() {
    across_two_hosts(false);
}

#[test]
fn rooms_span_two_hosts_through_nats() {
    across_two_hosts(true);
}
