"""The Open Inference Protocol v2 routes against the fixture models: metadata, health, inference
in JSON and binary tensors, the same images as /generate, errors in the protocol's shape."""

from __future__ import annotations

import base64
import gzip
import io
import json
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.errors import Unavailable
from tests.images import assert_same_image, png_pixels
from tests.service.api.protocols.v2_bodies import HEADER, binary_request, json_input, read_response
from tests.service.conftest import TEST_SETTINGS, make_settings

# The fixture models (tests/conftest.py): "cond" serves version 2 of 3 classes, 16x16 grey,
# z_dim 8; "uncond" version 1, 16x16 RGB.
LIMIT = TEST_SETTINGS["max_images_per_request"]


def infer(client: TestClient, name: str, inputs: list[dict[str, Any]], **extra: Any) -> Any:
    return client.post(f"/v2/models/{name}/infer", json={"inputs": inputs, **extra})


def seeds(*values: int) -> dict[str, Any]:
    return json_input("seed", "INT64", list(values))


def assert_v2_error(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body  # the protocol's shape: the message alone
    assert words.lower() in body["error"].lower(), body["error"]


def generated(client: TestClient, model: str, seed_list: list[int], **body: Any) -> list[bytes]:
    """The PNGs POST /generate answers for ``seed_list``."""
    request = {"seeds": seed_list, "model": model, "response": "json", **body}
    images = client.post("/generate", json=request).json()["images"]
    return [base64.b64decode(image["png_base64"]) for image in images]


# --- server and model metadata ----------------------------------------------------------------


def test_server_metadata_names_the_binary_tensor_extension(client: TestClient) -> None:
    body = client.get("/v2").json()
    assert body == {"name": "gan-serving", "version": "0.1.0", "extensions": ["binary_tensor_data"]}


def test_health_routes_answer_as_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_health_routes_answer_503_in_the_protocols_shape_until_ready(model_dir: Path) -> None:
    app = create_app(make_settings(model_dir, warmup=False))
    with TestClient(app) as client:
        app.state.ready = False  # as while starting or draining
        assert_v2_error(client.get("/v2/health/ready"), 503, "not ready")
        assert client.get("/v2/health/ready").headers["Retry-After"] == "1"
        assert client.get("/v2/health/live").status_code == 200  # live: the process serves


def test_model_metadata_lists_what_infer_takes_for_each_signature(client: TestClient) -> None:
    cond = client.get("/v2/models/cond").json()
    assert cond["name"] == "cond" and cond["versions"] == [
        "1",
        "2",
    ]  # the two latest (GAN_VERSION_POLICY)
    assert cond["platform"] == "tensorflow_savedmodel"
    assert cond["inputs"] == [
        {"name": "seed", "datatype": "INT64", "shape": [-1]},
        {"name": "z", "datatype": "FP32", "shape": [-1, 8]},
        {"name": "class_label", "datatype": "INT32", "shape": [-1]},
        {"name": "truncation_psi", "datatype": "FP32", "shape": [1]},
    ]
    assert cond["outputs"] == [
        {"name": "images", "datatype": "UINT8", "shape": [-1, 16, 16, 1]},
        {"name": "png", "datatype": "BYTES", "shape": [-1]},
    ]
    # An unconditional model takes no class (it would refuse one).
    uncond = client.get("/v2/models/uncond").json()
    assert "class_label" not in [t["name"] for t in uncond["inputs"]]
    assert uncond["outputs"][0]["shape"] == [-1, 16, 16, 3]
    score = client.get("/v2/models/cond.score").json()
    assert [t["name"] for t in score["inputs"]] == ["images", "png", "class_label"]
    assert [t["name"] for t in score["outputs"]] == ["logits", "real_percentile", "class_label"]
    uncond_score = client.get("/v2/models/uncond.score").json()
    assert [t["name"] for t in uncond_score["outputs"]] == ["logits", "real_percentile"]
    assert client.get("/v2/models/cond.generate").json()["inputs"] == cond["inputs"]


def test_model_version_routes_name_a_served_version(client: TestClient) -> None:
    assert client.get("/v2/models/cond/versions/2").json()["versions"] == ["2"]
    assert client.get("/v2/models/cond/versions/2/ready").json() == {"name": "cond", "ready": True}
    assert client.get("/v2/models/cond.score/ready").json() == {"name": "cond.score", "ready": True}
    assert_v2_error(client.get("/v2/models/cond/versions/3"), 404, "no served version 3")
    assert_v2_error(client.get("/v2/models/cond/versions/x/ready"), 404, "versions are integers")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/v2/models/nope", "unknown model 'nope'"),
        ("/v2/models/cond.nope", "unknown model 'cond.nope'"),
        ("/v2/models/cond.encode", "has no 'encode' signature"),
        ("/v2/models/nope/ready", "unknown model"),
    ],
)
def test_unknown_models_and_signatures_are_404(client: TestClient, path: str, words: str) -> None:
    assert_v2_error(client.get(path), 404, words)


