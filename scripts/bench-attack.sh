#!/usr/bin/env bash
# What one hostile client costs everyone else: runs the same load against a fresh `parley serve` (release build,
# every message stored in SQLite) without an attacker, then with each `parley bench --attack` in turn, and prints
# each run's latency next to the unattacked run's, as ratios. Flood control is relaxed for everyone, the
# attacker included (--flood-burst 100000 --flood-rate 100000): the worst case, where nothing paces it.
# Usage: scripts/bench-attack.sh [ATTACK…]   (default: mode targets history slow)
# Load: 200 IRC clients in one room, 20 senders × 10 msg/s, 15 s (change with LOAD="…").
set -euo pipefail
cd "$(dirname "$0")/.."
attacks=("$@")
[ ${#attacks[@]} -gt 0 ] || attacks=(mode targets history slow)
read -r -a load <<<"${LOAD:---clients 200 --senders 20 --rate 10 --duration 15}"
swift build -c release --product parley >&2
# PARLEY=path serves with another build (an older commit's, to compare); the bench is always this tree's.
parley=${PARLEY:-.build/release/parley}
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

run() { # attack (or none) → one line of numbers
    rm -rf "$work/data"
    "$parley" serve --host 127.0.0.1 --port $((port + 1)) --irc-port "$port" --no-http --console off --data-dir "$work/data" \
        --flood-burst 100000 --flood-rate 100000 --log-level warning 2>>"$work/server.log" &
    server=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    local attack=()
    [ "$1" = none ] || attack=(--attack "$1")
    .build/release/parley bench --port "$port" --protocol irc --pid "$server" --json "${load[@]}" "${attack[@]}" 2>/dev/null >"$work/$1.json"
    kill "$server"; wait "$server" 2>/dev/null || true
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); l = r["latencyMs"]; a = r.get("attack") or {}
print(r["lost"], l["p50"], l["p99"], l["max"], r["server"]["cpuSeconds"], a.get("lines", 0), a.get("connections", 0))' "$work/$1.json"
}

read -r lost p50 p99 max cpu _ _ < <(run none)
echo "none: lost $lost, latency p50 $p50 ms, p99 $p99 ms, max $max ms, server CPU $cpu s" >&2
base=("$p50" "$p99" "$max")
printf '| attack | attacker lines (connections) | lost | p50 ms | p99 ms | max ms | p99 / unattacked | max / unattacked |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
printf '| none | | %s | %s | %s | %s | 1.00 | 1.00 |\n' "$lost" "$p50" "$p99" "$max"
for attack in "${attacks[@]}"; do
    read -r lost p50 p99 max cpu lines connections < <(run "$attack")
    echo "$attack: lost $lost, latency p50 $p50 ms, p99 $p99 ms, max $max ms, server CPU $cpu s, $lines lines over $connections connections" >&2
    python3 -c 'import sys; a=sys.argv; print(f"| {a[1]} | {int(a[2]):,} ({a[3]}) | {a[4]} | {float(a[5]):.2f} | {float(a[6]):.2f} | {float(a[7]):.2f} | {float(a[6])/float(a[9]):.2f} | {float(a[7])/float(a[10]):.2f} |")' \
        "$attack" "$lines" "$connections" "$lost" "$p50" "$p99" "$max" "${base[0]}" "${base[1]}" "${base[2]}"
done
