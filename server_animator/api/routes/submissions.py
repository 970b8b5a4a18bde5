"""Submissions: upload a PoseRecording under a consent (POST), read it, get its result, erase it (DELETE).

POST answers 202 only after the recording is stored and its rows are
committed, so an accepted submission survives a crash of the API process at
any later point; handing the job to the queue comes after, and the workers'
reaper enqueues any queued job that the queue does not hold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from skeleton.errors import RecordingError
from skeleton.recording import PoseRecording, load_recording

from ...db import session
from ...erasure import audit, erase_submission, finish_erasure
from ...models import Consent, Job, JobStatus, Scope, Submission, new_id
from ...schemas import (ID_PATTERN, Problem, ResultOut, SubmissionAccepted, SubmissionErased, SubmissionOut, iso)
from ...security import sign
from ...storage import StorageError, submission_prefix
from ..deps import AppState, CurrentDevice, IdempotencyKey, State, not_found

log = logging.getLogger("cogma.api")
router = APIRouter(prefix="/v1/submissions", tags=["submissions"])
SubmissionId = Annotated[str, Path(pattern=ID_PATTERN)]
_errors = {401: {"model": Problem}, 404: {"model": Problem}, 429: {"model": Problem}}

# Container signatures of common video formats: raw video must never arrive unless the operator allows it.
_VIDEO_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (8, b"AVI "), (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"))


def _looks_like_video(head: bytes, content_type: str | None) -> bool:
    if content_type and content_type.lower().startswith("video/"):
        return True
    return any(head[off:off + len(sig)] == sig for off, sig in _VIDEO_MAGIC)


_PSEUDONYM = re.compile(r"[0-9a-f]{32}")  # the app's random per-baby pseudonym (uuid4 hex)


def _server_copy(rec: PoseRecording) -> bytes:
    """What the server keeps of an upload: the validated recording written afresh, never the upload's own
    bytes (a zip archive may carry anything before it or in its comment, a video included), and without the
    free-text fields a client could fill with names: ``device`` and ``extra`` are dropped, ``infant_id`` is kept
    only when it is a pseudonym of the app's form. Costs ~7 ms a request (compression)."""
    pseudonym = rec.infant_id if rec.infant_id and _PSEUDONYM.fullmatch(rec.infant_id) else None
    return replace(rec, device="unknown", infant_id=pseudonym, extra={}).to_bytes()


def _read_upload(upload: UploadFile, limit: int, what: str) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{what} is larger than the limit of {limit} bytes")
    return data


def _accepted(sub: Submission, job_id: str | None, replayed: bool) -> JSONResponse:
    body = SubmissionAccepted(submission_id=sub.id, job_id=job_id, status="queued" if job_id else "stored",
                              replayed=replayed)
    return JSONResponse(body.model_dump(), status_code=202)


def _replay(state: AppState, device_id: str, key: str, request_hash: str) -> JSONResponse | None:
    with session(state.engine, read_only=True) as s:
        row = s.execute(
            select(Submission, Job.id).outerjoin(Job, Job.submission_id == Submission.id)
            .where(Submission.device_id == device_id, Submission.idempotency_key == key)
        ).first()
    if row is None:
        return None
    sub, job_id = row
    if sub.request_sha256 != request_hash:
        state.metrics.submissions.labels("idempotency_conflict").inc()
        raise HTTPException(409, "this Idempotency-Key was already used for a different submission; "
                                 "use a new key for new data")
    state.metrics.submissions.labels("replayed").inc()
    return _accepted(sub, job_id, replayed=True)


@router.post(
    "", status_code=202, response_model=SubmissionAccepted,
    responses={**_errors, 403: {"model": Problem}, 409: {"model": Problem}, 413: {"model": Problem},
               415: {"model": Problem}, 422: {"model": Problem}},
    summary="Submit a PoseRecording (.npz) under a consent; 202 once it is durably stored",
)
def submit(
    state: State,
    device: CurrentDevice,
    idempotency_key: IdempotencyKey,
    recording: Annotated[UploadFile, File(description="PoseRecording .npz (keypoints only)")],
    consent_id: Annotated[str, Form(max_length=64, description="consent_id of a consent of this device")],
    video: Annotated[UploadFile | None, File(description="Raw video: refused unless the operator enabled it")] = None,
) -> JSONResponse:
    cfg = state.config
    data = _read_upload(recording, cfg.max_upload_bytes, "the recording")
    if _looks_like_video(data[:16], recording.content_type) or video is not None:
        if not cfg.allow_video_uploads:
            state.metrics.submissions.labels("video_refused").inc()
            raise HTTPException(415, "video uploads are disabled on this server: send the PoseRecording .npz "
                                     "(keypoints only); raw video stays on the phone")
    video_data = _read_upload(video, cfg.max_upload_bytes, "the video") if video is not None else b""
    digest = hashlib.sha256()
    for part in (consent_id.encode(), hashlib.sha256(data).digest(), hashlib.sha256(video_data).digest()):
        digest.update(part)
    request_hash = digest.hexdigest()

    replay = _replay(state, device.id, idempotency_key, request_hash)
    if replay is not None:
        return replay

    with session(state.engine, read_only=True) as s:
        consent = s.get(Consent, consent_id)
    if consent is None or consent.device_id != device.id:
        raise not_found("consent")
    try:
        rec = load_recording(data)
    except RecordingError as e:
        state.metrics.submissions.labels("invalid_recording").inc()
        raise HTTPException(422, f"invalid recording: {e}") from None
    if rec.num_frames > cfg.max_frames:
        state.metrics.submissions.labels("invalid_recording").inc()
        raise HTTPException(422, f"invalid recording: {rec.num_frames} frames; this server takes at most "
                                 f"{cfg.max_frames} per submission (send a shorter stretch)")

    sub_id = new_id()
    prefix = submission_prefix(sub_id)
    try:
        state.store.put_bytes(prefix + "recording.npz", _server_copy(rec))
        if video_data:
            state.store.put_bytes(prefix + "source_video", video_data)
    except (OSError, StorageError) as e:
        log.error("storage write failed: %s", type(e).__name__)
        raise HTTPException(503, "storage is unavailable; retry later with the same Idempotency-Key") from None

    animate = consent.scope == Scope.anonymized_video
    sub = Submission(id=sub_id, device_id=device.id, consent_id=consent.id, idempotency_key=idempotency_key,
                     request_sha256=request_hash, recording_key=prefix + "recording.npz", schema_name=rec.schema,
                     num_frames=rec.num_frames, fps=rec.fps)
    job = Job(submission_id=sub_id, device_id=device.id, backend=cfg.backend, max_attempts=cfg.max_attempts) \
        if animate else None
    try:
        with session(state.engine) as s:
            if s.get(Consent, consent.id) is None:  # withdrawn while we stored the file
                raise not_found("consent")
            s.add(sub)
            s.flush()
            if job is not None:
                s.add(job)
            audit(s, "submission.accepted", device.id, f"submission:{sub_id}", scope=consent.scope)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: answer as its replay.
        state.store.delete_prefix(prefix)
        replay = _replay(state, device.id, idempotency_key, request_hash)
        if replay is None:
            raise
        return replay
    except HTTPException:
        state.store.delete_prefix(prefix)
        raise

    if job is not None:
        _hand_to_queue(state, job.id)
    state.metrics.submissions.labels("accepted").inc()
    return _accepted(sub, job.id if job else None, replayed=False)


