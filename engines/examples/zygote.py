#!/usr/bin/env python3
"""A zygote engine in Python: the preload pattern of Python app servers,
with one process per connection kept.

Run under jawasd with `spawn = "zygote"` (docs/engine-protocol.md, "Zygote
mode"): jawasd starts this program once with JAWAS_ZYGOTE=1 and a control
socket on fd 0. It does its slow start-up once (here: importing the
standard library's email, json, decimal and http modules and building a
table), says READY, and then forks a fresh child for every connection
jawasd hands over. The child serves exactly as an exec'd engine would
(the connection on fds 0 and 1, its own session, the UCSPI environment)
and exits; a crash in one child loses one connection.

Without JAWAS_ZYGOTE (under exec mode, tcpserver or inetd) the same file
serves the connection on stdin/stdout directly, paying the start-up each
time.

Protocol: the client sends one line; the engine answers
`pid=N zygote=Z started_ms=T words=W` (Z is the pid that did the start-up,
T how long that took) and the line upper-cased.
"""
import array
import os
import signal
import socket
import sys
import time

START = time.monotonic()
import decimal  # noqa: E402  (the slow imports the zygote saves)
import email.parser  # noqa: E402,F401
import http.client  # noqa: E402,F401
import json  # noqa: E402

TABLE = {str(i): decimal.Decimal(i).sqrt() for i in range(20000)}
WORDS = json.loads(json.dumps(sorted(TABLE)))
STARTED_MS = (time.monotonic() - START) * 1000
INIT_PID = os.getpid()


def serve() -> int:
    """One connection on fds 0 and 1."""
    line = sys.stdin.readline()
    sys.stdout.write(
        f"pid={os.getpid()} zygote={INIT_PID} started_ms={STARTED_MS:.1f} "
        f"words={len(WORDS)} peer={os.environ.get('TCPREMOTEIP', '-')}\r\n"
    )
    sys.stdout.write(line.upper())
    sys.stdout.flush()
    return 0


def child(conn: socket.socket, fds: list, env: dict) -> None:
    """In the fork: become the engine an exec would have started."""
    sock, err = fds[0], (fds[1] if len(fds) > 1 else None)
    conn.close()
    os.dup2(sock, 0)
    os.dup2(sock, 1)
    if err is not None:
        os.dup2(err, 2)
    for fd in fds:
        os.close(fd)
    os.setsid()
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.environ.pop("JAWAS_ZYGOTE", None)
    os.environ.update(env)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    code = 1
    try:
        code = serve()
    finally:
        os._exit(code)


def report_exits(conn: socket.socket, children: set) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        if os.WIFSIGNALED(status):
            conn.send(f"EXIT {pid} signal {os.WTERMSIG(status)}".encode())
        else:
            conn.send(f"EXIT {pid} exit {os.WEXITSTATUS(status)}".encode())


def zygote() -> int:
    conn = socket.socket(fileno=0)  # the SOCK_SEQPACKET control socket
    # SIGCHLD wakes the loop through a pipe (the wakeup-fd idiom).
    rd, wr = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wr)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    conn.send(b"READY")
    children, open_ = set(), True
    import select

    while open_ or children:
        ready, _, _ = select.select([conn, rd] if open_ else [rd], [], [], 1.0)
        if rd in ready:
            while True:
                try:
                    os.read(rd, 512)
                except BlockingIOError:
                    break
        report_exits(conn, children)
        if conn in ready:
            fds = array.array("i")
            msg, anc, _, _ = conn.recvmsg(16384, socket.CMSG_SPACE(2 * fds.itemsize))
            if not msg and not anc:
                open_ = False  # jawasd retired us: finish the children, then exit
                continue
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            parts = [p for p in msg.split(b"\0") if p]
            if not parts or parts[0] != b"CONN" or not fds:
                conn.send(b"FAIL expected CONN with a socket")
                continue
            env = dict(p.decode().split("=", 1) for p in parts[1:])
            ino = os.fstat(fds[0]).st_ino  # names the connection in the answer
            pid = os.fork()
            if pid == 0:
                child(conn, list(fds), env)
            children.add(pid)
            for fd in fds:
                os.close(fd)
            conn.send(f"PID {pid} {ino}".encode())
    return 0


if __name__ == "__main__":
    sys.exit(zygote() if os.environ.get("JAWAS_ZYGOTE") == "1" else serve())
