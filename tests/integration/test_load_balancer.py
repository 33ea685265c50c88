"""Two real replicas behind real nginx (deploy/nginx.conf), on loopback.

The replicas serve the session's small factory-built models (``model_dir`` of tests/conftest.py),
so the test runs on a clean clone in seconds; what it checks (routing, retries, determinism
across processes) does not depend on the model. nginx's ``X-Request-ID`` reaches the replicas.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.images import assert_same_image
from tests.integration.processes import NginxProcess, ServiceProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("nginx") is None,
        reason="nginx is not installed (apt-get install nginx-light; .ci/run installs it)",
    ),
]


@dataclass
class Cluster:
    replicas: list[ServiceProcess]
    nginx: NginxProcess
    logs: Path


@pytest.fixture(scope="module")
def cluster(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    # A short drain keeps the rolling restart quick; nginx retries what a stopping replica drops.
    env = {"GAN_DRAIN_SECONDS": "1"}
    replicas = [ServiceProcess(model_dir, env=env) for _ in range(2)]
    try:
        for index, replica in enumerate(replicas):
            replica.launch(log_path=workdir / f"replica-{index}.log")
        for replica in replicas:
            replica.wait_ready()
        upstreams = [f"127.0.0.1:{replica.port}" for replica in replicas]
        with NginxProcess(upstreams, workdir) as nginx:
            yield Cluster(replicas, nginx, workdir)
    finally:
        for replica in replicas:
            replica.kill()


def fetch(url: str, body: dict | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """GET, or POST ``body`` as JSON; returns (status, body bytes)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


@dataclass
class Load:
    """Closed-loop clients sending one-seed requests until stopped (bounded in count and time).

    Each client pauses ``pause_s`` between requests, so that the load leaves CPU for a replica
    that restarts on this small machine (and the count bound is not reached mid-test).
    """

    url: str
    clients: int = 4
    pause_s: float = 0.02
    max_requests: int = 20_000
    max_seconds: float = 120.0
    outcomes: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, index: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        seed = index * 100_000
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if sum(self.outcomes.values()) >= self.max_requests:
                    return
            seed += 1
            try:
                if seed % 2:
                    status, _ = fetch(f"{self.url}/generate?seed={seed}")
                else:
                    status, _ = fetch(f"{self.url}/generate", {"seeds": [seed]})
                outcome = str(status)
            except OSError as error:
                outcome = type(error).__name__
            with self._lock:
                self.outcomes[outcome] += 1
            time.sleep(self.pause_s)

    def __enter__(self) -> Load:
        self._pool = ThreadPoolExecutor(self.clients)
        self._futures = [self._pool.submit(self._client, i) for i in range(self.clients)]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()

    def total(self) -> int:
        with self._lock:
            return sum(self.outcomes.values())

    def wait_for_requests(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        start = self.total()
        while self.total() - start < count and time.monotonic() < deadline:
            if all(future.done() for future in self._futures):
                raise AssertionError(f"the load stopped early: {self.outcomes}")
            time.sleep(0.05)


def test_same_seed_gives_the_same_image_through_either_replica(cluster: Cluster) -> None:
    bodies = []
    for base in [replica.url for replica in cluster.replicas] + [cluster.nginx.url] * 4:
        status, body = fetch(f"{base}/generate?seed=1234&class_label=2")
        assert status == 200
        assert body.startswith(b"\x89PNG")
        bodies.append(body)
    for body in bodies[1:]:
        assert_same_image(body, bodies[0])


def test_killing_a_replica_under_load_is_invisible_to_clients(cluster: Cluster) -> None:
    with Load(cluster.nginx.url) as load:
        load.wait_for_requests(20)
        cluster.replicas[0].kill()
        load.wait_for_requests(60)
    assert load.total() > 80
    assert set(load.outcomes) == {"200"}, load.outcomes


def test_nginx_request_id_reaches_the_replica_log_and_the_client(cluster: Cluster) -> None:
    with urllib.request.urlopen(f"{cluster.nginx.url}/generate?seed=77", timeout=30) as response:
        request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, echoed back
    lines = log_lines_with(cluster.logs, request_id)
    assert len(lines) == 1 and lines[0]["status"] == 200 and lines[0]["path"] == "/generate"


def log_lines_with(logs: Path, text: str, timeout: float = 10.0) -> list[dict]:
    """The replicas' JSON log lines that contain ``text``, once at least one is there.

    A replica writes its access line after the response has left, from its log thread, so
    the client can hold the response a moment before the line reaches the file.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = [
            json.loads(line)
            for path in logs.glob("replica-*.log")
            for line in path.read_text().splitlines()
            if text in line
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
