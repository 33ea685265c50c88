"""Hot model reload: new versions are warmed up and switched to atomically, broken ones skipped,
the versions each model's policy selects served (the two latest by default, all, or the pinned
ones), the others unloaded once their requests are done."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.engine import reload
from service.engine.engine import InferenceEngine
from service.engine.reload import ModelWatcher
from service.errors import Unavailable
from service.metrics import Metrics
from service.repository.policy import VersionPolicies
from service.repository.repository import LoadedModel, ModelRepository, load_version
from tests.images import assert_same_image
from tests.service.conftest import make_settings
from tests.service.savedmodel_factory import export_model

POLL = 0.1


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``cond``-shaped model with other weights: what a new training run would export."""
    path = tmp_path_factory.mktemp("other") / "cond" / "9"
    return export_model(path, name="cond", version=9, num_classes=3, channels=1, seed=5)


def publish(source: Path, repo: Path, name: str, version: int) -> Path:
    """Copy ``source`` beside the target, then rename it into place (as exports do)."""
    staging = repo / name / f".export-{version}.tmp"
    shutil.copytree(source, staging)
    meta = json.loads((staging / "model.json").read_text())
    (staging / "model.json").write_text(json.dumps({**meta, "name": name, "version": version}))
    target = repo / name / str(version)
    os.rename(staging, target)
    return target


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def served(client: TestClient) -> dict[str, int]:
    return client.get("/readyz").json()["models"]


def loaded(engine: InferenceEngine, model: LoadedModel) -> bool:
    """Whether this load of ``model`` still runs: a request that chose it before a reload
    reaches its batcher, or gets 503 once it is unloaded."""
    try:
        engine.batcher(model, "generate")
    except Unavailable:
        return False
    return True


@contextlib.contextmanager
def holding(client: TestClient, model: LoadedModel) -> Iterator[None]:
    """Hold ``model`` as a request does (:meth:`InferenceEngine.using`), entered and left on the
    app's event loop: the servable's count and its ``asyncio.Event`` belong to that loop."""
    use = client.app.state.engine.using(model)  # type: ignore[attr-defined]
    client.portal.call(use.__enter__)  # type: ignore[union-attr]
    try:
        yield
    finally:
        client.portal.call(use.__exit__, None, None, None)  # type: ignore[union-attr]


@pytest.fixture()
def repo(model_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    publish(model_dir / "cond" / "1", root, "cond", 1)
    return root


def make_client(repo: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(make_settings(repo, poll_seconds=POLL, **overrides)))


def seed_png(client: TestClient, **extra: Any) -> Any:
    return client.post("/generate", json={"seeds": [3], "class_label": 1, **extra})


def test_new_version_is_switched_to_without_a_failed_request(
    repo: Path, other_weights: Path
) -> None:
    with make_client(repo, version_policy="latest:1") as client:  # one version at a time
        before = seed_png(client)
        assert before.headers["X-Model"] == "cond/1"
        first = client.app.state.engine.repository.get("cond")  # type: ignore[attr-defined]
        outcomes: Counter[str] = Counter()
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                response = seed_png(client)
                outcomes[f"{response.status_code} {response.headers.get('X-Model')}"] += 1

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(hammer) for _ in range(3)]
            time.sleep(0.3)
            publish(other_weights, repo, "cond", 2)
            wait_until(lambda: served(client) == {"cond": 2})
            time.sleep(0.3)
            stop.set()
            for future in futures:
                future.result()
        after = seed_png(client)
        assert after.status_code == 200 and after.headers["X-Model"] == "cond/2"
        assert after.content != before.content  # other weights, other image
        assert set(outcomes) == {"200 cond/1", "200 cond/2"}, outcomes
        # The replaced version is unloaded once its requests are done.
        engine = client.app.state.engine  # type: ignore[attr-defined]
        wait_until(lambda: not loaded(engine, first))
        assert client.get("/v1/models/cond").json()["available_versions"] == [1, 2]
        assert seed_png(client, version=1).status_code == 404


