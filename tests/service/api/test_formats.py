"""Image formats of /generate: PNG (lossless, the default), WebP and JPEG, chosen by the request's
``format`` or its Accept header, at a per-request quality or PNG level; with a 128x128 colour
model, the size people train (a tiny-width generator of tests/service/savedmodel_factory.py).
"""

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
from tests.images import assert_same_image, png_pixels
from tests.service.conftest import make_settings

SIDE = 128
BODY = {"seeds": [3], "model": "colour"}


@pytest.fixture(scope="module")
def colour_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with ``colour``: 128x128 RGB, unconditional, a generator 8 channels wide."""
    from tests.service.savedmodel_factory import export_model

    root = tmp_path_factory.mktemp("colour-models")
    export_model(
        root / "colour" / "1", name="colour", version=1, resolution=SIDE, channels=3, width=8
    )
    return root


@pytest.fixture(scope="module")
def colour(colour_dir: Path) -> Iterator[TestClient]:
    # Room for 30 frames of 128x128 in one walk, as GAN_MAX_WALK_PIXELS allows by default.
    app = create_app(make_settings(colour_dir, max_body_bytes=1024 * 1024))
    with TestClient(app) as client:
        yield client


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def _mean_error(a: bytes, b: bytes) -> float:
    return float(np.mean(np.abs(_pixels(a) - _pixels(b))))


def test_png_is_the_default_and_a_level_changes_the_size_not_the_pixels(colour) -> None:
    default = colour.post("/generate", json=BODY)
    assert default.status_code == 200, default.text
    assert default.headers["content-type"] == "image/png"
    assert png_pixels(default.content).shape == (SIDE, SIDE, 3)
    stored = colour.post("/generate", json={**BODY, "compress_level": 0})
    smallest = colour.post("/generate", json={**BODY, "compress_level": 9})
    assert len(stored.content) > len(smallest.content)  # level 0 stores the rows uncompressed
    assert_same_image(stored.content, smallest.content)  # the same image, lossless both


def _codec(data: bytes, kind: str, quality: int) -> bytes:
    """``data`` (a PNG) encoded by Pillow's own codec of ``kind``: the error it makes on these
    very pixels is the codec's expected error."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buffer, kind.upper(), quality=quality)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("kind", "media_type", "magic"),
    [("webp", "image/webp", (8, b"WEBP")), ("jpeg", "image/jpeg", (0, b"\xff\xd8"))],
)
def test_webp_and_jpeg_decode_close_to_the_png(colour, kind, media_type, magic) -> None:
    png = colour.post("/generate", json=BODY).content
    answer = colour.post("/generate", json={**BODY, "format": kind, "quality": 90})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == media_type
    offset, signature = magic
    assert answer.content[offset : offset + len(signature)] == signature
    assert _pixels(answer.content).shape == (SIDE, SIDE, 3)
    # The service's file is as far from the PNG as the codec's own encoding of the PNG's
    # pixels, give or take one grey level: the two renderings of the image may differ by one
    # (gan_contract.reproducibility), which moves a mean absolute error by at most 1.
    expected = _mean_error(_codec(png, kind, 90), png)
    assert abs(_mean_error(answer.content, png) - expected) <= 1.0
    other = colour.post("/generate", json={**BODY, "seeds": [4]}).content
    assert _mean_error(other, png) > 2 * expected  # a lossy copy, not another image
    # Lower quality: a smaller file, further from the PNG.
    rough = colour.post("/generate", json={**BODY, "format": kind, "quality": 10}).content
    assert len(rough) < len(answer.content)
    assert _mean_error(rough, png) > _mean_error(answer.content, png)


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("image/webp", "image/webp"),
        ("image/jpeg", "image/jpeg"),
        ("image/jpeg;q=0.5, image/webp;q=0.9", "image/webp"),
        ("image/*", "image/png"),  # ties go to the lossless format
        ("image/*;q=0.8, image/png;q=0", "image/webp"),  # the specific range wins
        ("text/html, */*;q=0.1", "image/png"),
        ("", "image/png"),
    ],
)
def test_accept_chooses_the_format(colour, accept: str, media_type: str) -> None:
    headers = {"Accept": accept}
    posted = colour.post("/generate", json=BODY, headers=headers)
    got = colour.get("/generate", params={"seed": 3, "model": "colour"}, headers=headers)
    for answer in (posted, got):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == media_type
        assert answer.headers["vary"] == "Accept"


