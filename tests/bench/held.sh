#!/usr/bin/env bash
# Held-connections benchmark: new connections per second through jawasd
# with no other engine running, then with N connections held open (each by
# its own engine process, 15,000 by default), side by side in one run.
# Reaping and admission must not cost more as engines pile up: the second
# rate should be within 10% of the first.
#
# Prints conn/s, p99 and jawasd's own CPU per new connection for both, and
# the ratio. A harness, not a test: it never fails on a number.
#
# Usage: tests/bench/held.sh [seconds per run, default 10] [held, default 15000]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
HELD=${2:-15000}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Each held connection is one engine process and two descriptors here.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((HELD + 1000)) ]; then
    echo "held.sh: RLIMIT_NOFILE hard limit $(ulimit -Hn) is too low for $HELD connections" >&2
    exit 1
fi

cargo build --release -q -p jawasd
work=$(mktemp -d /tmp/jawas-bench-held.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

engine=$work/tinyhttp
gcc -O2 -static -o "$engine" tests/bench/tinyhttp.c 2>/dev/null || gcc -O2 -o "$engine" tests/bench/tinyhttp.c
# The holder reads until the client closes: one process per held client.
holder=$work/holder
printf '#include <unistd.h>\nint main(void){char b[64];while(read(0,b,sizeof b)>0);return 0;}\n' >"$work/holder.c"
gcc -O2 -static -o "$holder" "$work/holder.c" 2>/dev/null || gcc -O2 -o "$holder" "$work/holder.c"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_WEB=$(free_port); P_HOLD=$(free_port)
cat >"$work/jawasd.toml" <<CONF
[services.web]
listen = "127.0.0.1:$P_WEB"
engine = "$engine"

[services.hold]
listen = "127.0.0.1:$P_HOLD"
engine = "$holder"
CONF
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!); PID=$!
for p in $P_WEB $P_HOLD; do
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break
        sleep 0.1
    done
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# run -> "rps p99ms requests cpu_us_per_conn"
run() {
    local before after out rps p99 reqs
    before=$(ticks "$PID")
    out=$(wrk -t2 -c16 -d"${DUR}s" --latency -H "Connection: close" "http://127.0.0.1:$P_WEB/" 2>&1)
    after=$(ticks "$PID")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    p99=$(awk -v v="$p99" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else if (v ~ /s$/) { sub(/s$/, "", v); print v*1000 } else print "nan" }')
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
        echo "  ($(grep -E 'Non-2xx|Socket errors' <<<"$out" | sed 's/^ *//'))" >&2
    fi
    echo "$rps $p99 $reqs $(awk -v a="$after" -v b="$before" -v n="$reqs" -v hz="$HZ" 'BEGIN { printf "%.1f", (a - b) / hz * 1e6 / n }')"
}

echo "# held-connections benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), ${DUR}s per run, $HELD held"
echo
read -r r0 p0 _ c0 < <(run)

# Hold $HELD connections from 127.0.0.2 (so they share no 4-tuples with
# wrk's), each served by its own holder engine, until told to stop.
python3 - "$P_HOLD" "$HELD" "$work/held.ready" "$work/held.stop" <<'PY' &
import os, socket, sys, time, resource
port, n, ready, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
deadline = time.time() + 300
while len(held) < n and time.time() < deadline:
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    try:
        s.connect(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()
        time.sleep(0.01)
open(ready, "w").write(str(len(held)))
while not os.path.exists(stop) and time.time() < deadline + 600:
    time.sleep(0.2)
PY
pids+=($!)
for _ in $(seq 3000); do [ -f "$work/held.ready" ] && break; sleep 0.1; done
# Every held client has its engine running (jawasd's children).
for _ in $(seq 600); do
    running=$(ps --ppid "$PID" --no-headers | wc -l)
    [ "$running" -ge "$HELD" ] && break
    sleep 0.5
done
echo "held connections: $(cat "$work/held.ready" 2>/dev/null || echo 0), engines running: $running"
read -r r1 p1 _ c1 < <(run)
touch "$work/held.stop"

printf '| held | conn/s | p99 ms | jawasd CPU µs/conn |\n|---|---|---|---|\n'
printf '| 0 | %.0f | %s | %s |\n' "$r0" "$p0" "$c0"
printf '| %s | %.0f | %s | %s |\n' "$running" "$r1" "$p1" "$c1"
echo
echo "with $running held / with none: $(awk -v a="$r1" -v b="$r0" 'BEGIN{printf "%.2fx", a/b}')"
