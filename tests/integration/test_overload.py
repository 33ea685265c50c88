"""Overload of a real ``gan-serve``: at several times the sustainable rate the bounded queue
answers 503 + Retry-After at once, accepted requests succeed with a bounded latency, memory stays
bounded, and the service is back to normal when the load drops.

Bounded in requests and time, on loopback. The figures are printed (``pytest -s``); the test
asserts behaviour with generous bounds, never a speed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.loadgen import closed_loop, open_loop, post
from tests.integration.processes import ServiceProcess, http_status

pytestmark = pytest.mark.slow

IMAGES = 64  # per request: enough server work that the Python client is not the bottleneck
OVERLOAD = 4.0  # times the sustainable rate
SETTINGS = {
    "GAN_MAX_BATCH_SIZE": "2",  # small model calls: more server work per request (see IMAGES)
    "GAN_MAX_IMAGES_PER_REQUEST": str(IMAGES),
    "GAN_MAX_ENQUEUED": str(4 * IMAGES),  # four requests' worth waiting at most
    "GAN_RETRY_AFTER_S": "1",
    "GAN_DRAIN_SECONDS": "0",
}


def request(index: int) -> bytes:
    first = (index * IMAGES) % 4_000_000
    body = {"seeds": f"{first}-{first + IMAGES - 1}", "model": "uncond", "response": "json"}
    return post("/generate", json.dumps(body).encode())


class RssSampler:
    """Samples a process's resident memory (VmRSS) every 20 ms in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.rss_kb())
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def service(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("overload") / "replica.log"
    with ServiceProcess(model_dir, env=SETTINGS).start(log_path=log) as replica:
        yield replica


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_overload_rejects_fast_keeps_accepted_healthy_and_recovers(
    service: ServiceProcess,
) -> None:
    assert service.process is not None
    host, port = "127.0.0.1", service.port
    sampler = RssSampler(service.process.pid)
    asyncio.run(closed_loop(host, port, request, clients=4, seconds=1.0))  # warm the paths
    baseline_kb = sampler.rss_kb()
    sustained = asyncio.run(closed_loop(host, port, request, clients=4, seconds=2.0))
    assert set(sustained.statuses) == {"200"}, sustained.statuses
    rate = OVERLOAD * sustained.accepted_rate
    with sampler:
        load = asyncio.run(open_loop(host, port, request, rate=rate, seconds=3.0))
    print(
        f"\noverload: sustainable {sustained.accepted_rate:.0f} req/s ({IMAGES} images each); "
        f"offered {load.offered_rate:.0f} req/s, accepted {load.accepted_rate:.0f} req/s, "
        f"rejected {load.rejected_rate:.0f} req/s; accepted p50/p99 "
        f"{load.percentile(200, 0.5) * 1000:.0f}/{load.p99_accepted_s * 1000:.0f} ms, rejected "
        f"p50/p99 {load.percentile(503, 0.5) * 1000:.0f}/{load.p99_rejected_s * 1000:.0f} ms; "
        "peak RSS "
        f"{sampler.peak_kb / 1024:.0f} MB (before {baseline_kb / 1024:.0f} MB); {load.statuses}"
    )
    # Every request got an answer: 200, or 503 with Retry-After; nothing failed or timed out.
    assert set(load.statuses) <= {"200", "503"}, load.statuses
    rejected = [o for o in load.outcomes if o.status == 503]
    assert rejected, f"no request was rejected at {OVERLOAD:g}x the sustainable rate"
    assert all(o.retry_after == "1" for o in rejected)
    assert max(o.seconds for o in rejected) < 1.0  # "at once": generous for a busy machine
    assert load.accepted_rate > 0
    assert load.p99_accepted_s < 10.0  # the queue is bounded, so is the wait
    assert sampler.peak_kb - baseline_kb < 500 * 1024  # bounded queue, bounded memory
    # Back to normal once the load drops: the queue empties and every request succeeds.
    time.sleep(0.5)
    assert http_status(service.url + "/readyz") == 200
    after = asyncio.run(closed_loop(host, port, request, clients=2, seconds=1.0))
    assert set(after.statuses) == {"200"}, after.statuses
    assert after.p99_accepted_s < 5.0
