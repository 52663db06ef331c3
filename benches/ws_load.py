#!/usr/bin/env python3
"""WebSocket JSON-RPC load benchmark.

Starts the release daemon pinned to CPU 0 and drives it with ../shared/bench/wsload pinned to CPU 1, then runs
../shared/bench/echo-server through the same steps in the same run: every figure is reported as a ratio to that
in-run baseline (on 2 cores the load generator limits throughput and absolute figures swing
between machines). Server CPU per request comes from /proc/<pid>/stat deltas.

Usage: python3 benches/ws_load.py [--quick] [--out results.jsonl]
All traffic goes to 127.0.0.1; every wsload run is bounded by --max-duration-secs.
"""
import argparse, json, os, resource, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "bench")
TOOLS = os.path.join(ROOT, "target", "bench-tools", "release")
DAEMON = os.path.join(ROOT, "target", "release", "camera-service")
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
TICK = os.sysconf("SC_CLK_TCK")


def build():
    subprocess.run(["cargo", "build", "--release", "--bin", "camera-service"], cwd=ROOT, check=True)
    for tool in ("wsload", "echo-server"):
        subprocess.run(["cargo", "build", "--release", "--manifest-path", os.path.join(SHARED, tool, "Cargo.toml"),
                        "--target-dir", os.path.join(ROOT, "target", "bench-tools")], check=True)


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not open its port")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, kind, tmp):
        self.kind, self.port = kind, free_port()
        if kind == "camera-service":
            cfg = os.path.join(tmp, "bench.yaml")
            with open(cfg, "w") as f:
                f.write(f"""server: {{host: 127.0.0.1, port: {self.port}, max_connections: 20000}}
health_port: {free_port()}
state_dir: {tmp}/state
mediamtx: {{enabled: false, recordings_path: {tmp}/rec, snapshots_path: {tmp}/snap}}
camera: {{device_dir: {tmp}/dev}}
logging: {{level: WARNING}}
security: {{health: {{bind_address: 127.0.0.1}}}}
""")
            env = dict(os.environ, CAMERA_SERVICE_JWT_SECRET=SECRET, CAMERA_SERVICE_RATE_RPM="1000000000")
            self.token = subprocess.run([DAEMON, "token", "--role", "admin", "--config", cfg], env=env,
                                        capture_output=True, text=True, check=True).stdout.strip()
            cmd = ["taskset", "-c", "0", DAEMON, "--config", cfg]
            self.url = f"ws://127.0.0.1:{self.port}/ws"
        else:
            env, self.token = dict(os.environ), "unused"
            cmd = ["taskset", "-c", "0", os.path.join(TOOLS, "echo-server"), f"127.0.0.1:{self.port}"]
            self.url = f"ws://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        time.sleep(0.5)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wsload(server, *args, max_secs=120):
    cmd = ["taskset", "-c", "1", os.path.join(TOOLS, "wsload"), "--url", server.url, "--auth-token", server.token,
           "--token-in-params", "--skip-authenticate", "--server-pid", str(server.proc.pid),
           "--max-duration-secs", str(max_secs), *map(str, args)]
    before = cpu_ticks(server.proc.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=max_secs + 60)
    after = cpu_ticks(server.proc.pid)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    n = r.get("requests_ok", 0) + r.get("requests_error", 0)
    r["server_cpu_us_per_request"] = (after - before) / TICK * 1e6 / n if n else None
    return r


def measure_pairs(ours, echo, reps):
    """The request-phase figures, alternating servers run by run so slow drifts of a shared machine hit both
    equally; each ratio is taken within a pair and the median pair is reported."""
    pairs = []
    for _ in range(reps):
        a = wsload(ours, "--connections", 100, "--requests", 1000)
        b = wsload(echo, "--connections", 100, "--requests", 1000)
        pairs.append((a, b))
    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]
    fig = lambda r: {"rps": r["throughput_rps"], "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"],
                     "cpu_us_per_request": r["server_cpu_us_per_request"], "ok": r["requests_ok"],
                     "errors": r["requests_error"]}
    return {
        "pairs": [{"ours": fig(a), "echo": fig(b)} for a, b in pairs],
        "cpu_per_ping_100c_ratio": median([a["server_cpu_us_per_request"] / b["server_cpu_us_per_request"]
                                           for a, b in pairs]),
        "throughput_100c_ratio": median([a["throughput_rps"] / b["throughput_rps"] for a, b in pairs]),
        "p99_100c_ratio": median([a["latency_ms"]["p99"] / b["latency_ms"]["p99"] for a, b in pairs]),
    }


