#!/usr/bin/env bash
# Zygote benchmark: a new connection per request (wrk "Connection: close")
# at 1, 16 and 128 connections, side by side in one run:
# - the trivial engine (tests/engines/hello_http.rs, on the engine runtime):
#   jawasd exec mode, jawasd zygote mode, tcpserver exec'ing the same
#   binary, tcpserver exec'ing tinyhttp.c (static C: the fork+exec floor),
#   and nginx answering the same bytes from its config; and handoff.c,
#   the design's floor in C (accept, hand the socket to a child forked
#   ahead, fork the next; tinyhttp's response);
# - jawas-static serving a small file: exec mode, zygote mode, and nginx.
# Every server is checked to answer 200 with the expected body first.
# Also jawasd's CPU per connection in zygote mode, and p50 at one
# connection.
#
# A harness that prints numbers and ratios, never a test.
# Usage: tests/bench/zygote.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
DUR=${1:-10}
PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v tcpserver >/dev/null || need+=(ucspi-tcp)
command -v nginx >/dev/null || need+=(nginx-light)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p jawasd -p jawas-static
cargo build --release -q -p jawas-tests --bin jawas-test-hello
hello=$PWD/target/release/jawas-test-hello

work=$(mktemp -d /tmp/jawas-bench-zygote.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -f "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

tiny=$work/tinyhttp
gcc -O2 -static -o "$tiny" tests/bench/tinyhttp.c 2>/dev/null || gcc -O2 -o "$tiny" tests/bench/tinyhttp.c
handoff=$work/handoff
gcc -O2 -o "$handoff" tests/bench/handoff.c
mkdir -p "$work/www"
printf 'hello\n' >"$work/www/index.html"

P_EX=$(free_port); P_ZY=$(free_port); P_TR=$(free_port); P_TC=$(free_port); P_NG=$(free_port)
P_SEX=$(free_port); P_SZY=$(free_port); P_HO=$(free_port)

cat >"$work/jawasd.toml" <<CONF
[services.exec]
listen = "127.0.0.1:$P_EX"
engine = "$hello"

[services.zygote]
listen = "127.0.0.1:$P_ZY"
engine = "$hello"
spawn = "zygote"

[services.static-exec]
listen = "127.0.0.1:$P_SEX"
engine = "jawas-static"
args = ["--root", "$work/www", "--no-access-log"]

[services.static-zygote]
listen = "127.0.0.1:$P_SZY"
engine = "jawas-static"
args = ["--root", "$work/www", "--no-access-log"]
spawn = "zygote"
CONF
nginx_conf "$work" "text/html html;" "        listen 127.0.0.1:$P_NG;
        root $work/www;
        location = /hello { default_type text/plain; return 200 \"hello\\n\"; }"
# jawasd logs its per-connection lines to a file, as under a supervisor.
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!); PID_J=$!
tcpserver -c 100000 -H -R -l0 127.0.0.1 "$P_TR" "$hello" 2>/dev/null &
pids+=($!)
tcpserver -c 100000 -H -R -l0 127.0.0.1 "$P_TC" "$tiny" 2>/dev/null &
pids+=($!)
nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
"$handoff" "$P_HO" &
pids+=($!)
wait_ports $P_EX $P_ZY $P_TR $P_TC $P_NG $P_SEX $P_SZY $P_HO
for _ in $(seq 50); do [ "$(grep -c 'zygote ready' "$work/jawasd.log")" -ge 2 ] && break; sleep 0.1; done
grep -q 'zygote ready svc=zygote' "$work/jawasd.log" || { echo "zygote not ready" >&2; cat "$work/jawasd.log" >&2; exit 1; }

# Each server must answer 200 and its body before it is measured.
for spec in "$P_EX /" "$P_ZY /" "$P_TR /" "$P_NG /hello" "$P_SEX /" "$P_SZY /" "$P_NG /"; do
    read -r port path <<<"$spec"
    got=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port$path")
    [ "$got" = "hello
 200" ] || { echo "port $port$path answered '$got'; not a baseline" >&2; exit 1; }
done
for port in $P_TC $P_HO; do
    got=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/")
    [ "$got" = "Hello, world
 200" ] || { echo "port $port (C) answered '$got'; not a baseline" >&2; exit 1; }
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# run PORT PATH CONNS -> "rps p50ms requests"
run() {
    local port=$1 path=$2 c=$3 t=2
    [ "$c" -eq 1 ] && t=1
    local out
    out=$(wrk -t"$t" -c"$c" -d"${DUR}s" --latency -H "Connection: close" "http://127.0.0.1:$port$path" 2>&1)
    if grep -q "Socket errors\|Non-2xx" <<<"$out"; then
        echo "  (port $port c=$c: $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' '))" >&2
    fi
    local rps p50 reqs
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk -v v="$p50" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else if (v ~ /s$/) { sub(/s$/, "", v); print v*1000 } else print "nan" }')
    echo "$rps $p50 $reqs"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }

echo "# zygote benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), ${DUR}s per run, a new connection per request"
echo
echo "Trivial engine (conn/s; p50 ms in brackets):"
echo
echo "| conns | jawasd zygote | jawasd exec | tcpserver (same engine) | tcpserver (tinyhttp.c, static) | hand-off floor (handoff.c) | nginx | zygote/exec | zygote/tcpserver | zygote/tcpserver+C | jawasd CPU µs/conn (zygote) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for c in 1 16 128; do
    before=$(ticks "$PID_J")
    read -r z z50 zreqs < <(run "$P_ZY" / "$c")
    after=$(ticks "$PID_J")
    read -r e e50 _ < <(run "$P_EX" / "$c")
    read -r t t50 _ < <(run "$P_TR" / "$c")
    read -r tc tc50 _ < <(run "$P_TC" / "$c")
    read -r h h50 _ < <(run "$P_HO" / "$c")
    read -r n n50 _ < <(run "$P_NG" /hello "$c")
    [ "$c" -eq 1 ] && { z50_one=$z50; h50_one=$h50; n50_one=$n50; }
    cpu=$(awk -v a="$after" -v b="$before" -v n="$zreqs" -v hz="$HZ" 'BEGIN { printf "%.1f", (a - b) / hz * 1e6 / n }')
    printf '| %s | %.0f (%s) | %.0f (%s) | %.0f (%s) | %.0f (%s) | %.0f (%s) | %.0f (%s) | %s | %s | %s | %s |\n' "$c" \
        "$z" "$z50" "$e" "$e50" "$t" "$t50" "$tc" "$tc50" "$h" "$h50" "$n" "$n50" \
        "$(ratio "$z" "$e")" "$(ratio "$z" "$t")" "$(ratio "$z" "$tc")" "$cpu"
done
echo
echo "jawas-static, small file (conn/s; p50 ms in brackets):"
echo
echo "| conns | zygote | exec | nginx | zygote/exec | zygote/nginx |"
echo "|---|---|---|---|---|---|"
for c in 1 16 128; do
    read -r z z50 _ < <(run "$P_SZY" / "$c")
    read -r e e50 _ < <(run "$P_SEX" / "$c")
    read -r n n50 _ < <(run "$P_NG" / "$c")
    [ "$c" -eq 1 ] && { s50_one=$z50; sn50_one=$n50; }
    printf '| %s | %.0f (%s) | %.0f (%s) | %.0f (%s) | %s | %s |\n' "$c" "$z" "$z50" "$e" "$e50" "$n" "$n50" \
        "$(ratio "$z" "$e")" "$(ratio "$z" "$n")"
done
echo
echo "p50 at one connection: trivial engine in zygote mode $z50_one ms ($(ratio "$z50_one" "$n50_one") nginx's $n50_one); the hand-off floor (handoff.c) $h50_one ms ($(ratio "$h50_one" "$n50_one")); jawas-static in zygote mode $s50_one ms ($(ratio "$s50_one" "$sn50_one") nginx's $sn50_one)"
