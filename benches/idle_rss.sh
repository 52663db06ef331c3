#!/usr/bin/env bash
# Idle memory of the release daemon on the checkout's config/default.yaml (one virtual camera, no MediaMTX).
# Builds the release binary, starts it from a temporary copy of the configuration on free ports, waits until the
# WebSocket port is open, lets it idle, reads VmRSS and the thread count from /proc/<pid>/status, stops it with
# SIGTERM and prints one JSON line plus the ratio to the Python service's idle RSS (46.0 MiB).
#   usage: benches/idle_rss.sh [idle-seconds]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${1:-10}
PYTHON_RSS_MIB=46.0
GOAL_MIB=6

cargo build --release --quiet
BIN=$PWD/target/release/camera-service

TMP=$(mktemp -d)
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# A port nobody listens on (random, checked by connecting to it).
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}
WS_PORT=$(free_port)
HEALTH_PORT=$(free_port)
while [ "$HEALTH_PORT" = "$WS_PORT" ]; do HEALTH_PORT=$(free_port); done

# The copy's relative paths (./data/...) resolve inside the temporary directory.
cp config/default.yaml "$TMP/config.yaml"
cd "$TMP"
CAMERA_SERVICE_SERVER_HOST=127.0.0.1 \
CAMERA_SERVICE_SERVER_PORT=$WS_PORT \
CAMERA_SERVICE_HEALTH_PORT=$HEALTH_PORT \
CAMERA_SERVICE_SECURITY_HEALTH_BIND_ADDRESS=127.0.0.1 \
    "$BIN" --config "$TMP/config.yaml" 2>"$TMP/stderr.log" &
PID=$!

# The WebSocket port opens once the daemon can serve requests.
for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$WS_PORT") 2>/dev/null; then break; fi
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "daemon exited early:" >&2
        cat "$TMP/stderr.log" >&2
        exit 1
    fi
    sleep 0.1
done
sleep "$IDLE"

RSS_KIB=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
HWM_KIB=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status")
THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$PID/status")

START=$(date +%s%N)
kill -TERM "$PID"
set +e
wait "$PID"
CODE=$?
set -e
STOP_MS=$(( ($(date +%s%N) - START) / 1000000 ))
PID=

awk -v rss="$RSS_KIB" -v hwm="$HWM_KIB" -v threads="$THREADS" -v py="$PYTHON_RSS_MIB" -v goal="$GOAL_MIB" \
    -v code="$CODE" -v stop="$STOP_MS" -v idle="$IDLE" 'BEGIN {
    mib = rss / 1024
    printf "{\"bench\":\"idle_rss\",\"idle_seconds\":%d,\"rss_kib\":%d,\"rss_mib\":%.2f,\"peak_rss_kib\":%d,", idle, rss, mib, hwm
    printf "\"threads\":%d,\"python_rss_mib\":%.1f,\"ratio_to_python\":%.3f,\"goal_mib\":%d,", threads, py, mib / py, goal
    printf "\"sigterm_exit_code\":%d,\"stop_ms\":%d}\n", code, stop
    printf "idle RSS %.2f MiB = %.1f%% of the Python service (%.1f MiB); goal <= %d MiB: %s\n", mib, 100 * mib / py, py, goal, (mib <= goal ? "met" : "NOT met")
}'
