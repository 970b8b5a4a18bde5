"""Erasure: a deleted submission or a withdrawn consent takes every row, file and job of it along.

Rows go first, in one transaction with the audit entry (from then on nothing
can reach the data and a running job loses its lease at its next heartbeat);
then the stored files and the jobs' scratch folders; then the SQLite WAL is
folded in and truncated so no old page copy of an erased row survives. If the
process dies between the two steps, the worker's janitor removes the files
that no row owns. The audit entry keeps only ids, scope, consent text version
and counts: no keypoints, no age, nothing about the child.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from .config import ServerConfig
from .db import checkpoint
from .models import AuditEvent, Consent, Job, JobStatus, Submission
from .storage import BlobStore, submission_prefix

log = logging.getLogger("cogma.erasure")


@dataclass
class ErasureSummary:
    submissions: int = 0
    jobs_cancelled: int = 0  # queued or running when erased
    jobs_deleted: int = 0
    files_deleted: int = 0


def audit(s: Session, event: str, actor: str | None, resource: str | None = None, **detail) -> None:
    s.add(AuditEvent(event=event, actor_device_id=actor, resource=resource,
                     detail=json.dumps(detail, sort_keys=True) if detail else None))


def _delete_rows(s: Session, submission_ids: list[str]) -> tuple[ErasureSummary, list[str]]:
    summary = ErasureSummary(submissions=len(submission_ids))
    if not submission_ids:
        return summary, []
    jobs = s.execute(select(Job.id, Job.status).where(Job.submission_id.in_(submission_ids))).all()
    summary.jobs_deleted = len(jobs)
    summary.jobs_cancelled = sum(1 for j in jobs if j.status in (JobStatus.queued, JobStatus.running))
    s.execute(delete(Job).where(Job.submission_id.in_(submission_ids)))
    s.execute(delete(Submission).where(Submission.id.in_(submission_ids)))
    return summary, [j.id for j in jobs]


def _delete_files(config: ServerConfig, store: BlobStore, submission_ids: list[str], job_ids: list[str]) -> int:
    count = 0
    for sid in submission_ids:
        count += store.delete_prefix(submission_prefix(sid))
    if config.work_dir.is_dir() and job_ids:
        for d in config.work_dir.iterdir():
            if d.name.split("-")[0] in job_ids:
                shutil.rmtree(d, ignore_errors=True)
                count += 1
    return count


def finish_erasure(engine: Engine, config: ServerConfig, store: BlobStore, summary: ErasureSummary,
                   submission_ids: list[str], job_ids: list[str]) -> ErasureSummary:
    """After the rows are committed: files, scratch folders, WAL."""
    summary.files_deleted = _delete_files(config, store, submission_ids, job_ids)
    try:
        checkpoint(engine)
    except Exception as e:  # busy under load: the next checkpoint folds it in; never fail an erasure on it
        log.info("WAL checkpoint after erasure deferred: %s", type(e).__name__)
    return summary


def withdraw_consent(s: Session, consent: Consent, actor: str) -> tuple[ErasureSummary, list[str], list[str]]:
    """Delete a consent and everything under it inside ``s``; the caller commits, then calls finish_erasure."""
    sids = list(s.execute(select(Submission.id).where(Submission.consent_id == consent.id)).scalars())
    summary, job_ids = _delete_rows(s, sids)
    s.execute(delete(Consent).where(Consent.id == consent.id))
    audit(s, "consent.withdrawn", actor, f"consent:{consent.id}", scope=consent.scope,
          text_version=consent.text_version, **{k: v for k, v in asdict(summary).items() if k != "files_deleted"})
    return summary, sids, job_ids


def erase_submission(s: Session, submission: Submission, actor: str) -> tuple[ErasureSummary, list[str], list[str]]:
    summary, job_ids = _delete_rows(s, [submission.id])
    audit(s, "submission.erased", actor, f"submission:{submission.id}",
          **{k: v for k, v in asdict(summary).items() if k != "files_deleted"})
    return summary, [submission.id], job_ids
