"""Open Inference Protocol v2 bodies for tests, built and read by hand (as tritonclient does).

Usage::

    body, headers = binary_request([("seed", "INT64", np.array([3]))], outputs=["images"])
    response = client.post("/v2/models/cond/infer", content=body, headers=headers)
    outputs = read_response(response.content, response.headers)   # name -> numpy array
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DTYPES = {"UINT8": "u1", "INT32": "<i4", "INT64": "<i8", "FP32": "<f4"}
HEADER = "Inference-Header-Content-Length"


def _raw(datatype: str, array: Any) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(item)) + item for item in array)
    return np.ascontiguousarray(array, DTYPES[datatype]).tobytes()


def binary_request(
    inputs: Sequence[tuple[str, str, Any]],
    outputs: Sequence[str] | None = None,
    binary_outputs: bool = True,
    **extra: Any,
) -> tuple[bytes, dict[str, str]]:
    """A request whose inputs all follow the JSON header; outputs asked binary by default."""
    tensors, chunks = [], []
    for name, datatype, array in inputs:
        raw = _raw(datatype, array)
        shape = [len(array)] if datatype == "BYTES" else list(np.shape(array))
        parameters = {"binary_data_size": len(raw)}
        tensors.append(
            {"name": name, "shape": shape, "datatype": datatype, "parameters": parameters}
        )
        chunks.append(raw)
    request: dict[str, Any] = {"inputs": tensors, **extra}
    if outputs is not None:
        request["outputs"] = [
            {"name": name, "parameters": {"binary_data": binary_outputs}} for name in outputs
        ]
    elif binary_outputs:
        request["parameters"] = {"binary_data_output": True}
    header = json.dumps(request).encode()
    return header + b"".join(chunks), {HEADER: str(len(header))}


def json_input(name: str, datatype: str, data: Any) -> dict[str, Any]:
    """One input tensor with its data in JSON (its shape that of ``data``)."""
    return {"name": name, "datatype": datatype, "shape": list(np.shape(data)), "data": data}


def _bytes_elements(raw: bytes) -> list[bytes]:
    items, offset = [], 0
    while offset < len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        items.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return items


def read_response(content: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """name -> numpy array (BYTES: a list of bytes) of every output of an inference response."""
    length = int(headers.get(HEADER, len(content)))
    header = json.loads(content[:length])
    rest, offset = content[length:], 0
    outputs: dict[str, Any] = {}
    for output in header["outputs"]:
        datatype, parameters = output["datatype"], output.get("parameters") or {}
        if "binary_data_size" in parameters:
            raw = rest[offset : offset + parameters["binary_data_size"]]
            offset += parameters["binary_data_size"]
            if datatype == "BYTES":
                outputs[output["name"]] = _bytes_elements(raw)
            else:
                array = np.frombuffer(raw, DTYPES[datatype]).reshape(output["shape"])
                outputs[output["name"]] = array
        elif datatype == "BYTES":
            assert parameters.get("content_type") == "base64"
            outputs[output["name"]] = [base64.b64decode(item) for item in output["data"]]
        else:
            array = np.asarray(output["data"], DTYPES[datatype]).reshape(output["shape"])
            outputs[output["name"]] = array
    assert offset == len(rest), "binary data left over"
    return outputs
