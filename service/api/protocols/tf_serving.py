"""TensorFlow Serving's REST API: an adapter onto the same engine calls as the native API.

Routes (one router, one line of :mod:`service.api.registry`; an API key when keys are set):

- ``GET /v1/models/{name}/versions/{version}``: the version's status in TF Serving's shape
  (``GET /v1/models/{name}``, the catalogue of :mod:`service.api.models`, carries the same
  ``model_version_status`` beside its own fields);
- ``GET /v1/models/{name}[/versions/{version}]/metadata``: the signature definitions;
- ``POST /v1/models/{name}[/versions/{version}]:predict``.

Usage::

    curl -d '{"instances": [42, 43]}' localhost:8000/v1/models/mnist:predict
    curl -d '{"signature_name": "score", "inputs": {"images": [...], "class_label": [7]}}' ...

``signature_name`` is ``serving_default`` (the generator, also when absent), ``generate``,
``score``, ``encode`` or ``complete`` (:mod:`service.api.protocols.tensor_signatures` says what
each takes and gives). The row format ``instances`` is a list of one value per instance: an object
of named inputs, or the signature's first input itself (``seed``, ``images``); the column format
``inputs`` is an object of named inputs, or the first input itself. Bytes are ``{"b64": "..."}``
both ways. The answer is ``predictions`` (one per instance) or ``outputs`` (by name), each output
of the signature; with a single output, its value alone. Errors are ``{"error": "..."}``.

Why the routes are safe next to ``GET /v1/models/{name}``: Starlette's ``{name}`` matches any text
without a slash, ``mnist:predict`` too, so these routes and the catalogue's take their names and
versions up to a ``:`` (:mod:`service.api.protocols.model_paths`): ``/v1/models/mnist:predict`` is
:func:`predict`'s alone, and a GET on it is a 405 whose ``Allow`` says POST.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.api.dependencies import get_engine
from service.api.protocols.inference_schemas import inline_schema
from service.api.protocols.model_paths import NAME, VERSION
from service.api.protocols.protocol_bodies import TF_MEDIA_TYPES, read_body
from service.api.protocols.protocol_errors import PROTOCOL_ERRORS, ProtocolRoute
from service.api.protocols.tensor_checks import Call, TensorSpec, check_inputs
from service.api.protocols.tensor_signatures import (
    DEFAULT_SIGNATURE,
    Signature,
    Specs,
    signature_of,
    signatures_of,
    version_number,
)
from service.api.protocols.tensors import TF_DTYPES, from_nested, to_nested
from service.engine.engine import InferenceEngine
from service.errors import BadRequest, InvalidRequest, validation_detail
from service.repository.repository import LoadedModel

TAG = "tensorflow serving"
router = APIRouter(route_class=ProtocolRoute, tags=[TAG])

SERVING_DEFAULT = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


class VersionState(BaseModel):
    error_code: str = "OK"
    error_message: str = ""


class VersionStatus(BaseModel):
    version: str
    state: str = Field(description="AVAILABLE: loaded and serving.")
    status: VersionState = Field(default_factory=VersionState)


class ModelStatus(BaseModel):
    """TF Serving's ``GetModelStatus``: each served version's state."""

    model_version_status: list[VersionStatus]


def version_status(engine: InferenceEngine, name: str, version: int | None = None) -> ModelStatus:
    """TF Serving's status of model ``name``'s served versions (or of ``version`` alone); 404
    for an unknown model or a version not served."""
    repository = engine.repository
    repository.get(name, version)  # 404 for an unknown model or version
    versions = [version] if version is not None else sorted(repository.models[name])
    return ModelStatus(
        model_version_status=[
            VersionStatus(
                version=str(number),
                # A version swapped out by a hot reload is unloaded once its requests are done.
                state="AVAILABLE"
                if engine.is_loaded(repository.get(name, number))
                else "UNLOADING",
            )
            for number in versions
        ]
    )


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: PROTOCOL_ERRORS[code] for code in codes}


@router.get(
    f"/v1/models/{NAME}/versions/{VERSION}",
    summary="Model version status (TF Serving)",
    response_model=ModelStatus,
    responses=_errors(401, 404, 503),
)
async def get_version_status(name: str, version: str, request: Request) -> ModelStatus:
    """The served version's state, as TF Serving's ``GET /v1/models/{name}/versions/{v}``."""
    engine = await get_engine(request)
    return version_status(engine, name, version_number(name, version))


# --- metadata ---------------------------------------------------------------------------------


def _tensor_info(spec: TensorSpec) -> dict[str, Any]:
    return {
        "dtype": TF_DTYPES[spec.datatype],
        "tensor_shape": {
            "dim": [{"size": str(size), "name": ""} for size in spec.shape],
            "unknown_rank": False,
        },
        "name": spec.name,
    }


def _signature_def(model: LoadedModel, signature: Signature) -> dict[str, Any]:
    return {
        "inputs": {spec.name: _tensor_info(spec) for spec in signature.inputs(model)},
        "outputs": {spec.name: _tensor_info(spec) for spec in signature.outputs(model)},
        "method_name": PREDICT_METHOD,
    }


def _metadata(model: LoadedModel) -> dict[str, Any]:
    definitions = {s.name: _signature_def(model, s) for s in signatures_of(model)}
    definitions = {SERVING_DEFAULT: definitions[DEFAULT_SIGNATURE], **definitions}
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
        "metadata": {"signature_def": {"signature_def": definitions}},
    }


class ModelSpec(BaseModel):
    name: str
    signature_name: str
    version: str


class Metadata(BaseModel):
    """TF Serving's ``GetModelMetadata``: the signature definitions (``serving_default`` is the
    generator), with TensorFlow's dtype names and -1 for the batch dimension."""

    model_spec: ModelSpec
    metadata: dict[str, Any]


