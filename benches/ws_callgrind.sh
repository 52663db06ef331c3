#!/usr/bin/env bash
# Instructions per JSON-RPC `ping`, counted (not timed) with callgrind: the figure does not move with the load of a
# shared machine, so a change to the request path can be judged run by run.
#
# Builds the release daemon with symbols (profile `profiling`: release plus line tables, not stripped; its own
# target directory so the release build is untouched), starts it under `valgrind --tool=callgrind` with the same
# configuration as benches/ws_load.py (rate limit off, MediaMTX off, `auth_token` in params), warms it up, zeroes
# the counters, drives CONNS connections x REQS pings with ../shared/bench/wsload, dumps the counters and prints
# user-space instructions per request (the kernel's share of recv/send is not counted). The profile stays in
# target-prof/callgrind.out for `callgrind_annotate`.
#   usage: benches/ws_callgrind.sh [connections] [requests-per-connection]     (default 100 100)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-100}
REQS=${2:-100}
ROOT=$PWD
SHARED=$ROOT/../shared/bench
SECRET=bench-secret-0123456789abcdef0123456789abcdef

cargo build --quiet --profile profiling --bin camera-service --target-dir "$ROOT/target-prof" \
    --config 'profile.profiling.inherits="release"' --config 'profile.profiling.strip=false' \
    --config 'profile.profiling.debug="line-tables-only"'
cargo build --quiet --release --manifest-path "$SHARED/wsload/Cargo.toml" --target-dir "$ROOT/target/bench-tools"
BIN=$ROOT/target-prof/profiling/camera-service
WSLOAD=$ROOT/target/bench-tools/release/wsload
OUT=$ROOT/target-prof/callgrind.out

TMP=$(mktemp -d)
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

PORTS=$(python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
read -r WS_PORT HEALTH_PORT <<<"$PORTS"
cat >"$TMP/bench.yaml" <<EOF
server: {host: 127.0.0.1, port: $WS_PORT, max_connections: 20000}
health_port: $HEALTH_PORT
state_dir: $TMP/state
mediamtx: {enabled: false, recordings_path: $TMP/rec, snapshots_path: $TMP/snap}
camera: {device_dir: $TMP/dev}
logging: {level: WARNING}
security: {health: {bind_address: 127.0.0.1}}
EOF
export CAMERA_SERVICE_JWT_SECRET=$SECRET CAMERA_SERVICE_RATE_RPM=1000000000
TOKEN=$("$BIN" token --role admin --config "$TMP/bench.yaml")

rm -f "$OUT"
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" --config "$TMP/bench.yaml" 2>"$TMP/valgrind.log" &
PID=$!
for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$WS_PORT") 2>/dev/null; then break; fi
    sleep 0.1
done
load() {
    "$WSLOAD" --url "ws://127.0.0.1:$WS_PORT/ws" --auth-token "$TOKEN" --token-in-params --skip-authenticate \
        --max-duration-secs 600 --connections "$1" --requests "$2"
}
load "$CONNS" 10 >/dev/null                                       # warm-up: buffers, metrics slots, first auth
callgrind_control --zero "$PID" >/dev/null
RESULT=$(load "$CONNS" "$REQS" | tail -n 1)
callgrind_control --dump=load "$PID" >/dev/null
kill -TERM "$PID"
wait "$PID" || true
PID=
DUMP=$(ls -t "$OUT"* | grep -v '^'"$OUT"'$' | head -n 1 || true)
[ -n "$DUMP" ] || DUMP=$OUT
IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$DUMP")
N=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["requests_ok"]+r["requests_error"])' "$RESULT")
OK=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests_ok"])' "$RESULT")
cp "$DUMP" "$OUT.load"
echo "{\"connections\": $CONNS, \"requests\": $N, \"ok\": $OK, \"instructions\": $IR, \"instructions_per_request\": $((IR / N)), \"profile\": \"$OUT.load\"}"
