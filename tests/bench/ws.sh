#!/usr/bin/env bash
# jawas-ws vs websocketd, side by side in one run, on the same echo
# program (cat) and the same client (ws-load, tests/bench/ws_load.rs,
# which checks every echoed reply):
#   (a) sessions/s: connect, handshake, one echo, close, CLIENTS at once;
#   (b) round trips/s on CLIENTS held connections;
# jawas-ws runs twice under jawasd: exec'd per connection, and forked per
# connection from a zygote (spawn = "zygote"), which saves the exec and
# jawas-ws's start-up and shares its pages copy-on-write.
#   (c) memory per held connection with HELD connections open: the sum of
#       RSS (and of PSS, which shares shared pages out fairly) of every
#       process of each side, divided by the connections. jawas-ws's side
#       is jawasd + one jawas-ws and one cat per connection; websocketd's
#       is websocketd + one cat per connection. The client is not counted.
# For (a) and (b) it also prints each server's CPU time (its own and its
# reaped children's, cat's included) per session and per round trip: the
# machine is shared, and this is steadier than the rates.
# A harness, not a test: it never fails on a number.
#
# Usage: tests/bench/ws.sh [seconds per run, default 10] [held, default "1000 5000"] [clients, default 16]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
HELD=${2:-"1000 5000"}
CLIENTS=${3:-16}

command -v websocketd >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq websocketd >/dev/null
}
# Each held connection is a few descriptors in the client and the servers
# (websocketd keeps four: the socket and three pipes): raise the limit as
# far as allowed (root may raise the hard limit too).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release -q -p jawasd -p jawas-ws
cargo build --release -q -p jawas-tests --bin ws-load
LOAD=target/release/ws-load
work=$(mktemp -d /tmp/jawas-bench-ws.XXXXXX)
pids=()
cleanup() {
    touch "$work/stop"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_J=$(free_port); P_W=$(free_port); P_Z=$(free_port)
cat >"$work/jawasd.toml" <<CONF
[services.ws]
listen = "127.0.0.1:$P_J"
engine = "$PWD/target/release/jawas-ws"
args = ["--", "cat"]
CONF
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!); JPID=$!
sed -e "s/$P_J/$P_Z/" "$work/jawasd.toml" >"$work/jawasd-z.toml"
printf 'spawn = "zygote"\n' >>"$work/jawasd-z.toml"
target/release/jawasd --config "$work/jawasd-z.toml" 2>"$work/jawasd-z.log" &
pids+=($!); ZPID=$!
# websocketd logs only errors: jawasd's one line per connection goes to a
# file, so neither side pays for a terminal.
websocketd --address 127.0.0.1 --port "$P_W" --loglevel=error cat >"$work/websocketd.log" 2>&1 &
pids+=($!); WPID=$!
for p in $P_J $P_W $P_Z; do
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break
        sleep 0.1
    done
done
for _ in $(seq 100); do grep -q "zygote ready" "$work/jawasd-z.log" && break; sleep 0.1; done
ZYG=$(sed -n 's/.*zygote ready svc=ws pid=\([0-9]*\).*/\1/p' "$work/jawasd-z.log" | head -1)
[ -n "$ZYG" ] || { echo "the zygote did not start" >&2; cat "$work/jawasd-z.log" >&2; exit 1; }
URL_Z="ws://127.0.0.1:$P_Z/"
URL_J="ws://127.0.0.1:$P_J/"
URL_W="ws://127.0.0.1:$P_W/"

# CPU time of the server ROOT and every child it has reaped (each server
# reaps its own: jawasd its jawas-ws, each jawas-ws its cat; websocketd its
# cat), in clock ticks: fields utime stime cutime cstime.
# A zygote's children are its own, so its side is jawasd plus the zygote.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)

# load MODE URL ROOT [IDLE PROCESSES] [MORE PIDS] -> "rate fail server_cpu_us_per_op"
load() {
    local out before after idle=${4:-1}
    before=$(ticks "$3" ${5:-})
    out=$("$LOAD" "$1" "$2" "$CLIENTS" "$DUR" 2>>"$work/load.err")
    # Every connection of the run ends with it; wait until all are reaped,
    # so their CPU time is in the root's.
    for _ in $(seq 100); do
        [ "$(tree "$3" | wc -l)" -le "$idle" ] && break
        sleep 0.1
    done
    after=$(ticks "$3" ${5:-})
    awk -v a="$after" -v b="$before" -v hz="$HZ" '{
        printf "%s %s %.1f\n", $8, $4, (a - b) / hz * 1e6 / ($2 > 0 ? $2 : 1) }' <<<"$out"
}