def _hand_to_queue(state: AppState, job_id: str) -> None:
    try:
        state.queue.enqueue(job_id)
    except Exception as e:  # the row is committed; a worker's reaper enqueues it when the queue is back
        log.warning("queue hand-over deferred to the reaper: %s", type(e).__name__)


def _own_submission(state: AppState, device_id: str, submission_id: str) -> tuple[Submission, Job | None]:
    with session(state.engine, read_only=True) as s:
        sub = s.get(Submission, submission_id)
        if sub is None or sub.device_id != device_id:
            raise not_found("submission")
        job = s.execute(select(Job).where(Job.submission_id == sub.id)).scalar_one_or_none()
    return sub, job


@router.get("/{submission_id}", response_model=SubmissionOut, responses=_errors, summary="Read a submission")
def read_submission(state: State, device: CurrentDevice, submission_id: SubmissionId) -> SubmissionOut:
    sub, job = _own_submission(state, device.id, submission_id)
    return SubmissionOut(submission_id=sub.id, consent_id=sub.consent_id, job_id=job.id if job else None,
                         schema_name=sub.schema_name, num_frames=sub.num_frames, fps=sub.fps,
                         created_at=iso(sub.created_at), status=job.status if job else "stored")


@router.get(
    "/{submission_id}/result", response_model=ResultOut, responses={**_errors, 409: {"model": Problem}},
    summary="Short-lived signed links to the anonymized video and its QA report",
)
def read_result(
    request: Request, state: State, device: CurrentDevice, submission_id: SubmissionId,
    ttl: Annotated[int | None, Query(ge=1, le=86_400, description="Link lifetime in seconds (capped by the server)")] = None,
) -> ResultOut:
    sub, job = _own_submission(state, device.id, submission_id)
    if job is None:
        raise HTTPException(409, "this submission was stored for research only; it has no video")
    if job.status != JobStatus.succeeded or not job.video_key:
        reason = f": {job.failure_reason}" if job.status == JobStatus.failed and job.failure_reason else ""
        raise HTTPException(409, f"no result yet: job is {job.status}{reason}")
    cfg = state.config
    ttl_s = min(ttl or cfg.signed_url_ttl_s, cfg.max_signed_url_ttl_s)
    try:
        qa = json.loads(state.store.get_bytes(job.qa_key))
    except StorageError:
        raise not_found("result") from None
    base = (cfg.public_base_url or str(request.base_url)).rstrip("/")
    links = {}
    for name, key in (("video", job.video_key), ("qa", job.qa_key)):
        url = state.store.presigned_url(key, ttl_s)
        if url is None:
            expires, sig = sign(state.secret, key, ttl_s)
            url = f"{base}/v1/files/{key}?expires={expires}&signature={sig}"
        links[name] = url
    expires_at, _ = sign(state.secret, job.video_key, ttl_s)
    with session(state.engine) as s:
        audit(s, "result.accessed", device.id, f"submission:{sub.id}")
    return ResultOut(submission_id=sub.id, job_id=job.id, video_url=links["video"], qa_report_url=links["qa"],
                     expires_at=iso(expires_at), qa_report=qa)


@router.delete("/{submission_id}", response_model=SubmissionErased, responses=_errors,
               summary="Erase a submission: cancels its job, deletes its files and rows")
def delete_submission(state: State, device: CurrentDevice, submission_id: SubmissionId) -> SubmissionErased:
    with session(state.engine) as s:
        sub = s.get(Submission, submission_id)
        if sub is None or sub.device_id != device.id:
            raise not_found("submission")
        summary, sids, job_ids = erase_submission(s, sub, device.id)
    finish_erasure(state.engine, state.config, state.store, summary, sids, job_ids)
    state.metrics.erasures.labels("submission").inc()
    return SubmissionErased(submission_id=submission_id, jobs_cancelled=summary.jobs_cancelled,
                            files_deleted=summary.files_deleted)
