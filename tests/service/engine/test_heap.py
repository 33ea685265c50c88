"""The service freezes its long-lived objects once ready, so that Python's full garbage
collections (which walked a loaded model's objects for about 180 ms each, with the GIL held)
pause no request, and frees an unloaded version's objects anyway."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import shutil
import weakref
from pathlib import Path

import pytest

from service.engine.heap import settle
from tests.service.engine import test_reload
from tests.service.engine.test_reload import (
    make_client,
    publish,
    served,
    start_engine,
    wait_until,
)
from tests.service.savedmodel_factory import export_model

# The reload tests' fixtures: a repository serving cond/1, and cond weights to publish as cond/2.
repo = test_reload.repo
other_weights = test_reload.other_weights


def tracked_ids() -> set[int]:
    """Ids of the objects a full collection walks (the frozen ones are not among them)."""
    return {id(obj) for obj in gc.get_objects()}


def test_a_ready_service_has_frozen_its_models(repo: Path) -> None:
    gc.unfreeze()  # start from nothing frozen, whatever ran before in this process
    with make_client(repo) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        saved = engine.repository.get("cond")._saved  # the loaded SavedModel object
        fresh: list[int] = []  # allocated after start-up: walked as usual
        tracked = tracked_ids()
        assert id(saved) not in tracked
        assert id(fresh) in tracked
        # What a full collection still walks is a small part of what start-up left.
        assert len(tracked) < gc.get_freeze_count() / 2, (len(tracked), gc.get_freeze_count())
        assert client.post("/generate", json={"seeds": [1], "class_label": 0}).status_code == 200


def test_a_replaced_version_is_freed_though_it_was_frozen(repo: Path, other_weights: Path) -> None:
    with make_client(repo, version_policy="latest:1") as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        first = engine.repository.get("cond")
        saved = weakref.ref(first._saved)
        publish(other_weights, repo, "cond", 2)
        wait_until(lambda: served(client) == {"cond": 2})
        generation = first.generation
        del first
        wait_until(lambda: generation not in engine._servables)  # unloaded
        # Nothing keeps the old version alive (start-up's references are dropped), frozen or not.
        wait_until(lambda: saved() is None, timeout=10)

        # The new version is frozen too, by the collection that follows the unload.
        new = id(engine.repository.get("cond")._saved)
        wait_until(lambda: new not in tracked_ids(), timeout=10)


def resident_bytes() -> int:
    """This process's resident memory (RSS), once the C heap has handed its free pages back to
    the system: what the process holds, without the allocator's slack. Read without the trim, the
    difference over ten reloads ranged from -19 to +21 MB from run to run on one host; with it,
    from +0.6 to +3.6 MB, while a replaced version kept in memory still adds its weights."""
    libc = ctypes.CDLL(None)
    if hasattr(libc, "malloc_trim"):  # glibc; elsewhere the slack stays in the figure
        libc.malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# About 11 s (many reloads to see the heap level off): `make test-extended`, which CI runs too.
@pytest.mark.extended
def test_reloads_do_not_keep_replaced_versions_in_memory(tmp_path: Path) -> None:
    # Wide layers: the weights (about 42 MB) stand out from the rest of a load.
    source = export_model(tmp_path / "big" / "1", name="big", version=1, width=1536, seed=3)
    weights = sum(file.stat().st_size for file in (source / "variables").iterdir())
    repo = tmp_path / "models"
    publish(source, repo, "big", 1)

    async def main() -> tuple[int, int]:
        engine, watcher = await start_engine(repo)
        settle()  # as the app does once ready
        before = resident_bytes()
        for version in range(2, 12):
            publish(source, repo, "big", version)
            shutil.rmtree(repo / "big" / str(version - 1))  # the new version replaces it
            await watcher.poll_once()
            await engine.wait_retired()  # the replaced version is unloaded
            assert engine.repository.get("big").version == version
        after = resident_bytes()
        await engine.stop()
        return before, after

    before, after = asyncio.run(main())
    # One version is loaded at the end, as at the start. A replaced version whose memory were
    # freed only at the next reload would still be resident: its weights, at least `weights`
    # bytes more (and `weights` more per reload if never freed). What else differs is caches,
    # which do not grow with the weights (up to 4 MB measured here with the heap trimmed, 42 MB
    # of weights); half a version's weights lies between the two.
    assert after - before < weights / 2, (after - before, weights)
