#!/usr/bin/env bash
# Parley's IRC front door against ngIRCd and ergo (issues #6 and 18): the same `parley bench --protocol irc` load
# against a fresh `parley serve`, a fresh ngIRCd and a fresh ergo per scenario, Parley first, then a table of all
# and Parley's ratio to each.
#
# Usage: scripts/bench-compare.sh [S1 S2 S3 S4 …]        (default: all four)
# Environment:
#   DURATION=10            seconds of sending in S1–S3          S4_DURATION=60   seconds of sending in S4
#   SERVERS="parley ngircd ergo"  which servers to run          RESULTS=dir      where raw results go
#   ERGO_MAX_SENDQ=16m     ergo's max-sendq (default: its own 96k; see below)
#   ERGO_SRC=dir           a checkout of ergo (v2.11.1 was measured): built with `go build -mod=vendor` when Go is
#                          installed (Debian's golang-go, 1.19, builds v2.11.1); without it, or without Go, ergo
#                          is skipped with a line that says why. Its default.yaml is the base of its config.
#   S3_CONNECT_RATE=25     new connections/s in S3 (both servers; see "Connecting and joining" below)
#   S4_CONNECT_RATE=100    new connections/s in S4              S4_ROOMS=100     rooms the 10,000 clients fill
#   PARLEY_SERVE_ARGS=""   extra `parley serve` flags (e.g. "--store none", "--send-queue-bytes 1048576")
#   SKIP_BUILD=1           use .build/release/parley as it is
#   PARLEY=path            the parley whose server is measured (default .build/release/parley), e.g. an older
#                          build for a before/after; the load always comes from .build/release/parley's bench.
#                          A wrapper script must `exec` the server: the bench reads the CPU and RSS of its pid
#
# Scenarios (issue #6), all on 127.0.0.1, 64-byte payloads:
#   S1  200 clients, one room, 20 senders × 50 msg/s                      (a fixed, moderate load)
#   S2  100 clients, one room, 10 senders as fast as a window of 128 allows (the fan-out ceiling)
#   S3  2,000 clients, one room, 5 senders × 20 msg/s                     (memory per connection)
#   S4  10,000 connections held for S4_DURATION s, spread over S4_ROOMS rooms, 5 senders × 20 msg/s
#
# Raw results land in bench-results/<UTC time>/ (ignored by git): each run's `parley bench --json` report
# (<scenario>-<server>.json), what the script itself read from /proc (<scenario>-<server>.server.json: the
# server's CPU over its whole life, so including the joins, and its RSS when idle), the bench's progress
# output, the servers' logs (ngIRCd's filtered: it logs every connection), ngircd.conf, meta.txt (machine,
# versions, exact commands) and the table (summary.txt, summary.md). A scenario that fails on one server
# is shown as "failed" with the bench's last words, and the others still run.
#
# Only limits that would make a server refuse or pace the load are relaxed, on both sides alike:
#   Parley: --flood-burst 100000 --flood-rate 100000 (flood control off, as in bench-storage.sh), and
#     --rooms-per-minute 100000 (S4's 100 rooms are all made from 127.0.0.1, past the default 20 a minute). Everything
#     else is the default: history on, every message stored in SQLite (fsync'd) before delivery, which
#     ngIRCd does not do at all; a slow reader is dropped past --send-queue-bytes (128 KiB) plus a kernel
#     send buffer pinned at 64 KiB.
#   ngIRCd (config written per run, every line commented there too):
#     Listen = 127.0.0.1, Ports = a free random port: loopback only, never the 6667 of a system ngircd.
#     PidFile, ChrootDir empty; runs in the foreground (--nodaemon --passive). Started as root it switches
#       to "nobody" by itself (it refuses to run as root); otherwise it stays the current user.
#     IncludeDir = an empty folder, so /etc/ngircd/ngircd.conf.d/ snippets cannot change the test.
#     MotdPhrase set: without a MOTD, ngIRCd answers registration with 422 ERR_NOMOTD, which the bench
#       takes as a refusal ("pb0 was refused: … 422 pb0 :MOTD file is missing") and gives up.
#     [Limits] MaxConnections = 0 (no limit; Debian's sample config says 500).
#              MaxConnectionsIP = 0 (default 5: every bench client comes from 127.0.0.1).
#              MaxJoins = 0 (default 10 channels per user; the bench joins one, so only for safety).
#              MaxNickLength = 30 (default 9; bench nicks pb0…pb9999 fit anyway).
#              MaxPenaltyTime = 0: ngIRCd's flood protection. Without it a client that sends more than 3
#                commands in one pass of ngIRCd's main loop, or more than 256 bytes in a second, is
#                ignored for a 1 s "penalty": measured here, 20 PRIVMSGs sent at once took 6.0 s to reach
#                the room and 128 took 43 s, i.e. every sender is held to ~3 messages/s. 0 disables
#                penalties (ngIRCd warns "not recommended" at start; expected); then 5,000 PRIVMSGs
#                written at once reached the room in 9 ms.
#              PingTimeout = PongTimeout = 3600: no PING rounds within a run (defaults 120/20 s; the bench
#                answers PINGs anyway). PongTimeout is also how long an unregistered connection may idle.
#              MaxListSize is left alone (LIST is never sent). ConnectRetry is for server links: unused.
#     [Options] PAM = no (Debian's build defaults to yes: every login would go through PAM), Ident = no
#              (an IDENT query back to each client), DNS = no (a reverse lookup in a forked resolver per
#              connection). Parley does none of these either.
#   ergo (its default.yaml, changed per run with PyYAML): one listener, 127.0.0.1 on a free port (no TLS, no
#     [::1]); ip-limits count and throttle off (all clients are 127.0.0.1, which ergo exempts anyway as
#     "localhost"); fakelag off (ergo's flood control: 2 messages/s after a burst of 5); no MOTD file; the
#     datastore in the run's folder; logging at warn. History stays on (ergo's in-memory default), lookups
#     and ident stay off (its defaults). max-sendq stays at its 96k unless ERGO_MAX_SENDQ says otherwise: at
#     96k ergo drops most of S2's readers ("SendQ exceeded"; 93 % of deliveries lost in an 8 s run here), so
#     S2 is run with ERGO_MAX_SENDQ=16m to measure its fan-out rather than its drops (docs/PERFORMANCE.md).
#   What ngIRCd cannot relax (compile-time constants of 26.x, no option): its send queue per client is
#     32 KiB (WRITEBUFFER_MAX_LEN; past it "Write buffer space exhausted" and a disconnect, seen here with a
#     reader that stopped reading) on top of a kernel send buffer that Linux auto-tunes up to
#     net.ipv4.tcp_wmem's maximum (4 MiB here); its listen backlog is 10. So Parley's --send-queue-bytes
#     is left at its default, not raised to match: there is no knob on ngIRCd's side to match.
#
# Connecting and joining, and why S3 and S4 connect slowly (the same rate for both servers):
#   ngIRCd accepts one connection per pass of its single-threaded main loop, and every pass walks all
#   connections, so its accept rate falls as connections grow (at ~6,000 connections: ~275 passes/s);
#   beyond that, SYNs overflow its backlog of 10 and the bench's 10 s connect timeout ends the run. It
#   also finds a member's channel modes by walking the list of all memberships on the server (Get_Cl2Chan:
#   a third of its CPU while clients join), once per member for each NAMES reply, so a join into an
#   n-member room costs it O(n * all memberships). Measured on this 2-core machine (shared with a
#   compiler): 2,000 clients into one room failed at 50, 100, 200 and 1,000 connections/s and worked at 25;
#   10,000 clients failed at 500/s (over 100 or 1,000 rooms) and worked at 100/s (100 rooms, 100 s).
#   Parley puts every new IRC client into #general before it joins anything (as it does for every
#   client), and echoes each arrival to everyone there: in every scenario all clients share #general too,
#   so in S4 Parley is filling a 10,000-member room. At 100/s it fell behind (CPU-bound at one core from
#   the first thousand clients on, mostly ChatHub.register's join of #general and one write() per member
#   for each JOIN line) and the run failed at client ~5,700 on a connect timeout.
#   The bench counts an IRC client as in its room on the first 366 (end of NAMES) it sees, whichever
#   channel it is for: against Parley that is #general's, so Parley's "connect+join" time ends before
#   the JOIN of the bench's room is answered.
#
# The two cores are shared by the server and the bench; the bench reports its own CPU. Compare numbers from
# one run of this script, not across runs.
set -euo pipefail
# A relative PARLEY names a file from where the script was started, not from the repository.
if [ -n "${PARLEY:-}" ]; then PARLEY=$(realpath "$PARLEY"); fi
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin" # where Debian puts ngircd, often missing from a user's PATH

