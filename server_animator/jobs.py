"""Job lifecycle in the worker: claim, heartbeat, progress, finish, retry; the reaper and the janitor.

A job is claimed with one conditional UPDATE (status queued -> running, a new
lease token, attempts + 1), so two deliveries of one message, or two workers,
never run it twice. While it runs, a heartbeat thread refreshes
``heartbeat_at``; when that update matches no row the job was withdrawn (or
its lease was taken over) and the next progress call raises
:class:`JobCancelled`. The reaper, in every worker, re-queues running jobs
whose heartbeat is older than the lease (their worker died, e.g. SIGKILL) and
enqueues queued jobs that never reached the queue (the API crashed between
commit and enqueue, so the queue does not hold it). Results are uploaded first and committed second; if the
commit finds the job gone, the upload is deleted again, so a withdrawal that
races a finishing job still leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine

from skeleton.recording import load_recording

from .backends import AnimationResult, AnimatorBackend, JobCancelled
from .config import ServerConfig
from .db import write
from .models import Job, JobStatus, Submission, new_id, now
from .queue import JobQueue
from .storage import BlobStore, submission_prefix

log = logging.getLogger("cogma.worker")

ENQUEUE_GRACE_S = 5.0  # the API enqueues right after its commit; a job younger than this may be in transit
ORPHAN_GRACE_S = 600.0  # files without a row (a crash mid-request) are removed after this long
MAX_REASON = 300


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_REASON]


@dataclass
class Claim:
    job_id: str
    token: str
    attempt: int
    max_attempts: int
    submission_id: str
    recording_key: str


class _Heartbeat(threading.Thread):
    def __init__(self, runtime: "WorkerRuntime", claim: Claim):
        super().__init__(name=f"heartbeat-{claim.job_id[:8]}", daemon=True)
        self.runtime, self.claim = runtime, claim
        self.stop_event = threading.Event()
        self.cancelled = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.runtime.config.heartbeat_s):
            try:
                if not self.runtime.touch(self.claim):
                    self.cancelled.set()
                    return
            except Exception as e:  # a busy database must not kill the heartbeat; the lease is generous
                log.warning("heartbeat of job %s failed: %s", self.claim.job_id, _reason(e))


class WorkerRuntime:
    def __init__(self, config: ServerConfig, engine: Engine, store: BlobStore, backend: AnimatorBackend):
        self.config, self.engine, self.store, self.backend = config, engine, store, backend
        self.queue = JobQueue(config, handler=self.run_job)
        self._orphans_seen: dict[str, float] = {}

    # -- one job ---------------------------------------------------------
    def claim(self, job_id: str) -> Claim | None:
        token, t = new_id(), now()
        with write(self.engine) as conn:
            hit = conn.execute(
                update(Job)
                .where(and_(Job.id == job_id, Job.status == JobStatus.queued, Job.not_before <= t,
                            Job.attempts < Job.max_attempts))
                .values(status=JobStatus.running, attempts=Job.attempts + 1, lease_token=token, heartbeat_at=t,
                        updated_at=t, progress=0.0, started_at=t, backend=self.backend.name)
            ).rowcount
            if not hit:
                return None
            row = conn.execute(
                select(Job.attempts, Job.max_attempts, Job.submission_id, Submission.recording_key)
                .join(Submission, Submission.id == Job.submission_id).where(Job.id == job_id)
            ).one()
        return Claim(job_id, token, row.attempts, row.max_attempts, row.submission_id, row.recording_key)

    def _owned(self, claim: Claim):
        return and_(Job.id == claim.job_id, Job.lease_token == claim.token, Job.status == JobStatus.running)

    def touch(self, claim: Claim, progress: float | None = None) -> bool:
        """Heartbeat (and progress); False when the job is no longer ours."""
        values: dict = {"heartbeat_at": now(), "updated_at": now()}
        if progress is not None:
            values["progress"] = round(min(1.0, max(0.0, progress)), 4)
        with write(self.engine) as conn:
            return bool(conn.execute(update(Job).where(self._owned(claim)).values(**values)).rowcount)

    def run_job(self, job_id: str) -> None:
        claim = self.claim(job_id)
        if claim is None:
            log.debug("job %s not claimable (done, withdrawn, not due, or taken)", job_id)
            return
        log.info("job %s attempt %d/%d started", job_id, claim.attempt, claim.max_attempts)
        heartbeat = _Heartbeat(self, claim)
        heartbeat.start()
        scratch = self.config.work_dir / f"{job_id}-{claim.token[:8]}"
        last_write = [0.0]

        def progress(fraction: float) -> None:
            if heartbeat.cancelled.is_set():
                raise JobCancelled(job_id)
            t = time.monotonic()
            if t - last_write[0] >= 0.5:  # the final 1.0 is written by _finish
                last_write[0] = t
                if not self.touch(claim, fraction):
                    heartbeat.cancelled.set()
                    raise JobCancelled(job_id)

        try:
            recording = load_recording(self.store.get_bytes(claim.recording_key))
            result = self.backend.animate(recording, scratch, progress)
            if heartbeat.cancelled.is_set():
                raise JobCancelled(job_id)
            self._finish(claim, result)
        except JobCancelled:
            log.info("job %s cancelled during attempt %d", job_id, claim.attempt)
        except Exception as e:
            self._fail_or_retry(claim, e)
        finally:
            heartbeat.stop_event.set()
            shutil.rmtree(scratch, ignore_errors=True)

    def _finish(self, claim: Claim, result: AnimationResult) -> None:
        prefix = submission_prefix(claim.submission_id) + "result/"
        qa = dict(result.qa_report, passed=bool(result.passed), attempt=claim.attempt)
        qa_key, video_key = prefix + "qa_report.json", prefix + "video.mp4"
        try:
            self.store.put_bytes(qa_key, json.dumps(qa, indent=2, sort_keys=True).encode())
            if result.passed:  # a video that failed QA is never served, so never stored
                self.store.put_file(video_key, result.video_path)
                for name, path in result.extra_files.items():
                    self.store.put_file(prefix + Path(name).name, path)
        except Exception:
            # An erasure deletes the folder under our uploads, so one of them fails. What the others wrote must
            # go too, at once: the janitor would take it only after its grace period.
            if not self.touch(claim):
                self._discard_result(claim, prefix)
                return
            raise
        t = now()
        values = dict(
            status=JobStatus.succeeded if result.passed else JobStatus.failed, progress=1.0, finished_at=t,
            updated_at=t, qa_key=qa_key, qa_passed=bool(result.passed), video_key=video_key if result.passed else None,
        )
        if not result.passed:  # on success the reason of an earlier failed attempt stays visible
            values["failure_reason"] = f"attempt {claim.attempt}: anonymization QA below the configured thresholds"
        with write(self.engine) as conn:
            done = conn.execute(update(Job).where(self._owned(claim)).values(**values)).rowcount
        if not done:  # withdrawn (or taken over) while we uploaded: leave nothing behind
            self._discard_result(claim, prefix)
        else:
            log.info("job %s %s", claim.job_id, values["status"])

    def _discard_result(self, claim: Claim, prefix: str) -> None:
        self.store.delete_prefix(prefix)
        log.info("job %s was withdrawn while finishing; its result was deleted", claim.job_id)

    def _fail_or_retry(self, claim: Claim, exc: BaseException) -> None:
        reason = f"attempt {claim.attempt}: {_reason(exc)}"
        log.warning("job %s failed: %s", claim.job_id, reason)
        t = now()
        if claim.attempt < claim.max_attempts:
            delay = self.config.retry_delay_s * 2 ** (claim.attempt - 1)
            values = dict(status=JobStatus.queued, failure_reason=reason, not_before=t + delay,
                          lease_token=None, progress=0.0, updated_at=t)
        else:
            delay = None
            values = dict(status=JobStatus.failed, failure_reason=reason, finished_at=t, updated_at=t)
        with write(self.engine) as conn:
            hit = conn.execute(update(Job).where(self._owned(claim)).values(**values)).rowcount
        if hit and delay is not None:
            self._enqueue(claim.job_id, delay)

    def _enqueue(self, job_id: str, delay_s: float = 0.0) -> None:
        self.queue.enqueue(job_id, delay_s)

    # -- maintenance -------------------------------------------------------
    def reap(self) -> dict[str, int]:
        """Re-queue jobs of dead workers, fail those out of attempts, enqueue what never reached the queue."""
        t = now()
        stale = t - self.config.lease_s
        lost = and_(Job.status == JobStatus.running, Job.heartbeat_at < stale)
        with write(self.engine) as conn:
            requeued = self._requeue_lost(conn, lost, t)
            failed = conn.execute(
                update(Job).where(and_(lost, Job.attempts >= Job.max_attempts)).values(
                    status=JobStatus.failed, finished_at=t, updated_at=t,
                    failure_reason="worker stopped responding; no attempts left",
                )
            ).rowcount
            waiting = conn.execute(
                select(Job.id).where(and_(Job.status == JobStatus.queued, Job.not_before <= t - ENQUEUE_GRACE_S,
                                          Job.updated_at <= t - ENQUEUE_GRACE_S))
            ).scalars().all()
        # A queued job the queue does not hold was lost on its way (API crash between commit and enqueue,
        # or a worker killed right after taking the message). A duplicate message would be a harmless no-op.
        due = sorted(set(waiting) - self.queue.job_ids_held()) if waiting else []
        for job_id in due:
            self._enqueue(job_id)
        if requeued or failed or due:
            log.info("reaper: %d re-queued, %d failed, %d enqueued", requeued, failed, len(due))
        return {"requeued": requeued, "failed": failed, "enqueued": len(due)}

    @staticmethod
    def _requeue_lost(conn, lost, t: float) -> int:  # noqa: ANN001
        from sqlalchemy import String, cast

        return conn.execute(
            update(Job).where(and_(lost, Job.attempts < Job.max_attempts)).values(
                status=JobStatus.queued, lease_token=None, progress=0.0, not_before=t - ENQUEUE_GRACE_S,
                updated_at=t - ENQUEUE_GRACE_S,
                failure_reason="worker stopped responding during attempt " + cast(Job.attempts, String),
            )
        ).rowcount

    def clean_orphans(self) -> int:
        """Delete stored files and scratch folders that no row owns (left by a crash), after a grace period."""
        t = now()
        stored = {k.split("/")[1] for k in self.store.list_keys("submissions/") if k.count("/") >= 2}
        with self.engine.connect() as conn:
            known = set(conn.execute(select(Submission.id).where(Submission.id.in_(stored))).scalars()) if stored else set()
            live_tokens = {
                f"{jid}-{tok[:8]}" for jid, tok in conn.execute(
                    select(Job.id, Job.lease_token).where(Job.status == JobStatus.running)
                ) if tok
            }
            conn.rollback()
        removed = 0
        for sid in stored - known:
            first = self._orphans_seen.setdefault(sid, t)
            if t - first >= ORPHAN_GRACE_S:
                removed += self.store.delete_prefix(submission_prefix(sid))
                self._orphans_seen.pop(sid, None)
        for sid in list(self._orphans_seen):
            if sid in known:
                self._orphans_seen.pop(sid)
        if self.config.work_dir.is_dir():
            for d in self.config.work_dir.iterdir():
                if d.name not in live_tokens and t - d.stat().st_mtime >= self.config.lease_s:
                    shutil.rmtree(d, ignore_errors=True)
                    removed += 1
        return removed
