"""Everything the routes depend on, in one place: app state, the authenticated device, rate limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ..config import ServerConfig
from ..db import session
from ..metrics import Metrics
from ..models import Device
from ..queue import JobQueue
from ..schemas import IDEMPOTENCY_KEY_PATTERN
from ..security import RateLimiter, hash_token
from ..storage import BlobStore

log = logging.getLogger("cogma.api")


@dataclass
class AppState:
    config: ServerConfig
    engine: Engine
    store: BlobStore
    queue: JobQueue
    metrics: Metrics
    device_limiter: RateLimiter
    registration_limiter: RateLimiter
    secret: bytes


def get_state(request: Request) -> AppState:
    return request.app.state.cogma


State = Annotated[AppState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False, description="The token from POST /v1/devices")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def too_many(retry_after: float) -> HTTPException:
    seconds = max(1, int(retry_after + 0.999))
    return HTTPException(429, f"rate limit exceeded; retry in {seconds} s", headers={"Retry-After": str(seconds)})


def current_device(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Device:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>' from POST /v1/devices")
    token = credentials.credentials
    if len(token) > 256:
        raise _unauthorized("invalid bearer token")
    with session(state.engine, read_only=True) as s:
        device = s.execute(select(Device).where(Device.token_hash == hash_token(token))).scalar_one_or_none()
    if device is None:
        raise _unauthorized("invalid bearer token")
    wait = state.device_limiter.allow(device.id)
    if wait:
        raise too_many(wait)
    return device


CurrentDevice = Annotated[Device, Depends(current_device)]

IdempotencyKey = Annotated[
    str,
    Header(alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN,
           description="A key the client picks per submission (e.g. a UUID); a retry with the same key and "
                       "body returns the same submission, the same key with another body gets 409"),
]


def not_found(kind: str) -> HTTPException:
    # Another device's resource and a missing one look the same: no probing of ids.
    return HTTPException(404, f"{kind} not found")
