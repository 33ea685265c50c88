"""One Open Inference Protocol v2 inference request: from its body to the signature's input
tensors, through the engine, and from the outputs to the response.

Usage (the ``/infer`` routes of :mod:`service.api.protocols.open_inference` do this)::

    response = await infer_request(request, "mnist.score", version=None)

The body is JSON, or with the binary tensor extension a JSON header of
``Inference-Header-Content-Length`` bytes followed by the raw bytes of the inputs that say
``parameters.binary_data_size`` (:mod:`service.api.protocols.binary_tensors`). Each input must be
one the model name's signature takes, with its datatype
(:mod:`service.api.protocols.tensor_signatures`); the signature checks shapes and values and runs
on the engine. The response names the outputs the request asked for (``outputs``; by default every
output but ``png``), each in JSON or, asked with
``binary_data`` (or ``binary_data_output`` for all), after the JSON header. BYTES outputs in
JSON are base64 text and say ``content_type: base64``; a BYTES input in JSON may say the same.

This path is the one every v2 inference request takes (:mod:`service.api.protocols.infer_shortcut`
calls it without FastAPI's routing), so it does per request only what the request needs: the
signature's specs are built once per model load.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import Request, Response
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from service.api.dependencies import get_engine
from service.api.protocols.binary_tensors import (
    HEADER_LENGTH,
    binary_chunks,
    from_binary,
    join_body,
    split_body,
    to_binary,
)
from service.api.protocols.inference_schemas import InferenceRequest, RequestInput
from service.api.protocols.protocol_bodies import body_headers, check_headers, inflate
from service.api.protocols.tensor_checks import Call, TensorSpec, check_inputs
from service.api.protocols.tensor_signatures import Specs, resolve
from service.api.protocols.tensors import from_json, to_json
from service.errors import BadRequest, InvalidRequest, PayloadTooLarge, validation_detail
from service.repository.repository import LoadedModel
from service.settings import Settings

# Extensions of the protocol the service does not serve, by the parameter that asks for them.
UNSERVED = {
    "shared_memory_region": "shared memory is not served; send the data in the body",
    "classification": "the classification extension is not served",
}


def _refuse_unserved(parameters: BaseModel | None, where: str) -> None:
    """400 for a parameter asking for an extension the service does not serve."""
    extra = parameters.model_extra if parameters is not None else None
    if not extra:
        return
    for key, reason in UNSERVED.items():
        if key in extra:
            raise InvalidRequest(f"{where}: {reason}")


def _binary_size(tensor: RequestInput, settings: Settings) -> int | None:
    """The input's ``binary_data_size``, or None; 413 past the body limit."""
    parameters = tensor.parameters
    if parameters is None:
        return None
    _refuse_unserved(parameters, f"input {tensor.name!r}")
    size = parameters.binary_data_size
    if size is not None and size > settings.max_body_bytes:
        raise PayloadTooLarge(
            f"input {tensor.name!r}: binary_data_size {size} is past the body limit of "
            f"{settings.max_body_bytes} bytes"
        )
    return size


def _input(tensor: RequestInput, raw: memoryview | None, spec: TensorSpec, name: str) -> Any:
    """The array of one input, from its binary bytes or its JSON data."""
    where = f"input {tensor.name!r}"
    if tensor.datatype != spec.datatype:
        shape = ", ".join("N" if size < 0 else str(size) for size in spec.shape)
        raise InvalidRequest(
            f"{where} is {tensor.datatype}; {name} takes {spec.datatype} [{shape}]"
        )
    if raw is not None:
        if tensor.data is not None:
            raise InvalidRequest(f"{where}: give data or binary_data_size, not both")
        return from_binary(raw, tensor.datatype, tensor.shape, where)
    if tensor.data is None:
        raise InvalidRequest(f"{where} has no data: give data, or binary_data_size and its bytes")
    base64 = tensor.parameters is not None and tensor.parameters.content_type == "base64"
    return from_json(
        tensor.data, tensor.datatype, tensor.shape, where, "base64" if base64 else "utf-8"
    )


def _parse(header: bytes) -> InferenceRequest:
    """The JSON header as an inference request: 400 for what is no JSON or breaks the schema."""
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] == "json_invalid":
                raise BadRequest(
                    f"the inference request is not valid JSON: {error['msg']}"
                ) from None
        detail = validation_detail(exc.errors(), list(InferenceRequest.model_fields))
        raise InvalidRequest(detail) from None
    except RecursionError:
        raise BadRequest("the inference request is nested too deeply") from None


