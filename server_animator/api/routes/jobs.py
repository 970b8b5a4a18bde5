"""GET /v1/jobs/{id}: status, progress, attempts and failure reason of an animation job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ...db import session
from ...models import Job
from ...schemas import ID_PATTERN, JobOut, Problem, iso
from ..deps import CurrentDevice, State, not_found

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def job_out(j: Job) -> JobOut:
    return JobOut(
        job_id=j.id, submission_id=j.submission_id, status=j.status, progress=j.progress, attempts=j.attempts,
        max_attempts=j.max_attempts, failure_reason=j.failure_reason, backend=j.backend, qa_passed=j.qa_passed,
        created_at=iso(j.created_at), updated_at=iso(j.updated_at), started_at=iso(j.started_at),
        finished_at=iso(j.finished_at),
    )


@router.get("/{job_id}", response_model=JobOut,
            responses={401: {"model": Problem}, 404: {"model": Problem}, 429: {"model": Problem}},
            summary="Job status")
def read_job(state: State, device: CurrentDevice,
             job_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> JobOut:
    with session(state.engine, read_only=True) as s:
        job = s.get(Job, job_id)
    if job is None or job.device_id != device.id:
        raise not_found("job")
    return job_out(job)
