"""Server and worker configuration: defaults, then a TOML file, then ``COGMA_*`` environment variables.

Every field of :class:`ServerConfig` can be set in the file (``key = value`` at
top level, e.g. ``queue = "redis"``) or as ``COGMA_<FIELD>`` in the
environment (``COGMA_QUEUE=redis``); the environment wins. The file is given by
``--config`` or ``COGMA_CONFIG``. docs/server.md lists every field.

Secrets (the signing secret for result links) come from configuration; when
none is configured, one is generated once into the data directory with
owner-only permissions, so a single-machine set-up needs no manual step.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from skeleton.errors import CogmaError

ENV_PREFIX = "COGMA_"
BACKEND_ALIASES = {
    "render": "server_animator.backends:RenderBackend",
    "diffusion": "server_animator.animator.backend:DiffusionBackend",
}


class ConfigError(CogmaError):
    """A configuration value that is missing, unknown or malformed."""


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("cogma-server", appauthor=False))


@dataclass
class ServerConfig:
    # where things live
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""  # default: sqlite:///<data_dir>/cogma.db
    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""  # for result links behind a proxy; default: the request's own base URL
    # queue: "sqlite" (huey on a SQLite file in data_dir, no other process) or "redis"
    queue: str = "sqlite"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "cogma"
    # storage of recordings and results: "local" (data_dir/blobs) or "s3"
    storage: str = "local"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    # animator backend: "render", "diffusion" or "package.module:ClassName"
    backend: str = "render"
    backend_options: dict[str, Any] = field(default_factory=dict)
    render_width: int = 576
    render_height: int = 1024
    # worker and job lifecycle
    worker_threads: int = 1
    max_attempts: int = 3
    retry_delay_s: float = 5.0
    heartbeat_s: float = 5.0
    lease_s: float = 60.0  # a running job without a heartbeat for this long is retried
    reaper_interval_s: float = 10.0
    # security and limits
    signing_secret: str = ""
    signed_url_ttl_s: int = 300
    max_signed_url_ttl_s: int = 3600
    enrollment_key: str = ""  # when set, POST /v1/devices needs the X-Enrollment-Key header
    max_upload_bytes: int = 16 * 1024 * 1024
    # a few KB of zip can hold hundreds of thousands of frames and keep a worker busy for minutes
    max_frames: int = 36000  # per submission: 10 min at 60 fps
    rate_limit_per_minute: int = 120  # requests per device
    rate_limit_burst: int = 60
    registrations_per_minute: int = 60  # all devices together
    allow_video_uploads: bool = False
    # durability: fsync stored files and SQLite synchronous=FULL (survive power loss, not only crashes)
    durable_writes: bool = True
    log_level: str = "info"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser()
        self.validate()

    # -- derived values -------------------------------------------------
    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cogma.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def work_dir(self) -> Path:
        """Scratch space of running jobs (erased with them)."""
        return self.data_dir / "work"

    @property
    def queue_file(self) -> Path:
        return self.data_dir / "queue.db"

    @property
    def backend_target(self) -> str:
        return BACKEND_ALIASES.get(self.backend, self.backend)

    @property
    def render_size(self) -> tuple[int, int]:
        return (self.render_width, self.render_height)

    def validate(self) -> None:
        if self.queue not in ("sqlite", "redis"):
            raise ConfigError(f"queue must be 'sqlite' or 'redis', not {self.queue!r}")
        if self.storage not in ("local", "s3"):
            raise ConfigError(f"storage must be 'local' or 's3', not {self.storage!r}")
        if self.storage == "s3" and not self.s3_bucket:
            raise ConfigError("storage 's3' needs s3_bucket (COGMA_S3_BUCKET)")
        if self.backend not in BACKEND_ALIASES and ":" not in self.backend:
            raise ConfigError(
                f"backend must be 'render', 'diffusion' or 'package.module:ClassName', not {self.backend!r}"
            )
        for name in ("port", "max_attempts", "worker_threads", "max_upload_bytes", "max_frames",
                     "rate_limit_per_minute", "rate_limit_burst", "signed_url_ttl_s", "render_width", "render_height"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("heartbeat_s", "lease_s", "reaper_interval_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ConfigError(f"data_dir {self.data_dir} is a file; give a folder for the server's data")
        if self.port > 65535:
            raise ConfigError(f"port must be between 1 and 65535, not {self.port}")
        if self.lease_s <= self.heartbeat_s:
            raise ConfigError("lease_s must be longer than heartbeat_s, or live jobs would be retried")
        if self.render_width % 2 or self.render_height % 2:
            raise ConfigError("render_width and render_height must be even (video codecs need it)")

    def secret(self) -> bytes:
        """The signing secret: configured, or generated once into the data directory (mode 0600)."""
        if self.signing_secret:
            return self.signing_secret.encode()
        path = self.data_dir / "signing.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
        text = path.read_text().strip()
        if len(text) < 32:
            raise ConfigError(f"{path} holds no usable signing secret; delete it or set COGMA_SIGNING_SECRET")
        return text.encode()

    def public_dict(self) -> dict[str, Any]:
        """The configuration without secrets, for logs and `--help` output."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("signing_secret", "enrollment_key"):
            out[name] = "***" if out[name] else ""
        out["data_dir"] = str(self.data_dir)
        return out


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    """Turn a text (environment) or TOML value into the field's type, or say what is wrong."""
    origin = typing.get_origin(annotation)
    try:
        if annotation is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if annotation is int:
            if isinstance(raw, bool):
                raise ValueError("expected a whole number")
            return int(raw)
        if annotation is float:
            return float(raw)
        if annotation is Path:
            return Path(str(raw))
        if annotation is str:
            return str(raw)
        if origin is dict:
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, dict):
                raise ValueError("expected a JSON object")
            return value
    except (ValueError, TypeError, json.JSONDecodeError) as e:
        raise ConfigError(f"configuration value {name} = {raw!r} is invalid: {e}") from None
    raise ConfigError(f"configuration field {name} has an unsupported type")  # a bug, but say it clearly


def load_config(
    path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> ServerConfig:
    """Defaults < TOML file (``path`` or ``$COGMA_CONFIG``) < ``COGMA_*`` environment < ``overrides``."""
    env = os.environ if env is None else env
    hints = typing.get_type_hints(ServerConfig)
    known = {f.name for f in fields(ServerConfig)}
    values: dict[str, Any] = {}
    path = path or env.get(ENV_PREFIX + "CONFIG")
    if path:
        p = Path(path).expanduser()
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"configuration file {p} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"configuration file {p} is a folder; give a .toml file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"configuration file {p} is not a TOML text file") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"configuration file {p} is not valid TOML: {e}") from None
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys in {p}: {', '.join(unknown)}")
        values.update({k: _coerce(k, v, hints[k]) for k, v in data.items()})
    for name in known:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = _coerce(name, env[key], hints[name])
    for name, value in overrides.items():
        if value is not None:
            values[name] = value
    return ServerConfig(**values)


def with_overrides(config: ServerConfig, **overrides: Any) -> ServerConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})

