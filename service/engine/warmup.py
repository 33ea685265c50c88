"""Warm-up: trace every allowed batch size of a model's signatures before it serves, and check
that the sizes agree with each other.

Usage (the engine does this in a worker thread when it adds a model)::

    kept = warm_up(model, sizes, metrics)       # the sizes whose images agree
    warm_up_optional(model, kept)               # encode and complete, when the model has them

Reference rows are run in chunks of every allowed size, so each row is computed at every position
of every batch shape. Each size's largest deviation from the smallest size's images is logged and
exported (``gan_warmup_max_pixel_deviation``). Rounding moves a pixel by at most one grey level
(:mod:`gan_contract.reproducibility`); a size that moves one further is a real fault of the model
or the kernels, and only such a size is dropped, with a warning.

Before each size runs, :class:`~service.engine.memory.BatchMemory` projects its peak memory from
the sizes before it and raises for one that would not fit (a CPU host's OOM killer would end the
process at request time instead).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from gan_contract.reproducibility import MAX_PIXEL_DEVIATION, pixel_deviation
from gan_contract.seeds import seeds_to_z
from service.engine.memory import BatchMemory
from service.metrics import Metrics
from service.repository.repository import LoadedModel

logger = logging.getLogger(__name__)


def warm_up(model: LoadedModel, sizes: Sequence[int], metrics: Metrics) -> list[int]:
    """Trace ``generate`` and ``score`` at every size of ``sizes`` (ascending); returns the
    sizes kept."""
    count = sizes[-1]
    z = seeds_to_z(range(count), model.z_dim)
    labels = (np.arange(count) % max(model.num_classes, 1)).astype(np.int32)
    reference: np.ndarray | None = None
    kept: list[int] = []
    memory = BatchMemory()  # a size that would not fit in memory raises before it runs
    for size in sizes:
        memory.check(size)
        images = generate_in_chunks(model, z, labels, size)
        blank = np.zeros((size, model.resolution, model.resolution, model.channels), np.uint8)
        logits = model.score(blank, np.zeros(size, np.int32))
        if images.shape != (count, model.resolution, model.resolution, model.channels):
            raise RuntimeError(f"{model.path}: generate returned shape {images.shape}")
        if logits.shape != (size,):
            raise RuntimeError(f"{model.path}: score returned shape {logits.shape}")
        if reference is None:
            reference = images
        deviation = pixel_deviation(images, reference)
        metrics.warmup_deviation.labels(model.name, str(model.version), str(size)).set(deviation)
        if deviation > MAX_PIXEL_DEVIATION:
            logger.warning(
                "%s/%d: batch size %d moves pixels by up to %d grey levels from batch size "
                "%d (at most %d is rounding); not used, so requests are split into smaller "
                "batches and throughput drops",
                model.name,
                model.version,
                size,
                deviation,
                sizes[0],
                MAX_PIXEL_DEVIATION,
            )
            continue
        memory.record(size)
        kept.append(size)
    logger.info("%s/%d warmed up at batch sizes %s", model.name, model.version, kept)
    return kept


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


def warm_up_optional(model: LoadedModel, sizes: Sequence[int]) -> None:
    """Trace the optional signatures at every size of ``sizes`` (one step of ``complete``)."""
    for size in sizes:
        images = np.zeros((size, model.resolution, model.resolution, model.channels), np.uint8)
        masks = np.ones(images.shape[:3], np.uint8)
        labels = np.zeros(size, np.int32)
        if model.has("encode"):
            model.encode(images, masks, labels)
        if model.has("complete"):
            model.complete(images, masks, labels, 1)
