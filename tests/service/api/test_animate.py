"""POST /animate: every frame is the image /generate gives for its noise and class; limits,
errors and the OpenAPI document; the playground page is served without a key."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageSequence

from gan_contract.seeds import seeds_to_z
from gan_contract.walks import walk
from service.app import create_app
from tests.service.conftest import make_settings

KEY = "walk-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
RESOLUTION = 16  # of the factory models (tests/service/savedmodel_factory.py)
Z_DIM = 8


@pytest.fixture(scope="module")
def limited(model_dir: Path) -> Iterator[TestClient]:
    """An app with an API key and small walk limits: 10 frames, 10 frames of 32x32 pixels."""
    settings = make_settings(
        model_dir, api_keys=KEY, warmup=False, max_walk_frames=10, max_walk_pixels=10 * 32 * 32
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _frames(data: bytes, mode: str) -> list[np.ndarray]:
    image = Image.open(io.BytesIO(data))
    return [np.asarray(frame.convert(mode)) for frame in ImageSequence.Iterator(image)]


def test_a_walk_is_the_images_generate_gives_for_its_noise_and_classes(client):
    body = {"seeds": [3, 8], "model": "cond", "class_label": [0, 2], "frames": 6, "loop": False}
    answer = client.post("/animate", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/webp"
    assert answer.headers["x-frames"] == "6" and answer.headers["x-seeds"] == "3,8"
    assert answer.headers["x-model"] == "cond/2"
    frames = _frames(answer.content, "L")
    assert len(frames) == 6 and frames[0].shape == (RESOLUTION, RESOLUTION)

    z, labels = walk(seeds_to_z([3, 8], Z_DIM), 6, loop=False, labels=[0, 2])
    assert labels.tolist() == [0, 0, 0, 2, 2, 2]
    same = {"noise": z.tolist(), "class_label": labels.tolist(), "model": "cond"}
    generated = client.post("/generate", json={**same, "response": "json"}).json()["images"]
    for frame, image in zip(frames, generated, strict=True):
        png = np.asarray(Image.open(io.BytesIO(base64.b64decode(image["png_base64"]))))
        # The service promises the same image up to +-1 grey level (WebP here is lossless and
        # float32 noise survives JSON exactly, so only the batch composition could differ).
        assert np.max(np.abs(frame.astype(int) - png.astype(int))) <= 1
    # The class change shows: the frames on either side of it differ.
    assert not np.array_equal(frames[2], frames[3])


def test_a_shorter_class_list_repeats_over_the_keys(client):
    # The rule of every route (service.api.class_labels): key i gets class_label[i % len].
    base = {"seeds": [3, 8, 5], "model": "cond", "frames": 6}
    short = client.post("/animate", json={**base, "class_label": [0, 2]})
    full = client.post("/animate", json={**base, "class_label": [0, 2, 0]})
    assert short.status_code == 200 and full.status_code == 200, short.text
    other = client.post("/animate", json={**base, "class_label": [0, 2, 1]})
    # The same frames in the same batch shapes: equal within the service's one grey level.
    for a, b in zip(_frames(short.content, "L"), _frames(full.content, "L"), strict=True):
        assert np.max(np.abs(a.astype(int) - b.astype(int))) <= 1
    # ... and the third key's class does show (the frames next to it differ).
    assert any(
        np.max(np.abs(a.astype(int) - b.astype(int))) > 1
        for a, b in zip(_frames(short.content, "L"), _frames(other.content, "L"), strict=True)
    )


def test_noise_keys_gif_and_scale(client):
    keys = np.random.RandomState(5).randn(3, Z_DIM).tolist()
    body = {"noise": keys, "model": "uncond", "frames": 9, "format": "gif", "scale": 2}
    answer = client.post("/animate", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/gif"
    assert "x-seeds" not in answer.headers
    frames = _frames(answer.content, "RGB")
    assert len(frames) == 9 and frames[0].shape == (2 * RESOLUTION, 2 * RESOLUTION, 3)
    assert Image.open(io.BytesIO(answer.content)).info["loop"] == 0


def test_a_walk_encodes_no_png(client, png_encodes):
    # The frames become one animation: a PNG of each would be thrown away, after taking the
    # encode pool's time from the /generate answers that wait for it.
    body = {"seeds": [1, 2, 3], "model": "uncond", "frames": 30}
    answer = client.post("/animate", json=body)
    assert answer.status_code == 200, answer.text
    assert png_encodes == []
    # ... while /generate still gets its PNGs: a grid is one, of the whole grid (its images
    # need no PNGs of their own), and a JSON answer one per image.
    grid = client.post("/generate", json={"seeds": [1, 2], "model": "uncond", "response": "grid"})
    assert grid.status_code == 200 and len(png_encodes) == 1
    answer = client.post("/generate", json={"seeds": [1, 2], "model": "uncond", "response": "json"})
    assert answer.status_code == 200 and len(png_encodes) == 3


def _generated(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('gan_images_generated_total{model="uncond",version="1"}'):
            return float(line.split()[-1])
    return 0.0


def test_the_same_walk_twice_is_the_same_file_and_counted(client):
    body = {"seeds": [1, 2], "model": "uncond", "frames": 4}
    before = _generated(client)
    first = client.post("/animate", json=body)
    second = client.post("/animate", json=body)
    # Same machine, same batch shapes, lossless encoder: the bytes repeat.
    assert first.content == second.content
    assert _generated(client) == before + 8  # every frame counts as a generated image
    assert 'route="/animate"' in client.get("/metrics").text


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"seeds": [1, 2], "frames": 11}, 422, "at most 10"),
        ({"seeds": [1, 2], "frames": 10, "scale": 3}, 413, "pixels"),
        ({"seeds": [1, 2], "model": "uncond", "class_label": 1}, 422, "unconditional"),
        ({"seeds": [1, 2], "model": "cond", "class_label": 7}, 422, "out of range"),
        # Every entry of a list must be a class of the model, even one no key uses.
        ({"seeds": [1, 2], "model": "cond", "class_label": [0, 1, 9]}, 422, "9 is out of range"),
        ({"noise": [[0.0] * 3, [1.0] * 3]}, 422, "z_dim"),
        ({"seeds": [1, 2], "truncation_psi": 9.0}, 422, "truncation_psi must be a finite"),
        ({"noise": [[0.0] * 8, [1.0] * 7]}, 422, "z_dim=8"),
        ({"seeds": [1, 2], "noise": [[0.0] * 8] * 2}, 422, "exactly one of seeds or noise"),
        ({"frames": 4}, 422, "give exactly one of seeds or noise"),
        ({"seeds": [1, 2], "colour": "red"}, 422, "unknown field 'colour'"),
        ({"seeds": [1, 2], "model": "nope"}, 404, "unknown model"),
    ],
)
def test_bad_walks_get_a_clear_error(limited, body, status, words):
    answer = limited.post("/animate", json={"frames": 4, **body}, headers=AUTH)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] and words in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"seeds": [0]}, "seeds: List should have at least 2 items after validation, not 1"),
        ({"seeds": [0, 1], "scale": 100}, "scale: Input should be less than or equal to 8"),
        ({"seeds": [0, 1], "format": "mp4"}, "format: Input should be 'webp' or 'gif'"),
    ],
)
def test_a_mistake_in_a_walk_is_one_sentence_about_its_field(client, body, detail):
    # As /generate answers: the field at fault once, not once per shape of body beside an
    # "unknown field" for the key field the client did mean.
    answer = client.post("/animate", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"] == detail


def test_a_walk_needs_the_key_but_the_page_does_not(limited):
    assert limited.post("/animate", json={"seeds": [1, 2]}).status_code == 401
    page = limited.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = limited.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "/animate" in script.text
    assert limited.get("/static/style.css").headers["content-type"].startswith("text/css")
    missing = limited.get("/static/..%2Fapp.py")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def _array(schema: dict) -> dict:
    """The array branch of an optional field's schema."""
    return next(branch for branch in schema["anyOf"] if branch.get("type") == "array")


