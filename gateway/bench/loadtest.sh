#!/usr/bin/env bash
# loadtest.sh: requests/s and latency of agw against nginx doing the same job.
#
# Three targets, all HTTPS with keep-alive, same tiny JSON backend:
#   direct  wrk → backend                          (the ceiling)
#   nginx   wrk → nginx (TLS, cert from the agw CA, proxy_set_header X-Api-Key)
#                 → backend over HTTPS with an upstream keepalive pool
#   agw     wrk → agw (TLS, token check, grant, swap, audit) → backend
#
# The box has 2 cores. wrk runs on core 0 and everything under test (backend,
# nginx with one worker, agw) on core 1, so the load generator does not steal
# CPU from the proxies. The compromise: the backend shares core 1 with the
# proxy, so absolute figures are lower than on separate machines; the ratio
# agw/nginx is what this script is for (target ≥ 0.5).
#
# Because the backend's CPU counts against whichever proxy is being measured,
# the backend must cost the same whatever protocol the proxy speaks to it.
# nginx proxies to upstreams over HTTP/1.1 only; agw uses HTTP/2 when the
# backend offers it. The default backend is therefore nginx answering a fixed
# body (about as cheap over HTTP/2 as over HTTP/1.1). BACKEND=go uses a Go
# net/http backend instead, whose HTTP/2 server costs it markedly more CPU per
# request than its HTTP/1.1 server: that cost lands on agw's side of the
# ratio. The script prints each process's CPU per request so this shows.
#
# wrk takes the TLS server name from the URL, so the registered host must
# resolve to 127.0.0.1: the script runs wrk in a private mount namespace with
# its own /etc/hosts (needs root; otherwise add "127.0.0.1 api.bench.test" to
# /etc/hosts yourself).
#
# Each round also measures a calibration target, the standard library's
# httputil.ReverseProxy doing nginx's job and nothing more (stockproxy/), so
# the ratio can be read against what any Go proxy gets on the same fixture;
# STOCK=0 leaves it out.
#
# Usage: [BACKEND=nginx|go] [STOCK=0] gateway/bench/loadtest.sh [DURATION] [CONNECTIONS] [ROUNDS]
#        (default nginx, 10s 32 3)
set -euo pipefail

DURATION=${1:-10s}
CONNS=${2:-32}
ROUNDS=${3:-3}
STOCK=${STOCK:-1}
[ "$STOCK" = 0 ] && STOCK=
BACKEND_KIND=${BACKEND:-nginx}
case $BACKEND_KIND in nginx | go) ;; *) echo "BACKEND must be nginx or go, not $BACKEND_KIND" >&2; exit 2 ;; esac
THREADS=2
HOST=api.bench.test
SECRET=sk-bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
REPO=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx || ! need openssl; then
	echo "installing wrk, nginx and openssl from Debian packages" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y wrk nginx-light openssl >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y wrk nginx-light openssl >/dev/null 2>&1; } ||
		apt-get install -y wrk nginx openssl >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

PIN_WRK=(); PIN_SUT=()
if need taskset && [ "$(nproc)" -ge 2 ]; then
	PIN_WRK=(taskset -c 0); PIN_SUT=(taskset -c 1)
fi

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitfor() { # waitfor FILE PATTERN
	for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
	echo "timed out waiting for $2 in $1" >&2; cat "$1" >&2; return 1
}

# start_nginx DIR HTTP: one nginx worker on the servers' core, with HTTP
# inside its http block; sets WORKER to the worker's pid.
start_nginx() {
	local d=$1
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
	uwsgi_temp_path $d; scgi_temp_path $d;
$2
}
NGX
	"${PIN_SUT[@]}" "$NGINX" -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 100); do [ -s "$d/nginx.pid" ] && pgrep -P "$(cat "$d/nginx.pid")" >/dev/null && break; sleep 0.05; done
	WORKER=$(pgrep -P "$(cat "$d/nginx.pid")" | head -1)
	[ -n "$WORKER" ] || { echo "nginx did not start:" >&2; cat "$d/error.log" "$d/stdout.log" >&2; exit 1; }
}

echo "building agw and the bench helpers" >&2
(cd "$REPO" && go build -o "$T/agw" ./cmd/agw && go build -o "$T/backend" ./gateway/bench/backend && go build -o "$T/mintleaf" ./gateway/bench/mintleaf &&
	go build -o "$T/stockproxy" ./gateway/bench/stockproxy)

