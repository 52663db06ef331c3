#!/usr/bin/env bash
# CPU cost of the JPEG output a direct recording of a USB camera carries (MediaMTX off), so that it can be the
# camera's one reader and feed the live view and snapshots. Runs the recorder's command line (as
# `media::segments::direct_args` builds it, 640x480 at 15 fps from a paced lavfi source standing in for the camera)
# without and with that second output, alternating, and compares the CPU time (user + sys) of each run. The baseline
# is the same recording without the output, measured in the same run; for reference, a separate JPEG reader (the
# live view's own ffmpeg, which a V4L2 camera cannot have next to a recording) is measured too.
#   usage: benches/recording_frames.sh [seconds-per-run] [rounds]     (defaults 10, 3)
set -euo pipefail
SECS=${1:-10}
ROUNDS=${2:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

SRC=(-hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=640x480:rate=15)
REC=(-t "$SECS" -an -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 15 -keyint_min 15
     -sc_threshold 0 -f segment -segment_time 60 -segment_format mp4
     -segment_format_options movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=1000000:flush_packets=1
     -reset_timestamps 1 -strftime 1 "$TMP/rec_%H-%M-%S.mp4")
JPEG=(-t "$SECS" -map 0:v -an -vf fps=15 -c:v mjpeg -q:v 6 -f tee '[f=image2pipe:onfail=ignore]pipe:1|[f=null]-')
READER=(-t "$SECS" -an -vf fps=15 -c:v mjpeg -q:v 6 -f image2pipe pipe:1)

# CPU seconds (user + sys) of one ffmpeg run; its stdout is drained by cat, as the daemon's reader thread would.
cpu() {
    /usr/bin/time -f "%U %S" -o "$TMP/t" ffmpeg "$@" | cat >/dev/null
    awk '{printf "%.2f", $1 + $2}' "$TMP/t"
}

base=() with=() reader=()
for _ in $(seq "$ROUNDS"); do
    base+=("$(cpu "${SRC[@]}" "${REC[@]}")")
    with+=("$(cpu "${SRC[@]}" "${REC[@]}" "${JPEG[@]}")")
    reader+=("$(cpu "${SRC[@]}" "${READER[@]}")")
    rm -f "$TMP"/rec_*.mp4
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
b=$(median "${base[@]}") w=$(median "${with[@]}") r=$(median "${reader[@]}")
awk -v b="$b" -v w="$w" -v r="$r" -v s="$SECS" -v n="$ROUNDS" 'BEGIN {
    printf "{\"bench\":\"recording_frames\",\"seconds\":%d,\"rounds\":%d,\"recording_cpu_s\":%s,\"recording_with_jpeg_cpu_s\":%s,\"separate_reader_cpu_s\":%s,\"ratio_with_vs_without\":%.2f,\"added_cpu_ms_per_s\":%.0f}\n",
        s, n, b, w, r, w / b, (w - b) * 1000 / s }'
