"""TensorFlow Serving's REST API against the fixture models: status, metadata, ``:predict`` in the
row and column formats, the same images as /generate, errors as ``{"error": ...}``."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.images import assert_same_image
from tests.service.conftest import TEST_SETTINGS


def predict(client: TestClient, model: str, body: dict[str, Any], **kwargs: Any) -> Any:
    return client.post(f"/v1/models/{model}:predict", json=body, **kwargs)


def assert_tf_error(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    assert words.lower() in body["error"].lower(), body["error"]


def generated_png(client: TestClient, model: str, seed: int, **body: Any) -> bytes:
    request = {"seeds": [seed], "model": model, **body}
    response = client.post("/generate", json=request)
    assert response.status_code == 200, response.text
    return response.content


def test_model_status_in_tf_servings_shape(client: TestClient) -> None:
    ok = {"error_code": "OK", "error_message": ""}
    # The two latest versions are served (GAN_VERSION_POLICY's default).
    status = [{"version": v, "state": "AVAILABLE", "status": ok} for v in ("1", "2")]
    # The catalogue keeps its fields and adds TF Serving's.
    detail = client.get("/v1/models/cond").json()
    assert detail["model_version_status"] == status and detail["served_versions"] == [1, 2]
    one = client.get("/v1/models/cond/versions/2").json()
    assert one == {"model_version_status": status[1:]}
    assert_tf_error(client.get("/v1/models/cond/versions/3"), 404, "no served version 3")
    assert_tf_error(client.get("/v1/models/cond/versions/one"), 404, "versions are integers")


def test_metadata_gives_every_signature_with_tensorflows_names(client: TestClient) -> None:
    body = client.get("/v1/models/cond/metadata").json()
    assert body["model_spec"] == {"name": "cond", "signature_name": "", "version": "2"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert list(signatures) == ["serving_default", "generate", "score"]
    assert signatures["serving_default"] == signatures["generate"]
    seed = signatures["generate"]["inputs"]["seed"]
    assert seed["dtype"] == "DT_INT64"
    assert seed["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    images = signatures["generate"]["outputs"]["images"]
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "16", "16", "1"]
    assert signatures["score"]["outputs"]["logits"]["dtype"] == "DT_FLOAT"
    assert signatures["generate"]["method_name"] == "tensorflow/serving/predict"
    pinned = client.get("/v1/models/cond/versions/2/metadata").json()
    assert pinned == body


def test_row_format_gives_one_prediction_per_instance(client: TestClient) -> None:
    body = {"instances": [{"seed": 3, "class_label": 1}, {"seed": 4, "class_label": 2}]}
    response = predict(client, "cond", body)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2 and set(predictions[0]) == {"images", "png"}
    for prediction, (seed, label) in zip(predictions, [(3, 1), (4, 2)], strict=True):
        image = np.array(prediction["images"], np.uint8)
        assert image.shape == (16, 16, 1)
        native = generated_png(client, "cond", seed, class_label=label)
        assert_same_image(image[..., 0], native)
        assert_same_image(base64.b64decode(prediction["png"]["b64"]), native)


def test_bare_instances_are_the_first_input(client: TestClient) -> None:
    predictions = predict(client, "uncond", {"instances": [5, 6]}).json()["predictions"]
    for prediction, seed in zip(predictions, [5, 6], strict=True):
        assert_same_image(
            np.array(prediction["images"], np.uint8), generated_png(client, "uncond", seed)
        )


def test_column_format_gives_outputs_by_name(client: TestClient) -> None:
    body = {"inputs": {"seed": [7, 8], "truncation_psi": 0.5}}
    outputs = predict(client, "uncond", body).json()["outputs"]
    images = np.array(outputs["images"], np.uint8)
    assert images.shape == (2, 16, 16, 3) and len(outputs["png"]) == 2
    assert_same_image(images[1], generated_png(client, "uncond", 8, truncation_psi=0.5))
    # The instances' psi is one per request: every instance gives the same.
    rows = {"instances": [{"seed": 8, "truncation_psi": 0.5}]}
    row_image = np.array(
        predict(client, "uncond", rows).json()["predictions"][0]["images"], np.uint8
    )
    assert_same_image(row_image, images[1])


def test_a_version_and_a_signature_are_chosen_by_the_request(client: TestClient) -> None:
    versioned = client.post("/v1/models/cond/versions/2:predict", json={"instances": [1]})
    assert versioned.status_code == 200, versioned.text
    image = np.zeros((16, 16, 1), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0]).save(buffer, "PNG")
    png = {"b64": base64.b64encode(buffer.getvalue()).decode()}
    by_tensor = {
        "signature_name": "score",
        "inputs": {"images": [image.tolist()], "class_label": 1},
    }
    by_file = {"signature_name": "score", "instances": [{"png": png, "class_label": 1}]}
    outputs = predict(client, "cond", by_tensor).json()["outputs"]
    predictions = predict(client, "cond", by_file).json()["predictions"]
    assert outputs["class_label"] == [1] and predictions[0]["class_label"] == 1
    # The same pixels scored by one model: float32 sums that round alike to within 1e-4.
    assert abs(outputs["logits"][0] - predictions[0]["logits"]) < 1e-4


def test_curl_without_a_content_type_is_read_as_json(client: TestClient) -> None:
    # TF Serving's documented `curl -d` declares a form; the body is JSON all the same.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/v1/models/cond:predict", content='{"instances": [1]}', headers=form)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("model", "body", "status", "words"),
    [
        ("cond", {"instances": [1], "inputs": [1]}, 400, "exactly one of instances"),
        ("cond", {}, 400, "exactly one of instances"),
        ("cond", {"instances": []}, 400, "instances"),
        ("cond", {"instances": [1], "signature": "x"}, 400, "unknown field 'signature'"),
        ("cond", {"signature_name": "nope", "instances": [1]}, 404, "no signature 'nope'"),
        ("cond", {"signature_name": "encode", "instances": [1]}, 404, "has no 'encode' signature"),
        ("nope", {"instances": [1]}, 404, "unknown model 'nope'"),
        ("cond", {"instances": [{"seed": 1}, {"seed": 2, "class_label": 0}]}, 400, "same inputs"),
        ("cond", {"instances": [{"seed": 1}, 2]}, 400, "every instance as an object"),
        ("cond", {"instances": [{"seeds": 1}]}, 400, "has no input 'seeds'"),
        ("cond", {"instances": [[1, 2], [3]]}, 400, "ragged"),
        ("cond", {"instances": ["1"]}, 400, "INT64 data must be integers"),
        ("cond", {"instances": [True]}, 400, "INT64 data must be integers"),
        (
            "cond",
            {"instances": [{"seed": 1, "truncation_psi": 0.5}, {"seed": 2, "truncation_psi": 1}]},
            400,
            "every instance the same",
        ),
        ("cond", {"inputs": {"seed": [1], "truncation_psi": [0.5, 1.0]}}, 400, "one value"),
        ("cond", {"inputs": {"seed": 1}}, 400, "has shape []"),
        ("cond", {"inputs": {"seed": [1], "class_label": 7}}, 400, "out of range"),
        ("uncond", {"inputs": {"seed": [1], "class_label": 0}}, 400, "has no input 'class_label'"),
        ("cond", {"inputs": {"z": [[0.5] * 7]}}, 400, "it takes [N, 8]"),
        (
            "cond",
            {"instances": list(range(TEST_SETTINGS["max_images_per_request"] + 1))},
            400,
            "give 1 to",
        ),
        ("cond", {"signature_name": "score", "instances": [{"png": {"b64": "%%"}}]}, 400, "base64"),
        (
            "cond",
            {"signature_name": "score", "instances": [{"png": {"b64": "AAAA"}}]},
            400,
            "not an image",
        ),
    ],
)
def test_every_bad_predict_request_is_a_4xx_that_says_what_to_fix(
    client: TestClient, model: str, body: dict[str, Any], status: int, words: str
) -> None:
    assert_tf_error(predict(client, model, body), status, words)


@pytest.mark.parametrize(
    ("content", "headers", "status", "words"),
    [
        ("{not json", {}, 400, "not valid JSON"),
        ('{"instances": [1]}', {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
        ('{"instances": [1]}', {"Content-Encoding": "gzip"}, 415, "unsupported Content-Encoding"),
    ],
)
def test_every_bad_body_is_a_4xx(
    client: TestClient, content: str, headers: dict[str, str], status: int, words: str
) -> None:
    response = client.post("/v1/models/cond:predict", content=content, headers=headers)
    assert_tf_error(response, status, words)


@pytest.mark.parametrize("path", ["/v1/models/cond:predict", "/v1/models/cond/versions/2:predict"])
def test_predict_paths_are_post_only_whatever_the_routes_beside_them(
    client: TestClient, path: str
) -> None:
    # Starlette's {name} would also match "cond:predict": the catalogue's GET and the version
    # status's GET must neither answer these paths nor appear in their Allow.
    for method in ("GET", "OPTIONS", "PUT"):
        response = client.request(method, path)
        assert response.status_code == 405, (method, response.text)
        assert response.headers["Allow"] == "POST"
    assert client.post(path, json={"instances": [1]}).status_code == 200


def test_the_catalogue_counts_under_its_template(client: TestClient) -> None:
    client.get("/v1/models/cond")
    assert 'route="/v1/models/{name}"' in client.get("/metrics").text
