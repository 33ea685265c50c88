"""One strictness for every JSON body: an integer field takes a JSON integer (3, or 3.0 as JSON
Schema allows), never a boolean or a string; a boolean takes true or false. Form fields and query
parameters are text by nature and keep being parsed from text."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


IMAGE = _png()
# A valid body per JSON route of the factory models (cond: conditional, 3 classes, no encoder).
VALID: dict[str, dict] = {
    "/generate": {"seeds": [1], "model": "cond", "class_label": 1},
    "/score": {"images": [IMAGE], "model": "cond", "class_label": 1},
    "/animate": {"seeds": [1, 2], "model": "cond", "class_label": 1, "frames": 2},
    "/encode": {"images": [IMAGE], "model": "cond", "class_label": 1},
    "/complete": {"images": [IMAGE], "model": "cond", "class_label": 1},
}
# Wrong JSON types of integer fields every route has, and what a lax parser made of them.
EVERY_ROUTE = [
    ("class_label", True),  # was class 1
    ("class_label", "1"),
    ("class_label", [True, 0]),
    ("version", "1"),
    ("version", True),
]
ONE_ROUTE = [
    ("/complete", "steps", "7"),
    ("/complete", "steps", True),
    ("/animate", "frames", "4"),
    ("/animate", "frames", True),
    ("/animate", "scale", "2"),
    ("/animate", "seeds", [True, 2]),
    ("/animate", "seeds", ["1", 2]),
    ("/animate", "fps", "15"),
    ("/animate", "truncation_psi", "0.5"),
    ("/animate", "loop", "false"),
    ("/animate", "loop", 0),
]
CASES = [(path, name, value) for path in VALID for name, value in EVERY_ROUTE] + ONE_ROUTE


@pytest.mark.parametrize(("path", "name", "value"), CASES)
def test_a_json_field_of_the_wrong_type_is_422_naming_it(
    client: TestClient, path: str, name: str, value: object
) -> None:
    response = client.post(path, json={**VALID[path], name: value})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["detail"].startswith(f"{name}") or f"; {name}" in body["detail"], body["detail"]


@pytest.mark.parametrize("path", ["/generate", "/score", "/animate"])
def test_a_whole_float_is_a_json_integer(client: TestClient, path: str) -> None:
    # JSON Schema's integer includes 1.0, and so does every route.
    response = client.post(path, json={**VALID[path], "class_label": 1.0, "version": 2.0})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/encode", "/complete"])
def test_a_whole_float_is_a_json_integer_on_the_image_routes(client: TestClient, path: str) -> None:
    # Read as integers, so the request reaches the model: cond has no encoder (404).
    response = client.post(path, json={**VALID[path], "class_label": 1.0, "version": 2.0})
    assert response.status_code == 404 and "has no" in response.json()["detail"], response.text


def test_form_fields_and_query_parameters_stay_text(client: TestClient) -> None:
    png = base64.b64decode(IMAGE)
    files = [("images", ("a.png", png, "image/png"))]
    form = client.post("/score", files=files, data={"class_label": "1", "version": "2"})
    assert form.status_code == 200, form.text
    raw = client.post(
        "/score?class_label=1&version=2&model=cond",
        content=png,
        headers={"content-type": "image/png"},
    )
    assert raw.status_code == 200, raw.text
    assert client.get("/generate?seed=1&model=cond&version=2&class_label=1").status_code == 200
