"""Every route reads the Content-Type one way (service.api.media_types): the JSON types FastAPI
parses as JSON, a raw image as image/* or application/octet-stream, anything else a 415."""

from __future__ import annotations

import base64
import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.media_types import is_json, is_raw_image, media_type


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 160, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()
# One valid JSON body per route that takes JSON (the factory models: cond, without an encoder,
# so /complete and /encode answer 404 once they have read the body).
BODIES: dict[str, dict] = {
    "/generate": {"seeds": [1], "model": "uncond"},
    "/animate": {"seeds": [1, 2], "model": "uncond", "frames": 2},
    "/score": {"images": [base64.b64encode(PNG).decode()], "model": "uncond"},
    "/encode": {"images": [base64.b64encode(PNG).decode()], "model": "cond", "class_label": 0},
    "/complete": {"images": [base64.b64encode(PNG).decode()], "model": "cond", "class_label": 0},
}
READ = {"/generate": 200, "/animate": 200, "/score": 200, "/encode": 404, "/complete": 404}


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("application/json", "application/json"),
        ("Application/JSON; charset=utf-8", "application/json"),
        (b"image/png", "image/png"),
        ("  multipart/form-data ; boundary=x", "multipart/form-data"),
        ("", ""),
        (None, ""),
    ],
)
def test_media_type_drops_parameters_and_case(header, kind: str) -> None:
    assert media_type(header) == kind


def test_json_and_raw_image_types() -> None:
    assert is_json("application/json") and is_json("application/problem+json")
    assert not is_json("text/x+json") and not is_json("application/jsonl") and not is_json("")
    assert is_raw_image("image/png") and is_raw_image("image/webp")
    assert is_raw_image("application/octet-stream")
    assert not is_raw_image("application/json") and not is_raw_image("text/plain")


@pytest.mark.parametrize("path", BODIES)
def test_a_json_suffix_type_is_json_on_every_route(client: TestClient, path: str) -> None:
    body = json.dumps(BODIES[path]).encode()
    headers = {"content-type": "application/x-gan+json"}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == READ[path], response.text


@pytest.mark.parametrize("path", BODIES)
@pytest.mark.parametrize("kind", ["text/x+json", "text/plain", "application/xml"])
def test_a_type_that_is_not_json_is_415_on_every_route(
    client: TestClient, path: str, kind: str
) -> None:
    # text/x+json is not one of the types FastAPI parses as JSON: every route refuses it,
    # rather than one reading it as JSON and another failing to.
    body = json.dumps(BODIES[path]).encode()
    response = client.post(path, content=body, headers={"content-type": kind})
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"
    assert kind in response.json()["detail"]


@pytest.mark.parametrize("kind", ["image/png", "application/octet-stream", "image/jpeg"])
def test_a_raw_image_is_read_under_its_type_or_octet_stream(client: TestClient, kind: str) -> None:
    # The bytes are read as an image whatever the header says (the decoder reads the format
    # from the bytes): octet-stream is the generic type of bytes of unknown kind, and a PNG
    # labelled image/jpeg is still the PNG.
    answer = client.post("/score?model=uncond", content=PNG, headers={"content-type": kind})
    assert answer.status_code == 200, answer.text
    same = client.post("/score", json=BODIES["/score"]).json()["scores"][0]["logit"]
    assert answer.json()["scores"][0]["logit"] == same  # the same pixels, the same batch shape


def test_octet_stream_that_is_no_image_is_415(client: TestClient) -> None:
    headers = {"content-type": "application/octet-stream"}
    answer = client.post("/score?model=uncond", content=b"\x00\x01 not an image", headers=headers)
    assert answer.status_code == 415 and "not an image" in answer.json()["detail"]


@pytest.mark.parametrize("path", ["/score", "/encode", "/complete"])
def test_the_openapi_document_lists_the_raw_types(client: TestClient, path: str) -> None:
    content = client.get("/openapi.json").json()["paths"][path]["post"]["requestBody"]["content"]
    assert {"image/png", "application/octet-stream", "application/json"} <= set(content)
