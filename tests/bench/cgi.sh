#!/usr/bin/env bash
# jawas-cgi (under jawasd) against lighttpd's mod_cgi, side by side in one
# run, both running the same small compiled CGI program; wrk at 16
# keep-alive connections. A harness that prints numbers, never a test.
# Usage: tests/bench/cgi.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v lighttpd >/dev/null || need+=(lighttpd)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p jawasd -p jawas-cgi

work=$(mktemp -d /tmp/jawas-bench-cgi.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www/cgi-bin"
gcc -O2 -o "$work/www/cgi-bin/hello.cgi" tests/bench/tinycgi.c

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_J=$(free_port); P_L=$(free_port)

cat >"$work/jawasd.toml" <<CONF
[services.cgi]
listen = "127.0.0.1:$P_J"
engine = "jawas-cgi"
args = ["--root", "$work/www"]
CONF
cat >"$work/lighttpd.conf" <<CONF
server.modules = ("mod_cgi")
server.document-root = "$work/www"
server.bind = "127.0.0.1"
server.port = $P_L
server.pid-file = "$work/lighttpd.pid"
server.errorlog = "$work/lighttpd-error.log"
server.max-keep-alive-requests = 100000
server.max-keep-alive-idle = 60
cgi.assign = ( ".cgi" => "" )
CONF
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!)
lighttpd -D -f "$work/lighttpd.conf" &
pids+=($!)
for p in $P_J $P_L; do
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done

run() {
    local out
    out=$(wrk -t2 -c16 -d"${DUR}s" --latency "http://127.0.0.1:$1/cgi-bin/hello.cgi?x=1" 2>&1)
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "  (port $1: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' '))" >&2; fi
    echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out")"
}
echo "# cgi benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(lighttpd -v 2>&1 | head -1 | cut -d' ' -f1), ${DUR}s per run, 16 keep-alive connections"
echo
echo "| server | req/s | p99 |"
echo "|---|---|---|"
read -r j jp < <(run "$P_J")
read -r l lp < <(run "$P_L")
echo "| jawas-cgi | $j | $jp |"
echo "| lighttpd mod_cgi | $l | $lp |"
echo
echo "ratio jawas-cgi / lighttpd: $(awk -v a="$j" -v b="$l" 'BEGIN{printf "%.2f", a/b}')x"
