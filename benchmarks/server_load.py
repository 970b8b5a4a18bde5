"""Load benchmark of the server: N submissions from C concurrent clients against a real `cogma serve` + `cogma worker`.

Starts both as subprocesses on loopback in a temporary data directory, sends
the submissions (each client its own device and consent, one Idempotency-Key
per recording, retried with the same key on transport errors, 429 and 5xx),
then waits for every job to finish and checks the database: none lost, none
duplicated. Prints a table and writes JSON (default
``benchmarks/results/server_load.json``).

    .venv/bin/python benchmarks/server_load.py                       # 1,000 submissions, 20 clients
    .venv/bin/python benchmarks/server_load.py --submissions 100 --clients 10 --out /tmp/x.json

CPU only; the worker uses the ``render`` backend (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skeleton.recording import PoseRecording  # noqa: E402


def recording(frames: int, fps: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    xy = np.clip(0.3 + 0.4 * rng.random((1, 33, 2)) + np.cumsum(rng.normal(0, 0.003, (frames, 33, 2)), 0), 0, 1)
    kp = np.concatenate([xy, np.full((frames, 33, 1), 0.9)], -1).astype(np.float32)
    return PoseRecording(kp, "mediapipe33", fps, (720, 1280), age_weeks=12.0).to_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cogma.cli", *args], env=env, cwd=REPO,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server not ready in time")


async def client(http: httpx.AsyncClient, token: str, consent_id: str, payloads: list[bytes],
                 latencies: list[float], accepted: dict[str, str], stats: dict[str, int]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for data in payloads:
        key = uuid.uuid4().hex
        for attempt in range(100):
            t0 = time.perf_counter()
            try:
                r = await http.post("/v1/submissions", headers={**headers, "Idempotency-Key": key},
                                    files={"recording": ("r.npz", data)}, data={"consent_id": consent_id})
            except httpx.TransportError:
                stats["transport_errors"] += 1
                await asyncio.sleep(0.2)
                continue
            if r.status_code == 202:
                latencies.append(time.perf_counter() - t0)
                sid = r.json()["submission_id"]
                if accepted.setdefault(key, sid) != sid:
                    stats["conflicting_answers"] += 1
                break
            if r.status_code == 429 or r.status_code >= 500:
                stats[f"http_{r.status_code}"] = stats.get(f"http_{r.status_code}", 0) + 1
                await asyncio.sleep(float(r.headers.get("retry-after", "0.2")))
                continue
            raise RuntimeError(f"unexpected {r.status_code}: {r.text}")
        else:
            stats["gave_up"] += 1


async def submit_all(url: str, n: int, clients: int, frames: int) -> dict:
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        devices = []
        for _ in range(clients):
            token = (await http.post("/v1/devices", json={"platform": "other"})).json()["token"]
            c = await http.post("/v1/consents", headers={"Authorization": f"Bearer {token}"},
                                json={"scope": "anonymized_video", "text_version": "v1", "given_by": "parent"})
            devices.append((token, c.json()["consent_id"]))
        payloads = [recording(frames, 30.0, i) for i in range(n)]
        share = [payloads[i::clients] for i in range(clients)]
        latencies: list[float] = []
        accepted: dict[str, str] = {}
        stats = {"transport_errors": 0, "conflicting_answers": 0, "gave_up": 0}
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http, tok, cid, share[i], latencies, accepted, stats)
                               for i, (tok, cid) in enumerate(devices)))
        wall = time.perf_counter() - t0
    return {"latencies": latencies, "accepted": accepted, "wall_s": wall, "stats": stats,
            "payload_bytes": int(np.mean([len(p) for p in payloads]))}


def verify(db_path: Path, accepted: dict[str, str], timeout: float) -> dict:
    """Wait for every job to finish; count lost and duplicated submissions and jobs."""
    t0 = time.perf_counter()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    while True:
        (open_jobs,) = db.execute("select count(*) from job where status in ('queued', 'running')").fetchone()
        if open_jobs == 0 or time.perf_counter() - t0 > timeout:
            break
        time.sleep(0.25)
    drain_s = time.perf_counter() - t0
    rows = db.execute("select idempotency_key, id from submission").fetchall()
    by_key: dict[str, list[str]] = {}
    for key, sid in rows:
        by_key.setdefault(key, []).append(sid)
    jobs = dict(db.execute("select status, count(*) from job group by status").fetchall())
    (job_rows,) = db.execute("select count(*) from job").fetchone()
    (multi_attempt,) = db.execute("select count(*) from job where attempts > 1").fetchone()
    db.close()
    lost = sum(1 for k, sid in accepted.items() if sid not in by_key.get(k, []))
    duplicated = sum(len(v) - 1 for v in by_key.values()) + max(0, job_rows - len(rows))
    return {"lost": lost, "duplicated": duplicated, "jobs": jobs, "jobs_retried": multi_attempt,
            "unfinished": jobs.get("queued", 0) + jobs.get("running", 0), "drain_after_load_s": drain_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--submissions", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--frames", type=int, default=150, help="frames per recording (30 fps)")
    ap.add_argument("--render-size", default="144x256", help="render backend video size WxH")
    ap.add_argument("--job-timeout", type=float, default=1800)
    ap.add_argument("--no-worker", action="store_true", help="measure the API alone (jobs stay queued)")
    ap.add_argument("--no-fsync", action="store_true",
                    help="durable_writes=false: safe against process crashes, not against power loss")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "server_load.json")
    args = ap.parse_args()
    w, h = args.render_size.split("x")

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cogma-load-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COGMA_")}
        env.update(OMP_NUM_THREADS="1", COGMA_DATA_DIR=str(data_dir), COGMA_LOG_LEVEL="warning",
                   COGMA_RENDER_WIDTH=w, COGMA_RENDER_HEIGHT=h, COGMA_RATE_LIMIT_PER_MINUTE="1000000",
                   COGMA_RATE_LIMIT_BURST="100000", COGMA_REGISTRATIONS_PER_MINUTE="100000",
                   COGMA_DURABLE_WRITES="false" if args.no_fsync else "true")
        server_log, worker_log = Path(tmp) / "server.log", Path(tmp) / "worker.log"
        server = start(["serve", "--port", str(port)], env, server_log)
        worker = None
        try:
            wait_ready(url, server, server_log)
            worker = None if args.no_worker else start(["worker"], env, worker_log)
            load = asyncio.run(submit_all(url, args.submissions, args.clients, args.frames))
            check = verify(data_dir / "cogma.db", load["accepted"], 0 if args.no_worker else args.job_timeout)
        finally:
            for p in (worker, server):
                if p is not None and p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(15)
                    except subprocess.TimeoutExpired:
                        p.kill()

    lat = np.array(load["latencies"]) * 1000
    n_ok = len(load["accepted"])
    result = {
        "benchmark": "server_load",
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores, {platform.python_version()}",
        "note": "CPU only, OMP_NUM_THREADS=1; API, worker and load generator share the machine; loopback HTTP",
        "worker": not args.no_worker, "durable_writes": not args.no_fsync,
        "submissions": args.submissions, "clients": args.clients, "frames_per_recording": args.frames,
        "payload_bytes": load["payload_bytes"], "render_size": args.render_size,
        "accepted": n_ok, "lost": check["lost"], "duplicated": check["duplicated"],
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p90": round(float(np.percentile(lat, 90)), 1),
                       "p99": round(float(np.percentile(lat, 99)), 1), "max": round(float(lat.max()), 1)},
        "submit_wall_s": round(load["wall_s"], 2),
        "throughput_submissions_per_s": round(n_ok / load["wall_s"], 1),
        "jobs": check["jobs"], "jobs_retried": check["jobs_retried"], "unfinished_jobs": check["unfinished"],
        "jobs_done_after_load_s": round(check["drain_after_load_s"], 2),
        "job_throughput_per_s": round(check["jobs"].get("succeeded", 0)
                                      / (load["wall_s"] + check["drain_after_load_s"]), 2),
        "client_stats": load["stats"],
        # other processes on the machine skew the figures; the 1-minute load average says how busy it was
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    rows = [("submissions accepted", f"{n_ok} / {args.submissions} from {args.clients} clients"),
            ("lost / duplicated", f"{check['lost']} / {check['duplicated']}"),
            ("latency p50 / p99", f"{result['latency_ms']['p50']} / {result['latency_ms']['p99']} ms"),
            ("submission throughput", f"{result['throughput_submissions_per_s']} /s"),
            ("jobs", json.dumps(check["jobs"])),
            ("job throughput (1 worker)", f"{result['job_throughput_per_s']} /s"),
            ("client retries", json.dumps(load["stats"])),
            ("machine load avg (1 min)", f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after")]
    print(f"server load benchmark — {result['machine']}; {result['note']}")
    for k, v in rows:
        print(f"  {k:<28} {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    ok = check["lost"] == 0 and check["duplicated"] == 0 and (args.no_worker or check["unfinished"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