@pytest.mark.parametrize("accept", ["text/html", "image/gif", "image/png;q=0", "application/json"])
def test_an_accept_that_allows_no_image_type_is_a_406(colour, accept: str) -> None:
    for answer in (
        colour.post("/generate", json=BODY, headers={"Accept": accept}),
        colour.get("/generate", params={"seed": 3, "model": "colour"}, headers={"Accept": accept}),
    ):
        assert answer.status_code == 406, answer.text
        assert answer.json()["error"] == "not_acceptable"
        assert "image/png, image/webp, image/jpeg" in answer.json()["detail"]
    # A format in the request wins over Accept (as every field the request names does).
    named = colour.post("/generate", json={**BODY, "format": "jpeg"}, headers={"Accept": accept})
    assert named.status_code == 200 and named.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("format", "gif", "format"),
        ("format", "PNG", "format"),
        ("quality", 0, "quality"),
        ("quality", 101, "quality"),
        ("quality", "90", "quality"),
        ("compress_level", 10, "compress_level"),
        ("compress_level", -1, "compress_level"),
    ],
)
def test_a_bad_format_quality_or_level_is_a_422_naming_it(colour, field, value, words) -> None:
    posted = colour.post("/generate", json={**BODY, field: value})
    assert posted.status_code == 422, posted.text
    assert words in posted.text
    if isinstance(value, int):
        got = colour.get("/generate", params={"seed": 3, "model": "colour", field: value})
        assert got.status_code == 422 and words in got.text


def test_the_etag_depends_on_the_format_and_quality(colour) -> None:
    def etag(**params: object) -> str:
        answer = colour.get("/generate", params={"seed": 5, "model": "colour", **params})
        assert answer.status_code == 200, answer.text
        return answer.headers["etag"]

    tags = {
        etag(),
        etag(format="webp"),
        etag(format="webp", quality=50),
        etag(format="jpeg"),
        etag(compress_level=1),
    }
    assert len(tags) == 5
    # The Accept header's choice gets the ETag of the format it chose, and a 304 for it only.
    webp = colour.get(
        "/generate", params={"seed": 5, "model": "colour"}, headers={"Accept": "image/webp"}
    )
    assert webp.headers["etag"] == etag(format="webp")
    again = colour.get(
        "/generate",
        params={"seed": 5, "model": "colour"},
        headers={"Accept": "image/webp", "If-None-Match": webp.headers["etag"]},
    )
    assert again.status_code == 304
    png = colour.get(
        "/generate",
        params={"seed": 5, "model": "colour"},
        headers={"If-None-Match": webp.headers["etag"]},
    )
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"


def test_json_carries_each_image_in_its_format_with_its_media_type(colour) -> None:
    body = {**BODY, "seeds": [3, 4], "response": "json"}
    as_png = colour.post("/generate", json=body).json()["images"]
    as_webp = colour.post("/generate", json={**body, "format": "webp"}).json()["images"]
    for png, webp in zip(as_png, as_webp, strict=True):
        assert png["media_type"] == "image/png" and png["png_base64"] == png["image_base64"]
        assert webp["media_type"] == "image/webp" and webp["png_base64"] is None
        png_bytes = base64.b64decode(png["image_base64"])
        webp_bytes = base64.b64decode(webp["image_base64"])
        assert webp_bytes[8:12] == b"WEBP"
        # As for one image (above): the codec's own error, give or take one grey level.
        expected = _mean_error(_codec(png_bytes, "webp", 90), png_bytes)
        assert abs(_mean_error(webp_bytes, png_bytes) - expected) <= 1.0
    # JSON answers follow Accept's image preference too.
    chosen = colour.post("/generate", json=body, headers={"Accept": "image/jpeg"}).json()
    assert {image["media_type"] for image in chosen["images"]} == {"image/jpeg"}


def test_a_grid_is_one_image_in_the_chosen_format(colour) -> None:
    body = {**BODY, "seeds": "0-3", "response": "grid"}
    png = colour.post("/generate", json=body)
    jpeg = colour.post("/generate", json={**body, "format": "jpeg", "quality": 90})
    assert png.headers["content-type"] == "image/png"
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert _pixels(jpeg.content).shape == _pixels(png.content).shape
    # As for one image (above): the codec's own error, give or take one grey level.
    expected = _mean_error(_codec(png.content, "jpeg", 90), png.content)
    assert abs(_mean_error(jpeg.content, png.content) - expected) <= 1.0


def test_a_walk_of_128x128_frames_is_served_within_the_limits(colour) -> None:
    # 30 frames of 128x128 are 491,520 pixels, within GAN_MAX_WALK_PIXELS (2048 x 2048).
    answer = colour.post("/animate", json={"seeds": [1, 2], "model": "colour", "frames": 30})
    assert answer.status_code == 200, answer.text
    animation = Image.open(io.BytesIO(answer.content))
    assert animation.size == (SIDE, SIDE) and animation.n_frames == 30
    # The pixel limit holds at this size too: 40 frames scaled to 384x384 are 5.9 million.
    too_many = colour.post(
        "/animate", json={"seeds": [1, 2], "model": "colour", "frames": 40, "scale": 3}
    )
    assert too_many.status_code == 413, too_many.text
