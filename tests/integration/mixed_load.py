"""A steady load of mixed requests, every one of them counted, for the chaos tests.

Usage::

    with MixedLoad(nginx.url, ModelInfo.read(model_dir / "tinyc" / "1")) as load:
        load.wait_for_requests(50)
        ...                                     # kill, restart, publish a version
        load.wait_for_requests(50)
    assert load.failures() == []

Closed-loop clients (threads) each send the five kinds of request in turn (POST and GET
/generate, POST /score with a PNG upload, POST /animate with a short walk, POST /complete when
the model has an encoder), a new connection per request, with a short pause between requests so
that a restarting replica keeps some CPU on a small machine. Every request ends as one
:class:`Answer`: its status, or the error that left it without one (``status`` None), whether
its body is what the route promises (a PNG, an animated WebP, a JSON score), and which model
version answered (``X-Model`` header, or the score's JSON).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

GENERATE_POST = "POST /generate"
GENERATE_GET = "GET /generate"
SCORE = "POST /score"
ANIMATE = "POST /animate"
COMPLETE = "POST /complete"


@dataclass(frozen=True)
class ModelInfo:
    """What the load needs to know of the served model (from its ``model.json``)."""

    name: str
    resolution: int
    channels: int
    num_classes: int
    completes: bool  # it has the optional ``complete`` signature

    @classmethod
    def read(cls, version_dir: Path) -> ModelInfo:
        meta = json.loads((version_dir / "model.json").read_text())
        return cls(
            name=meta["name"],
            resolution=meta["resolution"],
            channels=meta["channels"],
            num_classes=meta["num_classes"],
            completes="complete" in meta.get("signatures", []),
        )

    def kinds(self) -> tuple[str, ...]:
        optional = (COMPLETE,) if self.completes else ()
        return (GENERATE_POST, GENERATE_GET, SCORE, ANIMATE, *optional)


@dataclass(frozen=True)
class Answer:
    """One request as its client saw it."""

    kind: str
    started: float  # time.monotonic() when it was sent
    seconds: float
    status: int | None  # None: no HTTP answer at all (see ``error``)
    error: str | None = None  # the exception without an answer, or what is wrong with the body
    version: int | None = None  # the model version that answered

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    def __str__(self) -> str:
        what = self.status if self.error is None else f"{self.status} {self.error}"
        return f"{self.kind} at {self.started:.2f} ({self.seconds:.2f} s): {what}"


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body (form fields, then PNG files) and its content type."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += value.encode() + b"\r\n"
    for name, data in files.items():
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        body += data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Requests:
    """The request of each kind for request number ``n`` (seeds and classes vary with ``n``)."""

    def __init__(self, base: str, model: ModelInfo) -> None:
        self.base = base
        self.model = model
        res, channels = model.resolution, model.channels
        rng = np.random.RandomState(0)
        shape = (res, res) if channels == 1 else (res, res, channels)
        self.image = _png(rng.randint(0, 256, shape, dtype=np.uint8))
        # The bottom half missing: alpha 0 (a grey image with alpha, or RGBA).
        grey = rng.randint(0, 256, (res, res), dtype=np.uint8)
        alpha = np.full((res, res), 255, np.uint8)
        alpha[res // 2 :] = 0
        colour = [grey] * (1 if channels == 1 else 3)
        self.incomplete = base64.b64encode(_png(np.stack([*colour, alpha], -1))).decode("ascii")

    def _label(self, n: int) -> int | None:
        return n % self.model.num_classes if self.model.num_classes else None

    def _json(self, path: str, body: dict) -> urllib.request.Request:
        data = json.dumps({"model": self.model.name, **body}).encode()
        return urllib.request.Request(
            self.base + path, data=data, headers={"Content-Type": "application/json"}
        )

    def build(self, kind: str, n: int) -> urllib.request.Request:
        label = self._label(n)
        labelled = {} if label is None else {"class_label": label}
        if kind == GENERATE_POST:
            return self._json("/generate", {"seeds": [n], **labelled})
        if kind == GENERATE_GET:
            query = f"seed={n}&model={self.model.name}"
            query += "" if label is None else f"&class_label={label}"
            return urllib.request.Request(f"{self.base}/generate?{query}")
        if kind == SCORE:
            fields = {"model": self.model.name}
            fields.update({k: str(v) for k, v in labelled.items()})
            body, content_type = _multipart(fields, {"images": self.image})
            return urllib.request.Request(
                self.base + "/score", data=body, headers={"Content-Type": content_type}
            )
        if kind == ANIMATE:
            walk = {"seeds": [n, n + 1], "frames": 4, "fps": 10, "loop": False}
            return self._json("/animate", {**walk, **labelled})
        if kind == COMPLETE:
            body = {"images": [self.incomplete], "steps": 2, "response": "png", **labelled}
            return self._json("/complete", body)
        raise ValueError(kind)


def check_body(kind: str, body: bytes) -> tuple[str | None, int | None]:
    """What is wrong with a 200 answer's body (None: nothing), and the version in it."""
    if kind == SCORE:
        try:
            data = json.loads(body)
            assert len(data["scores"]) == 1
        except (ValueError, KeyError, TypeError, AssertionError):
            return f"not a score: {body[:80]!r}", None
        return None, int(data["version"])
    if kind == ANIMATE:
        fine = body[:4] == b"RIFF" and body[8:12] == b"WEBP"
        return (None if fine else f"not a WebP: {body[:16]!r}"), None
    return (None if body.startswith(b"\x89PNG") else f"not a PNG: {body[:16]!r}"), None


