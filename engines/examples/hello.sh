#!/bin/sh
# A jawas engine in POSIX sh: greets the client, then shouts back every line.
#
# The contract (docs/engine-protocol.md): fd 0 reads from the client, fd 1
# writes to it, fd 2 is the log; the client's address is in TCPREMOTEIP and
# TCPREMOTEPORT, the service's name in JAWAS_SERVICE. Exit when stdin ends.
#
# Try it without a server:  printf 'hi\n' | TCPREMOTEIP=192.0.2.7 ./hello.sh

printf 'hello %s:%s, this is %s (pid %s)\r\n' \
    "${TCPREMOTEIP:-unknown}" "${TCPREMOTEPORT:-0}" "${JAWAS_SERVICE:-hello-sh}" "$$"
printf 'type a line, get it back in capitals; end with ^D or "quit"\r\n'

# Diagnostics go to fd 2, which jawasd logs (capture_stderr) or keeps as its own.
echo "client ${TCPREMOTEIP:-unknown} connected" >&2

while IFS= read -r line; do
    line=$(printf '%s' "$line" | tr -d '\r')
    [ "$line" = quit ] && break
    printf '%s\r\n' "$line" | tr '[:lower:]' '[:upper:]'
done
printf 'bye\r\n'
