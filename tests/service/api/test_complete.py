"""POST /encode and POST /complete against a tiny trained model with an encoder (``tinyc``) and
the same model without one (``tiny``)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from tests.service.conftest import make_settings

RES = 16


@pytest.fixture(scope="module")
def client(completion_models: Path) -> Iterator[TestClient]:
    settings = make_settings(
        completion_models, default_model="tinyc", max_complete_steps=40, complete_steps=20
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _png(array: np.ndarray, mode: str) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _digit(seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (RES, RES), dtype=np.uint8)


def _with_alpha(grey: np.ndarray, observed: np.ndarray) -> str:
    """An LA PNG: alpha 255 where observed, 0 where missing."""
    return _png(np.stack([grey, observed.astype(np.uint8) * 255], -1), "LA")


def _bottom_missing() -> np.ndarray:
    observed = np.ones((RES, RES), bool)
    observed[RES // 2 :] = False
    return observed


def _error(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail"} and words.lower() in body["detail"].lower(), body


def test_complete_keeps_observed_pixels_and_reports_latents(client: TestClient) -> None:
    grey, observed = _digit(), _bottom_missing()
    body = {"images": [_with_alpha(grey, observed)], "class_label": 3, "steps": 10}
    response = client.post("/complete", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "tinyc/1"
    result = response.json()
    assert result["model"] == "tinyc" and result["steps"] == 10
    (image,) = result["images"]
    assert len(image["latent"]) == 8 and image["class_label"] == 3
    assert image["observed_fraction"] == 0.5 and image["observed_error"] >= 0.0
    completed = np.asarray(Image.open(io.BytesIO(base64.b64decode(image["png_base64"]))))
    np.testing.assert_array_equal(completed[observed], grey[observed])


def test_a_separate_mask_image_equals_the_alpha_channel(client: TestClient) -> None:
    grey, observed = _digit(1), _bottom_missing()
    by_alpha = client.post(
        "/complete", json={"images": [_with_alpha(grey, observed)], "class_label": 1, "steps": 5}
    ).json()["images"][0]
    mask = _png(observed.astype(np.uint8) * 255, "L")
    by_mask = client.post(
        "/complete",
        json={"images": [_png(grey, "L")], "masks": [mask], "class_label": 1, "steps": 5},
    ).json()["images"][0]
    # The same pixels and mask in the same batch shape: the same computation.
    np.testing.assert_allclose(by_mask["latent"], by_alpha["latent"], atol=1e-5)


def test_png_and_grid_answers(client: TestClient) -> None:
    one = _with_alpha(_digit(), _bottom_missing())
    png = client.post("/complete", json={"images": [one], "class_label": 0, "response": "png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (RES, RES)
    grid = client.post(
        "/complete", json={"images": [one] * 4, "class_label": 0, "response": "grid", "steps": 0}
    )
    assert grid.status_code == 200 and Image.open(io.BytesIO(grid.content)).size == (34, 34)
    _error(client.post("/complete", json={"images": [one] * 2, "class_label": 0,
                                          "response": "png"}), 422, "response=png")  # fmt: skip


def test_encode_then_generate_from_the_latents(client: TestClient) -> None:
    images = [_png(_digit(s), "L") for s in (0, 1)]
    response = client.post("/encode", json={"images": images, "class_label": [2, 5]})
    assert response.status_code == 200, response.text
    latents = response.json()["latents"]
    assert len(latents) == 2 and all(len(z) == 8 for z in latents)
    again = client.post("/generate", json={"noise": latents, "class_label": [2, 5],
                                           "response": "json"})  # fmt: skip
    assert again.status_code == 200 and len(again.json()["images"]) == 2


def test_a_model_without_an_encoder_answers_404(client: TestClient) -> None:
    image = _png(_digit(), "L")
    for path in ("/complete", "/encode"):
        response = client.post(path, json={"images": [image], "class_label": 1, "model": "tiny"})
        _error(response, 404, "has no")
    # ... and it is still served as before.
    assert client.post("/generate", json={"seeds": [1], "model": "tiny"}).status_code == 200


def test_client_mistakes_are_4xx(client: TestClient) -> None:
    grey, observed = _digit(), _bottom_missing()
    good = _with_alpha(grey, observed)
    wide = _png(np.zeros((RES, RES + 2), np.uint8), "L")
    huge = _png(np.zeros((3000, 3000), np.uint8), "L")  # a few kB of PNG
    cases = [
        ({"images": [good], "class_label": 1, "steps": 41}, 422, "at most 40"),
        ({"images": [good, good]}, 422, "at most 1 images per request, or give class_label"),
        ({"images": [good], "class_label": 10}, 422, "class_label"),
        ({"images": [_png(grey, "L")], "masks": [wide], "class_label": 1}, 422, "another size"),
        ({"images": [wide], "class_label": 1}, 422, "takes 16x16"),
        ({"images": [huge], "class_label": 1}, 422, "is 3000x3000 pixels"),  # never decoded
        ({"images": [_with_alpha(grey, np.zeros((RES, RES), bool))], "class_label": 1}, 422,
         "no observed pixel"),
        ({"images": [good, good], "masks": [good], "class_label": 1}, 422, "1 masks for 2"),
        ({"images": ["not base64!"], "class_label": 1}, 422, "base64"),
        ({"images": [base64.b64encode(b"text").decode()], "class_label": 1}, 415, "not an image"),
        ({"images": [good] * 17, "class_label": 1}, 422, "at most 16"),
        ({"images": [good], "class_label": 1, "steps": -1}, 422, "steps"),
        ({"images": [good], "class_label": 1, "model": "nope"}, 404, "unknown model"),
    ]  # fmt: skip
    for body, status, words in cases:
        _error(client.post("/complete", json=body), status, words)
    _error(client.post("/complete", content=b"{}", headers={"content-type": "text/plain"}),
           415, "application/json")  # fmt: skip
    # The service keeps serving after all of them.
    assert client.post("/complete", json={"images": [good], "class_label": 1}).status_code == 200


def test_without_a_class_the_kept_class_is_one_completed_as_asked(client: TestClient) -> None:
    image = _with_alpha(_digit(2), _bottom_missing())
    found = client.post("/complete", json={"images": [image], "steps": 3}).json()["images"][0]
    assert 0 <= found["class_label"] < 10
    asked = client.post(
        "/complete", json={"images": [image], "steps": 3, "class_label": found["class_label"]}
    ).json()["images"][0]
    # The search ran 10 rows in one batch, this one row: kernels may round a few pixels
    # differently, each moving the mean error by 1/128 of a grey level; 0.5 bounds that.
    assert abs(found["observed_error"] - asked["observed_error"]) <= 0.5


class _Engine:
    """An engine whose ``complete`` answers fixed outputs for an image's rows in every class."""

    def __init__(self, outputs: dict[str, np.ndarray]) -> None:
        self.outputs = outputs

    async def complete(self, model, images, masks, labels, steps):
        assert len(labels) == len(self.outputs["z"])
        return {**self.outputs, "png": [b"png%d" % row for row in range(len(labels))]}