def send(request: urllib.request.Request, kind: str, timeout: float) -> Answer:
    """Send one request; the answer as its client saw it."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, body = int(response.status), response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = int(error.code), error.headers, error.read()
    except (OSError, ValueError) as error:  # no HTTP answer (URLError, reset, timeout, ...)
        seconds = time.monotonic() - started
        return Answer(kind, started, seconds, None, f"{type(error).__name__}: {error}")
    seconds = time.monotonic() - started
    if status != 200:
        return Answer(kind, started, seconds, status, f"{body[:200]!r}")
    problem, version = check_body(kind, body)
    served = headers.get("X-Model")
    if served:
        version = int(served.rsplit("/", 1)[1])
    return Answer(kind, started, seconds, status, problem, version)


@dataclass
class MixedLoad:
    """``clients`` threads sending every kind of request in turn until stopped (bounded)."""

    url: str
    model: ModelInfo
    clients: int = 4
    pause_s: float = 0.05
    timeout_s: float = 60.0  # above nginx's proxy_read_timeout (30 s): nginx decides first
    max_seconds: float = 120.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _futures: list[Future[None]] = field(default_factory=list)
    _sent: dict[int, float] = field(default_factory=dict)  # client -> when its request left

    def _client(self, index: int) -> None:
        requests = Requests(self.url, self.model)
        kinds = self.model.kinds()
        deadline = time.monotonic() + self.max_seconds
        n = index * 100_000
        while not self._stop.is_set() and time.monotonic() < deadline:
            n += 1
            kind = kinds[(n + index) % len(kinds)]
            with self._lock:
                self._sent[index] = time.monotonic()
            answer = send(requests.build(kind, n), kind, self.timeout_s)
            with self._lock:
                del self._sent[index]
                self.answers.append(answer)
            time.sleep(self.pause_s)

    def __enter__(self) -> MixedLoad:
        self._pool = ThreadPoolExecutor(self.clients)
        self._futures = [self._pool.submit(self._client, i) for i in range(self.clients)]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()

    def __iter__(self) -> Iterator[Answer]:
        with self._lock:
            return iter(list(self.answers))

    def total(self) -> int:
        with self._lock:
            return len(self.answers)

    def wait_for_requests(self, count: int, timeout: float = 60.0) -> None:
        """Wait until ``count`` more requests have been answered (or have failed)."""
        deadline = time.monotonic() + timeout
        start = self.total()
        while self.total() - start < count:
            if all(future.done() for future in self._futures):
                raise AssertionError(f"the load stopped early: {self.summary()}")
            assert time.monotonic() < deadline, f"{count} requests took over {timeout:.0f} s"
            time.sleep(0.05)

    def waiting_longer_than(self, seconds: float) -> int:
        """Requests sent more than ``seconds`` ago and not answered yet."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for sent in self._sent.values() if now - sent > seconds)

    def failures(self) -> list[Answer]:
        return [answer for answer in self if not answer.ok]

    def summary(self) -> dict[str, Counter[str]]:
        """Per kind of request: how many ended how (a status, or an error's name)."""
        counts: dict[str, Counter[str]] = {}
        for answer in self:
            outcome = str(answer.status) if answer.ok or answer.status else "no answer"
            if answer.status == 200 and answer.error:
                outcome = "200 with a bad body"
            counts.setdefault(answer.kind, Counter())[outcome] += 1
        return counts

    def slowest(self) -> float:
        return max((answer.seconds for answer in self), default=0.0)
