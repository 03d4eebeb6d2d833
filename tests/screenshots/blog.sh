#!/usr/bin/env bash
# Screenshots of the demo blog (etc/blog) in headless Chromium, to look at:
# the index, a post with code and a table, and the 404 page, at phone
# (390 px) and desktop (1280 px) widths, in light and dark mode.
# Not a test: a person looks at the pictures (docs/blog.md says when).
#
# Usage: tests/screenshots/blog.sh [OUTDIR, default /tmp/jawas-blog-shots]
# Needs Debian's chromium (installed when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/jawas-blog-shots}
mkdir -p "$out"
if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cargo build --release -q -p jawasd -p jawas-blog

work=$(mktemp -d /tmp/jawas-shots.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/jawasd.toml" <<CONF
[services.blog]
listen = "127.0.0.1:$port"
engine = "jawas-blog"
args = ["--site", "$PWD/etc/blog", "--cache", "$work/cache"]
CONF
target/release/jawasd --config "$work/jawasd.toml" 2>"$work/jawasd.log" &
pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

shot() { # NAME PATH WIDTH HEIGHT SCHEME(0 dark, 1 light)
    rm -rf "$work/profile"
    timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --hide-scrollbars --user-data-dir="$work/profile" \
        --blink-settings=preferredColorScheme="$5" \
        --window-size="$3,$4" --screenshot="$out/$1.png" \
        "http://127.0.0.1:$port$2" >/dev/null 2>&1
    echo "$out/$1.png"
}
for page in "index|/" "post|/process-per-connection/" "404|/no-such-page/"; do
    IFS='|' read -r name path <<<"$page"
    for mode in "light|1" "dark|0"; do
        IFS='|' read -r m scheme <<<"$mode"
        shot "$name-phone-$m" "$path" 390 1400 "$scheme"
        shot "$name-desktop-$m" "$path" 1280 1000 "$scheme"
    done
done
