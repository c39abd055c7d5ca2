#!/usr/bin/env bash
# What durable storage costs: runs the same load against `parley serve --store none` (nothing kept), `--store
# sqlite` (every message in SQLite, fsync'd, before delivery) and `--store postgres` (every message in a
# PostgreSQL database, committed before delivery), alternating, ROUNDS times each, and prints the median of
# each and its ratio to `none`: deliveries/s, messages stored per second (sent / duration), p50 and p99.
#
# Usage: scripts/bench-storage.sh [ROUNDS] [bench flags…]
# Default load: the fan-out ceiling (100 clients in one room, 10 senders as fast as a window of 128 allows).
# Two other loads from issue 17:
#   S1:          scripts/bench-storage.sh 3 --clients 200 --senders 20 --rate 50 --duration 10
#   the log:     scripts/bench-storage.sh 3 --clients 48 --rooms 16 --senders 32 --window 256 --duration 10
#                (16 rooms of two senders and a reader each, so each message is two deliveries: what is
#                measured is how many messages a second the store commits, in batches, one transaction each;
#                16 rooms because one address may create 20 a minute)
# Environment: STORES="none sqlite postgres" (postgres only where PostgreSQL's server is installed: a private
# cluster is made in a temporary folder, listening on a Unix socket there, run as nobody when this runs as root,
# with Debian's defaults: fsync on, synchronous_commit on). PARLEY=path runs that binary instead of building one
# (to compare two builds). STORES may also hold "nodes": two servers on one PostgreSQL database (--node-name a
# and b, issue 17), the bench's clients spread over both (each room's members on both nodes), their CPU and
# memory added up.
set -euo pipefail
[ -n "${PARLEY:-}" ] && PARLEY=$(realpath "$PARLEY")
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
load=("$@")
[ ${#load[@]} -gt 0 ] || load=(--clients 100 --senders 10 --window 128 --duration 10)
pgbin=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -1 || true)
stores=${STORES:-none sqlite${pgbin:+ postgres}}
if [ -n "${PARLEY:-}" ]; then parley=$PARLEY; else swift build -c release --product parley >&2; parley=.build/release/parley; fi
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
chmod 755 "$work"
as_owner=()
cleanup() {
    kill "${server:-}" "${second:-}" 2>/dev/null || true
    [ -d "$work/pg/data" ] && "${as_owner[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if [[ " $stores " == *" postgres "* || " $stores " == *" nodes "* ]]; then
    [ -n "$pgbin" ] || { echo "bench-storage: no PostgreSQL server installed (apt-get install postgresql)" >&2; exit 1; }
    mkdir -p "$work/pg"
    if [ "$(id -u)" -eq 0 ]; then as_owner=(runuser -u nobody --); chown nobody "$work/pg"; fi
    "${as_owner[@]}" "$pgbin/initdb" -D "$work/pg/data" -U parley -A trust -E UTF8 >"$work/initdb.log"
    "${as_owner[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
        -o "-c listen_addresses='' -k $work/pg" start >/dev/null
fi

run() { # store round → one line of numbers
    rm -rf "$work/data" "$work/data2"
    local extra=() store=$1 targets=(--port "$port")
    if [ "$1" = postgres ] || [ "$1" = nodes ]; then
        "${as_owner[@]}" "$pgbin/createdb" -h "$work/pg" -U parley "chat$1$2"
        extra=(--database-url "postgres://parley@/chat$1$2?host=$work/pg")
    fi
    [ "$1" = nodes ] && store=postgres && extra+=(--node-name a)
    "$parley" serve --host 127.0.0.1 --port "$port" --no-irc --no-http --console off --data-dir "$work/data" --store "$store" "${extra[@]}" \
        --flood-burst 100000 --flood-rate 100000 --rooms-per-minute 100000 --log-level warning 2>>"$work/server.log" &
    server=$!
    targets+=(--pid "$server")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    if [ "$1" = nodes ]; then
        extra[${#extra[@]}-1]=b
        "$parley" serve --host 127.0.0.1 --port $((port + 1)) --no-irc --no-http --console off --data-dir "$work/data2" --store postgres \
            "${extra[@]}" --flood-burst 100000 --flood-rate 100000 --rooms-per-minute 100000 --log-level warning 2>>"$work/server.log" &
        second=$!
        targets+=(--port $((port + 1)) --pid "$second")
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null && break; sleep 0.1; done
    fi
    # (run is a subshell: it must stop its own servers whatever happens; the main script only sees no output.)
    if ! "$parley" bench "${targets[@]}" --json "${load[@]}" 2>"$work/bench.err" >"$work/$1.json"; then
        kill "$server" ${second:-}; wait "$server" ${second:-} 2>/dev/null || true
        echo "bench-storage: the bench failed against --store $1: $(tail -3 "$work/bench.err")" >&2
        exit 1
    fi
    kill "$server" ${second:-}; wait "$server" ${second:-} 2>/dev/null || true
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["deliveriesPerSecond"], r["sent"] / r["durationSeconds"], r["lost"], r["latencyMs"]["p50"], r["latencyMs"]["p99"], r["server"]["cpuSeconds"])
' "$work/$1.json"
}

declare -A results
for round in $(seq "$rounds"); do
    for store in $stores; do
        read -r rate stored lost p50 p99 cpu < <(run "$store" "$round")
        echo "round $round  --store $store  deliveries/s $rate  stored/s $stored  lost $lost  p50 $p50 ms  p99 $p99 ms  server CPU $cpu s" >&2
        results[$store]+="$rate,$stored,$lost,$p50,$p99 "
    done
done
args=()
for store in $stores; do args+=("$store=${results[$store]}"); done
python3 - "${args[@]}" <<'PY'
import statistics, sys
rows = {}
for arg in sys.argv[1:]:
    store, runs = arg.split("=", 1)
    runs = [[float(v) for v in run.split(",")] for run in runs.split()]
    rows[store] = [statistics.median(column) for column in zip(*runs)] + [max(run[2] for run in runs)]
base = rows.get("none")
print("| store | deliveries/s | messages stored/s | lost (worst round) | p50 ms | p99 ms | deliveries vs none |")
print("|---|---:|---:|---:|---:|---:|---:|")
for store, (rate, stored, _, p50, p99, lost) in rows.items():
    ratio = f"{rate / base[0]:.3f}" if base else "—"
    print(f"| {store} | {rate:,.0f} | {stored:,.0f} | {lost:.0f} | {p50:.2f} | {p99:.2f} | {ratio} |")
PY
