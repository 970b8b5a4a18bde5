"""Request and response shapes of the HTTP API (separate from the storage models). docs/server.md mirrors these."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .models import GivenBy, JobStatus, Scope

ID_PATTERN = r"^[0-9a-f]{32}$"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"


def iso(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Out):
    detail: str = Field(description="What is wrong, in words meant for the user or the app developer")


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: Literal["android", "ios", "desktop", "other"] | None = None
    app_version: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9._+\-]+$")


class DeviceCreated(_Out):
    device_id: str
    token: str = Field(description="Bearer token for every later call; shown once, stored only as a hash")


class DeviceErased(_Out):
    device_id: str
    erased: bool = True
    consents_withdrawn: int
    submissions_erased: int
    jobs_cancelled: int
    files_deleted: int


class ConsentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Scope = Field(description="research_keypoints: keep keypoints for research; "
                                     "anonymized_video: animate them into an anonymized video")
    text_version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$",
                              description="Version of the consent text the person agreed to, e.g. 'v1.2'")
    given_by: GivenBy = Field(description="Role of the person who consented (never a name)")


class ConsentOut(_Out):
    consent_id: str
    scope: Scope
    text_version: str
    given_by: GivenBy
    given_at: datetime


class ConsentWithdrawn(_Out):
    consent_id: str
    withdrawn: bool = True
    submissions_erased: int
    jobs_cancelled: int
    files_deleted: int


class SubmissionAccepted(_Out):
    submission_id: str
    job_id: str | None = Field(description="None for a research_keypoints consent (stored, not animated)")
    status: Literal["queued", "stored"]
    replayed: bool = Field(default=False, description="True when this answers a repeated Idempotency-Key")


class SubmissionOut(_Out):
    submission_id: str
    consent_id: str
    job_id: str | None
    schema_name: str
    num_frames: int
    fps: float
    created_at: datetime
    status: str = Field(description="The job's status, or 'stored' when no animation was asked for")


class SubmissionErased(_Out):
    submission_id: str
    erased: bool = True
    jobs_cancelled: int
    files_deleted: int


class JobOut(_Out):
    job_id: str
    submission_id: str
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    attempts: int
    max_attempts: int
    failure_reason: str | None
    backend: str
    qa_passed: bool | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ResultOut(_Out):
    submission_id: str
    job_id: str
    video_url: str = Field(description="Signed link to the MP4, valid until expires_at; no token needed")
    qa_report_url: str
    expires_at: datetime
    qa_report: dict[str, Any]


class Health(_Out):
    status: Literal["ok"] = "ok"


class Ready(_Out):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
