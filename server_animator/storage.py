"""Blob storage for recordings and results: a local folder by default, an S3-compatible store by configuration.

Keys are relative paths such as ``submissions/<id>/recording.npz``; everything
of one submission lies under its prefix, so erasure is one ``delete_prefix``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from skeleton.errors import CogmaError

from .config import ServerConfig


class StorageError(CogmaError):
    """A blob that cannot be stored or read."""


def submission_prefix(submission_id: str) -> str:
    return f"submissions/{submission_id}/"


class BlobStore(Protocol):
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def local_path(self, key: str) -> Path | None:
        """The file behind ``key`` when it is on this machine (the API then serves it itself)."""
    def presigned_url(self, key: str, ttl_s: int) -> str | None:
        """A store-issued short-lived URL (S3), or None when the API signs its own links."""
    def check(self) -> None:
        """Raise StorageError when the store cannot be written."""


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in ("", ".", ".."):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class LocalStore:
    """Files under one folder; writes are atomic (temporary file, then rename) and optionally fsynced."""

    def __init__(self, root: Path, fsync: bool = True):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def _write(self, key: str, write) -> None:  # noqa: ANN001
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda f: f.write(data))

    def put_file(self, key: str, path: Path) -> None:
        with open(path, "rb") as src:
            self._write(key, lambda f: shutil.copyfileobj(src, f, 1 << 20))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"stored file {key} is missing") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        target = self.root / prefix.rstrip("/")
        if not prefix.strip("/") or not target.resolve().is_relative_to(self.root.resolve()):
            raise StorageError(f"refusing to delete prefix {prefix!r}")
        count = 0
        if target.is_dir():
            count = sum(1 for p in target.rglob("*") if p.is_file())
            shutil.rmtree(target, ignore_errors=True)
        elif target.is_file():
            target.unlink(missing_ok=True)
            count = 1
        self._prune_empty_parents(target)
        return count

    def _prune_empty_parents(self, target: Path) -> None:
        # A folder left empty still names what was erased (a submission id), and no key owns it, so the janitor
        # would never see it: e.g. a job's result/ deleted after its submission was erased mid-upload.
        root = self.root.resolve()
        parent = target.parent.resolve()
        while parent != root and parent.is_relative_to(root):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                return
            parent = parent.parent

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def presigned_url(self, key: str, ttl_s: int) -> str | None:
        return None

    def check(self) -> None:
        probe = self.root / ".probe"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            raise StorageError(f"storage folder {self.root} is not writable: {e.strerror}") from None


class S3Store:
    """An S3-compatible bucket through boto3 (``pip install boto3``).

    Results are handed out as S3 presigned URLs. Written against the S3 API
    (AWS, MinIO, Ceph); tested only where an S3-compatible server is at hand
    (see docs/server.md).
    """

    def __init__(self, config: ServerConfig):
        try:
            import boto3
        except ImportError:
            raise StorageError("storage 's3' needs boto3: pip install boto3") from None
        self.bucket = config.s3_bucket
        self.prefix = config.s3_prefix.strip("/") + "/" if config.s3_prefix.strip("/") else ""
        self.client = boto3.client(
            "s3", endpoint_url=config.s3_endpoint_url or None, region_name=config.s3_region or None
        )

    def _k(self, key: str) -> str:
        return self.prefix + _safe_key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._k(key))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise StorageError(f"stored file {key} is missing") from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError:
            return False

    def list_keys(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys.extend(obj["Key"][len(self.prefix):] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise StorageError(f"refusing to delete prefix {prefix!r}")
        keys = self.list_keys(prefix)
        for i in range(0, len(keys), 1000):
            batch = [{"Key": self.prefix + k} for k in keys[i:i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        return None

    def presigned_url(self, key: str, ttl_s: int) -> str | None:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._k(key)}, ExpiresIn=int(ttl_s)
        )

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as e:  # botocore raises many kinds; readiness only needs "not usable"
            raise StorageError(f"S3 bucket {self.bucket} is not reachable: {type(e).__name__}") from None


def open_store(config: ServerConfig) -> BlobStore:
    if config.storage == "s3":
        return S3Store(config)
    return LocalStore(config.blob_dir, fsync=config.durable_writes)
