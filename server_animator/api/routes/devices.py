"""POST /v1/devices: register an app installation; DELETE /v1/devices/me: erase it and everything it sent."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Body, Header, HTTPException
from sqlalchemy import delete, select

from ...db import session
from ...erasure import ErasureSummary, audit, finish_erasure, withdraw_consent
from ...models import Consent, Device
from ...schemas import DeviceCreate, DeviceCreated, DeviceErased, Problem
from ...security import hash_token, new_token
from ..deps import CurrentDevice, State, too_many

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.post(
    "", status_code=201, response_model=DeviceCreated,
    responses={401: {"model": Problem}, 415: {"model": Problem}, 429: {"model": Problem}},
    summary="Register a device; the token is shown once",
)
def register_device(
    state: State,
    body: Annotated[DeviceCreate | None, Body()] = None,
    enrollment_key: Annotated[str | None, Header(alias="X-Enrollment-Key", max_length=256)] = None,
) -> DeviceCreated:
    expected = state.config.enrollment_key
    if expected and not hmac.compare_digest((enrollment_key or "").encode(), expected.encode()):
        raise HTTPException(401, "this server needs a valid X-Enrollment-Key header to register devices")
    wait = state.registration_limiter.allow("register")
    if wait:
        raise too_many(wait)
    body = body or DeviceCreate()
    token = new_token()
    device = Device(token_hash=hash_token(token), platform=body.platform, app_version=body.app_version)
    with session(state.engine) as s:
        s.add(device)
        audit(s, "device.registered", device.id, f"device:{device.id}")
    return DeviceCreated(device_id=device.id, token=token)


@router.delete(
    "/me", response_model=DeviceErased, responses={401: {"model": Problem}, 429: {"model": Problem}},
    summary="Erase this device: withdraw all its consents (cascading erasure) and revoke its token",
)
def erase_device(state: State, device: CurrentDevice) -> DeviceErased:
    total = ErasureSummary()
    sids: list[str] = []
    job_ids: list[str] = []
    with session(state.engine) as s:
        consents = s.execute(select(Consent).where(Consent.device_id == device.id)).scalars().all()
        for consent in consents:
            summary, c_sids, c_jobs = withdraw_consent(s, consent, device.id)
            total.submissions += summary.submissions
            total.jobs_cancelled += summary.jobs_cancelled
            sids += c_sids
            job_ids += c_jobs
        s.execute(delete(Device).where(Device.id == device.id))
        audit(s, "device.erased", device.id, f"device:{device.id}", consents=len(consents),
              submissions=total.submissions)
    finish_erasure(state.engine, state.config, state.store, total, sids, job_ids)
    state.metrics.erasures.labels("device").inc()
    return DeviceErased(device_id=device.id, consents_withdrawn=len(consents), submissions_erased=total.submissions,
                        jobs_cancelled=total.jobs_cancelled, files_deleted=total.files_deleted)