METADATA_ERRORS = _errors(401, 404, 503)


@router.get(
    f"/v1/models/{NAME}/metadata",
    summary="Model metadata: signature definitions (TF Serving)",
    response_model=Metadata,
    responses=METADATA_ERRORS,
)
async def get_metadata(name: str, request: Request) -> Metadata:
    """The served version's signatures, their inputs and outputs."""
    engine = await get_engine(request)
    return Metadata.model_validate(_metadata(engine.repository.get(name)))


@router.get(
    f"/v1/models/{NAME}/versions/{VERSION}/metadata",
    summary="Model version metadata: signature definitions (TF Serving)",
    response_model=Metadata,
    responses=METADATA_ERRORS,
)
async def get_version_metadata(name: str, version: str, request: Request) -> Metadata:
    """As ``GET /v1/models/{name}/metadata``, for a served version."""
    engine = await get_engine(request)
    model = engine.repository.get(name, version_number(name, version))
    return Metadata.model_validate(_metadata(model))


# --- predict ----------------------------------------------------------------------------------


class PredictRequest(BaseModel):
    """``:predict``: ``instances`` (row format) or ``inputs`` (column format)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
            "examples": [
                {"instances": [42, 43]},
                {"instances": [{"seed": 42, "class_label": 7, "truncation_psi": 0.7}]},
                {"inputs": {"seed": [42, 43], "truncation_psi": 0.7}},
            ],
        },
    )

    signature_name: str | None = Field(
        None, description="serving_default (the generator), generate, score, encode or complete."
    )
    instances: list[Any] | None = Field(
        None, min_length=1, description="Row format: one value or object of inputs per instance."
    )
    inputs: Any = Field(None, description="Column format: an object of named inputs, or one.")


def _parse(body: bytes) -> PredictRequest:
    try:
        parsed = PredictRequest.model_validate_json(body)
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] == "json_invalid":
                raise BadRequest(f"the request body is not valid JSON: {error['msg']}") from None
        detail = validation_detail(exc.errors(), list(PredictRequest.model_fields))
        raise InvalidRequest(detail) from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None
    if (parsed.instances is None) == (parsed.inputs is None):
        raise InvalidRequest("give exactly one of instances (row format) or inputs (columns)")
    return parsed


def _named(value: Any) -> bool:
    """Whether a JSON value is an object of named inputs (``{"b64": ...}`` is one bytes value)."""
    return isinstance(value, dict) and set(value) != {"b64"}


def _row_values(instances: list[Any], first: str) -> dict[str, list[Any]]:
    """Each input's values, one per instance, of the row format."""
    if not any(_named(instance) for instance in instances):
        return {first: instances}
    if not all(_named(instance) for instance in instances):
        raise InvalidRequest("instances: give every instance as an object of inputs, or none")
    names = list(instances[0])
    if any(set(instance) != set(names) for instance in instances):
        raise InvalidRequest("instances: every instance names the same inputs")
    return {name: [instance[name] for instance in instances] for name in names}


