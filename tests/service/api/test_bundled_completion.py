"""The bundled model completes and encodes out of the box: ``models/mnist/2`` is ``mnist/1`` (the
same generator and discriminator, bit for bit) with an encoder, and serves requests that name
no version. Versions are pinned where the answer depends on which one serves."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.settings import Settings


@pytest.fixture(scope="module")
def bundled(repo_root: Path) -> Iterator[TestClient]:
    """A client of the service serving the repository's models/ as `make run` does."""
    settings = Settings(model_dir=repo_root / "models", warmup=False, poll_seconds=0)
    with TestClient(create_app(settings)) as client:
        yield client


def _weights(version_dir: Path) -> dict[str, np.ndarray]:
    """The generator's and the discriminator's variables of an exported version, by name."""
    reader = tf.train.load_checkpoint(str(version_dir / "variables" / "variables"))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith(("generator/", "discriminator/"))
    }


def test_version_2_keeps_the_networks_of_version_1(repo_root: Path) -> None:
    first, second = (_weights(repo_root / "models" / "mnist" / v) for v in ("1", "2"))
    assert first and first.keys() == second.keys()
    for name, value in first.items():
        np.testing.assert_array_equal(second[name], value, err_msg=name)


def test_requests_naming_no_version_get_version_2(bundled: TestClient) -> None:
    response = bundled.get("/generate", params={"seed": 0})
    assert response.status_code == 200 and response.headers["x-model"] == "mnist/2"


def _half_erased(bundled: TestClient, seed: int, label: int) -> tuple[np.ndarray, str]:
    """A digit the model draws, and it as a PNG whose bottom half is transparent (missing)."""
    params = {"seed": seed, "class_label": label, "version": 2}
    digit = np.asarray(Image.open(io.BytesIO(bundled.get("/generate", params=params).content)))
    alpha = np.full(digit.shape, 255, np.uint8)
    alpha[digit.shape[0] // 2 :] = 0
    buffer = io.BytesIO()
    Image.fromarray(np.stack([digit, alpha], -1), "LA").save(buffer, "PNG")
    return digit, base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.mark.parametrize(("seed", "label"), [(1, 3), (0, 7)])
def test_a_half_erased_digit_is_completed_in_its_class(
    bundled: TestClient, seed: int, label: int
) -> None:
    digit, png = _half_erased(bundled, seed, label)
    response = bundled.post("/complete", json={"images": [png], "version": 2})
    assert response.status_code == 200, response.text
    (image,) = response.json()["images"]
    assert image["class_label"] == label  # found, not given
    completed = np.asarray(Image.open(io.BytesIO(base64.b64decode(image["png_base64"]))))
    top = digit.shape[0] // 2
    np.testing.assert_array_equal(completed[:top], digit[:top])  # observed pixels kept


def test_the_bundled_model_encodes(bundled: TestClient) -> None:
    _, png = _half_erased(bundled, 1, 3)
    response = bundled.post("/encode", json={"images": [png], "class_label": 3, "version": 2})
    assert response.status_code == 200, response.text
    assert len(response.json()["latents"][0]) == 64


def test_version_1_has_no_completion(bundled: TestClient) -> None:
    # Whether version 1 is served too (a version policy may keep it) or not, it cannot complete.
    _, png = _half_erased(bundled, 1, 3)
    response = bundled.post("/complete", json={"images": [png], "version": 1})
    assert response.status_code == 404, response.text
