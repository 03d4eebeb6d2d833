#!/usr/bin/env bash
# jawas-blog (under jawasd) against nginx serving the same site exported by
# `jawas-blog build`, side by side in one run, on a generated site of 1,000
# posts (gensite.py): post and index pages at 16 keep-alive connections; a
# new connection per request (also against jawas-static serving the
# export, the issue's anchor for that row); time to first byte from a fresh
# connection (p50, p99); the first request after editing one post; a cold
# build of all 1,000; the resident memory of an engine process.
#
# A harness that prints numbers and ratios, never a test.
# Usage: tests/bench/blog.sh [seconds per run, default 10] [posts, default 1000]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
DUR=${1:-10}
POSTS=${2:-1000}
PATH="$PATH:/usr/sbin:/sbin"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p jawasd -p jawas-blog -p jawas-static
BLOG=$PWD/target/release/jawas-blog

work=$(mktemp -d /tmp/jawas-bench-blog.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -f "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

python3 tests/bench/gensite.py "$work/site" "$POSTS"

# Cold build: no cache, every post parsed, highlighted and rendered.
ms() { echo $(( $(date +%s%N) / 1000000 )); }
t0=$(ms)
"$BLOG" build --site "$work/site" --out "$work/out" >/dev/null
cold_build=$(( $(ms) - t0 ))
build_rss=$( { /usr/bin/time -f '%M' "$BLOG" build --site "$work/site" --out "$work/out2" >/dev/null; } 2>&1 | tail -1)

P_B=$(free_port); P_S=$(free_port); P_N=$(free_port); P_Z=$(free_port)

cat >"$work/jawasd.toml" <<CONF
[services.blog]
listen = "127.0.0.1:$P_B"
engine = "jawas-blog"
args = ["--site", "$work/site", "--cache", "$work/cache", "--no-access-log"]

# The same engine forked from a zygote (spawn = "zygote"), the same cache.
[services.blog-zygote]
listen = "127.0.0.1:$P_Z"
engine = "jawas-blog"
args = ["--site", "$work/site", "--cache", "$work/cache", "--no-access-log"]
spawn = "zygote"

[services.export]
listen = "127.0.0.1:$P_S"
engine = "jawas-static"
args = ["--root", "$work/out", "--no-access-log"]
CONF
nginx_conf "$work" "text/html html; application/rss+xml xml; text/css css;" "        listen 127.0.0.1:$P_N;
        root $work/out;
        index index.html;"
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!)
nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
wait_ports $P_B $P_S $P_N $P_Z

# A post in the middle of the site.
POST=/post-$(printf %04d $((POSTS / 2)))/
INDEX=/
# The first request builds the cache (timed: a cold start as a reader sees it).
t0=$(ms)
curl -sf -o /dev/null "http://127.0.0.1:$P_B$POST"
cold_first=$(( $(ms) - t0 ))

# Every server must answer 200 with the same bytes before it is measured.
for path in "$POST" "$INDEX"; do
    for p in $P_B $P_S $P_N $P_Z; do
        got=$(curl -s -o "$work/check-$p" -w '%{http_code} %{size_download}' "http://127.0.0.1:$p$path")
        case $got in 200\ *) ;; *) echo "port $p $path answered $got; not a baseline" >&2; exit 1 ;; esac
    done
    cmp -s "$work/check-$P_B" "$work/check-$P_N" || { echo "$path: jawas-blog and nginx (build output) differ" >&2; exit 1; }
done

wrk_rps() {
    local port=$1 path=$2; shift 2
    local out
    out=$(wrk -t2 -c16 -d"${DUR}s" "$@" "http://127.0.0.1:$port$path" 2>&1)
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "  (port $port $path: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' '))" >&2; fi
    awk '/Requests\/sec/ {print $2}' <<<"$out"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }

echo "# blog benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $POSTS posts, ${DUR}s per run, 16 connections"
echo
echo "| metric | jawas-blog | jawas-blog zygote | nginx (build output) | jawas-static (build output) | blog/nginx | blog/static | zygote/nginx | zygote/static |"
echo "|---|---|---|---|---|---|---|---|---|"
for spec in "post page, keep-alive|$POST|" "index page, keep-alive|$INDEX|" \
    "post page, new connection each|$POST|close" "index page, new connection each|$INDEX|close"; do
    IFS='|' read -r label path close <<<"$spec"
    args=()
    [ -n "$close" ] && args=(-H "Connection: close")
    b=$(wrk_rps "$P_B" "$path" "${args[@]}")
    n=$(wrk_rps "$P_N" "$path" "${args[@]}")
    s=$(wrk_rps "$P_S" "$path" "${args[@]}")
    z=$(wrk_rps "$P_Z" "$path" "${args[@]}")
    printf '| %s, req/s | %.0f | %.0f | %.0f | %.0f | %s | %s | %s | %s |\n' "$label" "$b" "$z" "$n" "$s" \
        "$(ratio "$b" "$n")" "$(ratio "$b" "$s")" "$(ratio "$z" "$n")" "$(ratio "$z" "$s")"
done

read -r b50 b99 bf < <(python3 tests/bench/ttfb.py "$P_B" "$POST" 500)
read -r n50 n99 nf < <(python3 tests/bench/ttfb.py "$P_N" "$POST" 500)
read -r s50 s99 sf < <(python3 tests/bench/ttfb.py "$P_S" "$POST" 500)
read -r z50 z99 zf < <(python3 tests/bench/ttfb.py "$P_Z" "$POST" 500)
echo "| first byte of a post, fresh connection, p50 ms | $b50 | $z50 | $n50 | $s50 | | | | |"
echo "| first byte of a post, fresh connection, p99 ms | $b99 | $z99 | $n99 | $s99 | | | | |"
[ "$bf$nf$sf$zf" = 0000 ] || echo "  (ttfb failures: blog $bf zygote $zf nginx $nf static $sf)" >&2

# The first request after editing one post (after the period has passed),
# five times; the median. The page must show the edit.
edits=()
for i in 1 2 3 4 5; do
    printf '\nEdited paragraph %s.\n' "$i" >>"$work/site/posts/post-$(printf %04d $((POSTS / 2))).md"
    sleep 1.2
    t0=$(date +%s%N)
    body=$(curl -sf "http://127.0.0.1:$P_B$POST")
    edits+=($(( ($(date +%s%N) - t0) / 1000000 )))
    grep -q "Edited paragraph $i" <<<"$body" || { echo "edit $i not shown" >&2; exit 1; }
done
edit_ms=$(printf '%s\n' "${edits[@]}" | sort -n | sed -n 3p)

# An engine's memory: hold one keep-alive connection that has been served
# a post page, then read the engine's VmRSS and VmHWM.
exec 7<>/dev/tcp/127.0.0.1/$P_B
printf 'GET %s HTTP/1.1\r\nHost: bench\r\n\r\n' "$POST" >&7
sleep 0.3
epid=$(pgrep -n -f "jawas-blog --site $work/site")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$epid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$epid/status")
exec 7>&-

echo
echo "| metric | value |"
echo "|---|---|"
echo "| cold build of $POSTS posts (\`jawas-blog build\`, no cache) | $cold_build ms |"
echo "| peak memory of that build | $build_rss KiB |"
echo "| first request on an empty cache (builds it) | $cold_first ms |"
echo "| first request after editing one post, median of 5 (${edits[*]}) | $edit_ms ms |"
echo "| engine process serving a post: VmRSS / VmHWM | $rss KiB / $hwm KiB |"
