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
from service.api.protocols.model_paths import NAME
from service.api.protocols.tf_serving import VersionStatus, version_status
from service.api.schemas import (
    ModelDetail,
    ModelList,
    ModelSummary,
)
from service.engine.engine import InferenceEngine

router = APIRouter()


class ModelDetailWithStatus(ModelDetail):
    """The model's detail, and its versions' status as TensorFlow Serving gives it."""

    model_version_status: list[VersionStatus]


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
    f"/v1/models/{NAME}",  # a name up to a ':': /v1/models/mnist:predict is TF Serving's
    tags=["models"],
    response_model=ModelDetailWithStatus,
    responses={code: ERRORS[code] for code in (401, 404)},
)
async def get_model(name: str, engine: EngineDep) -> ModelDetailWithStatus:
    """One model: its versions, the served version's ``model.json``, and TensorFlow Serving's
    ``model_version_status`` (so that TF Serving's clients read it as its status)."""
    summary = _summary(engine, name)
    status = version_status(engine, name).model_version_status
    meta = engine.repository.get(name).meta
    return ModelDetailWithStatus(**summary, metadata=meta, model_version_status=status)