# Backend: the same fixed JSON body either way, and a 401 without the key.
BODY='{"id":"cmpl-1","object":"chat.completion","model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}'
if [ "$BACKEND_KIND" = go ]; then
	"${PIN_SUT[@]}" "$T/backend" -listen 127.0.0.1:0 -cert-out "$T/backend.pem" -want-key "$SECRET" >"$T/backend.log" 2>&1 &
	PIDS+=($!)
	BACKEND_PID=$!
	waitfor "$T/backend.log" ready
	BACKEND=$(awk '/ready/{print $2}' "$T/backend.log")
else
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=example.com \
		-addext subjectAltName=DNS:example.com,IP:127.0.0.1 -keyout "$T/backend.key" -out "$T/backend.pem" 2>/dev/null
	BACKEND=127.0.0.1:$(freeport)
	start_nginx "$T/nb" "
	keepalive_requests 1000000000;
	http2_max_requests 1000000000;
	server {
		listen $BACKEND ssl http2;
		ssl_certificate $T/backend.pem;
		ssl_certificate_key $T/backend.key;
		location / {
			if (\$http_x_api_key != \"$SECRET\") { return 401; }
			default_type application/json;
			return 200 '$BODY';
		}
	}"
	BACKEND_PID=$WORKER
fi

# agw.
AGW_PORT=$(freeport)
export AGW_DATA_DIR="$T/data"
"${PIN_SUT[@]}" "$T/agw" serve --https-listen "127.0.0.1:$AGW_PORT" --dns-listen off --log-level warn >"$T/agw.log" 2>&1 &
PIDS+=($!)
AGW_PID=$!
for _ in $(seq 1 200); do [ -S "$T/data/admin.sock" ] && "$T/agw" status >/dev/null 2>&1 && break; sleep 0.05; done
printf %s "$SECRET" | "$T/agw" backend add bench --host "$HOST" --upstream "https://$BACKEND" \
	--upstream-ca "$T/backend.pem" --inject header --header X-Api-Key --secret-stdin >/dev/null
"$T/agw" agent add bench-bot >/dev/null
"$T/agw" grant add bench-bot bench --method '*' --path '/**' >/dev/null
TOKEN=$("$T/agw" token mint bench-bot 2>/dev/null)

# nginx with a leaf from the agw CA.
"$T/mintleaf" -data-dir "$T/data" -host "$HOST" -cert "$T/nginx.pem" -key "$T/nginx.key"
NGINX_PORT=$(freeport)
start_nginx "$T/nginx" "
	upstream backend { server $BACKEND; keepalive 64; }
	server {
		listen 127.0.0.1:$NGINX_PORT ssl;
		server_name $HOST;
		ssl_certificate $T/nginx.pem;
		ssl_certificate_key $T/nginx.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		location / {
			proxy_pass https://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
			proxy_set_header Authorization \"\";
			proxy_set_header X-Api-Key \"$SECRET\";
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate $T/backend.pem;
			proxy_ssl_name example.com;
			proxy_ssl_server_name on;
			proxy_ssl_session_reuse on;
			proxy_buffering off;
		}
	}"
NGINX_PID=$WORKER

if [ -n "${STOCK:-}" ]; then
	STOCKPROXY_KEY=$SECRET "${PIN_SUT[@]}" "$T/stockproxy" -cert "$T/nginx.pem" -key "$T/nginx.key" \
		-upstream "https://$BACKEND" -upstream-ca "$T/backend.pem" >"$T/stock.log" 2>&1 &
	PIDS+=($!)
	STOCK_PID=$!
	waitfor "$T/stock.log" ready
	STOCK_PORT=$(awk '/ready/{print $2}' "$T/stock.log" | sed 's/.*://')
fi

printf '127.0.0.1 localhost\n127.0.0.1 %s\n' "$HOST" >"$T/hosts"
runwrk() { # runwrk URL [header]
	local cmd=("${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency)
	[ -n "${2:-}" ] && cmd+=(-H "$2")
	cmd+=("$1")
	if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
		unshare -m sh -c 'mount --bind "$0" /etc/hosts && shift && exec "$@"' "$T/hosts" _ "${cmd[@]}"
	else
		"${cmd[@]}"
	fi
}
# parse: rps p50 p99 (ms) non2xx requests
summarise() {
	awk '
	function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
	/Requests\/sec/ { rps=$2 }
	/requests in/ { n=$1 }
	/^ +50%/ { p50=ms($2) } /^ +99%/ { p99=ms($2) }
	/Non-2xx/ { bad=$NF }
	END { printf "%s %s %s %s %s\n", rps, p50, p99, (bad==""?0:bad), n }'
}
# cputicks PID: user+system clock ticks the process has used so far.
cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# Check each path answers 200 before measuring.
curlcheck() { unshare -m sh -c 'mount --bind "$0" /etc/hosts && shift && exec "$@"' "$T/hosts" _ curl -sS -o /dev/null -w '%{http_code}' --cacert "$1" "${@:2}"; }
[ "$(curlcheck "$T/data/ca.crt" -H "Authorization: Bearer $TOKEN" "https://$HOST:$AGW_PORT/v1/x" 2>/dev/null || true)" = 200 ] || echo "warning: agw did not answer 200" >&2

# The machine's speed drifts (other work on the host), so nginx and agw are
# measured in alternating rounds and each round gives its own ratio; the
# summary is the median round. direct runs once, as the ceiling.
# run_target TARGET -> "rps p50 p99 non2xx proxy_us backend_us": the last two
# are the proxy's and the backend's CPU per request, in µs.
run_target() {
	local out proxy=$BACKEND_PID p0 b0 p1 b1
	case $1 in nginx) proxy=$NGINX_PID ;; agw) proxy=$AGW_PID ;; stock) proxy=$STOCK_PID ;; esac
	p0=$(cputicks "$proxy"); b0=$(cputicks "$BACKEND_PID")
	case $1 in
	direct) out=$(runwrk "https://$BACKEND/v1/chat" "X-Api-Key: $SECRET") ;;
	nginx) out=$(runwrk "https://$HOST:$NGINX_PORT/v1/chat") ;;
	stock) out=$(runwrk "https://$HOST:$STOCK_PORT/v1/chat") ;;
	agw) out=$(runwrk "https://$HOST:$AGW_PORT/v1/chat" "Authorization: Bearer $TOKEN") ;;
	esac
	p1=$(cputicks "$proxy"); b1=$(cputicks "$BACKEND_PID")
	echo "--- $1" >&2
	echo "$out" >&2
	echo "$out" | summarise | awk -v dp=$((p1 - p0)) -v db=$((b1 - b0)) -v us="$TICK_US" -v t="$1" '
		{ n = ($5 > 0 ? $5 : 1); pu = dp * us / n; bu = db * us / n; if (t == "direct") pu = 0
		  printf "%s %s %s %s %.0f %.0f\n", $1, $2, $3, $4, pu, bu }'
}

