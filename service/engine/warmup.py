"""Warm-up: trace every allowed batch size of a model's signatures before it serves, check that
the sizes agree with each other, and keep only the sizes the model can serve.

Usage (the engine does this in a worker thread when it adds a model)::

    kept = warm_up(model, sizes, metrics)                 # the sizes whose images agree
    kept = warm_up_optional(model, kept, metrics)         # encode and complete, when present

Reference rows are run in chunks of every allowed size, so each row is computed at every position
of every batch shape. Each size's largest deviation from the smallest working size's images is
logged and exported (``gan_warmup_max_pixel_deviation``). Rounding moves a pixel by at most one
grey level (:mod:`gan_contract.reproducibility`); a size that moves one further is a real fault of
the model or the kernels, and only such a size is dropped, with a warning.

A size whose model call raises (a device out of memory at a large batch is the usual case) is
dropped the same way, with the same warning, and its deviation is exported as 255 (no usable
image): the model serves with the sizes that work, in smaller batches. A model that cannot serve
at all (no size works, or its outputs have the wrong shape) raises :class:`WarmUpError`, whose
message is one line.

Before each size runs, :class:`~service.engine.memory.BatchMemory` projects its peak memory from
the sizes before it and refuses one that would not fit (a CPU host's OOM killer would end the
process at request time instead): such a size is dropped the same way.

A warm-up is one log line at its end, with its time. Once it has run longer than
:data:`PROGRESS_AFTER_S`, it also logs before each next size how many are done, so that a
compute-heavy model's start shows its progress (a 128x128 SN-ResNet's sizes take tens of seconds
on two CPU cores; the bundled model's, a fraction of a second).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from gan_contract.reproducibility import MAX_PIXEL_DEVIATION, pixel_deviation
from gan_contract.seeds import seeds_to_z
from service.engine.memory import BatchMemory
from service.metrics import Metrics
from service.repository.repository import LoadedModel

logger = logging.getLogger(__name__)

#: The deviation exported for a size whose model call raised: the most a uint8 pixel can move.
FAILED_DEVIATION = 255
#: Seconds into a warm-up after which its progress is logged before each next size: a light
#: model's warm-up stays one line, a heavy one's shows how far it is.
PROGRESS_AFTER_S = 2.0
# Lines TensorFlow puts before what went wrong in an error raised from a graph.
_PREAMBLE = ("Graph execution error:", "Detected at node", "<stack traces unavailable>")


class WarmUpError(RuntimeError):
    """A model that cannot serve: it fails at every batch size, or answers in the wrong shape.
    The message is one line, naming the version directory."""


def summary(exc: BaseException) -> str:
    """``exc`` in one line: its type and the first line that says what went wrong (TensorFlow's
    messages span many lines and start with boilerplate)."""
    lines = [
        line
        for line in str(exc).splitlines()
        if line.strip() and not line[0].isspace() and not line.startswith(_PREAMBLE)
    ]
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def warm_up(model: LoadedModel, sizes: Sequence[int], metrics: Metrics) -> list[int]:
    """Trace ``generate`` and ``score`` at every size of ``sizes`` (ascending); returns the
    sizes kept. Raises :class:`WarmUpError` when none can serve."""
    count = sizes[-1]
    z = seeds_to_z(range(count), model.z_dim)
    labels = (np.arange(count) % max(model.num_classes, 1)).astype(np.int32)
    expected = (count, model.resolution, model.resolution, model.channels)
    reference: tuple[int, np.ndarray] | None = None  # the smallest working size and its images
    kept: list[int] = []
    failures: list[str] = []
    memory = BatchMemory()  # a size that would not fit in memory raises before it runs
    start = time.perf_counter()
    for done, size in enumerate(sizes):
        _progress(model, done, len(sizes), size, start)
        try:
            memory.check(size)
            images = generate_in_chunks(model, z, labels, size)
            blank = np.zeros((size, *expected[1:]), np.uint8)
            logits = model.score(blank, np.zeros(size, np.int32))
        except Exception as exc:  # out of memory at this size, say: smaller ones may serve
            failures.append(summary(exc))
            _drop(model, size, f"failed ({failures[-1]})", metrics)
            continue
        if images.shape != expected:
            raise WarmUpError(
                f"{model.path}: generate returned images of shape {images.shape} for "
                f"{count} rows in batches of {size}, expected {expected}"
            )
        if logits.shape != (size,):
            raise WarmUpError(
                f"{model.path}: score returned logits of shape {logits.shape} for a batch of "
                f"{size}, expected ({size},)"
            )
        if reference is None:
            reference = (size, images)
        deviation = pixel_deviation(images, reference[1])
        metrics.warmup_deviation.labels(model.name, str(model.version), str(size)).set(deviation)
        if deviation > MAX_PIXEL_DEVIATION:
            moved = (
                f"moves pixels by up to {deviation} grey levels from batch size {reference[0]} "
                f"(at most {MAX_PIXEL_DEVIATION} is rounding)"
            )
            _drop(model, size, moved, metrics, deviation)
            continue
        memory.record(size)
        kept.append(size)
    if not kept:
        raise WarmUpError(
            f"{model.path}: warm-up failed at every batch size of {list(sizes)} ({failures[0]})"
        )
    logger.info(
        "%s/%d warmed up at batch sizes %s in %.1f s",
        model.name,
        model.version,
        kept,
        time.perf_counter() - start,
    )
    return kept


def _progress(model: LoadedModel, done: int, total: int, following: int, start: float) -> None:
    """Before the batch size ``following``, log how many of ``total`` sizes are ``done``,
    once the warm-up (begun at ``start``, ``time.perf_counter()``) has taken long."""
    elapsed = time.perf_counter() - start
    if done and elapsed >= PROGRESS_AFTER_S:
        logger.info(
            "%s/%d warming up: %d of %d batch sizes done in %.1f s; next %d",
            model.name,
            model.version,
            done,
            total,
            elapsed,
            following,
        )


def _drop(
    model: LoadedModel,
    size: int,
    why: str,
    metrics: Metrics,
    deviation: int = FAILED_DEVIATION,
) -> None:
    """Warn that ``size`` is not used, and export its deviation."""
    metrics.warmup_deviation.labels(model.name, str(model.version), str(size)).set(deviation)
    logger.warning(
        "%s/%d: batch size %d %s; not used, so requests are split into smaller batches and "
        "throughput drops",
        model.name,
        model.version,
        size,
        why,
    )


def generate_in_chunks(
    model: LoadedModel, z: np.ndarray, labels: np.ndarray, size: int
) -> np.ndarray:
    """Images of every row of ``z``, computed in zero-padded batches of ``size`` rows."""
    chunks = []
    for start in range(0, len(z), size):
        part_z, part_l = z[start : start + size], labels[start : start + size]
        rows = len(part_z)
        if rows < size:
            part_z = np.concatenate([part_z, np.zeros((size - rows, model.z_dim), np.float32)])
            part_l = np.concatenate([part_l, np.zeros(size - rows, np.int32)])
        chunks.append(model.generate(part_z, part_l, 1.0)[:rows])
    return np.concatenate(chunks)


def warm_up_optional(model: LoadedModel, sizes: Sequence[int], metrics: Metrics) -> list[int]:
    """Trace the optional signatures at every size of ``sizes`` (one step of ``complete``);
    returns the sizes kept (a size where one raises is dropped, as in :func:`warm_up`).
    Raises :class:`WarmUpError` when none is left."""
    kept: list[int] = []
    failures: list[str] = []
    for size in sizes:
        images = np.zeros((size, model.resolution, model.resolution, model.channels), np.uint8)
        masks = np.ones(images.shape[:3], np.uint8)
        labels = np.zeros(size, np.int32)
        try:
            if model.has("encode"):
                model.encode(images, masks, labels)
            if model.has("complete"):
                model.complete(images, masks, labels, 1)
        except Exception as exc:
            failures.append(summary(exc))
            _drop(model, size, f"failed in an optional signature ({failures[-1]})", metrics)
            continue
        kept.append(size)
    if not kept:
        raise WarmUpError(
            f"{model.path}: the optional signatures failed at every batch size of "
            f"{list(sizes)} ({failures[0]})"
        )
    return kept
