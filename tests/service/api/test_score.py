"""/score judges an upload as training saw its images: the bundled MNIST model scores the
variants of a digit (padded to 28x44, 16-bit, transparent) like the plain 8-bit digit."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.gan_contract.variants import digit_variants, png_bytes


@pytest.fixture(scope="module")
def bundled(repo_root: Path) -> Iterator[TestClient]:
    """A client of the service serving the bundled models/ (the 28x28 MNIST model)."""
    settings = Settings(model_dir=repo_root / "models", max_batch_size=8, max_images_per_request=16)
    with TestClient(create_app(settings)) as client:
        yield client


def test_variants_of_a_digit_score_like_the_digit(bundled: TestClient, mnist_digits) -> None:
    names = list(digit_variants(mnist_digits[0]))
    logits = []
    for start in range(0, len(mnist_digits), 4):  # 4 digits x 4 variants per request
        images, labels = [], []
        for index in range(start, start + 4):
            for image in digit_variants(mnist_digits[index]).values():
                images.append(base64.b64encode(png_bytes(image)).decode())
                labels.append(index % 10)
        response = bundled.post("/score", json={"images": images, "class_label": labels})
        assert response.status_code == 200, response.text
        logits += [score["logit"] for score in response.json()["scores"]]
    table = np.array(logits).reshape(len(mnist_digits), len(names))
    # Every variant reaches D as the same uint8 pixels as the plain digit, so what is left is
    # float32 rounding of a row at another batch position or shape: a few ulps of each layer's
    # sums, relative ~1e-6 per layer. 1e-3 of the logit's size (at least 1e-3) bounds that with a
    # wide margin and stays three orders of magnitude below the 1.7 and 6.0 logits by which the
    # padded and 16-bit digits once drifted.
    tolerance = 1e-3 * np.maximum(1.0, np.abs(table[:, :1]))
    for column, name in enumerate(names[1:], start=1):
        gap = np.abs(table[:, column : column + 1] - table[:, :1])
        assert np.all(gap <= tolerance), f"{name}: largest gap {gap.max():.3g}"
