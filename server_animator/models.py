"""Storage models (SQLModel tables). The API's request/response shapes live in ``schemas.py``.

Times are UNIX seconds (float, UTC) so that SQLite compares them exactly.
Ids are random UUID hex strings: they say nothing about a person.
Nothing here holds a name, a birth date or an age: recordings (which carry the
corrected age in weeks) live only in blob storage and are erased with their
consent. Changing a table needs an alembic migration in ``migrations/versions``.
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum

from sqlmodel import Field, SQLModel, UniqueConstraint


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


class Scope(StrEnum):
    research_keypoints = "research_keypoints"  # keypoints kept for research use
    anonymized_video = "anonymized_video"  # keypoints animated into an anonymized video


class GivenBy(StrEnum):
    """Who gave consent, as a role; never a name."""

    parent = "parent"
    guardian = "guardian"
    legal_representative = "legal_representative"


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class Device(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    token_hash: str = Field(index=True, unique=True)  # sha256 of the bearer token; the token itself is never stored
    platform: str | None = None
    app_version: str | None = None
    created_at: float = Field(default_factory=now)


class Consent(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    device_id: str = Field(foreign_key="device.id", index=True)
    scope: str
    text_version: str
    given_by: str
    given_at: float = Field(default_factory=now)


class Submission(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("device_id", "idempotency_key", name="uq_submission_idempotency"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    device_id: str = Field(foreign_key="device.id", index=True)
    consent_id: str = Field(foreign_key="consent.id", index=True)
    idempotency_key: str
    request_sha256: str  # of consent id + uploaded bytes: a replay with another body is refused
    recording_key: str  # blob storage key of the validated recording
    schema_name: str
    num_frames: int
    fps: float
    created_at: float = Field(default_factory=now)


class Job(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    submission_id: str = Field(foreign_key="submission.id", index=True, unique=True)
    device_id: str = Field(foreign_key="device.id", index=True)
    status: str = Field(default=JobStatus.queued, index=True)
    backend: str
    progress: float = 0.0
    attempts: int = 0
    max_attempts: int = 3
    failure_reason: str | None = None
    not_before: float = 0.0  # retry back-off
    lease_token: str | None = None  # which attempt holds the job; a stale attempt cannot finish it
    heartbeat_at: float | None = None
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)
    started_at: float | None = None
    finished_at: float | None = None
    video_key: str | None = None
    qa_key: str | None = None
    qa_passed: bool | None = None


class AuditEvent(SQLModel, table=True):
    """What happened to which resource, when, and by which device. Never personal data."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(default_factory=now, index=True)
    event: str  # e.g. consent.given, consent.withdrawn, submission.erased, result.accessed
    actor_device_id: str | None = None
    resource: str | None = None  # "consent:<id>", "submission:<id>" ...
    detail: str | None = None  # JSON with counts and scope/version only
