#!/usr/bin/env bash
# What a connection holds on the heap: runs `parley serve` under heaptrack, opens CLIENTS idle IRC connections
# with `parley bench` (one sender at one message a second, so each is registered and in #bench), and kills the
# server with SIGKILL while they are all connected, so that what heaptrack reports as leaked is what the server
# held at that moment. Prints the total and the largest holders; divide by CLIENTS (less a run with few
# clients) for the cost of one connection. Installs heaptrack from Debian when it is missing.
#
# Usage: scripts/heap-per-connection.sh [CLIENTS]        (default 1000)   PARLEY=path  another build
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-1000}
command -v heaptrack >/dev/null || { apt-get update -qq && apt-get install -y -qq heaptrack >/dev/null; }
if [ -n "${PARLEY:-}" ]; then parley=$(realpath "$PARLEY"); else swift build -c release --product parley >&2; parley=$PWD/.build/release/parley; fi
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
trap 'pkill -9 -f "^$parley serve --data-dir $work" 2>/dev/null || true; rm -rf "$work"' EXIT
heaptrack -o "$work/heap" "$parley" serve --data-dir "$work" --port 0 --irc-port "$port" --no-http --console off >"$work/log" 2>&1 &
for _ in $(seq 100); do grep -q listening "$work/log" 2>/dev/null && break; sleep 0.2; done
seconds=$((clients / 400 + 8))
timeout $((seconds + 20)) "$parley" bench --protocol irc --port "$port" --clients "$clients" --senders 1 --rate 1 \
    --duration "$seconds" --connect-rate 500 >/dev/null 2>&1 &
bench=$!
sleep $((seconds - 2))
pkill -9 -f "^$parley serve --data-dir $work"
wait "$bench" 2>/dev/null || true
sleep 2
heaptrack_print -f "$work"/heap*.zst --print-leaks 1 --print-peaks 0 --print-allocators 0 --print-temporary 0 \
    --print-histogram 0 --sub-peak-limit 25 2>/dev/null >"$work/report"
grep -E "^total memory leaked" "$work/report"
grep -E "leaked over|at /work|at .*Sources/" "$work/report" | grep -v compiler-generated | head -80
