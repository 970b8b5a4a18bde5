"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...db import schema_is_current
from ...schemas import Health, Ready
from ..deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}},
            summary="Database, migrations, queue and storage are usable")
def readyz(state: State) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        checks["database"] = "ok" if schema_is_current(state.engine) else "schema is not at the newest migration"
    except Exception as e:
        checks["database"] = f"unreachable ({type(e).__name__})"
    for name, probe in (("queue", state.queue.check), ("storage", state.store.check)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as e:
            checks[name] = f"unavailable ({type(e).__name__})"
    ready = all(v == "ok" for v in checks.values())
    body = Ready(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (counts only, no personal data)",
            responses={200: {"content": {"text/plain": {}}}})
def metrics(state: State) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
