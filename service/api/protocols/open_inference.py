"""The Open Inference Protocol v2 (KServe v2, as Triton, KServe, MLServer, TorchServe and OpenVINO
Model Server speak it) over REST: an adapter onto the same engine calls as the native API.

Routers (each one line of :mod:`service.api.registry`):

- ``health`` (open, as ``/healthz`` and ``/readyz``: kubelet probes send no key):
  ``GET /v2/health/live``, ``GET /v2/health/ready``.
- ``router`` (an API key when keys are set): ``GET /v2`` (server metadata and extensions),
  ``GET /v2/models/{name}[/versions/{version}]`` (inputs and outputs),
  ``GET .../ready`` and ``POST .../infer``.

Usage with tritonclient::

    client = tritonclient.http.InferenceServerClient("localhost:8000")
    seed = tritonclient.http.InferInput("seed", [2], "INT64")
    seed.set_data_from_numpy(np.array([42, 43]))               # binary tensor by default
    images = client.infer("mnist", [seed]).as_numpy("images")  # uint8 [2, 28, 28, 1]

A model's name is its generator; ``NAME.score``, ``NAME.encode`` and ``NAME.complete`` are its
other signatures (:mod:`service.api.protocols.tensor_signatures`, whose metadata the model routes
answer). Tensors come as JSON ``data`` or with the binary tensor extension
(:mod:`service.api.protocols.binary_tensors`); outputs go back as JSON unless the request asks for
them binary (``binary_data`` per output, ``binary_data_output`` for all). Errors are
``{"error": "..."}`` (:mod:`service.api.protocols.protocol_errors`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from service.api.dependencies import get_engine
from service.api.protocols.binary_tensors import HEADER_LENGTH
from service.api.protocols.inference_requests import infer_request
from service.api.protocols.inference_schemas import (
    InferenceRequest,
    InferenceResponse,
    Liveness,
    ModelMetadata,
    ModelReadiness,
    Readiness,
    ServerMetadata,
    inline_schema,
)
from service.api.protocols.protocol_errors import PROTOCOL_ERRORS, ProtocolRoute, protocol_error
from service.api.protocols.tensor_checks import describe
from service.api.protocols.tensor_signatures import Signature, resolve
from service.engine.engine import InferenceEngine
from service.repository.repository import LoadedModel

TAG = "open inference protocol v2"
health = APIRouter(route_class=ProtocolRoute, tags=[TAG])
router = APIRouter(route_class=ProtocolRoute, tags=[TAG])

EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "tensorflow_savedmodel"


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: PROTOCOL_ERRORS[code] for code in codes}


# --- health and metadata ----------------------------------------------------------------------


@health.get(
    "/v2/health/live",
    summary="Liveness (KServe v2): the process can serve",
    response_model=Liveness,
    responses=_errors(503),
)
async def live(request: Request) -> Response:
    """200 while the process can serve; 503 once a model's batch queue stopped (as /healthz)."""
    engine: InferenceEngine | None = getattr(request.app.state, "engine", None)
    broken = engine.broken_batchers() if engine is not None else []
    if broken:
        return protocol_error(503, f"the batch queue of {', '.join(broken)} stopped")
    return Response('{"live":true}', media_type="application/json")


@health.get(
    "/v2/health/ready",
    summary="Readiness (KServe v2): every model loaded and warmed up",
    response_model=Readiness,
    responses=_errors(503),
)
async def ready(request: Request) -> Response:
    """200 once every model is loaded and warmed up; 503 before that, while draining and once a
    batch queue stopped (as /readyz)."""
    state = request.app.state
    engine: InferenceEngine | None = getattr(state, "engine", None)
    if not getattr(state, "ready", False) or engine is None:
        return protocol_error(503, "not ready", {"Retry-After": "1"})
    broken = engine.broken_batchers()
    if broken:  # those models refuse every request: out of rotation, as /readyz does
        message = f"the batch queue of {', '.join(broken)} stopped"
        return protocol_error(503, message, {"Retry-After": "1"})
    return Response('{"ready":true}', media_type="application/json")


@router.get(
    "/v2",
    summary="Server metadata (KServe v2): name, version, extensions",
    response_model=ServerMetadata,
    responses=_errors(401),
)
async def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(name="gan-serving", version=request.app.version, extensions=EXTENSIONS)


async def _resolve(
    request: Request, name: str, version: str | None
) -> tuple[InferenceEngine, LoadedModel, Signature]:
    engine = await get_engine(request)
    model, signature = resolve(engine.repository, name, version)
    return engine, model, signature


