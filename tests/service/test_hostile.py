"""Hostile input: each hand-made case gets a 4xx within a bounded time; the service stays up.

Cases about the network (a 100 MB body, a slow client) run against a real process in
tests/integration/test_hostile_http.py.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from tests.service.conftest import make_settings

BOUND_S = 5.0  # generous: every case is refused long before this on any machine
JSON = {"Content-Type": "application/json"}


def png(size: tuple[int, int] = (16, 16), mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 100).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


@functools.cache
def bomb() -> bytes:
    """A 1-bit 30000x30000 PNG: a few hundred KB that would decode to 900 megapixels.

    Building it takes seconds on a busy machine: made once, before any case is timed."""
    buffer = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def corrupt_png() -> bytes:
    data = bytearray(png((64, 64)))
    data[60:120] = b"\xa5" * 60  # inside the IDAT stream: the CRC and the zlib data break
    return bytes(data)


@pytest.fixture(scope="module")
def hostile(model_dir: Path) -> Iterator[TestClient]:
    # The default body limit (8 MB), so that the size limit is not what refuses the cases.
    settings = make_settings(model_dir, max_body_bytes=8 * 1024 * 1024, warmup=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def raw(client: TestClient, path: str, body: bytes, content_type: str | None) -> object:
    headers = {"Content-Type": content_type} if content_type else {}
    return client.post(path, content=body, headers=headers)


def noise_json(value: str) -> bytes:
    return ('{"model": "uncond", "noise": [[' + ", ".join([value] * 8) + "]]}").encode()


CASES: dict[str, tuple[Callable[[TestClient], object], set[int]]] = {
    "truncated PNG": (
        lambda c: raw(c, "/score?model=uncond", png()[:45], "image/png"),
        {415, 422},
    ),
    "truncated JPEG": (
        lambda c: raw(c, "/score?model=uncond", jpeg()[:300], "image/jpeg"),
        {415, 422},
    ),
    "corrupt PNG": (lambda c: raw(c, "/score?model=uncond", corrupt_png(), "image/png"), {422}),
    "not an image": (
        lambda c: raw(c, "/score?model=uncond", b"GIF89a" * 10, "image/gif"),
        {415, 422},
    ),
    "decompression bomb": (lambda c: raw(c, "/score?model=uncond", bomb(), "image/png"), {413}),
    "bomb in multipart": (
        lambda c: c.post("/score", files={"images": ("b.png", bomb())}, data={"model": "uncond"}),
        {413},
    ),
    "score, no content type": (lambda c: raw(c, "/score", png(), None), {415}),
    "score, text/plain": (lambda c: raw(c, "/score", png(), "text/plain"), {415}),
    "generate, no content type": (lambda c: raw(c, "/generate", b'{"seeds": [1]}', None), {415}),
    "generate, text/xml": (lambda c: raw(c, "/generate", b"<seeds/>", "text/xml"), {415}),
    "multipart without boundary": (lambda c: raw(c, "/score", b"x", "multipart/form-data"), {400}),
    "NaN in noise": (lambda c: raw(c, "/generate", noise_json("NaN"), "application/json"), {422}),
    "Infinity in noise": (
        lambda c: raw(c, "/generate", noise_json("Infinity"), "application/json"),
        {422},
    ),
    "-Infinity in noise": (
        lambda c: raw(c, "/generate", noise_json("-Infinity"), "application/json"),
        {422},
    ),
    "1e400 in noise": (
        lambda c: raw(c, "/generate", noise_json("1e400"), "application/json"),
        {422},
    ),
    "NaN psi": (
        lambda c: raw(c, "/generate", b'{"seeds": [1], "truncation_psi": NaN}', "application/json"),
        {422},
    ),
    "non-UTF-8 JSON": (
        lambda c: raw(c, "/generate", b'{"seeds": "\xff\xfe\xfa"}', "application/json"),
        {400, 422},
    ),
    "deeply nested JSON": (
        lambda c: raw(
            c, "/generate", b'{"seeds": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "application/json"
        ),
        {400, 422},
    ),
    "deeply nested score JSON": (
        lambda c: raw(
            c, "/score", b'{"images": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "application/json"
        ),
        {400, 422},
    ),
    "negative seed": (lambda c: c.post("/generate", json={"seeds": [-1]}), {422}),
    "seed 2**32": (lambda c: c.post("/generate", json={"seeds": [2**32]}), {422}),
    "seed 10**100": (lambda c: c.post("/generate", json={"seeds": [10**100]}), {422}),
    "GET seed -1": (lambda c: c.get("/generate?seed=-1"), {422}),
    "GET seed 10**30": (lambda c: c.get("/generate?seed=" + "9" * 30), {422}),
    "range 0-4294967295": (lambda c: c.post("/generate", json={"seeds": "0-4294967295"}), {422}),
    "range past 2**32": (
        lambda c: c.post("/generate", json={"seeds": "4294967290-4294967299"}),
        {422},
    ),
    "range string of 1 MB": (lambda c: c.post("/generate", json={"seeds": "1," * 500_000}), {422}),
    "count 10**12": (lambda c: c.post("/generate", json={"count": 10**12}), {422}),
    "class 10**30": (
        lambda c: c.post("/generate", json={"seeds": [1], "class_label": 10**30}),
        {422},
    ),
    "thousands of multipart files": (
        lambda c: c.post("/score", files=[("images", ("a.png", b"x"))] * 5000),
        {400, 413, 422},
    ),
    "thousands of multipart fields": (
        lambda c: c.post(
            "/score", files={"images": ("a.png", png())}, data={f"f{i}": "x" for i in range(5000)}
        ),
        {400, 413, 422},
    ),
    "base64 that is not": (lambda c: c.post("/score", json={"images": ["%%%"]}), {422}),
    "version not a number": (lambda c: raw(c, "/score?version=1e9", png(), "image/png"), {422}),
    "unknown model": (
        lambda c: c.post("/generate", json={"seeds": [1], "model": "../../etc"}),
        {404},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_case_gets_a_4xx_quickly_and_the_service_keeps_serving(
    hostile: TestClient, name: str
) -> None:
    send, expected = CASES[name]
    bomb()  # the payload is built before the clock starts: only the service's answer is timed
    start = time.monotonic()
    response = send(hostile)
    elapsed = time.monotonic() - start
    assert response.status_code in expected, (response.status_code, response.text[:300])
    body = response.json()
    assert body["error"] and body["detail"]
    assert elapsed < BOUND_S
    assert hostile.get("/readyz").status_code == 200
    healthy = hostile.post("/generate", json={"seeds": [3], "model": "uncond"})
    assert healthy.status_code == 200 and healthy.content.startswith(b"\x89PNG")