DURATION=${DURATION:-10}
S4_DURATION=${S4_DURATION:-60}
S3_CONNECT_RATE=${S3_CONNECT_RATE:-25}
S4_CONNECT_RATE=${S4_CONNECT_RATE:-100}
S4_ROOMS=${S4_ROOMS:-100}
SERVERS=${SERVERS:-parley ngircd ergo}
PARLEY_SERVE_ARGS=${PARLEY_SERVE_ARGS:-}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(S1 S2 S3 S4)

# The bench flags of each scenario; the bench's own defaults otherwise (connect rate 1000/s, drain 5 s).
load() {
    case "$1" in
    S1) echo "--clients 200 --senders 20 --rate 50 --payload 64 --duration $DURATION" ;;
    S2) echo "--clients 100 --senders 10 --window 128 --payload 64 --duration $DURATION" ;;
    S3) echo "--clients 2000 --senders 5 --rate 20 --payload 64 --duration $DURATION --connect-rate $S3_CONNECT_RATE" ;;
    S4) echo "--clients 10000 --rooms $S4_ROOMS --senders 5 --rate 20 --payload 64 --duration $S4_DURATION --connect-rate $S4_CONNECT_RATE" ;;
    *) return 1 ;;
    esac
}
for s in "${scenarios[@]}"; do load "$s" >/dev/null || { echo "unknown scenario $s (S1 S2 S3 S4)" >&2; exit 2; }; done
for s in $SERVERS; do [[ $s == parley || $s == ngircd || $s == ergo ]] || { echo "unknown server $s (parley ngircd ergo)" >&2; exit 2; }; done

