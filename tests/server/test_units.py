"""Configuration, storage, signing, backends and migrations, without a server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from server_animator.backends import BackendError, RenderBackend, load_backend
from server_animator.config import ConfigError, ServerConfig, load_config
from server_animator.db import get_engine, migrate, schema_is_current
from server_animator.security import LinkError, RateLimiter, hash_token, new_token, sign, verify
from server_animator.storage import LocalStore, StorageError
from skeleton.recording import PoseRecording, load_recording
from server_testkit import REPO, make_recording


def test_config_layers(tmp_path):
    f = tmp_path / "cogma.toml"
    f.write_text('queue = "redis"\nport = 9000\nbackend_options = { weights_dir = "/w" }\n')
    env = {"COGMA_PORT": "9100", "COGMA_ALLOW_VIDEO_UPLOADS": "yes", "COGMA_DATA_DIR": str(tmp_path)}
    cfg = load_config(f, env=env)
    assert cfg.queue == "redis" and cfg.port == 9100 and cfg.allow_video_uploads is True
    assert cfg.backend_options == {"weights_dir": "/w"} and cfg.data_dir == tmp_path
    assert load_config(None, env={"COGMA_CONFIG": str(f), "COGMA_DATA_DIR": str(tmp_path)}).port == 9000


@pytest.mark.parametrize("env, phrase", [
    ({"COGMA_PORT": "eighty"}, "port"),
    ({"COGMA_QUEUE": "kafka"}, "queue must be"),
    ({"COGMA_STORAGE": "s3"}, "s3_bucket"),
    ({"COGMA_BACKEND": "magic"}, "backend must be"),
    ({"COGMA_LEASE_S": "1", "COGMA_HEARTBEAT_S": "2"}, "lease_s"),
    ({"COGMA_BACKEND_OPTIONS": "[1, 2]"}, "JSON object"),
    ({"COGMA_RENDER_WIDTH": "101"}, "even"),
    ({"COGMA_PORT": "70000"}, "port must be between 1 and 65535"),
])
def test_config_errors_are_clear(tmp_path, env, phrase):
    with pytest.raises(ConfigError, match=phrase):
        load_config(None, env={"COGMA_DATA_DIR": str(tmp_path), **env})


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown configuration keys.*prot"):
        load_config(bad, env={})
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path, env={})
    with pytest.raises(ConfigError, match="data_dir .* is a file"):
        load_config(None, env={"COGMA_DATA_DIR": str(bad)})


def test_generated_secret_is_private_and_stable(tmp_path):
    cfg = ServerConfig(data_dir=tmp_path)
    assert cfg.secret() == cfg.secret() and len(cfg.secret()) == 64
    assert (tmp_path / "signing.key").stat().st_mode & 0o777 == 0o600
    assert "***" == ServerConfig(data_dir=tmp_path, signing_secret="x" * 40).public_dict()["signing_secret"]


def test_signing_and_tokens():
    secret = b"k" * 32
    expires, sig = sign(secret, "submissions/a/result/video.mp4", 60, now=1000.0)
    verify(secret, "submissions/a/result/video.mp4", expires, sig, now=1030.0)
    with pytest.raises(LinkError, match="expired"):
        verify(secret, "submissions/a/result/video.mp4", expires, sig, now=1061.0)
    with pytest.raises(LinkError, match="signature"):
        verify(secret, "submissions/b/result/video.mp4", expires, sig, now=1030.0)
    with pytest.raises(LinkError, match="signature"):
        verify(secret, "submissions/a/result/video.mp4", expires, "é" * 64, now=1030.0)
    t = new_token()
    assert t.startswith("cgd_") and len(t) > 40 and hash_token(t) != t and len(hash_token(t)) == 64


def test_rate_limiter_refills():
    limiter = RateLimiter(per_minute=60, burst=2)
    assert limiter.allow("a") == 0 and limiter.allow("a") == 0
    assert 0 < limiter.allow("a") <= 1.0
    assert limiter.allow("b") == 0


def test_local_store_refuses_escapes(tmp_path):
    store = LocalStore(tmp_path / "blobs", fsync=False)
    store.put_bytes("submissions/x/a.bin", b"1")
    assert store.exists("submissions/x/a.bin") and store.list_keys("submissions/") == ["submissions/x/a.bin"]
    for key in ("../etc/passwd", "/abs", "submissions/../../x", ""):
        with pytest.raises(StorageError):
            store.put_bytes(key, b"no")
    with pytest.raises(StorageError):
        store.delete_prefix("../")
    with pytest.raises(StorageError):
        store.delete_prefix("/")
    assert store.delete_prefix("submissions/x/") == 1 and not store.exists("submissions/x/a.bin")


def test_local_store_leaves_no_empty_folder_behind(tmp_path):
    store = LocalStore(tmp_path / "blobs", fsync=False)
    store.put_bytes("submissions/gone/result/qa_report.json", b"{}")
    store.put_bytes("submissions/kept/recording.npz", b"1")
    store.put_bytes("submissions/kept/result/qa_report.json", b"{}")
    assert store.delete_prefix("submissions/gone/result/") == 1
    assert not (tmp_path / "blobs" / "submissions" / "gone").exists()  # the id's folder went with its last file
    assert store.delete_prefix("submissions/kept/result/") == 1
    assert store.list_keys("submissions/") == ["submissions/kept/recording.npz"]  # a folder with files stays
    assert (tmp_path / "blobs").is_dir()  # never the root


class _UploadCutByErasure(LocalStore):
    """The erasure's folder removal runs under the worker: the video's temporary file vanishes mid-upload."""

    def put_file(self, key, path):  # noqa: ANN001
        raise FileNotFoundError(2, "No such file or directory", key)


def test_a_result_upload_cut_by_an_erasure_leaves_nothing(tmp_path):
    from server_animator.backends import AnimationResult
    from server_animator.jobs import Claim, WorkerRuntime

    cfg = ServerConfig(data_dir=tmp_path)
    engine = get_engine(cfg)
    migrate(engine)  # no job row: the erasure took it, and its files, while the job was finishing
    store = _UploadCutByErasure(tmp_path / "blobs", fsync=False)
    runtime = WorkerRuntime(cfg, engine, store, RenderBackend(cfg))
    video = tmp_path / "video.mp4"
    video.write_bytes(b"v")
    runtime._finish(Claim("j1", "t", 1, 3, "s1", "submissions/s1/recording.npz"),
                    AnimationResult(video, {"passed": True}, True))  # no error: the job is gone, not failed
    assert store.list_keys() == []  # the QA report written before the cut went too, not after the janitor's grace
    assert not (tmp_path / "blobs" / "submissions").exists()


def test_render_backend_qa_report(tmp_path):
    cfg = ServerConfig(data_dir=tmp_path, render_width=64, render_height=112)
    backend = load_backend(cfg)
    assert isinstance(backend, RenderBackend)
    seen: list[float] = []
    result = backend.animate(load_recording(make_recording(frames=15)), tmp_path / "out", seen.append)
    assert result.passed and result.video_path.stat().st_size > 0
    assert result.qa_report["frames_read_back"] == 15 and result.qa_report["keypoints_drawn"] > 0
    assert seen[-1] == 1.0 and seen == sorted(seen)
    json.dumps(result.qa_report)


@pytest.mark.parametrize("keypoints", ["unseen", "off the picture"])
def test_render_qa_fails_a_blank_video(tmp_path, keypoints):
    backend = load_backend(ServerConfig(data_dir=tmp_path, render_width=64, render_height=112))
    rec = load_recording(make_recording(frames=15))
    kp = rec.keypoints.copy()
    if keypoints == "unseen":
        kp[..., 2] = 0.0
    else:
        kp[..., :2] = -0.5
    result = backend.animate(PoseRecording(kp, rec.schema, rec.fps, rec.frame_size), tmp_path / "out", lambda f: None)
    assert not result.passed and result.qa_report["keypoints_drawn"] == 0
    assert result.qa_report["checks"] == {"all_frames_written": True, "video_reads_back": True,
                                          "enough_visible_keypoints": False}


def test_missing_backend_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="not available"):
        load_backend(ServerConfig(data_dir=tmp_path, backend="no_such_module:Thing"))
    with pytest.raises(BackendError, match="has no"):
        load_backend(ServerConfig(data_dir=tmp_path, backend="server_animator.backends:Nope"))


def test_migrations_match_models(tmp_path):
    """The newest migration creates exactly the tables of models.py (alembic autogenerate finds nothing)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = get_engine(ServerConfig(data_dir=tmp_path))
    assert not schema_is_current(engine)
    migrate(engine)
    migrate(engine)  # idempotent
    assert schema_is_current(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        conn.rollback()
    assert diff == []


def test_cli_errors_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cogma.cli", "worker", "--data-dir", str(tmp_path),
                           "--backend", "diffusion_missing_pkg:X"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "cogma.cli", "serve", "--data-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"COGMA_QUEUE": "nope", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "queue must be" in proc.stderr


def test_serve_refuses_a_port_in_use_in_one_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "cogma.cli", "serve", "--data-dir", str(tmp_path),
                               "--port", str(port)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
                                   "(is another server running there? choose a port with --port)")
    assert "API ready" not in proc.stderr  # refused before the app starts


def test_openapi_lists_415_wherever_a_body_is_taken(tmp_path):
    from server_animator.api.app import create_app

    app = create_app(load_config(None, env={"COGMA_DATA_DIR": str(tmp_path)}))
    with_body = [(path, verb, op) for path, ops in app.openapi()["paths"].items() for verb, op in ops.items()
                 if "requestBody" in op]
    assert len(with_body) >= 3  # devices, consents, submissions
    for path, verb, op in with_body:
        assert "415" in op["responses"], f"{verb.upper()} {path}"
