#!/usr/bin/env bash
# What durable storage costs the fan-out: runs the same load against `parley serve --store sqlite` (every
# message in SQLite, fsync'd, before delivery) and `--store none`, alternating, ROUNDS times each, and prints
# the median deliveries/s of each and their ratio. Usage: scripts/bench-storage.sh [ROUNDS] [bench flags…]
# Default load: the fan-out ceiling (100 clients in one room, 10 senders as fast as a window of 128 allows).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
load=("$@")
[ ${#load[@]} -gt 0 ] || load=(--clients 100 --senders 10 --window 128 --duration 10)
swift build -c release --product parley >&2
parley=.build/release/parley
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # store → deliveries/s of one round
    rm -rf "$work/data"
    "$parley" serve --host 127.0.0.1 --port "$port" --no-http --console off --data-dir "$work/data" --store "$1" \
        --flood-burst 100000 --flood-rate 100000 --log-level warning 2>>"$work/server.log" &
    server=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    "$parley" bench --port "$port" --pid "$server" --json "${load[@]}" 2>/dev/null >"$work/$1.json"
    kill "$server"; wait "$server" 2>/dev/null || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["deliveriesPerSecond"], r["lost"], r["latencyMs"]["p99"], r["server"]["cpuSeconds"])' "$work/$1.json"
}

declare -A rates
for round in $(seq "$rounds"); do
    for store in none sqlite; do
        read -r rate lost p99 cpu < <(run "$store")
        echo "round $round  --store $store  deliveries/s $rate  lost $lost  p99 ${p99} ms  server CPU ${cpu} s" >&2
        rates[$store]+="$rate "
    done
done
python3 - "${rates[none]}" "${rates[sqlite]}" <<'PY'
import statistics, sys
none = [float(x) for x in sys.argv[1].split()]
sqlite = [float(x) for x in sys.argv[2].split()]
a, b = statistics.median(none), statistics.median(sqlite)
print(f"median deliveries/s: --store none {a:,.0f}, --store sqlite {b:,.0f}; sqlite/none = {b / a:.3f}")
PY