if [ -z "${SKIP_BUILD:-}" ]; then swift build -c release --product parley >&2; fi
bench=.build/release/parley
parley=${PARLEY:-$bench}
[ -x "$bench" ] || { echo "$bench is missing (build it, or unset SKIP_BUILD)" >&2; exit 1; }
[ -x "$parley" ] || { echo "PARLEY=$parley is not an executable" >&2; exit 1; }

# ngIRCd from Debian. Installing it may start the packaged service on port 6667 (all addresses): harmless
# here (this script never uses 6667), but it is idle load we caused, so stop it again.
if [[ " $SERVERS " == *" ngircd "* ]] && ! command -v ngircd >/dev/null; then
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        if sudo -n true 2>/dev/null; then SUDO=sudo; else echo "ngircd is missing and I cannot install it (not root, no passwordless sudo)" >&2; exit 1; fi
    fi
    $SUDO apt-get update >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y ngircd >&2
    if [ -s /run/ngircd/ngircd.pid ] && kill -0 "$(cat /run/ngircd/ngircd.pid)" 2>/dev/null; then
        echo "stopping the ngircd service the package just started" >&2
        $SUDO systemctl stop ngircd 2>/dev/null || $SUDO service ngircd stop 2>/dev/null || true
    fi
fi
if [[ " $SERVERS " == *" ngircd "* ]] && pgrep -x ngircd >/dev/null; then
    echo "note: an ngircd is already running (pid $(pgrep -x ngircd | tr '\n' ' ')); it is left alone, and its idle CPU is shared with the runs" >&2
fi

# ergo from source, when there is a checkout and a Go toolchain; skipped otherwise, and said.
ergo=
if [[ " $SERVERS " == *" ergo "* ]]; then
    if [ -z "${ERGO_SRC:-}" ] || [ ! -f "$ERGO_SRC/default.yaml" ]; then
        echo "ergo skipped: set ERGO_SRC to a checkout of github.com/ergochat/ergo (v2.11.1 was measured)" >&2
    elif [ -x "$ERGO_SRC/ergo" ]; then
        ergo="$ERGO_SRC/ergo"
    elif ! command -v go >/dev/null; then
        echo "ergo skipped: no Go toolchain to build $ERGO_SRC (apt-get install golang-go)" >&2
    elif (cd "$ERGO_SRC" && go build -mod=vendor -o ergo . >&2); then
        ergo="$ERGO_SRC/ergo"
    else
        echo "ergo skipped: go build failed in $ERGO_SRC" >&2
    fi
    if [ -n "$ergo" ] && ! python3 -c 'import yaml' 2>/dev/null; then
        echo "ergo skipped: PyYAML is missing (pip install pyyaml), which writes its config" >&2
        ergo=
    fi
    [ -n "$ergo" ] || SERVERS=$(tr ' ' '\n' <<<"$SERVERS" | grep -vx ergo | tr '\n' ' ')
