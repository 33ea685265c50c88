"""HTTP routes of the service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()


@router.get("/healthz", tags=["operations"], summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    """Answer 200 while the process is alive; load balancers restart a replica that fails this."""
    return {"status": "ok"}
