#!/bin/sh
# A CGI program in POSIX sh (RFC 3875): the header, a blank line, the body.
# Served by jawas-cgi: http://127.0.0.1:8081/cgi-bin/hello.sh/any/path?name=you
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
echo "Hello from a shell CGI, pid $$."
echo "You are $REMOTE_ADDR, asking for $REQUEST_METHOD $REQUEST_URI"
echo "SCRIPT_NAME=$SCRIPT_NAME PATH_INFO=$PATH_INFO QUERY_STRING=$QUERY_STRING"
