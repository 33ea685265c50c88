"""The OpenAPI document is valid, states the running service's limits, and /docs works offline."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import TEST_SETTINGS

openapi_spec_validator = pytest.importorskip("openapi_spec_validator")


def test_the_whole_document_is_valid_openapi(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    openapi_spec_validator.validate(document)  # raises on any error, e.g. a dangling $ref
    assert "ScoreRequest" in document["components"]["schemas"]


def test_every_error_status_is_documented_with_its_json_body(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert set(error_body["required"]) == {"error", "detail"}
    for path in ("/generate", "/score", "/v1/models/{name}"):
        for method, operation in document["paths"][path].items():
            for status in ("404", "413", "415", "422", "503", "504"):
                if path == "/v1/models/{name}" and status != "404":
                    continue
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (
                    method,
                    path,
                    status,
                )


def test_the_document_states_the_limits_in_force(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    generate = document["components"]["schemas"]["GenerateRequest"]["properties"]
    assert generate["truncation_psi"]["minimum"] == -1.0
    assert generate["truncation_psi"]["maximum"] == 2.0
    limit = TEST_SETTINGS["max_images_per_request"]
    integer = next(b for b in generate["count"]["anyOf"] if b.get("type") == "integer")
    assert integer["maximum"] == limit
    # The fixture models: "cond" has 3 classes (the most), both have z_dim 8.
    label = next(b for b in generate["class_label"]["anyOf"] if b.get("type") == "integer")
    assert (label["minimum"], label["maximum"]) == (0, 2)
    noise = next(b for b in generate["noise"]["anyOf"] if b.get("type") == "array")
    assert noise["items"]["minItems"] == noise["items"]["maxItems"] == 8
    # Exactly one of seeds, noise or count.
    one_of = document["components"]["schemas"]["GenerateRequest"]["oneOf"]
    assert [branch["required"] for branch in one_of] == [["seeds"], ["noise"], ["count"]]
    get = {p["name"]: p for p in document["paths"]["/generate"]["get"]["parameters"]}
    assert set(get) == {
        *("seed", "truncation_psi", "class_label", "model", "version"),
        *("format", "quality", "compress_level"),
    }
    quality = next(b for b in get["quality"]["schema"]["anyOf"] if b.get("type") == "integer")
    assert (quality["minimum"], quality["maximum"]) == (1, 100)
    # Every image format and the 406 of an Accept header that allows none are documented.
    for method in ("get", "post"):
        answers = document["paths"]["/generate"][method]["responses"]
        assert {"image/png", "image/webp", "image/jpeg"} <= set(answers["200"]["content"])
        assert "406" in answers
    assert get["truncation_psi"]["schema"]["maximum"] == 2.0
    assert document["paths"]["/generate"]["get"]["x-query-aliases"] == {"psi": "truncation_psi"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_need_no_other_host(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 1000, asset
    assert "/openapi.json" in html


def test_the_image_routes_describe_their_three_ways_in(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    limit = TEST_SETTINGS["max_images_per_request"]
    files = {"/score": ["images"], "/complete": ["images", "masks"], "/encode": ["images", "masks"]}
    for path, names in files.items():
        operation = document["paths"][path]["post"]
        content = operation["requestBody"]["content"]
        assert {"multipart/form-data", "image/png", "application/json"} <= set(content), path
        form = content["multipart/form-data"]["schema"]
        assert form["required"] == [names[0]] and form["additionalProperties"] is False
        for name in names:  # files per file field: the images-per-request limit
            assert form["properties"][name]["maxItems"] == limit, (path, name)
            assert content["multipart/form-data"]["encoding"][name] == {"contentType": "image/png"}
        assert form["properties"]["class_label"]["maximum"] == 2  # "cond" has 3 classes
        # The JSON body's model is in the document (the route reads the body itself).
        ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert "images" in document["components"]["schemas"][ref]["properties"]
        # The fields of a raw image body are query parameters.
        assert {"class_label", "model", "version"} <= {p["name"] for p in operation["parameters"]}
    complete = document["paths"]["/complete"]["post"]
    form = complete["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["steps"]["maximum"] == 200  # the settings' default maximum
    query = {p["name"]: p["schema"] for p in complete["parameters"]}
    assert next(b for b in query["steps"]["anyOf"] if b["type"] == "integer")["maximum"] == 200
    assert "response" in query
