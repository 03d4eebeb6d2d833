#!/usr/bin/env python3
"""A CGI program in Python with a form POST (no cgi module needed).

GET shows the form; POST reads CONTENT_LENGTH bytes of
application/x-www-form-urlencoded from stdin and answers with what it got.
Served by jawas-cgi: http://127.0.0.1:8081/cgi-bin/form.py
"""
import html
import os
import sys
from urllib.parse import parse_qs

out = sys.stdout
method = os.environ.get("REQUEST_METHOD", "GET")
if method == "POST":
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    body = sys.stdin.buffer.read(length).decode("utf-8", "replace")
    fields = parse_qs(body)
    name = fields.get("name", ["stranger"])[0]
    out.write("Content-Type: text/html; charset=utf-8\r\n\r\n")
    out.write(f"<!DOCTYPE html><p>Hello, {html.escape(name)}! ({len(body)} bytes posted)</p>\n")
elif method in ("GET", "HEAD"):
    out.write("Content-Type: text/html; charset=utf-8\r\n\r\n")
    out.write(
        '<!DOCTYPE html><form method="post">'
        '<input name="name" placeholder="your name"><button>Send</button></form>\n'
    )
else:
    out.write("Status: 405 Method Not Allowed\r\nAllow: GET, HEAD, POST\r\nContent-Type: text/plain\r\n\r\nGET or POST\n")