# --- inference --------------------------------------------------------------------------------


def test_json_inference_gives_the_images_of_generate(client: TestClient) -> None:
    inputs = [seeds(3, 4), json_input("class_label", "INT32", [0, 2])]
    response = infer(client, "cond", inputs, outputs=[{"name": "images"}, {"name": "png"}])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"]) == ("cond", "2")
    outputs = read_response(response.content, response.headers)
    assert outputs["images"].shape == (2, 16, 16, 1) and outputs["images"].dtype == np.uint8
    expected = generated(client, "cond", [3, 4], class_label=[0, 2])
    for image, png, native in zip(outputs["images"], outputs["png"], expected, strict=True):
        assert_same_image(image[..., 0], native)  # grey PNGs decode to [H, W]
        assert_same_image(png, native)


def test_binary_tensors_both_ways_give_the_same_images(client: TestClient) -> None:
    body, headers = binary_request(
        [("seed", "INT64", np.array([5, 6])), ("truncation_psi", "FP32", np.array([0.5]))],
        outputs=["images", "png"],
    )
    response = client.post("/v2/models/uncond/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    outputs = read_response(response.content, response.headers)
    expected = generated(client, "uncond", [5, 6], truncation_psi=0.5)
    for image, png, native in zip(outputs["images"], outputs["png"], expected, strict=True):
        assert_same_image(image, native)
        assert png_pixels(png).shape == (16, 16, 3)


def test_without_outputs_every_output_but_png_is_sent_binary_when_asked(client: TestClient) -> None:
    # What tritonclient sends without outputs: binary_data_output for all of them.
    body, headers = binary_request([("seed", "INT64", np.array([1]))])
    response = client.post("/v2/models/cond/infer", content=body, headers=headers)
    length = int(response.headers[HEADER])
    header = json.loads(response.content[:length])
    assert [o["name"] for o in header["outputs"]] == ["images"]
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 16 * 16}
    assert len(response.content) == length + 16 * 16


def test_a_request_for_images_alone_encodes_no_png(
    client: TestClient, png_encodes: list[tuple[int, ...]]
) -> None:
    inputs = [seeds(3, 4), json_input("class_label", "INT32", [0, 2])]
    alone = infer(client, "cond", inputs, outputs=[{"name": "images"}])
    assert alone.status_code == 200, alone.text
    assert [o["name"] for o in alone.json()["outputs"]] == ["images"]
    assert png_encodes == []  # no row of the request was encoded
    both = infer(client, "cond", inputs, outputs=[{"name": "images"}, {"name": "png"}])
    assert png_encodes == [(16, 16, 1)] * 2
    outputs = read_response(both.content, both.headers)
    np.testing.assert_array_equal(
        read_response(alone.content, alone.headers)["images"], outputs["images"]
    )


