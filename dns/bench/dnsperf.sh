#!/usr/bin/env bash
# Compare agw's DNS handler with a bare miekg server answering the same
# record, with dnsperf. Prints queries/s of each and the agw/bare ratio.
#   dns/bench/dnsperf.sh [seconds]      (default 10)
# Server and dnsperf are pinned to different cores with taskset.
set -euo pipefail

secs=${1:-10}
port=${PORT:-18053}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

if ! command -v dnsperf >/dev/null; then
	echo "installing dnsperf" >&2
	apt-get install -y dnsperf >/dev/null || { apt-get update >/dev/null && apt-get install -y dnsperf >/dev/null; }
fi

(cd "$here/.." && go build -o "$work/benchserver" ./internal/benchserver)
echo "api.openai.com A" >"$work/queries"

run() {
	local mode=$1
	taskset -c "$server_cpu" "$work/benchserver" --mode "$mode" --port "$port" &
	server_pid=$!
	# Wait until the server answers rather than for a fixed time.
	for _ in $(seq 100); do
		if dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -n 1 -t 1 2>&1 | grep -q 'Queries completed: *1 '; then break; fi
	done
	taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l "$secs" -c 4 -q 200 \
		>"$work/$mode.out" 2>&1
	kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
	local lost
	lost=$(awk '/Queries lost:/ {print $3}' "$work/$mode.out")
	awk '/Queries per second:/ {print $4}' "$work/$mode.out" | tee "$work/$mode.qps" >/dev/null
	echo "$mode: $(cat "$work/$mode.qps") queries/s (lost $lost)"
}

run bare
run agw
awk -v a="$(cat "$work/agw.qps")" -v b="$(cat "$work/bare.qps")" 'BEGIN { printf "agw/bare: %.3f\n", a / b }'