# The processes of the tree rooted at $1, one pid per line.
tree() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2; pids[NR] = $1 }
        END {
            keep[root] = 1; changed = 1
            while (changed) { changed = 0
                for (i in pids) { p = pids[i]
                    if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } } }
            for (p in keep) print p
        }'
}

# mem ROOT -> "processes rss_kib pss_kib"
mem() {
    local n=0 rss=0 pss=0 r s
    for p in $(tree "$1"); do
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        s=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        n=$((n + 1)); rss=$((rss + ${r:-0})); pss=$((pss + ${s:-0}))
    done
    echo "$n $rss $pss"
}

# held URL ROOT N [IDLE PROCESSES] -> "held processes rss_kib_per_conn pss_kib_per_conn"
held() {
    local idle=${4:-2}
    rm -f "$work/ready" "$work/stop"
    "$LOAD" hold "$1" "$3" "$work/ready" "$work/stop" 2>>"$work/load.err" &
    local hp=$!
    for _ in $(seq 6000); do [ -f "$work/ready" ] && break; sleep 0.1; done
    local got
    got=$(cat "$work/ready" 2>/dev/null || echo 0)
    sleep 2
    read -r n rss pss < <(mem "$2")
    touch "$work/stop"
    wait "$hp" || true
    # Let the servers reap before the next measurement.
    for _ in $(seq 300); do
        [ "$(tree "$2" | wc -l)" -le "$idle" ] && break
        sleep 0.1
    done
    awk -v h="$got" -v n="$n" -v r="$rss" -v s="$pss" \
        'BEGIN { if (h == 0) h = 1; printf "%d %d %.0f %.0f\n", h, n, r / h, s / h }'
}

echo "# jawas-ws vs websocketd: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), ${DUR}s per run, $CLIENTS clients, program cat"
echo "# websocketd $(websocketd --version 2>&1 | head -1)"
echo
read -r sj fsj csj < <(load sessions "$URL_J" "$JPID")
read -r sw fsw csw < <(load sessions "$URL_W" "$WPID")
read -r ej fej cej < <(load echo "$URL_J" "$JPID")
read -r ew few cew < <(load echo "$URL_W" "$WPID")
# The zygote side idles with jawasd, the zygote and its spare child.
read -r sz fsz csz < <(load sessions "$URL_Z" "$ZPID" 3 "$ZYG")
read -r ez fez cez < <(load echo "$URL_Z" "$ZPID" 3 "$ZYG")
x() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }
printf '| measure | jawas-ws | jawas-ws zygote | websocketd | jawas-ws/websocketd | zygote/websocketd | failures (j/z/w) |\n|---|---|---|---|---|---|---|\n'
printf '| sessions/s | %s | %s | %s | %s | %s | %s/%s/%s |\n' "$sj" "$sz" "$sw" "$(x "$sj" "$sw")" "$(x "$sz" "$sw")" "$fsj" "$fsz" "$fsw"
printf '| round trips/s | %s | %s | %s | %s | %s | %s/%s/%s |\n' "$ej" "$ez" "$ew" "$(x "$ej" "$ew")" "$(x "$ez" "$ew")" "$fej" "$fez" "$few"
printf '| server CPU µs/session | %s | %s | %s | %s | %s | |\n' "$csj" "$csz" "$csw" "$(x "$csj" "$csw")" "$(x "$csz" "$csw")"
printf '| server CPU µs/round trip | %s | %s | %s | %s | %s | |\n' "$cej" "$cez" "$cew" "$(x "$cej" "$cew")" "$(x "$cez" "$cew")"
for n in $HELD; do
    read -r hj pj rj qj < <(held "$URL_J" "$JPID" "$n")
    read -r hz pz rz qz < <(held "$URL_Z" "$ZPID" "$n" 4)
    read -r hw pw rw qw < <(held "$URL_W" "$WPID" "$n")
    printf '| RSS KiB/conn at %s held (j %s, z %s, w %s held; %s/%s/%s processes) | %s | %s | %s | %s | %s | |\n' \
        "$n" "$hj" "$hz" "$hw" "$pj" "$pz" "$pw" "$rj" "$rz" "$rw" "$(x "$rj" "$rw")" "$(x "$rz" "$rw")"
    printf '| PSS KiB/conn at %s held | %s | %s | %s | %s | %s | |\n' \
        "$n" "$qj" "$qz" "$qw" "$(x "$qj" "$qw")" "$(x "$qz" "$qw")"
done
if [ -s "$work/load.err" ]; then
    echo
    echo "client errors (first 5):"
    head -5 "$work/load.err"
fi
