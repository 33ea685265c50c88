"""POST /complete and /encode take images the three ways /score does: multipart ``images`` and
``masks`` files with form fields, a raw ``image/png`` body (alpha = mask) with the fields in the
query, or JSON base64; each way gives the same answer, and each bad upload a clear 4xx."""

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
LIMIT = 4  # images per request, so that the part limits are cheap to reach
RAW = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def client(completion_models: Path) -> Iterator[TestClient]:
    settings = make_settings(
        completion_models,
        default_model="tinyc",
        max_complete_steps=40,
        complete_steps=5,
        max_images_per_request=LIMIT,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG")
    return buffer.getvalue()


def _grey(seed: int) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (RES, RES), dtype=np.uint8)


def _observed(rows: int = RES // 2) -> np.ndarray:
    """True on the top ``rows`` rows (observed), False below (missing)."""
    observed = np.zeros((RES, RES), bool)
    observed[:rows] = True
    return observed


def _with_alpha(grey: np.ndarray, observed: np.ndarray) -> bytes:
    return _png(np.stack([grey, observed.astype(np.uint8) * 255], -1), "LA")


def _mask(observed: np.ndarray) -> bytes:
    return _png(observed.astype(np.uint8) * 255, "L")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _files(name: str, items: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(name, (f"{name}{i}.png", data, "image/png")) for i, data in enumerate(items)]


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail"} and words.lower() in body["detail"].lower(), body


def _latents(answer: dict) -> np.ndarray:
    if "latents" in answer:
        return np.asarray(answer["latents"])
    return np.asarray([image["latent"] for image in answer["images"]])


# Each way in runs the same rows in the same batch shape: the same computation, so the latents
# agree to float32 rounding of the optimisation (1e-5 is far below any change of input).
SAME = 1e-5


def test_multipart_images_with_alpha_equal_json(client: TestClient) -> None:
    images = [_with_alpha(_grey(s), _observed()) for s in (0, 1)]
    form = {"class_label": "3,5", "steps": "4", "response": "json"}
    by_form = _ok(client.post("/complete", files=_files("images", images), data=form))
    body = {"images": [_b64(i) for i in images], "class_label": [3, 5], "steps": 4}
    by_json = _ok(client.post("/complete", json=body))
    assert [i["class_label"] for i in by_form["images"]] == [3, 5] and by_form["steps"] == 4
    np.testing.assert_allclose(_latents(by_form), _latents(by_json), atol=SAME)
    completed = Image.open(io.BytesIO(base64.b64decode(by_form["images"][1]["png_base64"])))
    np.testing.assert_array_equal(np.asarray(completed)[_observed()], _grey(1)[_observed()])


def test_multipart_mask_files_replace_the_alpha(client: TestClient) -> None:
    greys = [_png(_grey(s), "L") for s in (2, 3)]
    observed = [_observed(4), _observed(12)]
    files = _files("images", greys) + _files("masks", [_mask(o) for o in observed])
    by_form = _ok(client.post("/complete", files=files, data={"class_label": "1", "steps": "3"}))
    assert [i["observed_fraction"] for i in by_form["images"]] == [0.25, 0.75]
    alpha = [_b64(_with_alpha(_grey(s), o)) for s, o in zip((2, 3), observed, strict=True)]
    by_alpha = _ok(client.post("/complete", json={"images": alpha, "class_label": 1, "steps": 3}))
    np.testing.assert_allclose(_latents(by_form), _latents(by_alpha), atol=SAME)


def test_a_raw_png_body_takes_its_fields_from_the_query(client: TestClient) -> None:
    image = _with_alpha(_grey(4), _observed())
    png = client.post("/complete?class_label=2&steps=3&response=png", content=image, headers=RAW)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png", png.text
    completed = np.asarray(Image.open(io.BytesIO(png.content)))
    np.testing.assert_array_equal(completed[_observed()], _grey(4)[_observed()])
    as_json = _ok(client.post("/complete?class_label=2&steps=3", content=image, headers=RAW))
    body = {"images": [_b64(image)], "class_label": 2, "steps": 3}
    np.testing.assert_allclose(
        _latents(as_json), _latents(_ok(client.post("/complete", json=body))), atol=SAME
    )


def test_encode_takes_the_three_ways(client: TestClient) -> None:
    image = _with_alpha(_grey(5), _observed())
    by_json = _ok(client.post("/encode", json={"images": [_b64(image)], "class_label": 7}))
    by_form = _ok(
        client.post("/encode", files=_files("images", [image]), data={"class_label": "7"})
    )
    by_raw = _ok(client.post("/encode?class_label=7", content=image, headers=RAW))
    # A query field also serves a JSON body that lacks it (the body's own field would win).
    by_query = _ok(client.post("/encode?class_label=7", json={"images": [_b64(image)]}))
    for answer in (by_form, by_raw, by_query):
        np.testing.assert_allclose(_latents(answer), _latents(by_json), atol=SAME)
    _error(client.post("/encode", content=image, headers=RAW), 422, "give class_label")


def test_a_class_list_is_applied_in_turn_on_both_routes(client: TestClient) -> None:
    images = [_b64(_with_alpha(_grey(s), _observed())) for s in (6, 7, 8)]
    answer = _ok(client.post("/complete", json={"images": images, "class_label": [4, 9],
                                                "steps": 0}))  # fmt: skip
    assert [image["class_label"] for image in answer["images"]] == [4, 9, 4]
    short = _ok(client.post("/encode", json={"images": images, "class_label": [4, 9]}))
    full = _ok(client.post("/encode", json={"images": images, "class_label": [4, 9, 4]}))
    np.testing.assert_allclose(_latents(short), _latents(full), atol=SAME)
    # Every entry must be a class of the model, even one past the last image.
    _error(client.post("/encode", json={"images": images[:1], "class_label": [4, 10]}), 422,
           "10 is out of range")  # fmt: skip
    _error(client.post("/encode", json={"images": images[:1], "class_label": []}), 422,
           "class_label")  # fmt: skip


GOOD = _with_alpha(_grey(9), _observed())
WIDE = _png(np.zeros((RES, RES + 2), np.uint8), "L")
NOTHING_OBSERVED = _with_alpha(_grey(9), np.zeros((RES, RES), bool))
OPAQUE = _png(_grey(9), "L")  # no alpha: every pixel observed
WHITE = _mask(np.ones((RES, RES), bool))
ONE = {"class_label": "1"}

BAD_UPLOADS = {
    "mask of another size": (
        lambda c: c.post("/complete", files=_files("images", [GOOD]) + _files("masks", [WIDE]),
                         data=ONE),
        422, "another size",
    ),
    "fewer masks than images": (
        lambda c: c.post(
            "/complete", files=_files("images", [GOOD, GOOD]) + _files("masks", [GOOD]), data=ONE
        ),
        422, "1 masks for 2 images",
    ),
    "image of another size": (
        lambda c: c.post("/encode", files=_files("images", [WIDE]), data=ONE), 422, "takes 16x16"
    ),
    "image with no observed pixel, multipart": (
        lambda c: c.post("/complete", files=_files("images", [NOTHING_OBSERVED]), data=ONE),
        422, "no observed pixel",
    ),
    "image with no observed pixel, raw": (
        lambda c: c.post("/complete?class_label=1", content=NOTHING_OBSERVED, headers=RAW),
        422, "no observed pixel",
    ),
    "nothing missing, raw opaque PNG": (
        lambda c: c.post("/complete?class_label=1", content=OPAQUE, headers=RAW),
        422, "images[0] has no missing pixel: nothing to complete",
    ),
    "nothing missing, a white mask": (
        lambda c: c.post("/complete", files=_files("images", [GOOD]) + _files("masks", [WHITE]),
                         data=ONE),
        422, "nothing to complete; mark the missing pixels with alpha 0 or send a mask",
    ),
    "nothing missing in the second image, JSON": (
        lambda c: c.post("/complete", json={"images": [_b64(GOOD), _b64(OPAQUE)],
                                            "class_label": 1}),
        422, "images[1] has no missing pixel",
    ),
    "text/plain": (
        lambda c: c.post("/complete", content=GOOD, headers={"content-type": "text/plain"}),
        415, "multipart/form-data",
    ),
    "no content type": (lambda c: c.post("/encode", content=GOOD), 415, "unsupported"),
    "more image parts than the limit": (
        lambda c: c.post("/complete", files=_files("images", [GOOD] * (LIMIT + 1)),
                         data={**ONE, "response": "json"}),
        422, f"at most {LIMIT} per request",
    ),
    "more parts than images and masks may have": (
        lambda c: c.post("/encode", files=_files("images", [GOOD] * (2 * LIMIT + 1)), data=ONE),
        422, f"more than {2 * LIMIT} files",
    ),
    "multipart without a boundary": (
        lambda c: c.post("/complete", content=b"x",
                         headers={"content-type": "multipart/form-data"}),
        400, "cannot be parsed",
    ),
    "multipart part without a name": (
        lambda c: c.post("/complete",
                         content=b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
                         headers={"content-type": "multipart/form-data; boundary=b"}),
        400, "cannot be parsed",
    ),
    "unknown form field": (
        lambda c: c.post("/complete", files=_files("images", [GOOD]), data={"clas": "1"}),
        422, "'clas'",
    ),
    "the singular file field": (
        lambda c: c.post("/complete", files=_files("image", [GOOD]), data=ONE), 422, "'image'"
    ),
    "text in the image field": (
        lambda c: c.post("/complete", files=_files("masks", [GOOD]), data={"images": "x", **ONE}),
        422, "must be a file",
    ),
    "a file in a text field": (
        lambda c: c.post("/complete", files=_files("images", [GOOD]) + _files("steps", [GOOD]),
                         data=ONE),
        422, "must be text",
    ),
    "no image file": (
        lambda c: c.post("/complete", files=_files("masks", [GOOD]), data=ONE), 422, "no image"
    ),
    "empty image file": (
        lambda c: c.post("/complete", files=_files("images", [b""]), data=ONE), 422, "empty"
    ),
    "empty raw body": (
        lambda c: c.post("/complete?class_label=1", content=b"", headers=RAW), 422, "empty"
    ),
    "steps not an integer": (
        lambda c: c.post("/complete", files=_files("images", [GOOD]), data={**ONE, "steps": "x"}),
        422, "steps must be an integer",
    ),
    "negative steps": (
        lambda c: c.post("/complete", files=_files("images", [GOOD]), data={**ONE, "steps": "-1"}),
        422, "steps is -1",
    ),
    "too many steps in the query": (
        lambda c: c.post("/complete?class_label=1&steps=41", content=GOOD, headers=RAW),
        422, "at most 40",
    ),
    "unknown response": (
        lambda c: c.post("/complete", files=_files("images", [GOOD]),
                         data={**ONE, "response": "gif"}),
        422, "response",
    ),
    "response=png for two images": (
        lambda c: c.post("/complete", files=_files("images", [GOOD, GOOD]),
                         data={**ONE, "response": "png"}),
        422, "response=png",
    ),
    "a class the model lacks in the query a form field overrides": (
        lambda c: c.post("/complete?class_label=99", files=_files("images", [GOOD]), data=ONE),
        422, "out of range",
    ),
    "a field given twice": (
        lambda c: c.post("/complete", files=_files("images", [GOOD]),
                         data={"class_label": ["1", "2"]}),
        422, "more than once",
    ),
    "not an image": (
        lambda c: c.post("/encode?class_label=1", content=b"hello", headers=RAW),
        415, "not an image",
    ),
    "unknown model in a form": (
        lambda c: c.post("/encode", files=_files("images", [GOOD]), data={**ONE, "model": "nope"}),
        404, "unknown model",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_a_bad_upload_gets_a_clear_4xx(client: TestClient, name: str) -> None:
    send, status, words = BAD_UPLOADS[name]
    _error(send(client), status, words)
    # The service keeps serving.
    assert client.post("/encode?class_label=1", content=GOOD, headers=RAW).status_code == 200


def test_encode_takes_whole_images_that_complete_refuses(client: TestClient) -> None:
    # Nothing missing is a mistake for /complete only: /encode's latents of a whole image are
    # what a client edits and re-generates.
    assert _latents(_ok(client.post("/encode?class_label=1", content=OPAQUE, headers=RAW))).shape
    body = {"images": [_b64(OPAQUE)], "masks": [_b64(WHITE)], "class_label": 1}
    assert _ok(client.post("/encode", json=body))["latents"]