def test_the_walk_is_documented_in_openapi(client):
    doc = client.get("/openapi.json").json()
    operation = doc["paths"]["/animate"]["post"]
    assert operation["requestBody"]["required"] is True
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    # One closed object with exactly one of seeds or noise: a schema-valid body has key frames.
    assert schema["additionalProperties"] is False
    assert [choice["required"] for choice in schema["oneOf"]] == [["seeds"], ["noise"]]
    props = schema["properties"]
    assert props["frames"]["minimum"] == 2 and props["frames"]["maximum"] >= 10
    assert props["fps"]["maximum"] == 60
    assert props["scale"]["minimum"] == 1 and props["scale"]["maximum"] == 8
    assert set(props["format"]["enum"]) == {"webp", "gif"}
    for name in ("seeds", "noise"):
        assert _array(props[name])["minItems"] == 2 and _array(props[name])["maxItems"] == 64
    assert _array(props["noise"])["items"]["minItems"] == Z_DIM  # the served models' z_dim
    assert set(operation["responses"]["200"]["content"]) == {"image/webp", "image/gif"}
    assert {"413", "422", "503"} <= set(operation["responses"])
    assert "/" not in doc["paths"] and "/static/{name}" not in doc["paths"]


# --- room in the queue --------------------------------------------------------------------------


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most 10 s) for ``condition``, which another thread makes true."""
    end = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.005)


class BlockedModel:
    """The generate batcher of ``uncond`` with its model call held until :meth:`release`; counts
    the model calls and the rows they were given."""

    def __init__(self, app: Any) -> None:
        engine = app.state.engine
        model = engine.repository.get("uncond")
        self.batcher: Any = engine.batcher(model, "generate")
        self.metrics = app.state.metrics
        self.labels = {"model": model.name, "version": str(model.version), "signature": "generate"}
        self.calls: list[int] = []
        self.entered = threading.Event()
        self._release = threading.Event()
        real = self.batcher._fn

        def held(rows: Any, shared: Any) -> Any:
            self.calls.append(len(rows["z"]))
            self.entered.set()
            self._release.wait(30)
            return real(rows, shared)

        self.batcher._fn = held

    def release(self) -> None:
        self._release.set()

    def queued(self) -> float | None:
        """Rows waiting in the generate queue, as /metrics reports them."""
        return self.metrics.registry.get_sample_value("gan_batch_queue_depth", self.labels)


@pytest.fixture()
def small_queue(model_dir: Path) -> Iterator[tuple[TestClient, BlockedModel]]:
    """An app whose model queue holds 32 images, its uncond generate call held."""
    settings = make_settings(model_dir, warmup=False, max_enqueued=32, retry_after_s=3)
    app = create_app(settings)
    with TestClient(app) as client:
        blocked = BlockedModel(app)
        try:
            yield client, blocked
        finally:
            blocked.release()


def test_a_walk_the_queue_cannot_hold_now_is_503_before_any_frame(small_queue) -> None:
    client, blocked = small_queue
    generate = {"model": "uncond", "response": "json"}
    with ThreadPoolExecutor(3) as pool:
        running = pool.submit(client.post, "/generate", json={**generate, "seeds": [0]})
        blocked.entered.wait(10)  # the model's thread holds that one
        queued = pool.submit(client.post, "/generate", json={**generate, "seeds": list(range(16))})
        _wait_until(lambda: blocked.queued() == 16, "16 rows queued")
        # 16 of 32 places are taken: a walk of 20 frames does not fit now, though its first
        # 16 would have.
        walk = pool.submit(client.post, "/animate", json={"seeds": [1, 2], "model": "uncond",
                                                          "frames": 20})  # fmt: skip
        answer = walk.result(timeout=10)
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "3" and "queue" in answer.json()["detail"]
        assert blocked.calls == [1] and blocked.queued() == 16  # nothing of the walk
        # A walk that fits the free room waits its turn and is computed whole.
        fits = pool.submit(client.post, "/animate", json={"seeds": [1, 2], "model": "uncond",
                                                         "frames": 16})  # fmt: skip
        _wait_until(lambda: blocked.queued() == 32, "the walk's 16 rows queued")
        blocked.release()
        assert fits.result(timeout=30).status_code == 200
        assert running.result(timeout=30).status_code == 200
        assert queued.result(timeout=30).status_code == 200


def test_a_walk_larger_than_the_queue_is_422_before_any_frame(model_dir: Path) -> None:
    settings = make_settings(model_dir, warmup=False, max_enqueued=16)
    with TestClient(create_app(settings)) as client:
        before = _generated(client)
        body = {"seeds": [1, 2], "model": "uncond", "frames": 17}
        answer = client.post("/animate", json=body)
        assert answer.status_code == 422, answer.text
        assert "at most 16 per walk" in answer.json()["detail"]
        assert _generated(client) == before  # no frame computed
        assert client.post("/animate", json={**body, "frames": 16}).status_code == 200
        # The OpenAPI document states the same limit.
        doc = client.get("/openapi.json").json()
        assert (
            doc["components"]["schemas"]["AnimateRequest"]["properties"]["frames"]["maximum"] == 16
        )


# --- where walks are encoded --------------------------------------------------------------------


def _gauge(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not on /metrics")


def test_walks_are_encoded_in_a_bounded_place_of_their_own(model_dir: Path, monkeypatch) -> None:
    from service.api import animate

    entered, release = threading.Event(), threading.Event()
    threads: list[str] = []
    real = animate.encode_animation

    def held(*args: Any, **kwargs: Any) -> bytes:
        threads.append(threading.current_thread().name)
        entered.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(animate, "encode_animation", held)
    settings = make_settings(model_dir, warmup=False, max_concurrent_walks=1, retry_after_s=4)
    body = {"seeds": [1, 2], "model": "uncond", "frames": 4}
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(client.post, "/animate", json=body)
            assert entered.wait(10), "the first walk never reached its encoder"
            assert _gauge(client, "gan_walks_in_progress") == 1
            before = _generated(client)
            second = client.post("/animate", json=body)
            assert second.status_code == 503, second.text
            assert second.headers["Retry-After"] == "4" and "walks" in second.json()["detail"]
            assert _generated(client) == before  # refused before its frames were computed
            # Other requests go on meanwhile.
            assert (
                client.post("/generate", json={"seeds": [1], "model": "uncond"}).status_code == 200
            )
        finally:
            release.set()
        assert first.result(timeout=30).status_code == 200
        assert _gauge(client, "gan_walks_in_progress") == 0
        assert client.post("/animate", json=body).status_code == 200  # the place is free again
        assert "gan_walk_encode_seconds_count 2.0" in client.get("/metrics").text
    # The pool's own thread: not the event loop's default executor, shared with reloads.
    assert threads and all(name.startswith("animate") for name in threads)
