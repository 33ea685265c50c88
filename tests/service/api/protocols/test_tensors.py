"""Tensors in the protocols' JSON: shapes, element types and ranges, bytes; every refusal a 4xx
that names the tensor."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from service.api.protocols.tensors import (
    element_count,
    from_json,
    from_nested,
    nesting,
    to_json,
    to_nested,
)
from service.errors import InvalidRequest

WHERE = "input 'x'"


def refused(words: str):
    return pytest.raises(InvalidRequest, match=words)


def test_data_flat_or_nested_fills_the_declared_shape_in_row_major_order() -> None:
    flat = from_json([1, 2, 3, 4, 5, 6], "INT64", [2, 3], WHERE)
    nested = from_json([[1, 2, 3], [4, 5, 6]], "INT64", [2, 3], WHERE)
    assert flat.dtype == np.int64 and flat.shape == (2, 3)
    np.testing.assert_array_equal(flat, nested)
    np.testing.assert_array_equal(flat[1], [4, 5, 6])


@pytest.mark.parametrize(
    ("data", "shape", "words"),
    [
        ([1, 2, 3], [2], "shape \\[2\\] holds 2 elements, the data 3"),
        ([[1, 2], [3]], [3], "ragged"),
        ([[1, 2], 3], [3], "ragged"),
        ([1, 2], [-1], "non-negative integers"),
        ([1], [True], "non-negative integers"),
        ([1], [1] * 9, "at most 8"),
    ],
)
def test_shapes_that_do_not_hold_the_data_are_refused(data, shape, words) -> None:
    with refused(words):
        from_json(data, "INT64", shape, WHERE)


def test_nesting_deeper_than_any_signature_is_refused_before_it_is_walked() -> None:
    value: list = [0]
    for _ in range(20):
        value = [value]
    with refused("deeper than 8"):
        nesting(value, WHERE)


@pytest.mark.parametrize(
    ("data", "datatype", "words"),
    [
        ([True], "INT64", "must be integers"),
        ([1.5], "INT64", "must be integers"),
        (["1"], "INT32", "must be integers"),
        ([256], "UINT8", "in 0..255"),
        ([-1], "UINT8", "in 0..255"),
        ([2**63], "INT64", "in -9223372036854775808"),
        ([False], "FP32", "must be numbers"),
        (["0.5"], "FP32", "must be numbers"),
        ([1], "BYTES", "must be strings"),
        ([1], "FP64", "not served"),
    ],
)
def test_elements_of_the_wrong_kind_or_range_are_refused(data, datatype, words) -> None:
    with refused(words):
        from_json(data, datatype, [1], WHERE)


def test_integral_floats_are_integers_as_in_json_schema() -> None:
    # JSON Schema (and so the OpenAPI document) counts 3.0 as an integer.
    assert from_json([3.0], "INT32", [1], WHERE).tolist() == [3]


def test_bytes_are_text_or_base64_and_come_back_as_base64() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    text = from_json(["ab"], "BYTES", [1], WHERE)
    assert text[0] == b"ab"
    encoded = base64.b64encode(png).decode()
    assert from_json([encoded], "BYTES", [1], WHERE, "base64")[0] == png
    with refused("not valid base64"):
        from_json(["%%%"], "BYTES", [1], WHERE, "base64")
    assert to_json(from_json([encoded], "BYTES", [1], WHERE, "base64"), "BYTES") == [encoded]


def test_tf_serving_json_takes_its_shape_from_the_nesting_and_b64_objects_for_bytes() -> None:
    array = from_nested([[1, 2], [3, 4]], "INT32", WHERE)
    assert array.shape == (2, 2) and array.dtype == np.int32
    assert from_nested(0.5, "FP32", WHERE).shape == ()
    png = b"\x89PNG\x00"
    value = from_nested([{"b64": base64.b64encode(png).decode()}], "BYTES", WHERE)
    assert value[0] == png
    assert to_nested(value, "BYTES") == [{"b64": base64.b64encode(png).decode()}]
    with refused('"b64"'):
        from_nested([{"b64": 1}], "BYTES", WHERE)
    with refused('"b64"'):
        from_nested([{"b64": "AA==", "x": 1}], "BYTES", WHERE)


def test_arrays_go_back_flat_for_v2_and_nested_for_tf_serving() -> None:
    images = np.arange(8, dtype=np.uint8).reshape(2, 2, 2, 1)
    assert to_json(images, "UINT8") == list(range(8))
    assert to_nested(images, "UINT8") == images.tolist()


def test_element_count_is_the_product_of_the_dimensions() -> None:
    assert element_count([2, 3, 4], WHERE) == 24
    assert element_count([], WHERE) == 1
    assert element_count([5, 0], WHERE) == 0
