"""The service freezes its long-lived objects once ready, so that Python's full garbage
collections (which walked a loaded model's objects for about 180 ms each, with the GIL held)
pause no request, and frees an unloaded version's objects anyway."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from tests.service.engine import test_reload
from tests.service.engine.test_reload import make_client, publish, served, wait_until

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
    with make_client(repo) as client:
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

        new = engine.repository.get("cond")._saved
        assert id(new) not in tracked_ids()  # the new version was frozen after its swap