def test_a_request_without_outputs_encodes_no_png(
    client: TestClient, png_encodes: list[tuple[int, ...]]
) -> None:
    body, headers = binary_request([("seed", "INT64", np.array([1, 2]))])
    response = client.post("/v2/models/uncond/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert list(read_response(response.content, response.headers)) == ["images"]
    assert png_encodes == []  # its default outputs leave out png


def test_png_in_json_is_base64_text_that_says_so(client: TestClient) -> None:
    response = infer(client, "cond", [seeds(7)], outputs=[{"name": "png"}], id="request-7")
    body = response.json()
    assert body["id"] == "request-7"
    [png] = body["outputs"]
    assert png["parameters"] == {"content_type": "base64"} and png["shape"] == [1]
    assert_same_image(base64.b64decode(png["data"][0]), generated(client, "cond", [7])[0])


def test_noise_gives_the_image_of_the_seed_it_came_from(client: TestClient) -> None:
    z = np.random.RandomState(11).randn(1, 8).astype(np.float32)
    by_noise = infer(client, "uncond", [json_input("z", "FP32", z.tolist())])
    body, headers = binary_request([("z", "FP32", z)], outputs=["images"])
    binary = client.post("/v2/models/uncond/infer", content=body, headers=headers)
    by_seed = generated(client, "uncond", [11])[0]
    for response in (by_noise, binary):
        assert_same_image(read_response(response.content, response.headers)["images"][0], by_seed)


def test_a_version_in_the_url_pins_it(client: TestClient) -> None:
    response = client.post("/v2/models/cond/versions/2/infer", json={"inputs": [seeds(1)]})
    assert response.status_code == 200 and response.json()["model_version"] == "2"
    assert_v2_error(
        client.post("/v2/models/cond/versions/3/infer", json={"inputs": [seeds(1)]}),
        404,
        "no served version 3",
    )


def test_one_class_for_all_rows_or_one_per_row(client: TestClient) -> None:
    one = infer(client, "cond", [seeds(8, 9), json_input("class_label", "INT32", [1])])
    each = infer(client, "cond", [seeds(8, 9), json_input("class_label", "INT32", [1, 1])])
    first = read_response(one.content, one.headers)["images"]
    np.testing.assert_array_equal(first, read_response(each.content, each.headers)["images"])


def test_compressed_bodies_are_read_up_to_the_body_limit(client: TestClient) -> None:
    body = json.dumps({"inputs": [seeds(2)]}).encode()
    for encoding, data in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        response = client.post(
            "/v2/models/cond/infer", content=data, headers={"Content-Encoding": encoding}
        )
        assert response.status_code == 200, (encoding, response.text)
    bomb = gzip.compress(b" " * (TEST_SETTINGS["max_body_bytes"] + 1))  # a few hundred bytes
    response = client.post(
        "/v2/models/cond/infer", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert_v2_error(response, 413, "inflates past")
    broken = client.post(
        "/v2/models/cond/infer", content=b"not gzip", headers={"Content-Encoding": "gzip"}
    )
    assert_v2_error(broken, 400, "not valid gzip")


# --- scoring, and the other signatures ----------------------------------------------------------


def test_score_takes_image_tensors_or_image_files_and_agrees_with_score(
    client: TestClient,
) -> None:
    images = read_response(*_generate_binary(client, "uncond", [21, 22]))["images"]
    pngs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        pngs.append(buffer.getvalue())
    by_tensor = infer(client, "uncond.score", [json_input("images", "UINT8", images.tolist())])
    body, headers = binary_request([("png", "BYTES", pngs)], outputs=["logits"])
    by_file = client.post("/v2/models/uncond.score/infer", content=body, headers=headers)
    files = [("images", (f"{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
    native = client.post("/score", files=files, data={"model": "uncond"}).json()["scores"]
    expected = np.array([score["logit"] for score in native])
    # float32 logits of the same pixels, perhaps in another batch shape: a sum of a few
    # thousand products of magnitude <= 1 may round differently, by far less than 1e-4.
    for response in (by_tensor, by_file):
        outputs = read_response(response.content, response.headers)
        np.testing.assert_allclose(outputs["logits"], expected, rtol=0, atol=1e-4)


def test_a_conditional_model_without_a_class_judges_every_class(client: TestClient) -> None:
    images = np.zeros((2, 16, 16, 1), np.uint8)
    response = infer(client, "cond.score", [json_input("images", "UINT8", images.tolist())])
    outputs = read_response(response.content, response.headers)
    assert outputs["class_label"].shape == (2,) and set(outputs["class_label"]) <= {0, 1, 2}
    assert np.all((outputs["real_percentile"] >= 0) & (outputs["real_percentile"] <= 100))


def _generate_binary(client: TestClient, model: str, seed_list: list[int]) -> tuple[bytes, Any]:
    body, headers = binary_request([("seed", "INT64", np.array(seed_list))], outputs=["images"])
    response = client.post(f"/v2/models/{model}/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.content, response.headers


# --- errors: every bad input a 4xx in the protocol's shape ----------------------------------------


# Python's JSON reads NaN, a literal JSON has not: a client may still send it.
NAN_Z = '{"inputs": [{"name": "z", "shape": [1, 8], "datatype": "FP32", "data": [NaN%s]}]}' % (
    ", 0" * 7
)


@pytest.mark.parametrize(
    ("model", "request_body", "status", "words"),
    [
        (
            "cond",
            {"inputs": [json_input("seed", "INT32", [1])]},
            400,
            "is INT32; cond takes INT64 [N]",
        ),
        ("cond", {"inputs": [{**seeds(1, 2), "shape": [3]}]}, 400, "holds 3 elements, the data 2"),
        (
            "cond",
            {"inputs": [json_input("seed", "INT64", [[1]])]},
            400,
            "has shape [1, 1]; it takes [N]",
        ),
        ("cond", {"inputs": [json_input("seeds", "INT64", [1])]}, 400, "has no input 'seeds'"),
        ("cond", {"inputs": [seeds(1), seeds(2)]}, 400, "given more than once"),
        ("cond", {"inputs": [seeds(1), json_input("z", "FP32", [[0.0] * 8])]}, 400, "exactly one"),
        ("cond", {"inputs": [json_input("truncation_psi", "FP32", [1.0])]}, 400, "exactly one"),
        ("cond", {"inputs": [json_input("z", "FP32", [[0.0] * 7])]}, 400, "it takes [N, 8]"),
        ("cond", {"inputs": [json_input("z", "FP32", [[1e5] * 8])]}, 400, "finite numbers"),
        ("cond", {"inputs": [seeds(*range(LIMIT + 1))]}, 400, f"give 1 to {LIMIT}"),
        ("cond", {"inputs": [json_input("seed", "INT64", [])]}, 400, f"give 1 to {LIMIT}"),
        ("cond", {"inputs": [seeds(-1)]}, 400, "seeds are in 0..4294967295"),
        ("cond", {"inputs": [seeds(2**32)]}, 400, "seeds are in 0..4294967295"),
        (
            "cond",
            {"inputs": [seeds(1), json_input("class_label", "INT32", [3])]},
            400,
            "out of range",
        ),
        (
            "cond",
            {"inputs": [seeds(1, 2), json_input("class_label", "INT32", [0, 1, 2])]},
            400,
            "give [2]",
        ),
        (
            "uncond",
            {"inputs": [seeds(1), json_input("class_label", "INT32", [0])]},
            400,
            "has no input 'class_label'",
        ),
        (
            "cond",
            {"inputs": [seeds(1), json_input("truncation_psi", "FP32", [9.0])]},
            400,
            "truncation_psi must be",
        ),
        (
            "cond",
            {"inputs": [seeds(1), json_input("truncation_psi", "FP32", [1.0, 1.0])]},
            400,
            "it takes [1]",
        ),
        (
            "cond",
            {"inputs": [seeds(1)], "outputs": [{"name": "logits"}]},
            400,
            "has no output 'logits'",
        ),
        (
            "cond",
            {"inputs": [seeds(1)], "outputs": [{"name": "png"}, {"name": "png"}]},
            400,
            "asked for twice",
        ),
        (
            "cond",
            {"inputs": [{"name": "seed", "shape": [1], "datatype": "INT64"}]},
            400,
            "has no data",
        ),
        (
            "cond",
            {"inputs": [{**seeds(1), "parameters": {"binary_data_size": 8}}]},
            400,
            "declare 8 bytes of binary data (binary_data_size) but 0 bytes follow",
        ),
        (
            "cond",
            {"inputs": [{**seeds(1), "parameters": {"binary_data_size": "8"}}]},
            400,
            "parameters.binary_data_size: input should be a valid integer",
        ),
        (
            "cond",
            {"inputs": [{**seeds(1), "parameters": {"shared_memory_region": "r"}}]},
            400,
            "shared memory",
        ),
        (
            "cond",
            {
                "inputs": [seeds(1)],
                "outputs": [{"name": "images", "parameters": {"classification": 2}}],
            },
            400,
            "classification",
        ),
        (
            "cond",
            {"inputs": [seeds(1)], "parameters": {"binary_data_output": 1}},
            400,
            "binary_data_output: input should be a valid boolean",
        ),
        (
            "cond",
            {"inputs": [{**seeds(1), "parameters": {"content_type": "hex"}}]},
            400,
            "content_type",
        ),
        ("cond", {"inputs": [seeds(1)], "extra": 1}, 400, "unknown field 'extra'"),
        ("cond", {"inputs": []}, 400, "inputs"),
        ("cond", {"inputs": [{**seeds(1), "datatype": "INT65"}]}, 400, "datatype"),
        ("cond", {"inputs": [{**seeds(1), "shape": [-1]}]}, 400, "shape"),
        ("cond", {"inputs": [seeds(1)], "parameters": {"nested": {"a": 1}}}, 400, "parameters"),
        ("nope", {"inputs": [seeds(1)]}, 404, "unknown model 'nope'"),
        ("cond.encode", {"inputs": [seeds(1)]}, 404, "has no 'encode' signature"),
    ],
)
def test_every_bad_json_request_is_a_4xx_that_says_what_to_fix(
    client: TestClient, model: str, request_body: dict[str, Any], status: int, words: str
) -> None:
    assert_v2_error(client.post(f"/v2/models/{model}/infer", json=request_body), status, words)


@pytest.mark.parametrize(
    ("content", "headers", "status", "words"),
    [
        (NAN_Z, {}, 400, "finite numbers"),
        ("{not json", {}, 400, "not valid JSON"),
        ('{"inputs": [' * 5000, {}, 400, "JSON"),
        ('{"inputs": []}', {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
        ('{"inputs": []}', {"Content-Encoding": "br"}, 415, "unsupported Content-Encoding"),
        ('{"inputs": []}', {HEADER: "99"}, 400, "is 99 but the body has only 14 bytes"),
        ('{"inputs": []}', {HEADER: "ten"}, 400, "must be the JSON header's length"),
    ],
)
def test_every_bad_body_is_a_4xx(
    client: TestClient, content: str, headers: dict[str, str], status: int, words: str
) -> None:
    response = client.post("/v2/models/cond/infer", content=content, headers=headers)
    assert_v2_error(response, status, words)


def _with_binary(inputs: list[dict[str, Any]], data: bytes) -> tuple[bytes, dict[str, str]]:
    header = json.dumps({"inputs": inputs}).encode()
    return header + data, {HEADER: str(len(header))}


def _binary(name: str, datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    parameters = {"binary_data_size": size}
    return {"name": name, "datatype": datatype, "shape": shape, "parameters": parameters}


@pytest.mark.parametrize(
    ("inputs", "data", "status", "words"),
    [
        ([_binary("seed", "INT64", [1], 8)], bytes(4), 400, "declare 8 bytes"),
        ([_binary("seed", "INT64", [1], 4)], bytes(8), 400, "declare 4 bytes"),
        ([_binary("seed", "INT64", [2], 8)], bytes(8), 400, "takes 16 bytes"),
        ([_binary("seed", "INT64", [1], -8)], bytes(8), 400, "greater than or equal to 0"),
        ([_binary("seed", "INT64", [1], 10**12)], bytes(8), 413, "past the body limit"),
        ([_binary("z", "FP32", [1, 8], 32)], np.full(8, np.inf, "<f4").tobytes(), 400, "finite"),
        ([_binary("png", "BYTES", [1], 8)], bytes(8), 400, "has no input 'png'"),
        ([{**_binary("seed", "INT64", [1], 8), "data": [1]}], bytes(8), 400, "not both"),
    ],
)
def test_byte_counts_that_do_not_add_up_are_refused(
    client: TestClient, inputs: list[dict[str, Any]], data: bytes, status: int, words: str
) -> None:
    body, headers = _with_binary(inputs, data)
    response = client.post("/v2/models/cond/infer", content=body, headers=headers)
    assert_v2_error(response, status, words)


def test_a_body_over_the_limit_is_413_before_it_is_read(client: TestClient) -> None:
    big = b" " * (TEST_SETTINGS["max_body_bytes"] + 1)
    response = client.post("/v2/models/cond/infer", content=big)
    assert response.status_code == 413 and isinstance(response.json()["error"], str)


def test_an_unknown_query_parameter_is_refused_in_the_protocols_shape(client: TestClient) -> None:
    # A query string takes FastAPI's path (not the shortcut): the registry's strict query check.
    response = client.post("/v2/models/cond/infer?verbose=1", json={"inputs": [seeds(1)]})
    assert_v2_error(response, 400, "unknown query parameter 'verbose'")


def test_a_full_queue_is_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: Any) -> None:
        raise Unavailable("the queue of cond/2/generate is full; retry", 3)

    monkeypatch.setattr(client.app.state.engine, "check_room", full)  # type: ignore[attr-defined]
    response = infer(client, "cond", [seeds(1)])
    assert_v2_error(response, 503, "full")
    assert response.headers["Retry-After"] == "3"


# --- batching with the native API -------------------------------------------------------------


@dataclass
class Gated:
    """An app whose "uncond" generate batches record their seeds and wait for ``release``."""

    client: TestClient
    batcher: Any
    queued: Any  # rows waiting in the queue, as /metrics reports them
    entered: threading.Event
    release: threading.Event
    batches: list[list[int]]


@pytest.fixture()
def gated(model_dir: Path) -> Iterator[Gated]:
    app = create_app(make_settings(model_dir, warmup=False))
    with TestClient(app) as client:
        engine = app.state.engine
        model = engine.repository.get("uncond")
        batcher: Any = engine.batcher(model, "generate")
        labels = {"model": model.name, "version": str(model.version), "signature": "generate"}

        def queued() -> float:
            depth = app.state.metrics.registry.get_sample_value("gan_batch_queue_depth", labels)
            return depth or 0.0

        gate = Gated(client, batcher, queued, threading.Event(), threading.Event(), [])
        real_fn = batcher._fn

        def recording(rows: Any, shared: Any) -> Any:
            seeded = rows["seeds"][rows["seeds"] > 0] - 1  # seed + 1 per seeded row, 0 padding
            gate.batches.append(sorted(seeded.tolist()))
            gate.entered.set()
            gate.release.wait(10)
            return real_fn(rows, shared)

        batcher._fn = recording
        try:
            yield gate
        finally:
            gate.release.set()


def test_a_v2_request_and_a_generate_request_share_a_batch(gated: Gated) -> None:
    client = gated.client

    def native(seed: int) -> Any:
        return client.post("/generate", json={"seeds": [seed], "model": "uncond"})

    def v2(seed: int) -> Any:
        return infer(client, "uncond", [seeds(seed)], outputs=[{"name": "png"}])

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(native, 1)  # occupies the model's thread
        assert gated.entered.wait(10)
        queued = [pool.submit(v2, 2), pool.submit(native, 3)]
        deadline = time.monotonic() + 10
        while gated.queued() < 2:  # both wait while the model is busy
            assert time.monotonic() < deadline, "the requests never queued"
            time.sleep(0.01)
        gated.release.set()
        responses = [first.result(10), *(f.result(10) for f in queued)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert gated.batches == [[1], [2, 3]]  # one model call for the v2 and the native request
    v2_png = read_response(responses[1].content, responses[1].headers)["png"][0]
    assert_same_image(v2_png, generated(client, "uncond", [2])[0])
