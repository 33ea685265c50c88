"""The binary tensor extension: a JSON header, then the tensors' bytes; every count that does not
add up is a 4xx that gives the numbers."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from service.api.protocols.binary_tensors import (
    binary_chunks,
    from_binary,
    join_body,
    split_body,
    to_binary,
)
from service.errors import InvalidRequest

WHERE = "input 'x'"


def refused(words: str):
    return pytest.raises(InvalidRequest, match=words)


def test_the_header_length_splits_the_json_from_the_tensors() -> None:
    header, rest = split_body(b'{"a":1}\x01\x02', "7")
    assert header == b'{"a":1}' and bytes(rest) == b"\x01\x02"
    whole, nothing = split_body(b'{"a":1}', None)
    assert whole == b'{"a":1}' and len(nothing) == 0


@pytest.mark.parametrize(
    ("length", "words"),
    [("12", "is 12 but the body has only 9 bytes"), ("-1", "must be"), ("1e3", "must be")],
)
def test_a_header_length_past_the_body_or_not_a_count_is_refused(length: str, words: str) -> None:
    with refused(words):
        split_body(b'{"a":1}\x00\x00', length)


def test_declared_sizes_cut_the_data_in_order_and_must_add_up_to_it() -> None:
    data = memoryview(b"aaaabbc")
    chunks = binary_chunks([4, None, 2, 1], data)
    assert [None if c is None else bytes(c) for c in chunks] == [b"aaaa", None, b"bb", b"c"]
    with refused("declare 6 bytes .* but 7 bytes follow"):
        binary_chunks([4, 2], data)
    with refused("declare 8 bytes .* but 7 bytes follow"):
        binary_chunks([8], data)


@pytest.mark.parametrize(
    ("datatype", "array"),
    [
        ("INT64", np.array([0, 2**32 - 1], np.int64)),
        ("INT32", np.array([[1, -2], [3, 4]], np.int32)),
        ("FP32", np.array([[0.5, -1.25]], np.float32)),
        ("UINT8", np.arange(24, dtype=np.uint8).reshape(2, 2, 3, 2)),
    ],
)
def test_fixed_size_tensors_round_trip_little_endian(datatype: str, array: np.ndarray) -> None:
    raw = to_binary(array, datatype)
    assert len(raw) == array.size * array.itemsize
    back = from_binary(memoryview(raw), datatype, list(array.shape), WHERE)
    np.testing.assert_array_equal(back, array)
    assert back.dtype == array.dtype


def test_little_endian_whatever_the_machine() -> None:
    assert to_binary(np.array([1], np.int64), "INT64") == struct.pack("<q", 1)
    assert from_binary(memoryview(struct.pack("<i", 7)), "INT32", [1], WHERE).tolist() == [7]


def test_bytes_that_do_not_fill_the_shape_are_refused() -> None:
    with refused("shape \\[2\\] of INT64 takes 16 bytes, binary_data_size says 8"):
        from_binary(memoryview(bytes(8)), "INT64", [2], WHERE)
    with refused("not served"):
        from_binary(memoryview(bytes(8)), "FP64", [1], WHERE)


def test_bytes_tensors_are_length_prefixed_elements() -> None:
    items = np.empty(2, object)
    items[:] = [b"\x89PNG", b""]
    raw = to_binary(items, "BYTES")
    assert raw == struct.pack("<I", 4) + b"\x89PNG" + struct.pack("<I", 0)
    back = from_binary(memoryview(raw), "BYTES", [2], WHERE)
    assert back.tolist() == [b"\x89PNG", b""]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (struct.pack("<I", 2) + b"ab", "ends before element 1 of 2"),
        (struct.pack("<I", 9) + b"ab", "element 0 says 9 bytes but only 2 remain"),
        (struct.pack("<I", 1) + b"a" + struct.pack("<I", 0) + b"zz", "2 bytes left"),
    ],
)
def test_bytes_tensors_whose_lengths_do_not_add_up_are_refused(raw: bytes, words: str) -> None:
    with refused(words):
        from_binary(memoryview(raw), "BYTES", [2], WHERE)


def test_a_response_body_is_the_header_then_the_chunks() -> None:
    body, length = join_body(b'{"x":1}', [b"\x01", b"\x02\x03"])
    assert body == b'{"x":1}\x01\x02\x03' and length == 7