def _wanted(parsed: InferenceRequest, specs: Specs, name: str) -> list[tuple[str, bool]]:
    """(output name, sent binary) of every output the request wants, in its order."""
    binary = bool(parsed.parameters is not None and parsed.parameters.binary_data_output)
    if parsed.outputs is None:
        return [(output, binary) for output in specs.defaults]
    wanted: list[tuple[str, bool]] = []
    for output in parsed.outputs:
        where = f"output {output.name!r}"
        if output.name not in specs.outputs:
            raise InvalidRequest(
                f"{name} has no output {output.name!r}; its outputs are {', '.join(specs.outputs)}"
            )
        if any(output.name == seen for seen, _ in wanted):
            raise InvalidRequest(f"{where} is asked for twice")
        _refuse_unserved(output.parameters, where)
        own = output.parameters.binary_data if output.parameters is not None else None
        wanted.append((output.name, binary if own is None else own))
    return wanted


def _response(
    name: str,
    model: LoadedModel,
    parsed: InferenceRequest,
    wanted: list[tuple[str, bool]],
    specs: Specs,
    results: dict[str, np.ndarray],
) -> Response:
    """The inference response: JSON, or the JSON header then the binary outputs.

    The JSON is written from pieces rather than by ``json.dumps`` of nested dicts, which cost
    a v2 request several times its other serialisation: the output names and datatypes are
    the signature's own identifiers, and the client's strings (the model name, ``id``) and the
    data go through ``json.dumps``."""
    entries: list[str] = []
    chunks: list[bytes] = []
    for output, binary in wanted:
        array, datatype = results[output], specs.outputs[output].datatype
        shape = ",".join(map(str, array.shape))
        head = f'{{"name":"{output}","datatype":"{datatype}","shape":[{shape}],'
        if binary:
            chunks.append(to_binary(array, datatype))
            entries.append(f'{head}"parameters":{{"binary_data_size":{len(chunks[-1])}}}}}')
        else:
            data = json.dumps(to_json(array, datatype), separators=(",", ":"))
            base64 = '"parameters":{"content_type":"base64"},' if datatype == "BYTES" else ""
            entries.append(f'{head}{base64}"data":{data}}}')
    request_id = "" if parsed.id is None else f',"id":{json.dumps(parsed.id)}'
    header = (
        f'{{"model_name":{json.dumps(name)},"model_version":"{model.version}"{request_id},'
        f'"outputs":[{",".join(entries)}]}}'
    ).encode()
    if not chunks:
        return Response(header, media_type="application/json")
    body, length = join_body(header, chunks)
    return Response(
        body, media_type="application/octet-stream", headers={HEADER_LENGTH: str(length)}
    )


async def _read(request: Request) -> bytes:
    """The request's body (the body limit's middleware bounds its size and time)."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def infer_request(request: Request, name: str, version: str | None) -> Response:
    """Answer one v2 inference request for the model name ``name`` (``version``: as the URL
    gives it, None for the served one)."""
    engine = await get_engine(request)
    model, signature = resolve(engine.repository, name, version)
    settings = engine.settings
    headers = body_headers(request.scope["headers"])
    encoding = check_headers(headers)
    body = await _read(request)
    if encoding != "identity":
        body = inflate(body, encoding, settings.max_body_bytes)
    length = headers.get(b"inference-header-content-length")
    header, rest = split_body(body, None if length is None else length.decode("latin-1"))
    parsed = _parse(header)
    specs = signature.specs(model)
    check_inputs([tensor.name for tensor in parsed.inputs], specs.inputs, name)
    sizes = [_binary_size(tensor, settings) for tensor in parsed.inputs]
    chunks = binary_chunks(sizes, rest)
    tensors = {
        tensor.name: _input(tensor, chunk, specs.inputs[tensor.name], name)
        for tensor, chunk in zip(parsed.inputs, chunks, strict=True)
    }
    wanted = _wanted(parsed, specs, name)
    outputs = frozenset(output for output, _ in wanted)
    results = await signature.run(Call(engine, model, settings, request, outputs), tensors)
    return _response(name, model, parsed, wanted, specs, results)