@pytest.mark.parametrize("with_cost", [True, False], ids=["class_cost", "older model"])
def test_without_a_class_the_lowest_class_cost_is_kept(with_cost: bool) -> None:
    import asyncio

    from service.api.complete import _complete_every_class

    classes = 3
    outputs = {
        "images": np.zeros((classes, RES, RES, 1), np.uint8),
        "z": np.arange(classes, dtype=np.float32)[:, None],
        # Class 0 fits the observed pixels best; class 2 is the likeliest all told.
        "observed_error": np.array([1.0, 3.0, 2.0], np.float32),
        "class_cost": np.array([0.5, 0.4, 0.1], np.float32),
    }
    if not with_cost:  # a version exported before class_cost: the fit alone decides
        del outputs["class_cost"]
    model = type("Model", (), {"num_classes": classes})()
    images, masks = np.zeros((1, RES, RES, 1), np.uint8), np.ones((1, RES, RES), np.uint8)
    kept, found = asyncio.run(
        _complete_every_class(_Engine(outputs), model, images, masks, steps=3)  # type: ignore[arg-type]
    )
    expected = 2 if with_cost else 0
    assert found.tolist() == [expected] and kept["png"] == [b"png%d" % expected]
    assert kept["z"].tolist() == [[expected]]


def test_completions_are_batched_and_counted(client: TestClient) -> None:
    image = _with_alpha(_digit(), _bottom_missing())
    assert client.post("/complete", json={"images": [image], "class_label": 1}).status_code == 200
    text = client.get("/metrics").text
    assert 'signature="complete"' in text and 'signature="encode"' in text
