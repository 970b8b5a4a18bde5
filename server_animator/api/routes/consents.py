"""Consents per scope: give (POST), read (GET) and withdraw with cascading erasure (DELETE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ...db import session
from ...erasure import audit, finish_erasure, withdraw_consent
from ...models import Consent
from ...schemas import ID_PATTERN, ConsentCreate, ConsentOut, ConsentWithdrawn, Problem, iso
from ..deps import CurrentDevice, State, not_found

router = APIRouter(prefix="/v1/consents", tags=["consents"])
ConsentId = Annotated[str, Path(pattern=ID_PATTERN, description="consent_id from POST /v1/consents")]
_errors = {401: {"model": Problem}, 404: {"model": Problem}, 429: {"model": Problem}}


def _out(c: Consent) -> ConsentOut:
    return ConsentOut(consent_id=c.id, scope=c.scope, text_version=c.text_version, given_by=c.given_by,
                      given_at=iso(c.given_at))


@router.post("", status_code=201, response_model=ConsentOut, responses={**_errors, 415: {"model": Problem}},
             summary="Record a consent")
def give_consent(state: State, device: CurrentDevice, body: ConsentCreate) -> ConsentOut:
    consent = Consent(device_id=device.id, scope=body.scope, text_version=body.text_version, given_by=body.given_by)
    with session(state.engine) as s:
        s.add(consent)
        audit(s, "consent.given", device.id, f"consent:{consent.id}", scope=body.scope,
              text_version=body.text_version)
    return _out(consent)


@router.get("/{consent_id}", response_model=ConsentOut, responses=_errors, summary="Read a consent")
def read_consent(state: State, device: CurrentDevice, consent_id: ConsentId) -> ConsentOut:
    with session(state.engine, read_only=True) as s:
        consent = s.get(Consent, consent_id)
    if consent is None or consent.device_id != device.id:
        raise not_found("consent")
    return _out(consent)


@router.delete(
    "/{consent_id}", response_model=ConsentWithdrawn, responses=_errors,
    summary="Withdraw a consent: cancels its jobs and erases its recordings, videos and rows",
)
def withdraw(state: State, device: CurrentDevice, consent_id: ConsentId) -> ConsentWithdrawn:
    with session(state.engine) as s:
        consent = s.get(Consent, consent_id)
        if consent is None or consent.device_id != device.id:
            raise not_found("consent")
        summary, sids, job_ids = withdraw_consent(s, consent, device.id)
    finish_erasure(state.engine, state.config, state.store, summary, sids, job_ids)
    state.metrics.erasures.labels("consent").inc()
    return ConsentWithdrawn(consent_id=consent_id, submissions_erased=summary.submissions,
                            jobs_cancelled=summary.jobs_cancelled, files_deleted=summary.files_deleted)


