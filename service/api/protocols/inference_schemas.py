"""Request and response bodies of the Open Inference Protocol v2 (KServe v2) routes (pydantic).

Usage::

    request = InferenceRequest.model_validate_json(header)      # strict: 422 -> the route's 400
    schema = inline_schema(InferenceRequest)                     # for the OpenAPI request body

The names and fields are the protocol's (https://kserve.github.io/website/docs/concepts/
architecture/data-plane/v2-protocol): an inference request names its ``inputs`` (each with
``name``, ``shape``, ``datatype`` and ``data`` or, with the binary tensor extension,
``parameters.binary_data_size``) and optionally the ``outputs`` it wants. ``parameters`` are
extensible objects of strings, numbers and booleans; the service reads ``binary_data_output``
(request), ``binary_data_size`` and ``content_type`` (inputs) and ``binary_data`` (outputs), and
refuses the extensions it does not serve (shared memory, classification).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from service.api.protocols.tensors import MAX_RANK, Datatype

Primitive = StrictBool | StrictInt | StrictFloat | StrictStr
Parameters = dict[str, Primitive]
Dimension = Annotated[int, Field(ge=0)]
SignedDimension = Annotated[int, Field(ge=-1)]


class _Parameters(BaseModel):
    """The protocol's extensible parameters: the ones the service reads are typed; any other is
    a string, number or boolean, and ignored (but shared memory and classification, which the
    service does not serve, are refused when read)."""

    model_config = ConfigDict(extra="allow", strict=True)
    __pydantic_extra__: dict[str, Primitive]


class InputParameters(_Parameters):
    binary_data_size: Annotated[int, Field(ge=0)] | None = Field(
        None, description="The tensor's bytes follow the JSON header (and it has no data)."
    )
    content_type: Literal["base64"] | None = Field(
        None, description="base64: the BYTES data are base64 text."
    )


class OutputParameters(_Parameters):
    binary_data: bool | None = Field(None, description="Send the output after the JSON header.")


class RequestParameters(_Parameters):
    binary_data_output: bool | None = Field(
        None, description="Send every output after the JSON header (unless it says otherwise)."
    )


class RequestInput(BaseModel):
    """One input tensor: ``data`` in JSON (flat or nested, row-major), or its bytes after the
    JSON header (``parameters.binary_data_size``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    shape: list[Dimension] = Field(max_length=MAX_RANK)
    datatype: Datatype = Field(description="The protocol's datatype, e.g. INT64, FP32, BYTES.")
    parameters: InputParameters | None = None
    data: list[Any] | None = Field(
        None, description="The elements, flat or nested, in row-major order."
    )


class RequestOutput(BaseModel):
    """An output the request wants; ``parameters.binary_data``: send it after the JSON header."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    parameters: OutputParameters | None = None


class InferenceRequest(BaseModel):
    """``POST /v2/models/{name}/infer``: the inputs, and optionally the outputs wanted."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "inputs": [
                        {"name": "seed", "shape": [2], "datatype": "INT64", "data": [42, 43]},
                        {"name": "truncation_psi", "shape": [1], "datatype": "FP32", "data": [0.7]},
                    ],
                    "outputs": [{"name": "images"}],
                }
            ]
        },
    )

    id: str | None = Field(None, description="Echoed in the response.")
    parameters: RequestParameters | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(
        None, description="Outputs to send; default: every output but png."
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[Dimension]
    datatype: Datatype
    parameters: Parameters | None = Field(
        None,
        description="binary_data_size: the tensor's bytes follow the JSON header; content_type "
        "'base64': BYTES data as base64 text.",
    )
    data: list[Any] | None = Field(None, description="The elements, flat, in row-major order.")


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str] = Field(description="Protocol extensions served: binary_tensor_data.")


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: list[SignedDimension] = Field(description="-1: any length (the batch).")


class ModelMetadata(BaseModel):
    name: str = Field(description="NAME (generate), NAME.score, NAME.encode or NAME.complete.")
    versions: list[str] = Field(description="The served versions.")
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class Liveness(BaseModel):
    live: bool


class Readiness(BaseModel):
    ready: bool


class ModelReadiness(BaseModel):
    name: str
    ready: bool


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of ``model`` with its ``$defs`` written in place, for a request body
    given in ``openapi_extra`` (a ``#/$defs`` reference would point at the document's root)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(copy.deepcopy(definitions[ref.rsplit("/", 1)[1]]))
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
