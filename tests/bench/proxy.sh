#!/usr/bin/env bash
# jawas-proxy (under jawasd) against nginx in front of the same backend,
# side by side in one run: TCP throughput (1 GB as 4 connections of 256 MB,
# jawas-proxy tcp against nginx stream proxy_pass), HTTP requests/s for a
# small response at 16 keep-alive connections and for 1 MB bodies
# (jawas-proxy http against nginx proxy_pass with proxy_http_version 1.1
# and upstream keepalive). nginx in front runs with one worker, then with
# worker_processes auto. The backend is one more nginx (one worker,
# sendfile) serving the files. Access logs are off on both sides.
#
# A harness that prints numbers and ratios, never a test.
# Usage: tests/bench/proxy.sh [seconds of wrk per measurement and side,
# default 15, in ROUNDS=3 alternating rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
DUR=${1:-15}
PATH="$PATH:/usr/sbin:/sbin"
STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v nginx >/dev/null || need+=(nginx-light)
[ -f "$STREAM_MOD" ] || need+=(libnginx-mod-stream)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p jawasd -p jawas-proxy

work=$(mktemp -d /tmp/jawas-bench-proxy.XXXXXX)
pids=()
stop_nginx() {
    local f
    for f in "$work"/*.pid; do
        [ -f "$f" ] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true
    done
}
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    stop_nginx
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/tmp"
head -c 600 /dev/zero | tr '\0' 'a' >"$work/www/small.html"
head -c $((1 << 20)) /dev/urandom >"$work/www/1m.bin"
head -c $((256 << 20)) /dev/urandom >"$work/www/256m.bin"

P_B=$(free_port)                               # backend nginx
P_JT=$(free_port); P_JH=$(free_port)           # jawas-proxy tcp, http
P_NT=$(free_port); P_NH=$(free_port)           # nginx front stream, http

# nginx_front NAME WORKERS: a front nginx, stream and http, to the backend.
nginx_front() {
    cat >"$work/$1.conf" <<CONF
load_module $STREAM_MOD;
worker_processes $2;
user root;
daemon off;
pid $work/$1.pid;
error_log $work/$1-error.log;
events { worker_connections 4096; }
stream {
    server { listen 127.0.0.1:$P_NT; proxy_pass 127.0.0.1:$P_B; }
}
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60;
    client_body_temp_path $work/tmp;
    proxy_temp_path $work/tmp;
    fastcgi_temp_path $work/tmp;
    uwsgi_temp_path $work/tmp;
    scgi_temp_path $work/tmp;
    upstream backend { server 127.0.0.1:$P_B; keepalive 32; }
    server {
        listen 127.0.0.1:$P_NH;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
}

cat >"$work/backend.conf" <<CONF
worker_processes 1;
user root;
daemon off;
pid $work/backend.pid;
error_log $work/backend-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60;
    types { text/html html; application/octet-stream bin; }
    client_body_temp_path $work/tmp;
    server { listen 127.0.0.1:$P_B; root $work/www; }
}
CONF

cat >"$work/jawasd.toml" <<CONF
[server]
max_connections = 4096
[services.px-tcp]
listen = "127.0.0.1:$P_JT"
engine = "jawas-proxy"
args = ["tcp", "--to", "127.0.0.1:$P_B"]
[services.px-http]
listen = "127.0.0.1:$P_JH"
engine = "jawas-proxy"
args = ["http", "--to", "127.0.0.1:$P_B", "--no-access-log"]
capture_stderr = true
CONF

nginx -c "$work/backend.conf" -e "$work/backend-error.log" &
pids+=($!)
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pids+=($!)
wait_ports $P_B $P_JT $P_JH

# check PORT PATH SIZE: the front serves PATH with status 200 and SIZE bytes.
check() {
    local got
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$1$2")
    if [ "$got" != "200 $3" ]; then
        echo "port $1 $2: got '$got', want '200 $3'" >&2
        exit 1
    fi
}

# tcp_run PORT -> MB/s for 4 connections of 256 MB each, in parallel.
tcp_run() {
    local t0 t1 i got=()
    t0=$(date +%s.%N)
    for i in 1 2 3 4; do
        curl -s -o /dev/null "http://127.0.0.1:$1/256m.bin" &
        got+=($!)
    done
    wait "${got[@]}"
    t1=$(date +%s.%N)
    echo "1024 / ($t1 - $t0)" | bc -l | xargs printf '%.0f'
}

# wrk_run PORT PATH -> "req/s MB/s"
wrk_run() {
    local out rps tps
    out=$(wrk -t2 -c16 -d"${DUR}s" "http://127.0.0.1:$1$2" 2>&1)
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    tps=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB$/) {sub(/GB/,"",v); v*=1024} else if (v ~ /MB$/) {sub(/MB/,"",v)} else if (v ~ /KB$/) {sub(/KB/,"",v); v/=1024} print v}' <<<"$out")
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "  (port $1 $2: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' '))" >&2; fi
    echo "$rps $tps"
}

ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }

echo "# proxy benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), ${DUR}s per wrk run, load $(cut -d' ' -f1-3 /proc/loadavg)"

for p in $P_JT $P_JH; do check $p /small.html 600; check $p /1m.bin $((1 << 20)); done

# On a shared machine the load changes under a run: each measurement
# alternates jawas-proxy and nginx in ROUNDS short rounds (DUR/ROUNDS
# seconds of wrk each, one 1 GB transfer each) and reports the mean, so
# both sides of a ratio see the same moments.
ROUNDS=${ROUNDS:-3}
SLICE=$(( DUR / ROUNDS > 0 ? DUR / ROUNDS : 1 ))
mean() { tr ' ' '\n' | awk 'NF {s += $1; n++} END {printf "%.0f", s / n}'; }

for workers in 1 auto; do
    nginx_front "front-$workers" "$workers"
    nginx -c "$work/front-$workers.conf" -e "$work/front-$workers-error.log" &
    pids+=($!)
    wait_ports $P_NT $P_NH
    check $P_NT /small.html 600
    check $P_NH /1m.bin $((1 << 20))
    jt=(); nt=(); js=(); ns=(); jb=(); nb=()
    for _ in $(seq "$ROUNDS"); do
        jt+=("$(tcp_run $P_JT)"); nt+=("$(tcp_run $P_NT)")
        r=$(DUR=$SLICE wrk_run $P_JH /small.html); js+=("${r% *}")
        r=$(DUR=$SLICE wrk_run $P_NH /small.html); ns+=("${r% *}")
        r=$(DUR=$SLICE wrk_run $P_JH /1m.bin); jb+=("${r#* }")
        r=$(DUR=$SLICE wrk_run $P_NH /1m.bin); nb+=("${r#* }")
    done
    kill "$(cat "$work/front-$workers.pid")"
    sleep 0.5
    J_TCP=$(mean <<<"${jt[*]}"); N_TCP=$(mean <<<"${nt[*]}")
    J_SMALL=$(mean <<<"${js[*]}"); N_SMALL=$(mean <<<"${ns[*]}")
    J_BIG=$(mean <<<"${jb[*]}"); N_BIG=$(mean <<<"${nb[*]}")
    echo
    echo "nginx front: worker_processes $workers (load now $(cut -d' ' -f1 /proc/loadavg); rounds: small ${js[*]} vs ${ns[*]})"
    printf '%-34s %12s %12s %7s\n' measure jawas-proxy nginx ratio
    printf '%-34s %12s %12s %7s\n' "TCP, 4 x 256 MB (MB/s)" "$J_TCP" "$N_TCP" "$(ratio "$J_TCP" "$N_TCP")"
    printf '%-34s %12s %12s %7s\n' "HTTP small, 16 keep-alive (req/s)" "$J_SMALL" "$N_SMALL" "$(ratio "$J_SMALL" "$N_SMALL")"
    printf '%-34s %12s %12s %7s\n' "HTTP 1 MB, 16 keep-alive (MB/s)" "$J_BIG" "$N_BIG" "$(ratio "$J_BIG" "$N_BIG")"
done
