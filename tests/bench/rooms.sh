#!/usr/bin/env bash
# jawas-ws rooms vs a Node.js `ws` broadcast server (tests/bench/ws_broadcast.js),
# side by side in one run, with the same client (room-load,
# tests/bench/room_load.rs, which checks every member gets every message
# once and in order):
#   (a) delivery latency of a message to MEMBERS (default 1000) members:
#       MSGS messages at RATE per second, p50/p99/max over every
#       (message, member) pair;
#   (b) fanned-out deliveries/s at 100 members: the sender goes as fast as
#       the slowest member keeps up (at most 64 messages ahead of it);
#   (c) memory per member while (a)'s members are connected: PSS summed
#       over each side's processes (jawasd, every jawas-ws and the hub;
#       node), divided by the members.
# jawas-ws runs under jawasd (release build), `--room bench`, exec'd per
# connection. A harness, not a test: it never fails on a number.
#
# Usage: tests/bench/rooms.sh [members, default 1000] [msgs, default 100] [rate, default 10] [secs, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
MEMBERS=${1:-1000}
MSGS=${2:-100}
RATE=${3:-10}
SECS=${4:-10}

command -v node >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p jawasd -p jawas-ws
cargo build --release -q -p jawas-tests --bin room-load
LOAD=target/release/room-load
work=$(mktemp -d /tmp/jawas-bench-rooms.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
(cd "$work" && npm install --silent --no-audit --no-fund ws@8 >/dev/null 2>&1) ||
    { echo "npm install ws failed" >&2; exit 1; }
echo "node $(node --version), ws $(node -p "require('$work/node_modules/ws/package.json').version")"

P_J=$(free_port); P_N=$(free_port)
cat >"$work/jawasd.toml" <<CONF
[services.room]
listen = "127.0.0.1:$P_J"
engine = "$PWD/target/release/jawas-ws"
args = ["--room", "bench", "--room-dir", "$work/rooms", "--room-queue", "8388608"]
CONF
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!); JPID=$!
NODE_PATH="$work/node_modules" node tests/bench/ws_broadcast.js "$P_N" 2>"$work/node.log" &
pids+=($!); NPID=$!
wait_ports "$P_J" "$P_N"
URL_J="ws://127.0.0.1:$P_J/"
URL_N="ws://127.0.0.1:$P_N/"

# Sum of PSS (KiB) of PID and its descendants.
pss_tree() {
    local all p
    all=$(ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2 } END {
            keep[root] = 1; changed = 1
            while (changed) { changed = 0
                for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
            for (p in keep) print p }')
    for p in $all; do awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true; done |
        awk '{ s += $1 } END { print s + 0 }'
}
# The hub is started by a member and reparented to jawasd when that
# member ends; while the member lives it is the member's child: either way
# it is in jawasd's tree.

echo "== (a) latency to $MEMBERS members, $MSGS messages at $RATE/s, and (c) memory"
for side in jawas node; do
    if [ $side = jawas ]; then url=$URL_J root=$JPID; else url=$URL_N root=$NPID; fi
    base=$(pss_tree "$root")
    $LOAD latency "$url" "$MEMBERS" "$MSGS" "$RATE" >"$work/lat-$side" &
    lp=$!
    # Memory once every member is in (the load waits 0.5 s before sending).
    sleep 3
    held=$(pss_tree "$root")
    wait $lp
    echo "$side: $(cat "$work/lat-$side")"
    echo "$side: PSS $base KiB idle, $held KiB with $MEMBERS members: $(( (held - base) / MEMBERS )) KiB per member"
    sleep 1
done

echo "== (b) fan-out throughput at 100 members, $SECS s"
for side in jawas node; do
    if [ $side = jawas ]; then url=$URL_J; else url=$URL_N; fi
    echo "$side: $($LOAD throughput "$url" 100 "$SECS" 64)"
    sleep 1
done