fi

# 10,000 connections need 10,000 descriptors in the bench and in the server (both inherit this limit).
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then ulimit -n 65536; else ulimit -n "$hard"; fi
if [[ " ${scenarios[*]} " == *" S4 "* ]] && [ "$(ulimit -n)" -lt 10500 ]; then
    echo "warning: ulimit -n is $(ulimit -n) (hard limit $hard); S4 needs about 10,500" >&2
fi

results=${RESULTS:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$results"
work=$(mktemp -d)
server=
filter=
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -KILL "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

free_ports() { # N → N free TCP ports on 127.0.0.1
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

proc_sample() { # pid → "cpu_seconds rss_kib peak_rss_kib" from /proc
    python3 -c '
import os, sys
pid = sys.argv[1]
stat = open(f"/proc/{pid}/stat").read()
fields = stat[stat.rindex(")") + 2:].split()
cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
kib = lambda k: int(status.get(k, "0 kB").split()[0])
print(cpu, kib("VmRSS"), kib("VmHWM"))' "$1"
}

wait_port() { # port → waits until it accepts, or fails after 10 s or when the server died
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$server" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

stop_server() { # TERM, then KILL after 30 s (ngIRCd says goodbye to every remaining client one by one)
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
    if [ -n "$filter" ]; then wait "$filter" 2>/dev/null || true; filter=; fi
}

write_ngircd_conf() { # file port includedir
    cat >"$1" <<EOF
# Written by scripts/bench-compare.sh for one benchmark run; see the comment at the top of that script.
[Global]
	Name = ngircd.bench
	Info = parley bench-compare
	AdminInfo1 = bench
	AdminInfo2 = bench
	AdminEMail = bench@localhost
	# Loopback only, on a free random port (never a system ngircd's 6667).
	Listen = 127.0.0.1
	Ports = $2
	# Without a MOTD ngIRCd sends 422 ERR_NOMOTD after 001, which parley bench reads as a refusal.
	MotdPhrase = parley bench-compare
	# No PID file; the server runs in the foreground under the script's control.
	PidFile =
$( [ "$(id -u)" -ne 0 ] && printf '\t# Stay the current user (as root, ngIRCd switches to "nobody" by itself).\n\tServerUID = %s\n\tServerGID = %s\n' "$(id -u)" "$(id -g)" )
[Limits]
	# No limit on connections at all, nor per address (default 5; all bench clients are 127.0.0.1).
	MaxConnections = 0
	MaxConnectionsIP = 0
	# No limit on channels per user (default 10; the bench joins one).
	MaxJoins = 0
	# Nicks up to 30 characters (default 9; bench nicks are pb0…pb9999).
	MaxNickLength = 30
	# Flood protection off: no penalty seconds. Otherwise a client sending more than 3 commands per main-loop
	# pass or 256 bytes/s is ignored for 1 s at a time: ~3 messages/s per sender.
	MaxPenaltyTime = 0
	# No PING rounds during a run (defaults 120 and 20 s).
	PingTimeout = 3600
	PongTimeout = 3600
[Options]
	# Only the files given here: no /etc/ngircd/ngircd.conf.d/ snippets.
	IncludeDir = $3
	# No chroot, no PAM (Debian's default is yes), no IDENT or reverse-DNS lookups per connection.
	ChrootDir =
	PAM = no
	Ident = no
	DNS = no
EOF
}

write_ergo_conf() { # file port dir: ergo's default.yaml, with what the header of this script says changed
    python3 - "$ERGO_SRC/default.yaml" "$1" "$2" "$3" <<'PY'
import os, sys, yaml
source, target, port, folder = sys.argv[1:]
config = yaml.safe_load(open(source))
server = config["server"]
server["name"] = "ergo.bench"
server["listeners"] = {f"127.0.0.1:{port}": None}
server["sts"]["enabled"] = False
server["motd"] = ""
server["ip-limits"]["count"] = False
server["ip-limits"]["throttle"] = False
server["lookup-hostnames"] = False
server["check-ident"] = False
config["fakelag"]["enabled"] = False
config["languages"]["enabled"] = False  # translations: a folder relative to where ergo runs, and not needed
if os.environ.get("ERGO_MAX_SENDQ"):
    server["max-sendq"] = os.environ["ERGO_MAX_SENDQ"]
config["datastore"]["path"] = f"{folder}/ircd.db"
config["logging"] = [{"method": "stderr", "type": "* -userinput -useroutput", "level": "warn"}]
yaml.safe_dump(config, open(target, "w"))
PY
}

start_server() { # kind dir → sets server (pid) and port; the server's idle RSS goes to dir/idle
    local kind=$1 dir=$2
    mkdir -p "$dir"
    if [ "$kind" = parley ]; then
        local ports
        read -r -a ports < <(free_ports 2)
        port=${ports[1]}
        # shellcheck disable=SC2086 # PARLEY_SERVE_ARGS is a list of flags
        "$parley" serve --host 127.0.0.1 --port "${ports[0]}" --irc-port "$port" --no-http --console off \
            --data-dir "$dir/data" --log-level warning --flood-burst 100000 --flood-rate 100000 --rooms-per-minute 100000 \
            $PARLEY_SERVE_ARGS >"$dir/server.log" 2>&1 &
        server=$!
        echo "$parley serve --host 127.0.0.1 --port ${ports[0]} --irc-port $port --no-http --console off --data-dir DIR --log-level warning --flood-burst 100000 --flood-rate 100000 --rooms-per-minute 100000 $PARLEY_SERVE_ARGS" >"$dir/command"
    elif [ "$kind" = ergo ]; then
        port=$(free_ports 1)
        write_ergo_conf "$dir/ircd.yaml" "$port" "$dir"
        # In its own folder: ergo writes its lock file (ircd.lock) where it runs.
        (cd "$dir" && "$ergo" initdb --conf ircd.yaml --quiet) >"$dir/server.log" 2>&1
        (cd "$dir" && exec "$ergo" run --conf ircd.yaml --quiet) >>"$dir/server.log" 2>&1 &
        server=$!
        echo "ergo run --conf ircd.yaml ($(cd "$ERGO_SRC" && git describe --tags 2>/dev/null || echo "version unknown"))" >"$dir/command"
    else
        port=$(free_ports 1)
        mkdir -p "$dir/conf.d"
        write_ngircd_conf "$dir/ngircd.conf" "$port" "$dir/conf.d"
        # ngIRCd logs every connection, registration and disconnect to stdout when not a daemon (over 100 MB
        # when 2,000 clients leave one room): keep what matters and count the rest by kind.
        mkfifo "$dir/log.fifo"
        awk '
            /Shutting down connection [0-9]+ \(/ { match($0, /\(([^)]*)\)/); why[substr($0, RSTART + 1, RLENGTH - 2)]++ }
            /Accepted connection|registered \(connection|Shutting down connection|closed \(in:|is closing connection|Write error on connection/ { routine++; next }
            { if (++kept <= 300) print; fflush() }
            END {
                print "[bench-compare] " routine + 0 " routine lines (connects, registrations, disconnects) not kept; disconnects by cause:"
                for (w in why) print "[bench-compare]   " why[w] "  " w
            }' <"$dir/log.fifo" >"$dir/server.log" &
        filter=$!
        ngircd --nodaemon --passive --config "$dir/ngircd.conf" >"$dir/log.fifo" 2>&1 &
        server=$!
        echo "ngircd --nodaemon --passive --config ngircd.conf" >"$dir/command"
    fi
    if ! wait_port "$port"; then
        echo "$kind did not start listening; its log:" >&2
        tail -20 "$dir/server.log" >&2
        return 1
    fi
    sleep 0.5
    proc_sample "$server" >"$dir/idle"
}

run() { # scenario kind → results/<scenario>-<kind>.{json,server.json,bench.log,server.log}
    local scenario=$1 kind=$2 dir="$work/$1-$2" name="$results/$1-$2" flags
    flags=$(load "$scenario")
    rm -f "$name.failed"
    if ! start_server "$kind" "$dir"; then
        echo "$kind did not start" >"$name.failed"
        stop_server
        return
    fi
    read -r -a args <<<"$flags"
    # Generous: connecting at the given rate, the bench's 30 s join timeout, sending, 5 s drain, margin.
    local clients rate limit
    clients=$(sed -n 's/.*--clients \([0-9]*\).*/\1/p' <<<"$flags")
    rate=$(sed -n 's/.*--connect-rate \([0-9]*\).*/\1/p' <<<"$flags")
    limit=$(python3 -c "import sys; print(int(sys.argv[1]) // int(sys.argv[2] or 1000) + int(float(sys.argv[3])) + 120)" "$clients" "$rate" "${DURATION}" )
    [ "$scenario" != S4 ] || limit=$((limit + S4_DURATION))
    echo "$scenario $kind: parley bench --protocol irc --port $port --pid $server $flags" >&2
    local status=0
    timeout --signal=INT "$limit" "$bench" bench --protocol irc --host 127.0.0.1 --port "$port" --pid "$server" --json "${args[@]}" \
        >"$name.json" 2>"$name.bench.log" || status=$?
    local sample
    if [ -s "$name.json" ] && [ "$status" -eq 0 ] && sample=$(proc_sample "$server" 2>/dev/null); then
        read -r cpu rss hwm <<<"$sample"
        read -r idle_cpu idle_rss _ <"$dir/idle"
        printf '{"cpuSecondsTotal": %s, "cpuSecondsAtIdle": %s, "rssKiB": %s, "peakRssKiB": %s, "idleRssKiB": %s}\n' \
            "$cpu" "$idle_cpu" "$rss" "$hwm" "$idle_rss" >"$name.server.json"
    else
        kill -0 "$server" 2>/dev/null || status="$status; the server had exited"
        { echo "exit status $status"; tail -3 "$name.bench.log"; } >"$name.failed"
        rm -f "$name.json"
        echo "$scenario $kind failed: $(tail -1 "$name.bench.log")" >&2
    fi
    stop_server
    cp "$dir/server.log" "$name.server.log"
    echo "$scenario $kind: $(cat "$dir/command")" >>"$results/commands.txt"
    [ ! -f "$dir/ngircd.conf" ] || cp "$dir/ngircd.conf" "$results/ngircd.conf"
    [ ! -f "$dir/ircd.yaml" ] || cp "$dir/ircd.yaml" "$results/ergo.yaml"
    rm -rf "$dir"
    sleep 2 # let the sockets of the last run wind down
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "parley: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' (Sources modified)')"
    [ "$parley" = "$bench" ] || echo "parley server measured: $parley, sha256 $(sha256sum "$parley" | cut -c1-16) (the bench: $bench)"
    command -v ngircd >/dev/null && echo "ngircd: $(ngircd --version 2>/dev/null | head -1)"
    [ -z "$ergo" ] || echo "ergo: $("$ergo" --version 2>/dev/null | head -1)"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "ulimit -n: $(ulimit -n); tcp_wmem: $(cat /proc/sys/net/ipv4/tcp_wmem 2>/dev/null | tr '\t' ' ')"
    echo "servers: $SERVERS; PARLEY_SERVE_ARGS: ${PARLEY_SERVE_ARGS:-(none)}"
    for s in "${scenarios[@]}"; do echo "$s: parley bench --protocol irc $(load "$s")"; done
} >"$results/meta.txt"

for scenario in "${scenarios[@]}"; do
    for kind in $SERVERS; do run "$scenario" "$kind"; done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/meta.txt"

python3 - "$results" "$SERVERS" "${scenarios[@]}" <<'PY'
import json, os, sys

results, servers, scenarios = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
names = {"parley": "Parley", "ngircd": "ngIRCd", "ergo": "ergo"}
others = [s for s in servers if s != "parley"]

def load(scenario, server):
    base = os.path.join(results, f"{scenario}-{server}")
    if os.path.exists(base + ".json"):
        report = json.load(open(base + ".json"))
        extra = json.load(open(base + ".server.json")) if os.path.exists(base + ".server.json") else {}
        return report, extra, None
    if os.path.exists(base + ".failed"):
        return None, None, open(base + ".failed").read().strip().splitlines()[-1]
    return None, None, "not run"

# (label, function of report and extra, digits, higher is better?)
# (label, value from the bench's report r and the script's own /proc samples e, digits); a missing key: "-".
metrics = [
    ("connect+join s", lambda r, e: r["connect"]["seconds"], 1),
    ("deliveries/s", lambda r, e: r["deliveriesPerSecond"], 0),
    ("lost", lambda r, e: r["lost"], 0),
    ("latency p50 ms", lambda r, e: r["latencyMs"]["p50"], 2),
    ("latency p99 ms", lambda r, e: r["latencyMs"]["p99"], 2),
    ("server CPU-s", lambda r, e: r["server"]["cpuSeconds"], 2),
    ("deliveries/server CPU-s", lambda r, e: r["serverDeliveriesPerCPUSecond"], 0),
    ("server CPU-s incl. joins", lambda r, e: e["cpuSecondsTotal"] - e["cpuSecondsAtIdle"], 2),
    ("server RSS MiB", lambda r, e: r["server"]["rssMiB"], 1),
    ("RSS/connection KiB", lambda r, e: r["server"]["rssMiB"] * 1024 / r["clients"], 1),
    ("  above idle KiB", lambda r, e: (e["rssKiB"] - e["idleRssKiB"]) / r["clients"], 1),
    ("bench CPU-s", lambda r, e: r["bench"]["cpuSeconds"], 2),
    ("bench ns/delivery", lambda r, e: r["benchNanosecondsPerDelivery"], 1),
]

def fmt(value, digits):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"

rows = []
notes = []
for scenario in scenarios:
    runs = {s: load(scenario, s) for s in servers}
    first = next((r for r, _, _ in runs.values() if r), None)
    if first:
        load_text = f"{first['clients']:,} clients, {first['rooms']} room{'s' if first['rooms'] > 1 else ''}, {first['senders']} senders " + (
            f"× {first['rate']:g} msg/s" if first.get("rate") else f"window {first.get('window')}") + f", {first['durationSeconds']:g} s"
    else:
        load_text = ""
    rows.append((f"{scenario}  {load_text}", ""))
    for server, (report, extra, failure) in runs.items():
        if failure and failure != "not run":
            notes.append(f"{scenario} {server} failed: {failure}")
    for label, get, digits in metrics:
        values = {}
        for server, (report, extra, failure) in runs.items():
            try:
                values[server] = get(report, extra) if report else None
            except (KeyError, TypeError, ZeroDivisionError):
                values[server] = None
        cells = [fmt(values[s], digits) if runs[s][0] else ("failed" if runs[s][2] != "not run" else "-") for s in servers]
        a = values.get("parley")
        ratios = [f"{a / values[o]:.2f}" if a is not None and values[o] not in (None, 0) else "-" for o in others]
        rows.append(("", label, *cells, *ratios))

header = ["scenario", "metric"] + [names[s] for s in servers] + [f"Parley/{names[o]}" for o in others]
lines = []
lines.append(f"{header[0]:<12}  {header[1]:<26}" + "".join(f"{h:>15}" for h in header[2:]))
for r in rows:
    if r[1] == "":
        lines.append(r[0])
    else:
        lines.append(f"{'':<12}  {r[1]:<26}" + "".join(f"{c:>15}" for c in r[2:]))
lines += notes
lines.append("Server CPU-s, deliveries/server CPU-s, RSS: over the sending window and drain, as parley bench reports them;")
lines.append("'incl. joins': the server's CPU from idle to the end of the run; 'above idle': (RSS at the end - RSS before")
lines.append("the first client) / clients. Latency is end to end, bench to bench. The bench and the server share the cores.")
text = "\n".join(lines)
print(text)
open(os.path.join(results, "summary.txt"), "w").write(text + "\n")

md = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
scenario = ""
for r in rows:
    if r[1] == "":
        scenario = r[0]
        continue
    md.append(f"| {scenario} | {r[1].strip()} | " + " | ".join(r[2:]) + " |")
    scenario = ""
open(os.path.join(results, "summary.md"), "w").write("\n".join(md + [""] + notes) + "\n")
PY
echo "raw results: $results" >&2