def test_broken_new_version_is_logged_and_the_old_keeps_serving(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="service.engine.reload")
    with make_client(repo) as client:
        broken = repo / "cond" / ".export-2.tmp"
        broken.mkdir()
        (broken / "model.json").write_text((repo / "cond" / "1" / "model.json").read_text())
        (broken / "saved_model.pb").write_bytes(b"\x00 not a protobuf")
        os.rename(broken, repo / "cond" / "2")
        wait_until(lambda: any("cond/2" in r.getMessage() for r in caplog.records))
        time.sleep(5 * POLL)  # more scans: the broken version is not retried (logged once)
        errors = [r for r in caplog.records if "cond/2" in r.getMessage()]
        assert len(errors) == 1 and "old one keeps serving" in errors[0].getMessage()
        assert client.get("/readyz").status_code == 200
        assert served(client) == {"cond": 1}
        assert seed_png(client).headers["X-Model"] == "cond/1"


def test_half_written_export_is_never_seen(repo: Path, other_weights: Path) -> None:
    with make_client(repo) as client:
        staging = repo / "cond" / ".export-7.tmp"
        shutil.copytree(other_weights, staging)
        (staging / "model.json").unlink()  # the writer has not got that far yet
        time.sleep(5 * POLL)
        assert served(client) == {"cond": 1}
        assert client.get("/v1/models/cond").json()["available_versions"] == [1]


def test_pinned_version_keeps_serving(repo: Path, other_weights: Path) -> None:
    with make_client(repo, model_versions={"cond": 1}) as client:
        publish(other_weights, repo, "cond", 2)
        wait_until(lambda: client.get("/v1/models/cond").json()["available_versions"] == [1, 2])
        time.sleep(3 * POLL)
        assert served(client) == {"cond": 1}
        assert seed_png(client).headers["X-Model"] == "cond/1"


def test_removed_version_is_unloaded_after_its_requests_finish(
    repo: Path, other_weights: Path
) -> None:
    publish(other_weights, repo, "cond", 2)
    with make_client(repo) as client:
        engine: Any = client.app.state.engine  # type: ignore[attr-defined]
        second = engine.repository.get("cond", 2)
        batcher = engine.batcher(second, "generate")
        real_fn = batcher._fn
        running, release = threading.Event(), threading.Event()

        def blocking(rows: Any, shared: Any) -> Any:
            running.set()
            release.wait(10)
            return real_fn(rows, shared)

        batcher._fn = blocking
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(seed_png, client)
            assert running.wait(10)  # the request is in its model call
            shutil.rmtree(repo / "cond" / "2")
            wait_until(lambda: served(client) == {"cond": 1})
            time.sleep(1.5)  # past the grace period: still loaded while its request runs
            assert loaded(engine, second)
            release.set()
            response = in_flight.result(timeout=10)
        assert response.status_code == 200 and response.headers["X-Model"] == "cond/2"
        wait_until(lambda: not loaded(engine, second))
        assert seed_png(client).headers["X-Model"] == "cond/1"


def test_a_vanished_repository_keeps_the_loaded_models(repo: Path) -> None:
    with make_client(repo) as client:
        hidden = repo.parent / "elsewhere"
        repo.rename(hidden)  # an unmounted volume, say
        time.sleep(5 * POLL)
        assert served(client) == {"cond": 1}
        assert seed_png(client).status_code == 200
        hidden.rename(repo)


def test_a_version_in_use_before_its_model_call_stays_loaded(
    repo: Path, other_weights: Path
) -> None:
    # /score decodes its uploads before it reaches the model: it holds the version meanwhile.
    publish(other_weights, repo, "cond", 2)
    with make_client(repo) as client:
        engine: Any = client.app.state.engine  # type: ignore[attr-defined]
        chosen = engine.repository.get("cond", 2)
        with holding(client, chosen):
            shutil.rmtree(repo / "cond" / "2")
            wait_until(lambda: served(client) == {"cond": 1})
            time.sleep(1.5)  # past the grace period
            assert loaded(engine, chosen)
        wait_until(lambda: not loaded(engine, chosen))


# --- one servable per load, driven step by step (no timing) ---------------------------------


async def start_engine(repo: Path, **overrides: Any) -> tuple[InferenceEngine, ModelWatcher]:
    settings = make_settings(repo, **{"warmup": False, **overrides})
    policies = VersionPolicies.parse(settings.version_policy, settings.model_versions)
    engine = InferenceEngine(ModelRepository.load(repo, policies), settings, Metrics())
    await engine.start()
    return engine, ModelWatcher(engine, settings, retire_grace_s=0.0)


