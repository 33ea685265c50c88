"""Warm-up checks each batch size against memory: a size projected not to fit is refused
before it runs, dropped with a warning, and requests are split into the sizes that fit."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.engine import memory, warmup
from service.engine.memory import MIB, SHARE, BatchMemory, BatchTooLarge
from tests.service.conftest import make_settings

BASE = 1000 * MIB  # the resident memory of the process when warm-up starts (synthetic)
ROW = 10 * MIB  # what one more row of a batch takes (synthetic)


def _process(monkeypatch: pytest.MonkeyPatch, available: int) -> None:
    """A process of BASE resident bytes with ``available`` more to take, whose peak while a
    batch of N rows runs is BASE + N * ROW (whatever model is warming up)."""
    monkeypatch.setattr(memory, "resident_bytes", lambda: BASE)
    monkeypatch.setattr(memory, "available_bytes", lambda: available)
    running = {"size": 0}
    check = BatchMemory.check

    def checked(self: BatchMemory, size: int) -> None:
        running["size"] = size
        check(self, size)

    monkeypatch.setattr(BatchMemory, "check", checked)
    monkeypatch.setattr(memory, "peak_resident_bytes", lambda: BASE + running["size"] * ROW)


def test_the_projection_is_linear_from_the_last_two_sizes(monkeypatch) -> None:
    _process(monkeypatch, available=10_000 * MIB)
    guard = BatchMemory()
    assert guard.limit == BASE + 10_000 * MIB
    guard.check(1)
    guard.record(1)
    assert guard.projected(64) is None  # one size measured: nothing to project from
    guard.check(2)
    guard.record(2)
    # From (1, BASE + ROW) and (2, BASE + 2 ROW): ROW per row.
    assert guard.projected(32) == BASE + 32 * ROW


def test_a_size_past_the_share_of_the_limit_is_refused_with_a_clear_message(monkeypatch) -> None:
    # Room for BASE + 50 rows at SHARE of the limit: 32 rows fit, 64 do not.
    available = int((BASE + 50 * ROW) / SHARE) - BASE
    _process(monkeypatch, available)
    guard = BatchMemory()
    for size in (1, 2):
        guard.check(size)
        guard.record(size)
    guard.check(32)
    with pytest.raises(BatchTooLarge, match="batch size 64 would need about 1640 MiB") as caught:
        guard.check(64)
    assert isinstance(caught.value, MemoryError)
    assert "GAN_MAX_BATCH_SIZE" in str(caught.value)


def test_without_proc_nothing_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    guard = BatchMemory()
    guard.peaks = {1: BASE, 2: BASE + 10**15}
    guard.check(1_000_000)  # no limit known: the size is tried


def test_the_real_readings_are_plausible() -> None:
    assert memory.resident_bytes() > 10 * MIB  # this test process, with numpy loaded
    assert memory.peak_resident_bytes() >= memory.resident_bytes() - MIB
    available = memory.available_bytes()
    assert available is None or available > 0


# Warm-up drops a size whose run raises (out of memory on a device, or refused by the projection
# above) and serves with the smaller sizes, instead of failing the start.
drops_failing_sizes = hasattr(warmup, "WarmUpError")


@pytest.mark.xfail(
    not drops_failing_sizes,
    reason="needs warm-up to drop a batch size whose warm-up raises",
    strict=True,
)
def test_a_batch_size_that_would_not_fit_is_dropped_and_requests_still_served(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Room for BASE + 6 rows at SHARE of the limit: sizes 1, 2 and 4 fit, 8 (projected at
    # BASE + 8 rows from the peaks of 2 and 4) does not.
    available = int((BASE + 6 * ROW) / SHARE) - BASE
    _process(monkeypatch, available)
    app = create_app(make_settings(model_dir, max_batch_size=8))
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        answer = client.post(
            "/generate", json={"seeds": "0-7", "model": "uncond", "response": "json"}
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["images"]) == 8
        engine = client.app.state.engine  # type: ignore[attr-defined]
        batcher = engine.batcher(engine.repository.get("uncond"), "generate")
        assert batcher.config.max_batch_size == 4  # the 8 images went in batches of 4
    dropped = [r.getMessage() for r in caplog.records if "batch size 8" in r.getMessage()]
    assert dropped and all("memory" in line for line in dropped), caplog.text
