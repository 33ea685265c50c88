"""The binary tensor extension of the Open Inference Protocol (Triton's ``binary_tensor_data``).

A request or response body is a JSON header followed by the raw bytes of some tensors, in the
order the header lists them. The header's length is the HTTP header
``Inference-Header-Content-Length``; each tensor sent raw says its byte count in
``parameters.binary_data_size`` and has no ``data``. Fixed-size datatypes are their elements
little-endian, row-major; a BYTES tensor is each element as a 4-byte little-endian length and
its bytes.

Usage::

    header, rest = split_body(body, request.headers.get(HEADER_LENGTH))
    chunks = binary_chunks(sizes, rest)                 # one memoryview per size, in order
    array = from_binary(chunks[0], "INT64", [2], "input 'seed'")
    body, length = join_body(header_json, [to_binary(images, "UINT8")])

Every refusal is an :class:`~service.errors.InvalidRequest` that gives the numbers that disagree
(a header length past the end of the body, byte counts that do not add up to the body, a tensor
whose bytes do not fill its shape).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.api.protocols.tensors import DTYPES, element_count
from service.errors import InvalidRequest

HEADER_LENGTH = "Inference-Header-Content-Length"
_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header of ``body`` and the binary data after it; ``header_length`` is the value
    of ``Inference-Header-Content-Length`` (None: the whole body is JSON)."""
    if header_length is None:
        return body, memoryview(b"")
    text = header_length.strip()
    if not text.isascii() or not text.isdigit():
        raise InvalidRequest(
            f"{HEADER_LENGTH} must be the JSON header's length in bytes, not {header_length!r}"
        )
    length = int(text)
    if length > len(body):
        raise InvalidRequest(f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes")
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


def binary_chunks(sizes: Sequence[int | None], data: memoryview) -> list[memoryview | None]:
    """The binary data cut into one chunk per tensor that declares a ``binary_data_size`` (None
    for the others), in order; the sizes must add up to exactly the data after the header."""
    total = sum(size for size in sizes if size is not None)
    if total != len(data):
        raise InvalidRequest(
            f"the tensors declare {total} bytes of binary data (binary_data_size) but "
            f"{len(data)} bytes follow the JSON header"
        )
    chunks: list[memoryview | None] = []
    offset = 0
    for size in sizes:
        if size is None:
            chunks.append(None)
            continue
        chunks.append(data[offset : offset + size])
        offset += size
    return chunks


def _bytes_elements(raw: memoryview, count: int, where: str) -> np.ndarray:
    """The ``count`` length-prefixed elements of a BYTES tensor, as an object array."""
    items = np.empty(count, object)
    offset = 0
    for index in range(count):
        if offset + 4 > len(raw):
            raise InvalidRequest(
                f"{where}: the binary data ends before element {index} of {count} (each is a "
                "4-byte little-endian length, then its bytes)"
            )
        (size,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise InvalidRequest(
                f"{where}: element {index} says {size} bytes but only {len(raw) - offset} remain"
            )
        items[index] = bytes(raw[offset : offset + size])
        offset += size
    if offset != len(raw):
        raise InvalidRequest(
            f"{where}: {len(raw) - offset} bytes left after the {count} elements of its shape"
        )
    return items


def from_binary(raw: memoryview, datatype: str, shape: Sequence[Any], where: str) -> np.ndarray:
    """The tensor of ``datatype`` and ``shape`` in ``raw`` (its ``binary_data_size`` bytes)."""
    count = element_count(shape, where)
    dtype = DTYPES.get(datatype)
    if dtype is None:
        raise InvalidRequest(f"{where}: datatype {datatype!r} is not served")
    if datatype == "BYTES":
        return _bytes_elements(raw, count, where).reshape(tuple(shape))
    if len(raw) != count * dtype.itemsize:
        raise InvalidRequest(
            f"{where}: shape {list(shape)} of {datatype} takes {count * dtype.itemsize} bytes, "
            f"binary_data_size says {len(raw)}"
        )
    # A read-only view of the body: the signatures never write to their inputs.
    array = np.frombuffer(raw, dtype, count)
    return array if len(shape) == 1 else array.reshape(tuple(shape))


def to_binary(array: np.ndarray, datatype: str) -> bytes:
    """The raw bytes of a tensor as the extension sends them."""
    if datatype == "BYTES":
        return b"".join(_LENGTH.pack(len(item)) + item for item in array.reshape(-1))
    if array.dtype != DTYPES[datatype]:
        array = array.astype(DTYPES[datatype])
    return array.tobytes()  # row-major whatever the array's strides


def join_body(header: bytes, chunks: Sequence[bytes]) -> tuple[bytes, int]:
    """A response body: the JSON header, then the chunks; and the header's length."""
    return b"".join([header, *chunks]), len(header)
