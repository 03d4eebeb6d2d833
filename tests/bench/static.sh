#!/usr/bin/env bash
# jawas-static (under jawasd) against nginx, side by side in one run, on the
# same files: keep-alive requests/s for a small file and throughput for a
# 100 kB file at 16 connections, and new-connection requests/s.
# nginx: one worker, sendfile on, access log off. jawas-static keeps its
# access log (its default) in a file, as under a supervisor.
#
# A harness that prints numbers and ratios, never a test.
# Usage: tests/bench/static.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
DUR=${1:-10}
PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p jawasd -p jawas-static

work=$(mktemp -d /tmp/jawas-bench-static.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -f "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www"
# A small page (about 600 bytes, a typical blog index without images).
python3 - "$work/www" <<'PY'
import sys, os
root = sys.argv[1]
small = "<!DOCTYPE html>\n<html><head><title>bench</title></head><body>\n" + "<p>A paragraph of a small static page.</p>\n" * 13 + "</body></html>\n"
open(os.path.join(root, "small.html"), "w").write(small)
open(os.path.join(root, "100k.bin"), "wb").write(os.urandom(100 * 1024))
PY

P_J=$(free_port); P_N=$(free_port); P_Q=$(free_port)

cat >"$work/jawasd.toml" <<CONF
[services.web]
listen = "127.0.0.1:$P_J"
engine = "jawas-static"
args = ["--root", "$work/www"]

# The same engine without its access log, for parity with nginx's
# access_log off.
[services.web-nolog]
listen = "127.0.0.1:$P_Q"
engine = "jawas-static"
args = ["--root", "$work/www", "--no-access-log"]
CONF
nginx_conf "$work" "text/html html; application/octet-stream bin;" "        listen 127.0.0.1:$P_N;
        root $work/www;"
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!)
nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
wait_ports $P_J $P_Q $P_N

# wrk_run PORT PATH [extra wrk args] -> "req/s MB/s"
wrk_run() {
    local port=$1 path=$2; shift 2
    local out
    out=$(wrk -t2 -c16 -d"${DUR}s" "$@" "http://127.0.0.1:$port$path" 2>&1)
    local rps tps
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    tps=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB$/) {sub(/GB/,"",v); v*=1024} else if (v ~ /MB$/) {sub(/MB/,"",v)} else if (v ~ /KB$/) {sub(/KB/,"",v); v/=1024} print v}' <<<"$out")
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "  (port $port $path: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' '))" >&2; fi
    echo "$rps $tps"
}

echo "# static benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), ${DUR}s per run, 16 connections"
echo
echo "| metric | jawas-static | jawas-static, no access log | nginx (access_log off) | ratio | ratio, no log |"
echo "|---|---|---|---|---|---|"
row() {
    local label=$1 field=$2; shift 2
    local j q n
    j=$(wrk_run "$P_J" "$@" | cut -d' ' -f"$field")
    q=$(wrk_run "$P_Q" "$@" | cut -d' ' -f"$field")
    n=$(wrk_run "$P_N" "$@" | cut -d' ' -f"$field")
    printf '| %s | %.0f | %.0f | %.0f | %.2fx | %.2fx |\n' "$label" "$j" "$q" "$n" \
        "$(awk -v a="$j" -v b="$n" 'BEGIN{print a/b}')" "$(awk -v a="$q" -v b="$n" 'BEGIN{print a/b}')"
}
row "small file, keep-alive, req/s" 1 /small.html
row "100 kB file, keep-alive, MB/s" 2 /100k.bin
row "small file, new connection each, req/s" 1 /small.html -H "Connection: close"
