"""The model catalogue: ``GET /v1/models`` and ``GET /v1/models/{name}`` (versions served and
available, and the served version's ``model.json``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api.dependencies import (
    ERRORS,
    EngineDep,
)
from service.api.schemas import (
    ModelDetail,
    ModelList,
    ModelSummary,
)
from service.engine.engine import InferenceEngine

router = APIRouter()


def _summary(engine: InferenceEngine, name: str) -> dict[str, Any]:
    repo = engine.repository
    model = repo.get(name)
    return {
        "name": name,
        "default": name == repo.default_model,
        "served_versions": sorted(repo.models[name]),
        "available_versions": list(repo.available.get(name, [])),
        "z_dim": model.z_dim,
        "resolution": model.resolution,
        "channels": model.channels,
        "num_classes": model.num_classes,
    }


@router.get("/v1/models", tags=["models"], response_model=ModelList, responses={401: ERRORS[401]})
async def list_models(engine: EngineDep) -> ModelList:
    """Every served model with its versions."""
    return ModelList(
        models=[ModelSummary(**_summary(engine, n)) for n in sorted(engine.repository.models)]
    )


@router.get(
    "/v1/models/{name}",
    tags=["models"],
    response_model=ModelDetail,
    responses={code: ERRORS[code] for code in (401, 404)},
)
async def get_model(name: str, engine: EngineDep) -> ModelDetail:
    """One model: its versions and the served version's ``model.json``."""
    summary = _summary(engine, name)
    return ModelDetail(**summary, metadata=engine.repository.get(name).meta)