direct=$(run_target direct)
printf '\n%-6s %-8s %12s %10s %10s %8s %12s %12s\n' round target req/s p50_ms p99_ms non2xx proxy_us/req backend_us/req
read -r rps p50 p99 bad pu bu <<<"$direct"
printf '%-6s %-8s %12s %10s %10s %8s %12s %12s\n' - direct "$rps" "$p50" "$p99" "$bad" - "$bu"
RATIOS=()
STOCKS=()
for round in $(seq 1 "$ROUNDS"); do
	n=$(run_target nginx)
	a=$(run_target agw)
	pairs=("nginx:$n" "agw:$a")
	if [ -n "${STOCK:-}" ]; then
		st=$(run_target stock)
		pairs+=("stock:$st")
		STOCKS+=("$(awk -v n="$n" -v s="$st" 'BEGIN { split(n, N, " "); split(s, S, " "); printf "%.3f", S[1]/N[1] }')")
	fi
	for pair in "${pairs[@]}"; do
		read -r rps p50 p99 bad pu bu <<<"${pair#*:}"
		printf '%-6s %-8s %12s %10s %10s %8s %12s %12s\n' "$round" "${pair%%:*}" "$rps" "$p50" "$p99" "$bad" "$pu" "$bu"
	done
	RATIOS+=("$(awk -v n="$n" -v a="$a" 'BEGIN { split(n, N, " "); split(a, A, " ");
		printf "%.3f %.3f %.3f", A[1]/N[1], A[2]/N[2], A[3]/N[3] }')")
done

echo
printf '%s\n' "${RATIOS[@]}" | awk -v rounds="$ROUNDS" -v backend="$BACKEND_KIND" '
	{ r[NR] = $1; l[NR] = sprintf("req/s %.2fx  p50 %.2fx  p99 %.2fx", $1, $2, $3) }
	END {
		for (i = 1; i <= NR; i++) printf "round %d agw/nginx: %s\n", i, l[i]
		# median round by req/s ratio
		n = NR; for (i = 1; i <= n; i++) idx[i] = i
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[idx[j]] < r[idx[i]]) { t = idx[i]; idx[i] = idx[j]; idx[j] = t }
		m = idx[int((n + 1) / 2)]
		printf "\nagw/nginx, median of %d rounds: %s  (target req/s >= 0.50x; backend: %s)\n", rounds, l[m], backend
	}'
if [ -n "${STOCK:-}" ]; then
	printf '%s\n' "${STOCKS[@]}" | sort -n | awk '{ r[NR] = $1 } END { printf "stock ReverseProxy/nginx, median of %d rounds: req/s %.2fx\n", NR, r[int((NR + 1) / 2)] }'
fi