def _per_request(array: np.ndarray, spec: TensorSpec, rows: bool) -> np.ndarray:
    """An input of one value per request (shape [1]: truncation_psi, steps): a scalar or [1] in
    the column format; in the row format one value per instance, all equal."""
    if spec.shape != (1,):
        return array
    flat = array.reshape(-1)
    if rows and array.ndim == 1 and len(flat) and np.all(flat == flat[0]):
        return flat[:1]
    if not rows and array.size == 1 and array.ndim <= 1:
        return flat
    raise InvalidRequest(
        f"input {spec.name!r} is one value for the whole request"
        + (": give every instance the same" if rows else "")
    )


def _tensors(parsed: PredictRequest, specs: Specs, name: str) -> dict[str, np.ndarray]:
    """The input tensors of a request in either format (see the module docstring)."""
    first = next(iter(specs.inputs))
    rows = parsed.instances is not None
    if rows:
        values = _row_values(parsed.instances or [], first)
    elif _named(parsed.inputs):
        values = dict(parsed.inputs)
    else:
        values = {first: parsed.inputs}
    check_inputs(list(values), specs.inputs, name)
    tensors = {}
    for key, value in values.items():
        spec = specs.inputs[key]
        array = from_nested(value, spec.datatype, f"input {key!r}")
        tensors[key] = _per_request(array, spec, rows)
    if not rows and "class_label" in tensors and tensors["class_label"].ndim == 0:
        tensors["class_label"] = tensors["class_label"].reshape(1)
    return tensors


def _predictions(outputs: dict[str, Any], rows: bool) -> dict[str, Any]:
    """TF Serving's answer: per instance (row format) or per output (column format); a single
    output is given by its value alone."""
    if not rows:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    count = len(next(iter(outputs.values())))
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    return {
        "predictions": [{key: value[i] for key, value in outputs.items()} for i in range(count)]
    }


async def _predict(request: Request, name: str, version: str | None) -> Response:
    engine = await get_engine(request)
    model = engine.repository.get(name, version_number(name, version))
    settings = request.app.state.settings
    parsed = _parse(await read_body(request, TF_MEDIA_TYPES))
    wanted = parsed.signature_name or SERVING_DEFAULT
    signature = signature_of(model, DEFAULT_SIGNATURE if wanted == SERVING_DEFAULT else wanted)
    label = f"{name} signature {wanted!r}"
    specs = signature.specs(model)
    tensors = _tensors(parsed, specs, label)
    results = await signature.run(Call(engine, model, settings, request), tensors)
    outputs = {key: to_nested(results[key], spec.datatype) for key, spec in specs.outputs.items()}
    body = json.dumps(_predictions(outputs, parsed.instances is not None), separators=(",", ":"))
    return Response(body, media_type="application/json")


PREDICT: dict[str, Any] = {
    "response_class": Response,
    "responses": {
        200: {
            "description": "predictions (row format) or outputs (column format)",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "oneOf": [{"required": ["predictions"]}, {"required": ["outputs"]}],
                        "properties": {"predictions": {"type": "array"}, "outputs": {}},
                    }
                }
            },
        },
        **_errors(400, 401, 404, 408, 413, 415, 503, 504),
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(PredictRequest)}},
        }
    },
}


@router.post(
    "/v1/models/{name}:predict", summary="Predict (TF Serving): run a signature", **PREDICT
)
async def predict(name: str, request: Request) -> Response:
    """Run ``signature_name`` (default: the generator) on ``instances`` or ``inputs``."""
    return await _predict(request, name, None)


@router.post(
    f"/v1/models/{NAME}/versions/{VERSION}:predict",
    summary="Predict on a model version (TF Serving)",
    **PREDICT,
)
async def predict_version(name: str, version: str, request: Request) -> Response:
    """As ``POST /v1/models/{name}:predict``, on a served version."""
    return await _predict(request, name, version)
