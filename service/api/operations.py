"""Operations: liveness (``GET /healthz``), readiness (``GET /readyz``) and Prometheus metrics
(``GET /metrics``). Open: load balancers and scrapers call them without an API key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from service.api.dependencies import (
    ERRORS,
)
from service.engine.engine import InferenceEngine

router = APIRouter()


@router.get(
    "/healthz",
    tags=["operations"],
    summary="Liveness: the process is up and can serve",
    responses={503: ERRORS[503]},
)
async def healthz(request: Request) -> JSONResponse:
    """200 while the process can serve; 503 once a model's batch queue stopped after an internal
    error (it refuses every request from then on), so that the orchestrator restarts the replica."""
    broken = _broken_queues(getattr(request.app.state, "engine", None))
    if broken:
        return JSONResponse({"error": "unavailable", "detail": broken}, 503)
    return JSONResponse({"status": "ok"})


def _broken_queues(engine: InferenceEngine | None) -> str | None:
    """Which batch queues stopped after an internal error (they refuse every request), or None."""
    broken = engine.broken_batchers() if engine is not None else []
    if not broken:
        return None
    return f"the batch queue of {', '.join(broken)} stopped after an internal error"


@router.get(
    "/readyz",
    tags=["operations"],
    summary="Readiness: every model loaded and warmed up",
    responses={503: ERRORS[503]},
)
async def readyz(request: Request) -> JSONResponse:
    """200 once every model is loaded and warmed up; 503 before that and while draining."""
    if not getattr(request.app.state, "ready", False):
        return JSONResponse(
            {"error": "unavailable", "detail": "not ready"}, 503, headers={"Retry-After": "1"}
        )
    engine: InferenceEngine = request.app.state.engine
    broken = _broken_queues(engine)
    if broken:  # those models refuse every request: take the replica out of rotation
        return JSONResponse(
            {"error": "unavailable", "detail": broken}, 503, headers={"Retry-After": "1"}
        )
    # Each model's version for requests that name none; /v1/models lists every served one.
    return JSONResponse({"status": "ready", "models": engine.repository.default_versions()})


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)
