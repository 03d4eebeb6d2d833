#!/usr/bin/env python3
"""Time to first byte from a fresh connection: N times, connect to
127.0.0.1:PORT, send one GET for PATH, wait for the first byte of the
answer, then read the whole answer and check its status is 200.
Prints "p50_ms p99_ms failures".

Usage: ttfb.py PORT PATH [N]
"""
import socket
import sys
import time


def once(port, path):
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        first = s.recv(65536)
        ttfb = time.perf_counter() - start
        data = first
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return ttfb, data.startswith(b"HTTP/1.1 200 ")


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    times, failures = [], 0
    for _ in range(n):
        t, ok = once(port, path)
        times.append(t)
        failures += not ok
    times.sort()
    p50 = times[len(times) // 2] * 1000
    p99 = times[min(len(times) - 1, (len(times) * 99) // 100)] * 1000
    print(f"{p50:.2f} {p99:.2f} {failures}")


if __name__ == "__main__":
    main()
