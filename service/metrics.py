"""Prometheus metrics of one app, in a registry of its own (so tests' apps never collide).

Usage::

    metrics = Metrics()
    metrics.batch_size.labels("mnist", "1", "generate").observe(8)
    body, content_type = metrics.render()

With several worker processes (``GAN_WORKERS``), ``gan-serve`` gives them a directory
(``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's multi-process mode, and
``GAN_SERVE_METRICS_DIR``): each worker's values live in files there, and
:meth:`Metrics.render`, in whichever worker answers /metrics, sums every worker's counters and
histograms, and the gauges of the live ones.

The ASGI middleware that counts and times requests is :mod:`service.http.request_metrics`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import warnings
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Set by gan-serve for its workers, with their metrics directory (:mod:`service.server.workers`).
# prometheus-client's own PROMETHEUS_MULTIPROC_DIR alone may have been set for other reasons
# (a gunicorn image), with stale files in it.
METRICS_DIR_ENV = "GAN_SERVE_METRICS_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_MODEL_LABELS = ("model", "version", "signature")


class Metrics:
    """The service's metrics. Batch metrics are labelled by model, version and signature."""

    def __init__(self) -> None:
        # prometheus-client reads PROMETHEUS_MULTIPROC_DIR when it is imported; this says
        # whether the directory is gan-serve's workers' own.
        self.multiprocess_dir = os.environ.get(METRICS_DIR_ENV) or None
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gan_http_requests",
            "HTTP requests by route and status",
            ("method", "route", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "gan_http_request_duration_seconds",
            "HTTP request latency",
            ("method", "route"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "gan_batch_queue_wait_seconds",
            "Time a request waited in the batch queue",
            _MODEL_LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "gan_batch_size",
            "Rows of a model call, before padding",
            _MODEL_LABELS,
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.padded_batch_size = Histogram(
            "gan_batch_padded_size",
            "Rows of a model call, after padding",
            _MODEL_LABELS,
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.model_seconds = Histogram(
            "gan_model_call_seconds",
            "Duration of one model call",
            _MODEL_LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "gan_batch_queue_depth",
            "Rows waiting in the batch queue",
            _MODEL_LABELS,
            registry=r,
            multiprocess_mode="livesum",  # of the running workers
        )
        self.warmup_deviation = Gauge(
            "gan_warmup_max_pixel_deviation",
            "Largest difference, in grey levels, between images computed at this batch size and "
            "at the smallest one during warm-up (rounding: at most 1)",
            ("model", "version", "batch_size"),
            registry=r,
            multiprocess_mode="livemax",
        )
        self.images_generated = Counter(
            "gan_images_generated", "Images generated", ("model", "version"), registry=r
        )
        self.images_scored = Counter(
            "gan_images_scored", "Images scored", ("model", "version"), registry=r
        )
        self.walks_in_progress = Gauge(
            "gan_walks_in_progress",
            "POST /animate walks admitted and not yet answered: computing frames, waiting for "
            "the animation encoder or being encoded (at most GAN_MAX_CONCURRENT_WALKS)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.walk_encode_seconds = Histogram(
            "gan_walk_encode_seconds",
            "Time to encode one walk's animation (WebP or GIF)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.served = Gauge(
            "gan_model_version_served",
            "1 while a model version is served (of all workers: how many serve it)",
            ("model", "version"),
            registry=r,
            multiprocess_mode="livesum",
        )

    def serve_version(self, name: str, version: str) -> None:
        """Model ``name`` version ``version`` is (again) being served: report its series."""
        self.served.labels(name, version).set(1)

    def forget_version(
        self,
        name: str,
        version: str,
        signatures: Iterable[str],
        batch_sizes: Iterable[int] = (),
    ) -> None:
        """Remove every series of model ``name`` version ``version`` (it was unloaded): those
        of its ``signatures`` and of the ``batch_sizes`` its warm-up measured, so that /metrics
        does not report unloaded versions forever."""
        if self.multiprocess_dir is not None:
            # prometheus-client cannot remove a series from the workers' files: the version's
            # series are left out of /metrics once no live worker serves it.
            self.served.labels(name, version).set(0)
            return
        signatures = list(signatures)
        by_signature = (
            self.queue_wait,
            self.batch_size,
            self.padded_batch_size,
            self.model_seconds,
            self.queue_depth,
        )
        with warnings.catch_warnings():
            # prometheus-client warns whenever PROMETHEUS_MULTIPROC_DIR is set (here by someone
            # else: this registry is rendered, and the removal holds for it).
            warnings.simplefilter("ignore", UserWarning)
            for metric in by_signature:
                for signature in signatures:
                    with contextlib.suppress(KeyError):  # never observed
                        metric.remove(name, version, signature)
            for counter in (self.images_generated, self.images_scored, self.served):
                with contextlib.suppress(KeyError):
                    counter.remove(name, version)
            for size in batch_sizes:
                with contextlib.suppress(KeyError):  # warm-up off
                    self.warmup_deviation.remove(name, version, str(size))

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric (of every worker, in multi-process mode), and
        its content type."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        workers = CollectorRegistry()
        workers.register(_Served(_WorkerFiles(self.multiprocess_dir)))
        return generate_latest(workers), CONTENT_TYPE_LATEST


class _WorkerFiles(Collector):
    """The workers' files merged as prometheus-client's ``MultiProcessCollector`` does, except
    the files of 0 bytes. A process creates each file empty and sizes it a moment later, and
    prometheus-client fails to read it in between (struct.error: /metrics answered 500 while
    another worker started; prometheus/client_python#1199). A file never shrinks, so a file
    seen with a size reads whole."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in glob.glob(os.path.join(self.path, "*.db")):
            with contextlib.suppress(FileNotFoundError):  # a dead worker's live gauges, removed
                if os.path.getsize(path) > 0:
                    files.append(path)
        return MultiProcessCollector.merge(files, accumulate=True)


class _Served(Collector):
    """``collector``'s metrics without the series of the model versions that no live worker
    serves (``gan_model_version_served`` summed over the live workers is 0)."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterator[Metric]:
        metrics = list(self.collector.collect())
        unserved = {
            (sample.labels["model"], sample.labels["version"])
            for metric in metrics
            if metric.name == "gan_model_version_served"
            for sample in metric.samples
            if sample.value == 0
        }
        for metric in metrics:
            metric.samples = [
                sample
                for sample in metric.samples
                if (sample.labels.get("model"), sample.labels.get("version")) not in unserved
            ]
            yield metric