def measure_c1(ours, echo, reps):
    ratios, figs = [], []
    for _ in range(reps):
        a = wsload(ours, "--connections", 1, "--requests", 1000)
        b = wsload(echo, "--connections", 1, "--requests", 1000)
        figs.append({"ours_p50_ms": a["latency_ms"]["p50"], "echo_p50_ms": b["latency_ms"]["p50"]})
        ratios.append(a["latency_ms"]["p50"] / b["latency_ms"]["p50"])
    ratios.sort()
    return {"runs": figs, "p50_1c_ratio": ratios[len(ratios) // 2]}


def measure_hold(s, n):
    before = rss_kib(s.proc.pid)
    r = wsload(s, "--connections", n, "--requests", 1, "--hold-secs", 10, "--probe", "--ramp-rate", 2000,
               "--connect-timeout-secs", 30, "--stack-kib", 64, max_secs=120)
    srv = r.get("server") or {}
    mid = srv.get("rss_kib_mid_hold") or 0
    res = {"connections": n, "ok": r["connections_ok"], "failed": r["connections_failed"],
           "dropped": r.get("dropped_during_hold"), "rss_before_kib": before, "rss_mid_hold_kib": mid,
           "probe": r.get("probe")}
    if mid:
        res["kib_per_connection"] = (mid - before) / max(1, r["connections_ok"])
    return res


def measure_soak(s):
    wsload(s, "--connections", 100, "--requests", 2000)
    rss1 = rss_kib(s.proc.pid)
    r = wsload(s, "--connections", 100, "--requests", 10000, max_secs=300)
    rss2 = rss_kib(s.proc.pid)
    total = r["requests_ok"] + r["requests_error"]
    return {"requests": total, "rss_before_kib": rss1, "rss_after_kib": rss2,
            "bytes_per_request": (rss2 - rss1) * 1024 / max(1, total)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    if not a.no_build:
        build()
    reps = 3 if a.quick else 7
    with tempfile.TemporaryDirectory() as tmp:
        ours, echo = Server("camera-service", tmp), Server("echo-server", tmp)
        try:
            idle = {"ours_kib": rss_kib(ours.proc.pid), "echo_kib": rss_kib(echo.proc.pid)}
            wsload(ours, "--connections", 10, "--requests", 500)  # warm-up
            wsload(echo, "--connections", 10, "--requests", 500)
            c1 = measure_c1(ours, echo, reps)
            c100 = measure_pairs(ours, echo, reps)
            n = 2000 if a.quick else 10000
            hold = {"ours": measure_hold(ours, n), "echo": measure_hold(echo, n)}
            soak = None if a.quick else measure_soak(ours)
        finally:
            ours.stop()
            echo.stop()
    summary = {
        "cpu_per_ping_100c_ratio": round(c100["cpu_per_ping_100c_ratio"], 3),
        "throughput_100c_ratio": round(c100["throughput_100c_ratio"], 3),
        "p99_100c_ratio": round(c100["p99_100c_ratio"], 3),
        "p50_1c_ratio": round(c1["p50_1c_ratio"], 3),
        "kib_per_connection": {k: round(v.get("kib_per_connection", 0), 2) for k, v in hold.items()},
        "probe_during_hold": hold["ours"]["probe"],
        "soak_bytes_per_request": soak and round(soak["bytes_per_request"], 3),
    }
    result = {"idle": idle, "c1": c1, "c100": c100, "hold": hold, "soak": soak, "summary": summary}
    print(json.dumps(result, indent=1))
    if a.out:
        with open(a.out, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
