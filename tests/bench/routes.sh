#!/usr/bin/env bash
# Routes benchmark: what the routing stage costs, side by side in one run.
# - New connections/s (wrk, "Connection: close", jawas-static serving a
#   small file, exec and zygote mode) through a routed listener (four
#   routes; the request matches the third) vs the same service on its own
#   plain listener. Target: the routed listener loses less than 10%.
# - Keep-alive requests/s on one route (jawas-static, zygote mode) vs the
#   plain listener: the engine peeks at each request head to check its
#   route. Target: no measurable cost.
# Every server is checked to answer 200 with the expected body first.
#
# A harness that prints numbers and ratios, never a test.
# Usage: tests/bench/routes.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
DUR=${1:-10}

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p jawasd -p jawas-static

work=$(mktemp -d /tmp/jawas-bench-routes.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www/static"
printf 'hello\n' >"$work/www/static/index.html"
P_PE=$(free_port); P_RE=$(free_port); P_PZ=$(free_port); P_RZ=$(free_port)
static='engine = "jawas-static"
args = ["--root", "'"$work"'/www", "--no-access-log"]'
cat >"$work/jawasd.toml" <<CONF
[server]
max_connections = 4096

[services.plain-exec]
listen = "127.0.0.1:$P_PE"
$static

[services.plain-zygote]
listen = "127.0.0.1:$P_PZ"
$static
spawn = "zygote"

[services.routed-exec]
listen = "127.0.0.1:$P_RE"
routes = [
  { path = "/", service = "other" },
  { path = "/api", service = "other" },
  { path = "/static", service = "files-exec" },
  { host = "www.example.org", path = "/", service = "other" },
]

[services.routed-zygote]
listen = "127.0.0.1:$P_RZ"
routes = [
  { path = "/", service = "other" },
  { path = "/api", service = "other" },
  { path = "/static", service = "files-zygote" },
  { host = "www.example.org", path = "/", service = "other" },
]

[services.files-exec]
$static

[services.files-zygote]
$static
spawn = "zygote"

[services.other]
engine = "jawas-builtin"
args = ["discard"]
CONF
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!)
wait_ports $P_PE $P_RE $P_PZ $P_RZ
for _ in $(seq 50); do [ "$(grep -c 'zygote ready' "$work/jawasd.log")" -ge 2 ] && break; sleep 0.1; done

for port in $P_PE $P_RE $P_PZ $P_RZ; do
    got=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/static/")
    [ "$got" = "hello
 200" ] || { echo "port $port answered '$got'; not a baseline" >&2; exit 1; }
done

# run PORT CONNS [wrk args] -> req/s
run() {
    local port=$1 c=$2; shift 2
    local t=2; [ "$c" -eq 1 ] && t=1
    local out
    out=$(wrk -t"$t" -c"$c" -d"${DUR}s" "$@" "http://127.0.0.1:$port/static/" 2>&1)
    if grep -q "Socket errors\|Non-2xx" <<<"$out"; then
        echo "  (port $port c=$c: $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' '))" >&2
    fi
    awk '/Requests\/sec/ {print $2}' <<<"$out"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }

echo "# routes benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), ${DUR}s per run"
echo
echo "New connection per request (conn/s), jawas-static:"
echo
echo "| mode | conns | plain listener | routed listener | routed/plain |"
echo "|---|---|---|---|---|"
for mode in exec zygote; do
    if [ $mode = exec ]; then pp=$P_PE; rp=$P_RE; else pp=$P_PZ; rp=$P_RZ; fi
    for c in 1 16; do
        p=$(run "$pp" "$c" -H "Connection: close")
        r=$(run "$rp" "$c" -H "Connection: close")
        printf '| %s | %s | %.0f | %.0f | %s |\n' $mode "$c" "$p" "$r" "$(ratio "$r" "$p")"
    done
done
echo
echo "Keep-alive on one route (req/s), jawas-static in zygote mode:"
echo
echo "| conns | plain listener | routed listener | routed/plain |"
echo "|---|---|---|---|"
for c in 1 16; do
    p=$(run "$P_PZ" "$c")
    r=$(run "$P_RZ" "$c")
    printf '| %s | %.0f | %.0f | %s |\n' "$c" "$p" "$r" "$(ratio "$r" "$p")"
done
