"""Named tensors as the inference protocols write them in JSON: datatypes, shapes, checks.

Usage::

    array = from_json([1, 2], "INT64", [2], "input 'seed'")  # v2: a declared shape
    array = from_nested([[0.5, 1.0]], "FP32", "input 'z'")    # TF Serving: the nesting's
    data = to_json(array, "UINT8")                             # flat, row-major (v2's data)

Datatypes carry the Open Inference Protocol's names (``INT64``, ``FP32``, ``UINT8``, ``BYTES``);
:data:`TF_DTYPES` gives TensorFlow's names of the same (``DT_INT64``, ...) for TF Serving's
metadata. A BYTES tensor is a numpy object array of ``bytes``; in JSON its elements are text
(UTF-8), or base64 text when the tensor says ``content_type: base64`` (v2), or TF Serving's
``{"b64": "..."}`` objects.

Every refusal is an :class:`~service.errors.InvalidRequest` that names the tensor and says what to
fix. Nothing is allocated from a declared shape alone: the number of elements must equal what
the body carries, which the body limit bounds.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np

from service.errors import InvalidRequest

# The datatypes the served signatures take and give, by their protocol names (little-endian, as
# the binary tensor extension sends them).
DTYPES: dict[str, np.dtype[Any]] = {
    "UINT8": np.dtype("u1"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP32": np.dtype("<f4"),
    "BYTES": np.dtype(object),
}
# Every datatype of the protocol, so that a client's other choice is named, not "unknown".
Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BF16",
    "BYTES",
]
KNOWN_DATATYPES: tuple[str, ...] = get_args(Datatype)
TF_DTYPES = {"UINT8": "DT_UINT8", "INT32": "DT_INT32", "INT64": "DT_INT64", "FP32": "DT_FLOAT"}
TF_DTYPES["BYTES"] = "DT_STRING"
INTEGER_RANGES = {
    "UINT8": (0, 2**8 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
}
MAX_RANK = 8  # no signature has more than 4 dimensions; deeper nesting is a mistake


def element_count(shape: Sequence[Any], where: str) -> int:
    """The number of elements of ``shape``, a list of non-negative integers."""
    if len(shape) == 1 and type(shape[0]) is int and shape[0] >= 0:  # the common case, fast
        return int(shape[0])
    if len(shape) > MAX_RANK or any(type(dim) is not int or dim < 0 for dim in shape):
        raise InvalidRequest(
            f"{where}: shape {list(shape)} must be a list of at most {MAX_RANK} non-negative "
            "integers"
        )
    return math.prod(shape)


def nesting(value: Any, where: str) -> tuple[list[int], list[Any]]:
    """The shape of nested lists ``value`` and its elements in row-major order; a value that is
    no list is one element of shape ``[]``. 400 for ragged or too deep nesting."""
    shape: list[int] = []
    level = [value]
    while level and isinstance(level[0], list):
        size = len(level[0])
        if any(not isinstance(item, list) or len(item) != size for item in level):
            raise InvalidRequest(f"{where}: the data is ragged (rows of different lengths)")
        shape.append(size)
        if len(shape) > MAX_RANK:
            raise InvalidRequest(f"{where}: the data is nested deeper than {MAX_RANK} levels")
        level = [element for item in level for element in item]
    if any(isinstance(item, list) for item in level):
        raise InvalidRequest(f"{where}: the data is ragged (rows of different depths)")
    return shape, level


def _numbers(elements: list[Any], datatype: str, where: str) -> np.ndarray:
    """A flat array of ``datatype`` from JSON numbers, each checked for its type and range."""
    if datatype == "FP32":
        if any(type(x) is not float and type(x) is not int for x in elements):
            raise InvalidRequest(f"{where}: FP32 data must be numbers")
        return np.array(elements, np.float32).reshape(len(elements))
    low, high = INTEGER_RANGES[datatype]
    # JSON Schema's integers: 3 and 3.0 alike, never true nor "3".
    if any(type(x) is not int and not (type(x) is float and x.is_integer()) for x in elements):
        raise InvalidRequest(f"{where}: {datatype} data must be integers")
    if any(not low <= x <= high for x in elements):
        raise InvalidRequest(f"{where}: {datatype} data must be in {low}..{high}")
    return np.array([int(x) for x in elements], DTYPES[datatype]).reshape(len(elements))


def _bytes_element(item: Any, encoding: str, where: str) -> bytes:
    if encoding == "tf" and isinstance(item, dict):
        if set(item) != {"b64"} or not isinstance(item["b64"], str):
            raise InvalidRequest(f'{where}: a bytes element is {{"b64": "<base64 text>"}}')
        return _base64(item["b64"], where)
    if not isinstance(item, str):
        raise InvalidRequest(f"{where}: BYTES data must be strings")
    if encoding == "base64":
        return _base64(item, where)
    return item.encode("utf-8", "surrogatepass")


def _base64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where}: not valid base64") from None


def _elements(elements: list[Any], datatype: str, where: str, encoding: str) -> np.ndarray:
    if datatype not in DTYPES:
        raise InvalidRequest(f"{where}: datatype {datatype!r} is not served")
    if datatype != "BYTES":
        return _numbers(elements, datatype, where)
    array = np.empty(len(elements), object)
    array[:] = [_bytes_element(item, encoding, where) for item in elements]
    return array


def from_json(
    data: Any, datatype: str, shape: Sequence[Any], where: str, encoding: str = "utf-8"
) -> np.ndarray:
    """The v2 tensor of ``datatype`` and ``shape`` whose ``data`` is given flat or nested in
    row-major order (the protocol allows both): the number of elements must match the shape.
    ``encoding``: how BYTES elements are written, ``utf-8`` text or ``base64``."""
    count = element_count(shape, where)
    _, elements = nesting(data, where)
    if len(elements) != count:
        raise InvalidRequest(
            f"{where}: shape {list(shape)} holds {count} elements, the data {len(elements)}"
        )
    return _elements(elements, datatype, where, encoding).reshape(tuple(shape))


def from_nested(value: Any, datatype: str, where: str) -> np.ndarray:
    """The tensor of ``datatype`` whose shape is the nesting of ``value`` (TF Serving's JSON,
    where bytes are ``{"b64": "..."}`` objects or text)."""
    shape, elements = nesting(value, where)
    return _elements(elements, datatype, where, "tf").reshape(tuple(shape))


def to_json(array: np.ndarray, datatype: str) -> list[Any]:
    """v2's ``data`` of a tensor: its elements flat in row-major order; BYTES as base64 text
    (the tensor then says ``content_type: base64``: the bytes of an image are not text)."""
    flat = array.reshape(-1)
    if datatype == "BYTES":
        return [base64.b64encode(item).decode("ascii") for item in flat]
    return list(flat.tolist())


def to_nested(array: np.ndarray, datatype: str) -> Any:
    """TF Serving's JSON of a tensor: nested lists; bytes as ``{"b64": "..."}``."""
    if datatype != "BYTES":
        return array.tolist()
    encoded = np.empty(array.shape, object)
    encoded.reshape(-1)[:] = [
        {"b64": base64.b64encode(item).decode("ascii")} for item in array.reshape(-1)
    ]
    return encoded.tolist()
