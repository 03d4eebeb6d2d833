# Helpers the benchmark harnesses share; sourced, not run.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits (at most 5 s each) until every port given accepts a connection.
wait_ports() {
    local p
    for p in "$@"; do
        for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break; sleep 0.1; done
    done
}

# nginx_conf WORK TYPES SERVER: writes WORK/nginx.conf for one worker,
# access log off, sendfile, long keep-alive, its files under WORK; TYPES
# is the body of the types block, SERVER the body of the server block.
nginx_conf() {
    cat >"$1/nginx.conf" <<CONF
worker_processes 1;
user root;
daemon off;
pid $1/nginx.pid;
error_log $1/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60;
    types { $2 }
    client_body_temp_path $1/nginx-tmp;
    proxy_temp_path $1/nginx-tmp;
    fastcgi_temp_path $1/nginx-tmp;
    uwsgi_temp_path $1/nginx-tmp;
    scgi_temp_path $1/nginx-tmp;
    server {
$3
    }
}
CONF
}
