#!/usr/bin/env bash
# What a connection holds on the heap: runs `parley serve` under heaptrack, opens CLIENTS idle IRC connections
# with `parley bench` (one sender at one message a second, so each is registered and in #bench), and kills the
# server with SIGKILL while they are all connected, so that what heaptrack reports as leaked is what the server
# held at that moment. Prints the total and the largest holders; the difference from a run with few clients,
# divided by the difference in clients, is what one connection costs. Installs heaptrack (and zstd, which it
# compresses with) from Debian when missing.
#
# Usage: scripts/heap-per-connection.sh [CLIENTS]        (default 1000)   PARLEY=path  another build
set -euo pipefail
[ -n "${PARLEY:-}" ] && PARLEY=$(realpath "$PARLEY")
cd "$(dirname "$0")/.."
clients=${1:-1000}
command -v heaptrack >/dev/null && command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq heaptrack zstd >/dev/null; }
if [ -n "${PARLEY:-}" ]; then parley=$PARLEY; else swift build -c release --product parley >&2; parley=$PWD/.build/release/parley; fi
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
heaptrack -o "$work/heap" "$parley" serve --data-dir "$work" --port 0 --irc-port "$port" --no-http --console off >"$work/log" 2>&1 &
tracker=$!
trap 'pkill -9 -P "$tracker" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 150); do grep -Eq ":$port .*listening" "$work/log" 2>/dev/null && break; sleep 0.2; done
grep -Eq ":$port .*listening" "$work/log" || { echo "the server did not start:" >&2; cat "$work/log" >&2; exit 1; }
seconds=$((clients / 400 + 8))
timeout $((seconds + 20)) "$parley" bench --protocol irc --port "$port" --clients "$clients" --senders 1 --rate 1 \
    --duration "$seconds" --connect-rate 500 >"$work/bench" 2>&1 &
bench=$!
sleep $((seconds - 2))
# Every client must be connected when the server dies, or the count per connection is wrong.
connected=$(ss -Htn state established "( sport = :$port )" | wc -l)
echo "connections open at the kill: $connected of $clients"
pkill -9 -P "$tracker"
wait "$tracker" || true
wait "$bench" || true
heaptrack_print -f "$(ls "$work"/heap*.zst "$work"/heap*.gz 2>/dev/null | head -1)" --print-leaks 1 --print-peaks 0 \
    --print-allocators 0 --print-temporary 0 --sub-peak-limit 25 >"$work/report"
grep -E "^total memory leaked" "$work/report"
grep -E "leaked over|at /work|at .*Sources/" "$work/report" | grep -v compiler-generated | head -80 || true
