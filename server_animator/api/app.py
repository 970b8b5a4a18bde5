"""The FastAPI application: state, middleware (body limit, metrics and privacy-safe request log), routers."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from skeleton.errors import CogmaError

from ..config import ServerConfig
from ..db import get_engine, migrate, session
from ..metrics import Metrics
from ..models import Job
from ..queue import JobQueue
from ..security import RateLimiter
from ..storage import open_store
from .deps import AppState
from .routes import consents, devices, files, health, jobs, submissions

log = logging.getLogger("cogma.api")
BODY_LIMIT_ROUTE = "(body over the limit)"  # route label of requests refused before routing: the path may hold ids

DESCRIPTION = """\
Consent-gated service that turns infant pose keypoints into anonymized videos.
Phones upload keypoints (a PoseRecording `.npz`), never raw video, under a recorded
consent; withdrawing a consent erases everything derived from it. Every error
answers `{"detail": "<what is wrong>"}`. Research software: not for clinical use.
"""


def _wrong_media_type(request: Request) -> str | None:
    """What the route takes, when the request's body came as another media type (a JSON body where a form
    is expected, or the other way round); ``None`` when the type fits or the request has no body type."""
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = getattr(getattr(request.scope.get("route"), "dependant", None), "body_params", None)
    if not given or not body:
        return None
    expected = "multipart/form-data" if any(isinstance(f.field_info, params.Form) for f in body) else "application/json"
    if given == expected or (expected == "multipart/form-data" and given == "application/x-www-form-urlencoded"
                             and not any(isinstance(f.field_info, params.File) for f in body)):
        return None
    return f"this endpoint takes {expected}, not {given}"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


class BodyLimit:
    """Refuse request bodies over the limit with 413 before they are parsed (chunked bodies are counted)."""

    def __init__(self, app, limit: int, on_refuse: Callable[[str], None] | None = None):  # noqa: ANN001
        # on_refuse(method): these requests never reach the routes' logging and metrics middleware
        self.app, self.limit, self.on_refuse = app, limit, on_refuse

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                too_big = True
            if too_big:
                return await self._refuse(scope, send)
            return await self.app(scope, receive, send)
        # No Content-Length (chunked): read it here, up to the limit, then replay it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self._refuse(scope, send)
            chunks.append(message)
            if not message.get("more_body"):
                break
        replay = iter(chunks)

        async def replay_receive():
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        return await self.app(scope, replay_receive, send)

    async def _refuse(self, scope, send) -> None:  # noqa: ANN001
        if self.on_refuse is not None:
            self.on_refuse(scope.get("method", "?"))
        resp = JSONResponse({"detail": f"request body is larger than the limit of {self.limit} bytes"}, 413)
        await send({"type": "http.response.start", "status": 413, "headers": resp.raw_headers})
        await send({"type": "http.response.body", "body": resp.body})


def _state(config: ServerConfig) -> AppState:
    engine = get_engine(config)
    queue = JobQueue(config)

    def job_counts() -> dict[str, int]:
        with session(engine, read_only=True) as s:
            return dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())

    return AppState(
        config=config, engine=engine, store=open_store(config), queue=queue,
        metrics=Metrics(job_counts, queue.pending),
        device_limiter=RateLimiter(config.rate_limit_per_minute, config.rate_limit_burst),
        registration_limiter=RateLimiter(config.registrations_per_minute, max(1, config.registrations_per_minute)),
        secret=config.secret(),
    )


def create_app(config: ServerConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        migrate(app.state.cogma.engine)
        log.info("API ready (queue=%s, storage=%s, backend=%s)", config.queue, config.storage, config.backend)
        yield

    app = FastAPI(title="CoGMA anonymized-video server", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.cogma = _state(config)
    for module in (devices, consents, submissions, jobs, files, health):
        app.include_router(module.router)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        wrong_type = _wrong_media_type(request)
        if wrong_type:
            return JSONResponse({"detail": wrong_type}, status_code=415)
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(CogmaError)
    async def _user_error(request: Request, exc: CogmaError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.middleware("http")
    async def _observe(request: Request, call_next):  # noqa: ANN001
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            dt = time.perf_counter() - t0
            m = app.state.cogma.metrics
            m.requests.labels(request.method, route, str(status)).inc()
            m.latency.labels(request.method, route).observe(dt)
            # No client address, no ids, no query: the route template says enough.
            log.info("%s %s %d %.1f ms", request.method, route, status, dt * 1000)

    def body_refused(method: str) -> None:
        app.state.cogma.metrics.requests.labels(method, BODY_LIMIT_ROUTE, "413").inc()
        log.info("%s %s 413 (body over %d bytes)", method, BODY_LIMIT_ROUTE, limit)

    limit = config.max_upload_bytes + 64 * 1024  # multipart framing on top
    app.add_middleware(BodyLimit, limit=limit, on_refuse=body_refused)
    return app
