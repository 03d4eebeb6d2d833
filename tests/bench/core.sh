#!/usr/bin/env bash
# Core benchmark: jawasd against tcpserver (ucspi-tcp) and xinetd, side by
# side in one run, each starting the same static engine per connection,
# loaded by wrk with "Connection: close" (one connection per request).
# Also jawasd running the xinetd config itself (--xinetd), the drop-in path.
#
# Prints connections/s, p99 latency, ratios against the anchors, and
# jawasd's own CPU time per connection. It is a harness, not a test: it
# never fails on a number.
#
# Usage: tests/bench/core.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v tcpserver >/dev/null || need+=(ucspi-tcp)
command -v xinetd >/dev/null || need+=(xinetd)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release -q -p jawasd
work=$(mktemp -d /tmp/jawas-bench-core.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

engine=$work/tinyhttp
gcc -O2 -static -o "$engine" tests/bench/tinyhttp.c 2>/dev/null || gcc -O2 -o "$engine" tests/bench/tinyhttp.c

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_JAWAS=$(free_port); P_TCPS=$(free_port); P_XI=$(free_port); P_JX=$(free_port)

cat >"$work/jawasd.toml" <<CONF
[services.bench]
listen = "127.0.0.1:$P_JAWAS"
engine = "$engine"
CONF
xinetd_conf() {
    cat <<CONF
defaults
{
	instances = UNLIMITED
	per_source = UNLIMITED
	cps = 1000000 1
}
service bench
{
	type = UNLISTED
	socket_type = stream
	protocol = tcp
	wait = no
	user = root
	port = $1
	bind = 127.0.0.1
	server = $engine
}
CONF
}
xinetd_conf "$P_XI" >"$work/xinetd.conf"
xinetd_conf "$P_JX" >"$work/jawasd-xinetd.conf"

# Per-connection log lines are jawasd's default; they go to a file here as
# they would under a supervisor. xinetd logs nothing by default.
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!); PID_JAWAS=$!
target/release/jawasd --xinetd "$work/jawasd-xinetd.conf" 2>"$work/jawasd-x.log" &
pids+=($!); PID_JX=$!
tcpserver -c 100000 -H -R -l0 127.0.0.1 "$P_TCPS" "$engine" 2>/dev/null &
pids+=($!)
xinetd -dontfork -f "$work/xinetd.conf" -pidfile "$work/xinetd.pid" -filelog "$work/xinetd.log" &
pids+=($!)
for p in $P_JAWAS $P_TCPS $P_XI $P_JX; do
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break
        sleep 0.1
    done
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# run NAME PORT CONNS -> "rps p99ms requests"
run() {
    local port=$2 c=$3 t=2
    [ "$c" -eq 1 ] && t=1
    local out
    out=$(wrk -t"$t" -c"$c" -d"${DUR}s" --latency -H "Connection: close" "http://127.0.0.1:$port/" 2>&1)
    local rps p99 reqs
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    # p99 to milliseconds
    p99=$(awk -v v="$p99" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else if (v ~ /s$/) { sub(/s$/, "", v); print v*1000 } else print "nan" }')
    if grep -q "Socket errors" <<<"$out"; then
        echo "  ($1 c=$c: $(grep 'Socket errors' <<<"$out" | sed 's/^ *//'))" >&2
    fi
    echo "$rps $p99 $reqs"
}

echo "# core benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), ${DUR}s per run"
echo
printf '| conns | jawasd conn/s | tcpserver conn/s | xinetd conn/s | jawasd --xinetd conn/s | jawasd/tcpserver | jawasd/xinetd | jawasd p99 ms | tcpserver p99 ms | xinetd p99 ms | jawasd CPU µs/conn |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for c in 1 16 128; do
    before=$(ticks "$PID_JAWAS")
    read -r j_rps j_p99 j_reqs < <(run jawasd "$P_JAWAS" "$c")
    after=$(ticks "$PID_JAWAS")
    read -r t_rps t_p99 _ < <(run tcpserver "$P_TCPS" "$c")
    read -r x_rps x_p99 _ < <(run xinetd "$P_XI" "$c")
    read -r jx_rps _ _ < <(run jawasd-xinetd "$P_JX" "$c")
    cpu=$(awk -v a="$after" -v b="$before" -v n="$j_reqs" -v hz="$HZ" 'BEGIN { printf "%.1f", (a - b) / hz * 1e6 / n }')
    printf '| %s | %.0f | %.0f | %.0f | %.0f | %.2fx | %.2fx | %s | %s | %s | %s |\n' \
        "$c" "$j_rps" "$t_rps" "$x_rps" "$jx_rps" \
        "$(awk -v a="$j_rps" -v b="$t_rps" 'BEGIN{print a/b}')" \
        "$(awk -v a="$j_rps" -v b="$x_rps" 'BEGIN{print a/b}')" \
        "$j_p99" "$t_p99" "$x_p99" "$cpu"
done
