"""The HTTP API against the fixture models: answers, headers and every client error."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from tests.images import assert_same_image
from tests.service.conftest import make_settings


def png_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def png_bytes(size: tuple[int, int] = (16, 16), mode: str = "L", value: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value,) * len(mode)).save(buffer, "PNG")
    return buffer.getvalue()


def assert_error(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail"}
    assert words.lower() in body["detail"].lower(), body["detail"]


# --- models ---------------------------------------------------------------------------------


def test_models_list_and_detail(client: TestClient) -> None:
    models = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in models] == ["cond", "uncond"]
    cond = models[0]
    # The default version policy serves the two latest; requests naming none get version 2.
    assert cond["default"] is True and cond["served_versions"] == [1, 2]
    assert cond["available_versions"] == [1, 2] and cond["num_classes"] == 3
    detail = client.get("/v1/models/uncond").json()
    assert detail["metadata"]["channels"] == 3 and detail["metadata"]["calibration"]
    assert_error(client.get("/v1/models/nope"), 404, "unknown model 'nope'")


# --- POST /generate -------------------------------------------------------------------------


def test_generate_one_png_from_a_seed(client: TestClient) -> None:
    response = client.post("/generate", json={"seeds": [5], "class_label": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["X-Seeds"] == "5"
    image = png_image(response.content)
    assert image.size == (16, 16) and image.mode == "L"


def test_generate_grid_from_a_range_string(client: TestClient) -> None:
    response = client.post("/generate", json={"seeds": "0-3,7", "response": "grid"})
    assert response.status_code == 200
    assert response.headers["X-Seeds"] == "0,1,2,3,7"
    # Five images tile a 3x2 grid with 2-pixel gaps.
    assert png_image(response.content).size == (3 * 16 + 2 * 2, 2 * 16 + 2)


def test_generate_json_carries_each_seed_and_class(client: TestClient) -> None:
    body = {"seeds": [3, 4, 5], "class_label": [0, 1, 2], "response": "json", "model": "cond"}
    response = client.post("/generate", json=body)
    assert response.status_code == 200
    data = response.json()
    assert (data["model"], data["version"]) == ("cond", 2)
    assert [i["seed"] for i in data["images"]] == [3, 4, 5]
    assert [i["class_label"] for i in data["images"]] == [0, 1, 2]
    for item in data["images"]:
        assert png_image(base64.b64decode(item["png_base64"])).size == (16, 16)


def test_generate_count_returns_the_drawn_seeds(client: TestClient) -> None:
    response = client.post("/generate", json={"count": 3, "response": "json", "model": "uncond"})
    assert response.status_code == 200
    seeds = [item["seed"] for item in response.json()["images"]]
    assert len(seeds) == 3 and all(0 <= s < 2**32 for s in seeds)
    assert response.headers["X-Seeds"] == ",".join(map(str, seeds))
    again = client.post("/generate", json={"seeds": seeds, "response": "json", "model": "uncond"})
    assert again.json()["images"] == response.json()["images"]


def test_noise_equals_the_seed_it_came_from(client: TestClient) -> None:
    z = np.random.RandomState(11).randn(8).astype("float32").tolist()
    by_noise = client.post("/generate", json={"noise": [z], "model": "uncond", "response": "json"})
    assert by_noise.json()["images"][0]["seed"] is None
    assert "X-Seeds" not in by_noise.headers
    by_seed = client.post("/generate", json={"seeds": [11], "model": "uncond", "response": "json"})
    assert by_noise.json()["images"][0]["png_base64"] == by_seed.json()["images"][0]["png_base64"]


def test_psi_and_class_change_the_image(client: TestClient) -> None:
    def png(**kw):
        return client.post("/generate", json={"seeds": [9], **kw}).content

    assert png(class_label=0) == png(class_label=0)
    assert png(class_label=0) != png(class_label=1)
    assert png(class_label=0, truncation_psi=0.5) != png(class_label=0)
    # Default class of a conditional model: seed modulo the number of classes (9 % 3 == 0).
    assert png() == png(class_label=0)


def test_pinned_version_is_404_when_not_served(client: TestClient) -> None:
    assert client.post("/generate", json={"seeds": [1], "version": 1}).status_code == 200
    assert_error(client.post("/generate", json={"seeds": [1], "version": 3}), 404, "served")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "exactly one of seeds, noise or count"),
        ({"seeds": [1], "count": 2}, "got seeds, count"),
        ({"seeds": [-1]}, "greater than or equal to 0"),
        ({"seeds": [2**32]}, "less than or equal to 4294967295"),
        ({"seeds": []}, "at least one seed"),
        ({"seeds": "0-4294967295", "response": "grid"}, "more than 16 seeds"),
        ({"seeds": "0-99999999999"}, "out of range"),
        ({"seeds": "7-3"}, "backwards"),
        ({"seeds": "1,x"}, "not a seed or a range"),
        ({"seeds": list(range(17)), "response": "json"}, "at most 16"),
        ({"count": 17, "response": "json"}, "at most 16"),
        ({"count": 0}, "greater than or equal to 1"),
        ({"seeds": [1, 2]}, "use response=grid"),
        ({"seeds": [1], "truncation_psi": 5}, "truncation_psi"),
        ({"seeds": [1], "class_label": 3}, "out of range"),
        ({"seeds": [1, 2], "class_label": [], "response": "grid"}, "empty list"),
        ({"seeds": [1], "model": "uncond", "class_label": 0}, "unconditional"),
        ({"noise": [[0.0] * 7]}, "z_dim=8"),
        ({"noise": [[1e9] * 8]}, "finite"),
        ({"seeds": [1], "response": "gif"}, "response"),
        ({"seeds": [1], "colour": "red"}, "unknown field 'colour'"),
        ({"seeds": [1], "psi": 0.7}, "this API calls it 'truncation_psi'"),
        ({"seeds": [True]}, "valid integer"),
        ({"seeds": ["3"]}, "valid integer"),
        ({"count": 1, "truncation_psi": "0.7"}, "valid number"),
        ({"seeds": "1", "model": "nope"}, "unknown model"),
    ],
)
def test_generate_client_errors_are_4xx_with_a_message(client: TestClient, body, words) -> None:
    response = client.post("/generate", json=body)
    assert response.status_code in (404, 422), response.text
    assert words.lower() in response.json()["detail"].lower()


def test_non_finite_numbers_in_json_are_refused(client: TestClient) -> None:
    noise = "[" + ",".join(["NaN"] * 8) + "]"
    body = '{"noise": [' + noise + '], "model": "uncond"}'
    headers = {"content-type": "application/json"}
    assert_error(client.post("/generate", content=body, headers=headers), 422, "finite")
    body = '{"seeds": [1], "truncation_psi": Infinity}'
    assert_error(client.post("/generate", content=body, headers=headers), 422, "truncation_psi")


def test_malformed_json_and_oversized_body(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    response = client.post("/generate", content="{seeds:", headers=headers)
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
    big = '{"seeds": [1], "model": "' + "x" * 70_000 + '"}'
    assert_error(client.post("/generate", content=big, headers=headers), 413, "exceeds")


# --- GET /generate --------------------------------------------------------------------------


def test_get_generate_is_cacheable_and_matches_post(client: TestClient) -> None:
    response = client.get("/generate", params={"seed": 42, "class_label": 2, "psi": 0.8})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, no-cache"  # a reload may change it
    query = {"seed": 42, "class_label": 2, "psi": 0.8, "version": 2}
    pinned = client.get("/generate", params=query)
    assert pinned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    etag = response.headers["ETag"]
    posted = client.post("/generate", json={"seeds": [42], "class_label": 2, "truncation_psi": 0.8})
    assert_same_image(posted.content, response.content)
    assert etag.startswith('W/"')  # equivalent, not byte-identical, renderings
    cached = client.get(
        "/generate",
        params={"seed": 42, "class_label": 2, "psi": 0.8},
        headers={"If-None-Match": etag},
    )
    assert cached.status_code == 304 and cached.content == b""
    other = client.get("/generate", params={"seed": 43, "class_label": 2, "psi": 0.8})
    assert other.headers["ETag"] != etag


def test_get_generate_errors(client: TestClient) -> None:
    assert client.get("/generate", params={"seed": -3}).status_code == 422
    assert client.get("/generate", params={"seed": "abc"}).status_code == 422
    assert_error(client.get("/generate", params={"seed": 1, "psi": "nan"}), 422, "truncation_psi")
    assert_error(client.get("/generate", params={"model": "nope"}), 404, "unknown model")


def test_get_generate_takes_the_names_of_post_and_refuses_unknown_ones(client: TestClient) -> None:
    canonical = client.get("/generate", params={"seed": 3, "truncation_psi": 0.6, "class_label": 1})
    alias = client.get("/generate", params={"seed": 3, "psi": 0.6, "class_label": 1})
    posted = client.post("/generate", json={"seeds": [3], "truncation_psi": 0.6, "class_label": 1})
    assert canonical.status_code == alias.status_code == 200
    assert canonical.content == alias.content == posted.content
    both = {"seed": 3, "psi": 0.6, "truncation_psi": 0.6}
    assert_error(client.get("/generate", params=both), 422, "not both")
    # Unknown parameters are named, never ignored (a typo used to give the default image).
    assert_error(client.get("/generate", params={"seed": 1, "clas": 2}), 422, "'clas'")
    assert_error(client.get("/generate", params={"seeds": "0-3"}), 422, "'seeds'")
    assert_error(client.get("/generate", params={"seed": 1, "class": 2}), 422, "class_label")
    assert_error(client.get("/healthz", params={"verbose": 1}), 422, "'verbose'")
    twice = client.get("/generate?seed=1&model=cond&model=uncond")
    assert_error(twice, 422, "'model' given more than once")


def test_a_seed_range_on_get_gets_the_message_of_post(client: TestClient) -> None:
    posted = client.post("/generate", json={"seeds": "5-2"}).json()["detail"]
    got = client.get("/generate", params={"seed": "5-2"})
    assert_error(got, 422, posted)  # the same sentence, and a hint on top
    assert_error(got, 422, "one image from one seed")
    assert_error(client.get("/generate", params={"seed": "0-3"}), 422, "POST /generate")


def test_405_lists_every_method_of_the_path_in_allow(client: TestClient) -> None:
    response = client.request("OPTIONS", "/generate")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "POST"}
    assert response.json()["error"] == "method_not_allowed"
    assert client.delete("/score").headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/generate", "GET, POST"),
        ("DELETE", "/score", "POST"),
        ("PUT", "/healthz", "GET"),
    ],
)
def test_a_405_names_the_allowed_methods_in_its_detail(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    # The body says what to do, as every error's does; the Allow header says the same.
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    detail = response.json()["detail"]
    assert f"{method} is not allowed on {path}" in detail and f"allowed: {allowed}" in detail


# --- POST /score ----------------------------------------------------------------------------


def test_score_multipart_files_are_resized_and_calibrated(client: TestClient) -> None:
    files = [
        ("images", ("a.png", png_bytes((40, 30), "RGB"), "image/png")),
        ("images", ("b.png", png_bytes(), "image/png")),
    ]
    response = client.post("/score", files=files, data={"class_label": "1"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["resolution"], data["channels"]) == (16, 1)
    assert [s["filename"] for s in data["scores"]] == ["a.png", "b.png"]
    assert data["scores"][0]["original_size"] == [40, 30]
    for score in data["scores"]:
        assert np.isfinite(score["logit"]) and 0 <= score["real_percentile"] <= 100


def test_score_raw_body_and_json_base64_agree(client: TestClient) -> None:
    image = png_bytes((16, 16), "RGB", 200)
    raw = client.post(
        "/score?model=uncond", content=image, headers={"content-type": "image/png"}
    ).json()
    encoded = base64.b64encode(image).decode()
    js = client.post("/score", json={"images": [encoded], "model": "uncond"}).json()
    assert raw["scores"][0]["logit"] == js["scores"][0]["logit"]
    assert raw["channels"] == 3


def test_generated_images_score_the_same_in_any_batch(client: TestClient) -> None:
    png = client.post("/generate", json={"seeds": [1], "model": "uncond"}).content
    alone = client.post("/score?model=uncond", content=png, headers={"content-type": "image/png"})
    files = [("images", (f"{i}.png", png, "image/png")) for i in range(5)]
    batch = client.post("/score", files=files, data={"model": "uncond"})
    logits = [s["logit"] for s in batch.json()["scores"]]
    # One row alone and five in a padded batch of eight take different kernel paths (GEMV vs
    # GEMM): float32 sums of a few thousand products in another order, so equal to ~1e-6
    # relative; 1e-4 leaves room for any CPU's or GPU's summation order.
    np.testing.assert_allclose(logits, alone.json()["scores"][0]["logit"], rtol=1e-4, atol=1e-5)


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header for a huge 1-bit image with almost no data (never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_score_errors(client: TestClient) -> None:
    png = png_bytes()
    bomb = _bomb_png(100_000, 100_000)
    raw = {"content-type": "image/png"}
    assert_error(client.post("/score?model=uncond", content=bomb, headers=raw), 413, "pixels")
    assert_error(
        client.post("/score?model=uncond", content=b"hello", headers=raw), 415, "not an image"
    )
    truncated = png_bytes((64, 64), "RGB")[:80]
    assert_error(client.post("/score?model=uncond", content=truncated, headers=raw), 422, "decoded")
    assert_error(
        client.post("/score", content=b"x", headers={"content-type": "text/plain"}),
        415,
        "multipart",
    )
    assert_error(client.post("/score?class_label=5", content=png, headers=raw), 422, "out of range")
    assert_error(client.post("/score?class_label=one", content=png, headers=raw), 422, "integer")
    assert_error(client.post("/score", json={"images": ["@@@"], "model": "uncond"}), 422, "base64")
    assert_error(client.post("/score", json={"images": []}), 422, "images")
    assert_error(client.post("/score?model=uncond", content=b"", headers=raw), 422, "no image")
    too_many = [("images", (f"{i}.png", png, "image/png")) for i in range(17)]
    response = client.post("/score", files=too_many, data={"model": "uncond"})
    assert 400 <= response.status_code < 500 and "detail" in response.json()


# --- metrics and batching -------------------------------------------------------------------


def test_concurrent_requests_are_batched_and_counted(client: TestClient) -> None:
    def sample(labels):
        families = {"gan_batch_size": labels}
        text = client.get("/metrics").text
        values = {}
        for line in text.splitlines():
            for family, label in families.items():
                if line.startswith(f"{family}_sum{{") and label in line:
                    values["sum"] = float(line.rsplit(" ", 1)[1])
                if line.startswith(f"{family}_count{{") and label in line:
                    values["count"] = float(line.rsplit(" ", 1)[1])
        return values.get("sum", 0.0), values.get("count", 0.0)

    labels = 'model="uncond",signature="generate"'
    before = sample(labels)
    with ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(
                lambda s: client.post("/generate", json={"seeds": [s], "model": "uncond"}),
                range(48),
            )
        )
    assert all(r.status_code == 200 for r in responses)
    after = sample(labels)
    images, batches = after[0] - before[0], after[1] - before[1]
    assert images == 48
    assert batches < 48  # some model calls served more than one request
    text = client.get("/metrics").text
    assert 'gan_http_requests_total{method="POST",route="/generate",status="200"}' in text
    assert "gan_batch_queue_wait_seconds_bucket" in text
    assert 'gan_images_generated_total{model="uncond",version="1"}' in text
    assert "gan_batch_queue_depth" in text


def test_oversized_body_without_content_length_is_413(client: TestClient) -> None:
    chunks = iter([b'{"seeds": [1], "model": "', b"x" * 40_000, b"x" * 40_000, b'"}'])
    response = client.post(
        "/generate", content=chunks, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "exceeds")


def test_score_takes_one_class_per_image(client: TestClient) -> None:
    files = [("images", (f"{i}.png", png_bytes(), "image/png")) for i in range(2)]
    response = client.post("/score", files=files, data={"class_label": "0,2"})
    assert response.status_code == 200, response.text
    logits = [s["logit"] for s in response.json()["scores"]]
    assert logits[0] != logits[1]  # the same image judged against two classes
    assert_error(client.post("/score", files=files, data={"class_label": "0,"}), 422, "empty")
    # A list is applied in turn: its first entries when longer than the images.
    longer = client.post("/score", files=files, data={"class_label": "0,2,1"}).json()
    # (The same images and labels; approx: a batch may be padded to another shape.)
    assert [s["logit"] for s in longer["scores"]] == pytest.approx(logits, abs=1e-4)


def test_a_class_list_is_applied_in_turn(client: TestClient) -> None:
    def classes(body: dict) -> list[int]:
        response = client.post("/generate", json={**body, "response": "json"})
        assert response.status_code == 200, response.text
        return [image["class_label"] for image in response.json()["images"]]

    assert classes({"seeds": [4, 5, 6, 7, 8], "class_label": [2, 0]}) == [2, 0, 2, 0, 2]
    assert classes({"count": 2, "class_label": [1]}) == [1, 1]
    assert classes({"seeds": [4], "class_label": [1, 2]}) == [1]


def test_a_conditional_model_without_class_label_judges_each_image_as_its_best_class(
    client: TestClient,
) -> None:
    png = png_bytes()
    raw = {"content-type": "image/png"}
    best = client.post("/score", content=png, headers=raw)
    assert best.status_code == 200, best.text
    (score,) = best.json()["scores"]
    each = [
        client.post(f"/score?class_label={label}", content=png, headers=raw).json()["scores"][0]
        for label in range(3)
    ]
    assert score["class_label"] == max(range(3), key=lambda label: each[label]["logit"])
    # The same model call in another batch shape: equal up to float rounding between kernels.
    assert score["logit"] == pytest.approx(each[score["class_label"]]["logit"], abs=1e-4)
    assert each[1]["class_label"] == 1


def test_score_checks_the_query_values_that_a_form_overrides(client: TestClient) -> None:
    files = [("images", ("a.png", png_bytes(), "image/png"))]
    form = {"class_label": "0"}
    assert client.post("/score?class_label=2", files=files, data=form).status_code == 200
    assert_error(client.post("/score?class_label=7", files=files, data=form), 422, "range")
    body = {"images": [base64.b64encode(png_bytes()).decode()], "class_label": 1}
    assert_error(client.post("/score?model=nope", json=body), 404, "unknown model")


def test_unknown_multipart_fields_are_refused(client: TestClient) -> None:
    files = [("images", ("a.png", png_bytes(), "image/png"))]
    response = client.post("/score", files=files, data={"clas": "1"})
    assert_error(response, 422, "'clas'")


def test_noise_rows_of_different_lengths_are_refused(client: TestClient) -> None:
    response = client.post("/generate", json={"noise": [[0.0, 0.0], [0.0]], "model": "uncond"})
    assert_error(response, 422, "noise must be a list of vectors")


def test_an_image_mode_without_conversion_is_refused(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("LAB", (8, 8)).save(buffer, "TIFF")
    response = client.post(
        "/score?class_label=1", content=buffer.getvalue(), headers={"content-type": "image/tiff"}
    )
    assert_error(response, 415, "cannot be converted")
    assert client.get("/healthz").status_code == 200


def test_a_model_without_real_calibration_is_served_with_null_percentiles(
    model_dir: Path, tmp_path: Path
) -> None:
    # What an export with no held-out real images writes (e.g. --holdout 0).
    shutil.copytree(model_dir / "uncond", tmp_path / "uncond")
    meta_path = tmp_path / "uncond" / "1" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["calibration"]["real_logits"] = []
    meta_path.write_text(json.dumps(meta))
    with TestClient(create_app(make_settings(tmp_path))) as uncalibrated:
        png = uncalibrated.post("/generate", json={"seeds": [1]}).content
        scored = uncalibrated.post("/score", content=png, headers={"content-type": "image/png"})
    assert scored.status_code == 200, scored.text
    assert scored.json()["scores"][0]["real_percentile"] is None


def test_the_pixels_of_one_score_request_are_bounded_in_all(model_dir: Path) -> None:
    buffer = io.BytesIO()
    Image.new("L", (100, 100)).save(buffer, "PNG")
    files = [("images", (f"{i}.png", buffer.getvalue(), "image/png")) for i in range(2)]
    settings = make_settings(model_dir, max_image_pixels=100 * 100, max_request_pixels=15_000)
    with TestClient(create_app(settings)) as limited:
        one = limited.post("/score?model=uncond", files=files[:1])
        both = limited.post("/score?model=uncond", files=files)
    assert one.status_code == 200, one.text
    assert_error(both, 413, "pixels in all")
