#!/usr/bin/env python3
"""A jawas engine in Python: a tiny line-based key/value shell per connection.

The contract (docs/engine-protocol.md): stdin reads from the client, stdout
writes to it, stderr is the log; the client's address is in TCPREMOTEIP,
the service's name in JAWAS_SERVICE. One process per connection, so the
store below lives exactly as long as the connection: nothing leaks between
clients.

Commands: SET key value | GET key | KEYS | ENV | QUIT

Try it without a server:  printf 'SET a 1\\nGET a\\n' | TCPREMOTEIP=192.0.2.7 ./hello.py
"""
import os
import sys


def main() -> int:
    out = sys.stdout
    peer = os.environ.get("TCPREMOTEIP", "unknown")
    out.write(f"hello {peer}, this is {os.environ.get('JAWAS_SERVICE', 'hello-py')} (pid {os.getpid()})\r\n")
    out.flush()
    print(f"client {peer} connected", file=sys.stderr, flush=True)
    store = {}
    for raw in sys.stdin:
        words = raw.strip().split(None, 2)
        if not words:
            continue
        cmd = words[0].upper()
        if cmd == "SET" and len(words) == 3:
            store[words[1]] = words[2]
            out.write("OK\r\n")
        elif cmd == "GET" and len(words) == 2:
            out.write(f"{store[words[1]]}\r\n" if words[1] in store else "NOT FOUND\r\n")
        elif cmd == "KEYS":
            out.write(" ".join(sorted(store)) + "\r\n")
        elif cmd == "ENV":
            for k in ("PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT", "JAWAS_SERVICE"):
                out.write(f"{k}={os.environ.get(k, '')}\r\n")
        elif cmd == "QUIT":
            out.write("bye\r\n")
            break
        else:
            out.write("ERR commands: SET key value | GET key | KEYS | ENV | QUIT\r\n")
        out.flush()
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
