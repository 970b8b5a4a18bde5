"""Test kit for the server tests: `cogma serve` (uvicorn) and `cogma worker` (huey) as real subprocesses on loopback.

Every wait is bounded; a failing wait shows the tail of the process logs.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import numpy as np

from skeleton.recording import PoseRecording

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SECRET = "test-signing-secret-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05,
               on_fail: Callable[[], str] = lambda: "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{on_fail()}")
        time.sleep(interval)


def make_recording(frames: int = 10, fps: float = 10.0, seed: int = 0, marker: str | None = None) -> bytes:
    """A small valid MediaPipe-33 recording (random but smooth joints)."""
    rng = np.random.default_rng(seed)
    base = 0.3 + 0.4 * rng.random((1, 33, 2))
    drift = np.cumsum(rng.normal(0, 0.003, (frames, 33, 2)), axis=0)
    xy = np.clip(base + drift, 0.0, 1.0)
    kp = np.concatenate([xy, np.full((frames, 33, 1), 0.9)], axis=-1).astype(np.float32)
    return PoseRecording(kp, "mediapipe33", fps, (640, 480), age_weeks=12.0, infant_id=marker).to_bytes()


@dataclass
class Proc:
    args: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.args, env=self.env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, like a crash or the OOM killer."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 10) -> None:
        if self.popen is None:
            return
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.send_signal(signal.SIGKILL)
                self.popen.wait(10)
        self._log.close()

    def tail(self, n: int = 4000) -> str:
        try:
            return f"--- {self.log_path.name} ---\n" + self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class Stack:
    """One data directory with an API server and any number of workers."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    server: Proc | None = None
    workers: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        procs = ([self.server] if self.server else []) + self.workers
        return "\n".join(p.tail() for p in procs)

    def start_server(self, timeout: float = 30) -> Proc:
        self.server = Proc([sys.executable, "-m", "cogma.cli", "serve", "--port", str(self.port)], self.env,
                           self.data_dir.parent / f"{self.data_dir.name}-server.log").start()

        def ready() -> bool:
            if not self.server.alive():
                raise AssertionError("server exited\n" + self.logs())
            try:
                return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, "the API server to be ready", 0.1, self.logs)
        return self.server

    def start_worker(self, **extra_env: str) -> Proc:
        env = dict(self.env, **extra_env)
        n = len(self.workers)
        worker = Proc([sys.executable, "-m", "cogma.cli", "worker"], env,
                      self.data_dir.parent / f"{self.data_dir.name}-worker{n}.log").start()
        self.workers.append(worker)
        wait_until(lambda: b"worker ready" in worker.log_path.read_bytes() or not worker.alive(), 30,
                   "the worker to start", 0.1, self.logs)
        assert worker.alive(), self.logs()
        return worker

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        if self.server:
            self.server.stop()

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.data_dir / 'cogma.db'}?mode=ro", uri=True, timeout=30)

    def client(self, **kw) -> "Api":
        return Api(httpx.Client(base_url=self.url, timeout=30, **kw))


class Api:
    """The calls an app makes, over real HTTP."""

    def __init__(self, http: httpx.Client):
        self.http = http

    def register(self) -> dict[str, str]:
        r = self.http.post("/v1/devices", json={"platform": "android", "app_version": "0.1.0"})
        assert r.status_code == 201, r.text
        return r.json()

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def consent(self, token: str, scope: str = "anonymized_video") -> str:
        r = self.http.post("/v1/consents", headers=self.auth(token),
                           json={"scope": scope, "text_version": "v1", "given_by": "parent"})
        assert r.status_code == 201, r.text
        return r.json()["consent_id"]

    def device_with_consent(self, scope: str = "anonymized_video") -> tuple[str, str]:
        token = self.register()["token"]
        return token, self.consent(token, scope)

    def submit(self, token: str, consent_id: str, data: bytes, key: str | None = None,
               filename: str = "rec.npz", content_type: str = "application/octet-stream") -> httpx.Response:
        return self.http.post(
            "/v1/submissions", headers={**self.auth(token), "Idempotency-Key": key or uuid.uuid4().hex},
            files={"recording": (filename, data, content_type)}, data={"consent_id": consent_id},
        )

    def job(self, token: str, job_id: str) -> dict:
        r = self.http.get(f"/v1/jobs/{job_id}", headers=self.auth(token))
        assert r.status_code == 200, r.text
        return r.json()

    def wait_job(self, token: str, job_id: str, done: Callable[[dict], bool], timeout: float, what: str,
                 logs: Callable[[], str] = lambda: "") -> dict:
        last: dict = {}

        def check() -> dict | None:
            last.update(self.job(token, job_id))
            return dict(last) if done(last) else None

        return wait_until(check, timeout, f"{what} (last: {last})", 0.1, logs)

    def close(self) -> None:
        self.http.close()


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COGMA_")}
    env.update(
        COGMA_DATA_DIR=str(data_dir), COGMA_SIGNING_SECRET=SECRET, COGMA_LOG_LEVEL="info",
        COGMA_RENDER_WIDTH="64", COGMA_RENDER_HEIGHT="112",
        COGMA_HEARTBEAT_S="0.3", COGMA_LEASE_S="2", COGMA_REAPER_INTERVAL_S="0.5", COGMA_RETRY_DELAY_S="0.2",
        COGMA_RATE_LIMIT_PER_MINUTE="100000", COGMA_RATE_LIMIT_BURST="10000", COGMA_REGISTRATIONS_PER_MINUTE="100000",
        COGMA_MAX_UPLOAD_BYTES=str(1024 * 1024),
        OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.update(extra)
    return env


def run_clients(n_clients: int, per_client: Callable[[int], None]) -> list[BaseException]:
    """Run ``per_client(i)`` in ``n_clients`` threads; return the exceptions raised."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            per_client(i)
        except BaseException as e:  # collected and reported by the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return errors

