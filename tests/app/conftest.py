"""Fixtures of the app's tests: the shipped model bundle, test media made from real photographs,
scorable synthetic recordings, and a real `cogma serve` on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bundle_dir() -> Path:
    from mobile_app.scoring import default_bundle_path

    path = default_bundle_path()
    assert (path / "manifest.json").is_file(), f"the shipped demo bundle is missing at {path}"
    return path


@pytest.fixture(scope="session")
def scorer(bundle_dir):
    from mobile_app.scoring import open_scorer

    return open_scorer(bundle_dir)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Short videos assembled from scikit-image's photographs, and broken files."""
    from mobile_app.sample_media import make_video

    d = tmp_path_factory.mktemp("media")
    files = {
        "person": make_video(d / "person.mp4", ["astronaut"], 2.0),
        "two_people": make_video(d / "two_people.mp4", ["astronaut", "astronaut"], 1.5),
        "no_person": make_video(d / "no_person.mp4", ["chelsea"], 1.5),
        "dark": make_video(d / "dark.mp4", ["astronaut"], 1.5, brightness=0.12),
        "too_short": make_video(d / "too_short.mp4", ["astronaut"], 1.5),
        "blink": make_video(d / "blink.mp4", ["astronaut"], 0.5),
    }
    (d / "garbage.mp4").write_bytes(os.urandom(4096))
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.txt").write_text("not a video")
    files.update(garbage=d / "garbage.mp4", empty=d / "empty.mp4", text=d / "notes.txt")
    return files


@pytest.fixture(scope="session")
def recordings(tmp_path_factory) -> dict[str, Path]:
    """Scorable synthetic recordings (clean capture, 75 s at 30 fps) of both classes."""
    from skeleton.synthetic import synthesize
    from skeleton.synthetic.capture import CaptureConditions

    d = tmp_path_factory.mktemp("recordings")
    capture = CaptureConditions.clean(frame_size=(720, 1280))
    out = {}
    for name, kind in (("typical", "normal_fidgety"), ("atypical", "absent_fidgety")):
        rec = synthesize(kind, 12.0, 75.0, seed=3, fps=30.0, capture=capture)
        out[name] = rec.save(d / f"{name}.npz")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        env = {**os.environ, "COGMA_LOG_LEVEL": "warning"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cogma", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cogma serve exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("cogma serve did not come up within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The server engineer's real API (`cogma serve`) on a free loopback port."""
    srv = Server(tmp_path_factory.mktemp("server")).start()
    yield srv
    srv.stop()
