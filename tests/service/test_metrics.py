"""Metrics in multi-process mode (GAN_WORKERS > 1): /metrics of any worker covers all of them."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import values
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import METRICS_DIR_ENV, Metrics

Sample = tuple[str, dict[str, str], float]


@pytest.fixture
def worker_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[int], Metrics]]:
    """Makes the :class:`Metrics` of a worker process with the given pid, as a worker started
    by ``gan-serve`` with PROMETHEUS_MULTIPROC_DIR set would have them. Series made after the
    call (``.labels()``) are the last-made worker's."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv(METRICS_DIR_ENV, str(tmp_path))
    original = values.ValueClass

    def make(pid: int) -> Metrics:
        # prometheus-client picks its value class when imported; a worker imports it with the
        # directory set. Here: files written under this fake pid.
        values.ValueClass = values.MultiProcessValue(lambda: pid)
        return Metrics()

    yield make
    values.ValueClass = original


def samples(metrics: Metrics) -> list[Sample]:
    body, _ = metrics.render()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    ]


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    found = [v for n, lab, v in samples(metrics) if n == name and labels.items() <= lab.items()]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_any_worker_reports_the_sum_of_all_workers(worker_metrics, tmp_path: Path) -> None:
    workers = []
    for pid, images, queued in ((101, 3, 5), (102, 4, 2)):
        metrics = worker_metrics(pid)
        metrics.images_generated.labels("mnist", "1").inc(images)
        metrics.batch_size.labels("mnist", "1", "generate").observe(images)
        metrics.requests.labels("POST", "/generate", "200").inc()
        metrics.queue_depth.labels("mnist", "1", "generate").set(queued)
        metrics.walks_in_progress.set(1)
        workers.append(metrics)
    first, second = workers
    for metrics in (first, second):
        assert value(metrics, "gan_images_generated_total", model="mnist") == 7
        assert value(metrics, "gan_batch_size_count", signature="generate") == 2
        assert value(metrics, "gan_batch_size_sum", signature="generate") == 7
        assert value(metrics, "gan_http_requests_total", route="/generate") == 2
        assert value(metrics, "gan_batch_queue_depth", signature="generate") == 7
        assert value(metrics, "gan_walks_in_progress") == 2
    # A worker that exited: its queue is gone, what it counted stays counted.
    mark_process_dead(102, str(tmp_path))
    assert value(first, "gan_batch_queue_depth", signature="generate") == 5
    assert value(first, "gan_images_generated_total", model="mnist") == 7


def test_a_version_no_live_worker_serves_is_not_reported(worker_metrics, tmp_path: Path) -> None:
    workers = []
    for pid in (103, 104):
        metrics = worker_metrics(pid)
        for version in ("1", "2"):
            metrics.serve_version("mnist", version)
            metrics.images_generated.labels("mnist", version).inc()
        workers.append(metrics)
    first, second = workers
    with warnings.catch_warnings():
        # prometheus-client warns when asked to remove a series in multi-process mode
        warnings.simplefilter("error")
        worker_metrics(103)  # the first worker's files from here on
        first.forget_version("mnist", "1", ["generate"])
    # The second worker still serves version 1 (its scan comes later): it is still reported.
    assert value(first, "gan_images_generated_total", version="1") == 2
    worker_metrics(104)
    second.forget_version("mnist", "1", ["generate"])
    # The version of every series of a model (series of no model, such as the walks under
    # way, have none).
    versions = {labels.get("version") for _, labels, _ in samples(first) if "model" in labels}
    assert versions == {"2"}
    first.serve_version("mnist", "1")  # loaded again: reported again, with what it counted
    assert value(second, "gan_images_generated_total", version="1") == 2
    # A worker that died serves nothing any more.
    mark_process_dead(103, str(tmp_path))
    assert value(second, "gan_images_generated_total", version="1") is None


def test_one_process_keeps_its_own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # prometheus-client's variable alone (set for another server) is not the workers' mode.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent")
    monkeypatch.delenv(METRICS_DIR_ENV, raising=False)
    metrics = Metrics()
    assert metrics.multiprocess_dir is None
    metrics.images_generated.labels("mnist", "1").inc(2)
    metrics.forget_version("mnist", "1", [])
    assert value(metrics, "gan_images_generated_total") is None  # removed, not just hidden
