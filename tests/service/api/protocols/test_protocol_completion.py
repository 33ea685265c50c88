"""The encode and complete signatures through the protocols (``NAME.encode``, ``NAME.complete``;
TF Serving's ``signature_name``), against the tiny model with an encoder (``tinyc``) and without
one (``tiny``): the same latents as POST /encode, observed pixels kept, errors in the protocol's
shape."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from tests.service.api.protocols.v2_bodies import binary_request, json_input, read_response
from tests.service.conftest import make_settings

RES = 16
STEPS = 4  # few optimisation steps: these tests check the plumbing, not the completion


@pytest.fixture(scope="module")
def client(completion_models: Path) -> Iterator[TestClient]:
    settings = make_settings(
        completion_models, default_model="tinyc", max_complete_steps=8, complete_steps=STEPS
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _images(count: int) -> np.ndarray:
    return np.random.RandomState(0).randint(0, 256, (count, RES, RES, 1), dtype=np.uint8)


def _top_observed(count: int) -> np.ndarray:
    masks = np.zeros((count, RES, RES), np.uint8)
    masks[:, : RES // 2] = 1
    return masks


def _png(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array, "L").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def test_metadata_lists_the_optional_signatures_of_a_model_that_has_them(
    client: TestClient,
) -> None:
    complete = client.get("/v2/models/tinyc.complete").json()
    assert [t["name"] for t in complete["inputs"]] == ["images", "masks", "class_label", "steps"]
    outputs = [t["name"] for t in complete["outputs"]]
    assert outputs == ["images", "png", "z", "observed_error", "class_label"]
    encode = client.get("/v2/models/tinyc.encode").json()
    assert encode["outputs"] == [{"name": "z", "datatype": "FP32", "shape": [-1, 8]}]
    missing = client.get("/v2/models/tiny.encode")
    assert missing.status_code == 404 and "has no 'encode' signature" in missing.json()["error"]
    signatures = client.get("/v1/models/tinyc/metadata").json()["metadata"]["signature_def"]
    assert list(signatures["signature_def"]) == [
        "serving_default",
        "generate",
        "score",
        "encode",
        "complete",
    ]


def test_encode_gives_the_latents_of_encode(client: TestClient) -> None:
    images, masks = _images(2), _top_observed(2)
    body, headers = binary_request(
        [
            ("images", "UINT8", images),
            ("masks", "UINT8", masks),
            ("class_label", "INT32", np.array([3])),
        ]
    )
    response = client.post("/v2/models/tinyc.encode/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    z = read_response(response.content, response.headers)["z"]
    native = client.post(
        "/encode",
        json={
            "images": [_png(image[..., 0]) for image in images],
            "masks": [_png(mask * 255) for mask in masks],
            "class_label": 3,
        },
    ).json()["latents"]
    # The same pixels and masks through one float32 encoder, perhaps in another batch shape:
    # sums that round alike to well within 1e-4.
    np.testing.assert_allclose(z, np.array(native), rtol=0, atol=1e-4)


def test_complete_keeps_the_observed_pixels_and_reports_what_it_did(client: TestClient) -> None:
    images, masks = _images(1), _top_observed(1)
    inputs = [
        json_input("images", "UINT8", images.tolist()),
        json_input("masks", "UINT8", masks.tolist()),
        json_input("class_label", "INT32", [7]),
        json_input("steps", "INT32", [STEPS]),
    ]
    response = client.post(
        "/v2/models/tinyc.complete/infer",
        json={"inputs": inputs, "outputs": [{"name": n} for n in ("images", "png", "class_label")]},
    )
    assert response.status_code == 200, response.text
    outputs = read_response(response.content, response.headers)
    completed = outputs["images"][0, ..., 0]
    observed = masks[0] == 1
    np.testing.assert_array_equal(completed[observed], images[0, ..., 0][observed])
    assert outputs["class_label"].tolist() == [7] and len(outputs["png"]) == 1


def test_complete_without_a_class_tries_every_class(client: TestClient) -> None:
    inputs = [json_input("images", "UINT8", _images(1).tolist())]
    response = client.post("/v2/models/tinyc.complete/infer", json={"inputs": inputs})
    outputs = read_response(response.content, response.headers)
    assert set(outputs) == {"images", "z", "observed_error", "class_label"}  # png when asked
    assert 0 <= int(outputs["class_label"][0]) < 10 and outputs["z"].shape == (1, 8)


def test_tf_serving_runs_encode_by_its_signature_name(client: TestClient) -> None:
    instance = {"images": _images(1)[0].tolist(), "class_label": 2}
    response = client.post(
        "/v1/models/tinyc:predict", json={"signature_name": "encode", "instances": [instance]}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"][0]) == 8  # one output: the latent alone


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ([("images", "UINT8", _images(1)), ("steps", "INT32", np.array([9]))], "give 0 to 8"),
        (
            [("images", "UINT8", _images(1)), ("masks", "UINT8", np.zeros((1, RES, RES)))],
            "no observed pixel",
        ),
        (
            [("images", "UINT8", _images(2)), ("masks", "UINT8", _top_observed(1))],
            "give one per image",
        ),
        (
            [("images", "UINT8", _images(1)), ("masks", "UINT8", np.ones((1, 8, 8)))],
            "it takes [N, 16, 16]",
        ),
        ([("masks", "UINT8", _top_observed(1))], "input 'images' is required"),
        ([("images", "UINT8", np.zeros((1, 8, 8, 1)))], "it takes [N, 16, 16, 1]"),
    ],
)
def test_every_bad_completion_request_is_a_400(
    client: TestClient, inputs: list[tuple[str, str, Any]], words: str
) -> None:
    body, headers = binary_request(inputs)
    response = client.post("/v2/models/tinyc.complete/infer", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]


def test_encode_needs_the_class_of_a_conditional_model(client: TestClient) -> None:
    body, headers = binary_request([("images", "UINT8", _images(1))])
    response = client.post("/v2/models/tinyc.encode/infer", content=body, headers=headers)
    assert response.status_code == 400 and "give class_label" in response.json()["error"]