async def one_image(engine: InferenceEngine, model: LoadedModel) -> bytes:
    _, pngs = await engine.generate_seeds(model, [3], np.array([1], np.int32), 1.0)
    return pngs[0]


def test_a_rollback_is_never_stopped_by_the_load_it_replaced(
    repo: Path, other_weights: Path
) -> None:
    async def main() -> None:
        engine, watcher = await start_engine(repo, version_policy="latest:1")
        first = engine.repository.get("cond")
        with engine.using(first):  # a request holds the first load: its retirement waits
            publish(other_weights, repo, "cond", 2)
            await watcher.poll_once()
            assert engine.repository.get("cond").version == 2
            shutil.rmtree(repo / "cond" / "2")  # rolled back while version 1 still retires
            await watcher.poll_once()
            again = engine.repository.get("cond")
            assert again.version == 1 and again.generation != first.generation
            assert loaded(engine, first) and loaded(engine, again)
        await engine.wait_retired()  # the first load of version 1 is unloaded now ...
        assert not loaded(engine, first)
        assert loaded(engine, again)  # ... and the second keeps serving
        assert (await one_image(engine, again)).startswith(b"\x89PNG")
        await engine.stop()

    asyncio.run(main())


def test_a_failed_warm_up_leaves_the_served_load_of_the_same_version_alone(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        engine, _ = await start_engine(repo, warmup=True)
        served = engine.repository.get("cond")
        second_load = load_version(repo / "cond" / "1")

        def broken_warm_up(model: LoadedModel) -> list[int]:
            raise RuntimeError("the device ran out of memory")

        monkeypatch.setattr(engine, "warm_up", broken_warm_up)
        with pytest.raises(RuntimeError):
            await engine.add(second_load)
        await engine.remove(second_load, 0.0)  # what a reload does after a failed warm-up
        assert loaded(engine, served)
        assert (await one_image(engine, served)).startswith(b"\x89PNG")
        await engine.stop()

    asyncio.run(main())


def test_a_failed_version_is_retried_when_a_file_inside_it_changes(
    repo: Path, other_weights: Path
) -> None:
    async def main() -> None:
        engine, watcher = await start_engine(repo)
        target = publish(other_weights, repo, "cond", 2)
        graph = target / "saved_model.pb"
        good = graph.read_bytes()
        stamp = os.stat(target)
        graph.write_bytes(b"\x00 not a protobuf")
        await watcher.poll_once()
        assert engine.repository.get("cond").version == 1
        graph.write_bytes(good)  # fixed in place: the directory's own mtime does not change
        os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        await watcher.poll_once()
        assert engine.repository.get("cond").version == 2
        await engine.stop()

    asyncio.run(main())


def test_an_unexpected_error_with_one_model_does_not_stop_the_scan(
    repo: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    publish(model_dir / "uncond" / "1", repo, "uncond", 1)
    real_load = reload.load_version

    def load(path: Path) -> LoadedModel:
        if path.parent.name == "cond":
            raise RuntimeError("an error TensorFlow did not wrap")
        return real_load(path)

    async def main() -> None:
        engine, watcher = await start_engine(repo)
        publish(model_dir / "cond" / "1", repo, "cond", 2)
        publish(model_dir / "uncond" / "1", repo, "uncond", 2)
        monkeypatch.setattr(reload, "load_version", load)
        await watcher.poll_once()  # "cond" comes first and fails
        await watcher.poll_once()  # not retried: its files did not change
        assert engine.repository.get("uncond").version == 2
        assert engine.repository.get("cond").version == 1
        await engine.stop()

    caplog.set_level(logging.ERROR, logger="service.engine.reload")
    asyncio.run(main())
    errors = [r.getMessage() for r in caplog.records if "did not wrap" in r.getMessage()]
    assert len(errors) == 1 and "cond/2" in errors[0]


def test_a_served_version_number_never_comes_back_with_other_content(
    repo: Path, other_weights: Path, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        engine, watcher = await start_engine(repo)
        publish(other_weights, repo, "cond", 2)
        await watcher.poll_once()
        assert engine.repository.get("cond").version == 2
        shutil.rmtree(repo / "cond" / "2")
        await watcher.poll_once()  # version 1 again: the content it was served with
        assert engine.repository.get("cond").version == 1
        publish(model_dir / "cond" / "1", repo, "cond", 2)  # other weights, a used number
        await watcher.poll_once()
        assert engine.repository.get("cond").version == 1
        shutil.rmtree(repo / "cond" / "2")
        publish(other_weights, repo, "cond", 2)  # the content version 2 was served with
        await watcher.poll_once()
        assert engine.repository.get("cond").version == 2
        await engine.stop()

    caplog.set_level(logging.ERROR, logger="service.engine.reload")
    asyncio.run(main())
    refused = [r.getMessage() for r in caplog.records if "served before" in r.getMessage()]
    assert len(refused) == 1 and "new version number" in refused[0]


def test_the_metric_series_of_an_unloaded_version_are_removed(
    repo: Path, other_weights: Path
) -> None:
    async def main() -> tuple[str, str]:
        # One version at a time, warmed up: its warm-up series go with it too.
        engine, watcher = await start_engine(repo, version_policy="latest:1", warmup=True)
        await one_image(engine, engine.repository.get("cond"))
        before = engine.metrics.render()[0].decode()
        publish(other_weights, repo, "cond", 2)
        await watcher.poll_once()
        await engine.wait_retired()
        await one_image(engine, engine.repository.get("cond"))
        after = engine.metrics.render()[0].decode()
        await engine.stop()
        return before, after

    before, after = asyncio.run(main())
    assert 'model="cond",version="1"' in before
    assert 'model="cond",version="1"' not in after
    assert 'gan_images_generated_total{model="cond",version="2"} 1.0' in after


def test_stopping_cancels_the_unloads_still_waiting(repo: Path, other_weights: Path) -> None:
    async def main() -> list[asyncio.Task[Any]]:
        engine, watcher = await start_engine(repo)
        first = engine.repository.get("cond")
        with engine.using(first):  # its unload waits for this request
            publish(other_weights, repo, "cond", 2)
            await watcher.poll_once()
            await engine.stop()
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(main()) == []


def test_a_version_that_failed_its_warm_up_is_retried_once_its_files_change(
    repo: Path,
    other_weights: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        engine, watcher = await start_engine(repo, warmup=True)
        real_warm_up = engine.warm_up

        def broken_warm_up(model: LoadedModel) -> list[int]:
            raise RuntimeError("the device ran out of memory")

        target = publish(other_weights, repo, "cond", 2)
        monkeypatch.setattr(engine, "warm_up", broken_warm_up)
        await watcher.poll_once()
        await watcher.poll_once()  # not retried: nothing changed
        assert engine.repository.get("cond").version == 1
        assert (await one_image(engine, engine.repository.get("cond"))).startswith(b"\x89PNG")
        monkeypatch.setattr(engine, "warm_up", real_warm_up)
        meta = json.loads((target / "model.json").read_text())
        (target / "model.json").write_text(json.dumps({**meta, "note": "re-exported"}))
        await watcher.poll_once()
        assert engine.repository.get("cond").version == 2
        await engine.stop()

    caplog.set_level(logging.ERROR, logger="service.engine.reload")
    asyncio.run(main())
    errors = [r.getMessage() for r in caplog.records if "failed its warm-up" in r.getMessage()]
    assert len(errors) == 1


# --- version policies on hot reload (service.repository.policy) -----------------------------


def served_versions(client: TestClient) -> list[int]:
    return client.get("/v1/models/cond").json()["served_versions"]


def test_a_pinned_url_keeps_answering_across_one_upgrade(repo: Path, other_weights: Path) -> None:
    # The default policy serves the two latest versions: an image cached as immutable under
    # ?version=1 is still answered once version 2 arrives, and only after version 3 is 404.
    url = "/generate?seed=3&class_label=1&version=1"
    with make_client(repo) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        first = engine.repository.get("cond", 1)
        pinned = client.get(url)
        assert pinned.status_code == 200 and "immutable" in pinned.headers["Cache-Control"]
        publish(other_weights, repo, "cond", 2)
        wait_until(lambda: served_versions(client) == [1, 2])
        assert served(client) == {"cond": 2}  # requests that name no version get the newest
        assert seed_png(client).headers["X-Model"] == "cond/2"
        again = client.get(url)
        assert again.status_code == 200 and again.headers["X-Model"] == "cond/1"
        assert_same_image(again.content, pinned.content)
        assert loaded(engine, first)  # the same load: nothing was retired
        metrics = client.get("/metrics").text
        for version in (1, 2):
            assert f'gan_model_version_served{{model="cond",version="{version}"}} 1.0' in metrics
        publish(other_weights, repo, "cond", 3)
        wait_until(lambda: served_versions(client) == [2, 3])
        assert client.get(url).status_code == 404
        wait_until(lambda: not loaded(engine, first))  # retired once its requests were done
        # ... and its metric series go with it (once its batchers have stopped).
        wait_until(lambda: 'model="cond",version="1"' not in client.get("/metrics").text)


def versions_served(engine: InferenceEngine) -> list[int]:
    return sorted(engine.repository.models["cond"])


def test_all_serves_every_version_and_unloads_only_a_removed_one(
    repo: Path, other_weights: Path
) -> None:
    async def main() -> None:
        engine, watcher = await start_engine(repo, version_policy="all")
        first = engine.repository.get("cond", 1)
        publish(other_weights, repo, "cond", 2)
        publish(other_weights, repo, "cond", 3)
        await watcher.poll_once()
        assert versions_served(engine) == [1, 2, 3] and engine.repository.get("cond").version == 3
        second = engine.repository.get("cond", 2)
        shutil.rmtree(repo / "cond" / "2")
        await watcher.poll_once()
        await engine.wait_retired()
        assert versions_served(engine) == [1, 3]
        assert not loaded(engine, second) and loaded(engine, first)
        assert (await one_image(engine, first)).startswith(b"\x89PNG")
        await engine.stop()

    asyncio.run(main())


def test_a_broken_new_version_leaves_the_served_versions_serving(
    repo: Path, other_weights: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # latest:2 over [1, 2, 3] with 3 broken is latest:2 over [1, 2]: version 1 is not retired
    # for the sake of a version that cannot serve.
    async def main() -> None:
        engine, watcher = await start_engine(repo)
        publish(other_weights, repo, "cond", 2)
        await watcher.poll_once()
        served_before = dict(engine.repository.models["cond"])
        broken = publish(other_weights, repo, "cond", 3)
        (broken / "saved_model.pb").write_bytes(b"\x00 not a protobuf")
        await watcher.poll_once()
        await watcher.poll_once()  # not retried: its files did not change
        assert engine.repository.models["cond"] == served_before
        assert not engine._retiring
        assert all(loaded(engine, model) for model in served_before.values())
        await engine.stop()

    caplog.set_level(logging.ERROR, logger="service.engine.reload")
    asyncio.run(main())
    assert len([r for r in caplog.records if "cond/3" in r.getMessage()]) == 1


def test_pinned_versions_are_served_whatever_arrives_or_leaves(
    repo: Path, other_weights: Path
) -> None:
    publish(other_weights, repo, "cond", 3)

    async def main() -> None:
        engine, watcher = await start_engine(repo, model_versions={"cond": [1, 3]})
        assert versions_served(engine) == [1, 3]
        publish(other_weights, repo, "cond", 2)
        publish(other_weights, repo, "cond", 4)
        await watcher.poll_once()
        assert versions_served(engine) == [1, 3]  # neither 2 nor the newer 4
        shutil.rmtree(repo / "cond" / "3")
        await watcher.poll_once()
        assert versions_served(engine) == [1, 3]  # a pinned version is never replaced
        await engine.stop()

    asyncio.run(main())


def test_a_model_whose_versions_on_disk_all_fail_keeps_serving_what_is_loaded(
    repo: Path, other_weights: Path
) -> None:
    async def main() -> None:
        engine, watcher = await start_engine(repo)
        first = engine.repository.get("cond")
        broken = publish(other_weights, repo, "cond", 2)
        (broken / "saved_model.pb").write_bytes(b"\x00 not a protobuf")
        shutil.rmtree(repo / "cond" / "1")  # the only good version leaves the disk
        await watcher.poll_once()
        assert versions_served(engine) == [1] and loaded(engine, first)
        assert (await one_image(engine, first)).startswith(b"\x89PNG")
        await engine.stop()

    asyncio.run(main())