def _metadata(
    engine: InferenceEngine, name: str, model: LoadedModel, signature: Signature, pinned: bool
) -> ModelMetadata:
    versions = [model.version] if pinned else sorted(engine.repository.models[model.name])
    return ModelMetadata.model_validate(
        {
            "name": name,
            "versions": [str(v) for v in versions],
            "platform": PLATFORM,
            "inputs": describe(signature.inputs(model)),
            "outputs": describe(signature.outputs(model)),
        }
    )


MODEL_ERRORS = _errors(400, 401, 404, 503)


@router.get(
    "/v2/models/{name}",
    summary="Model metadata (KServe v2)",
    response_model=ModelMetadata,
    responses=MODEL_ERRORS,
)
async def model_metadata(name: str, request: Request) -> ModelMetadata:
    """The inputs and outputs ``/infer`` takes and gives for ``name`` (NAME: generate;
    NAME.score, NAME.encode, NAME.complete: the other signatures)."""
    engine, model, signature = await _resolve(request, name, None)
    return _metadata(engine, name, model, signature, pinned=False)


@router.get(
    "/v2/models/{name}/versions/{version}",
    summary="Model version metadata (KServe v2)",
    response_model=ModelMetadata,
    responses=MODEL_ERRORS,
)
async def model_version_metadata(name: str, version: str, request: Request) -> ModelMetadata:
    """As ``GET /v2/models/{name}``, for a served version."""
    engine, model, signature = await _resolve(request, name, version)
    return _metadata(engine, name, model, signature, pinned=True)


async def _model_ready(request: Request, name: str, version: str | None) -> ModelReadiness:
    engine, model, _ = await _resolve(request, name, version)
    return ModelReadiness(name=name, ready=engine.is_loaded(model))


@router.get(
    "/v2/models/{name}/ready",
    summary="Model readiness (KServe v2)",
    response_model=ModelReadiness,
    responses=MODEL_ERRORS,
)
async def model_ready(name: str, request: Request) -> ModelReadiness:
    """200 with ``ready: true`` while the model is served (404 for an unknown one)."""
    return await _model_ready(request, name, None)


@router.get(
    "/v2/models/{name}/versions/{version}/ready",
    summary="Model version readiness (KServe v2)",
    response_model=ModelReadiness,
    responses=MODEL_ERRORS,
)
async def model_version_ready(name: str, version: str, request: Request) -> ModelReadiness:
    """As ``GET /v2/models/{name}/ready``, for a served version."""
    return await _model_ready(request, name, version)


# --- inference --------------------------------------------------------------------------------


BINARY_BODY = {"type": "string", "format": "binary"}
INFER: dict[str, Any] = {
    "response_class": Response,
    "responses": {
        200: {
            "description": "JSON, or with binary outputs the JSON header (its length in "
            "Inference-Header-Content-Length) followed by their bytes",
            "model": InferenceResponse,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InferenceResponse"}},
                "application/octet-stream": {"schema": BINARY_BODY},
            },
            "headers": {
                HEADER_LENGTH: {
                    "description": "Length of the JSON header when binary outputs follow it",
                    "schema": {"type": "integer", "minimum": 0},
                }
            },
        },
        **_errors(400, 401, 404, 408, 413, 415, 503, 504),
    },
    "openapi_extra": {
        "parameters": [
            {
                "name": HEADER_LENGTH,
                "in": "header",
                "required": False,
                "description": "Binary tensor extension: the JSON header's length; the bytes of "
                "the inputs with parameters.binary_data_size follow it, in order.",
                "schema": {"type": "integer", "minimum": 0},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": inline_schema(InferenceRequest)},
                "application/octet-stream": {"schema": BINARY_BODY},
            },
        },
    },
}


@router.post("/v2/models/{name}/infer", summary="Inference (KServe v2)", **INFER)
async def infer(name: str, request: Request) -> Response:
    """Run the signature ``name`` names on the request's input tensors (JSON, or the binary
    tensor extension) and answer its outputs; ``GET /v2/models/{name}`` lists them."""
    return await infer_request(request, name, None)


@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    summary="Inference on a model version (KServe v2)",
    **INFER,
)
async def infer_version(name: str, version: str, request: Request) -> Response:
    """As ``POST /v2/models/{name}/infer``, on a served version."""
    return await infer_request(request, name, version)
