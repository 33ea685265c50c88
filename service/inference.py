"""From requests to model calls: seeds to noise, one batcher per model version and signature.

Usage::

    engine = InferenceEngine(repository, settings, metrics)
    await engine.start()                         # warms up every batch size, checks consistency
    images, pngs = await engine.generate(model, z, labels, psi)   # uint8 [N, H, W, C], PNGs
    images, pngs = await engine.generate_seeds(model, seeds, labels, psi)  # noise of seeds
    logits = await engine.score(model, images, labels)        # float32 [N]
    await engine.stop()

Seeds follow StyleGAN's convention (docs/model-format.md):
``z = numpy.random.RandomState(seed).randn(z_dim).astype("float32")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any

import numpy as np

from service.batcher import BatchConfig, Batcher
from service.completion_inference import OPTIONAL_SIGNATURES, completion_batch_fns
from service.completion_inference import warm_up as warm_up_optional
from service.errors import InvalidRequest, Unavailable
from service.imaging import encode_pngs
from service.metrics import Metrics
from service.model_repository import LoadedModel, ModelRepository
from service.settings import Settings

logger = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(spec: str, max_count: int) -> list[int]:
    """Seeds of a range string like ``"0-7,12,20-23"``, refusing more than ``max_count``.

    The count is checked before any range is expanded, so ``"0-4294967295"`` costs nothing.
    """
    bounds: list[tuple[int, int]] = []
    total = 0
    for part in spec.split(","):
        match = _RANGE.match(part)
        if match is None:
            raise InvalidRequest(
                f"seeds: {part.strip()!r} is not a seed or a range; write e.g. '0-7,12,20-23'"
            )
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise InvalidRequest(f"seeds: range {low}-{high} runs backwards; write {high}-{low}")
        if high > MAX_SEED:
            raise InvalidRequest(f"seeds: {high} is out of range; seeds lie in 0..{MAX_SEED}")
        total += high - low + 1
        if total > max_count:
            raise InvalidRequest(
                f"seeds: {spec!r} asks for more than {max_count} images; send fewer per request"
            )
        bounds.append((low, high))
    return [seed for low, high in bounds for seed in range(low, high + 1)]


_local = threading.local()


def seeds_to_z(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """float32 [N, z_dim] noise of ``seeds`` (StyleGAN's convention).

    Re-seeding one ``RandomState`` per thread gives the same numbers as
    ``RandomState(seed).randn`` at a fiftieth of the cost: a new ``RandomState`` first seeds
    itself from OS entropy (about 0.3 ms) before the legacy seeding replaces that state.
    """
    state: np.random.RandomState | None = getattr(_local, "state", None)
    if state is None:
        state = _local.state = np.random.RandomState()
    z = np.empty((len(seeds), z_dim), dtype=np.float32)
    for row, seed in enumerate(seeds):
        state.seed(seed)
        z[row] = state.randn(z_dim)
    return z


def real_percentiles(model: LoadedModel, logits: np.ndarray) -> np.ndarray | None:
    """Percentile (0..100) of each logit among the real images' logits of the calibration;
    None when the model was exported without held-out real images."""
    calibration = model.meta["calibration"]
    if not calibration["real_logits"]:
        return None
    levels = np.asarray(calibration["quantile_levels"], dtype=np.float64)
    real = np.asarray(calibration["real_logits"], dtype=np.float64)
    order = np.argsort(real, kind="stable")
    return np.interp(logits.astype(np.float64), real[order], levels[order]) * 100.0


def _generate_fn(model: LoadedModel) -> Any:
    def run(rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, np.ndarray]:
        # Noise of seeded rows is drawn here, in the model's thread, not on the event loop:
        # numpy releases the GIL while it draws, and taking it back on the event loop means
        # waiting for the busy model and codec threads (the loop's costliest line under load).
        z, seeded = rows["z"], np.flatnonzero(rows["seeds"])
        if len(seeded):
            z = z.copy()
            z[seeded] = seeds_to_z((rows["seeds"][seeded] - 1).tolist(), model.z_dim)
        return {"images": model.generate(z, rows["labels"], shared["truncation_psi"])}

    return run


def _encode_rows(outputs: Mapping[str, np.ndarray], rows: int, level: int) -> dict[str, Any]:
    """PNG bytes of the real (not padding) rows of a generate batch."""
    return {"png": encode_pngs(outputs["images"][:rows], level)}


def _score_fn(model: LoadedModel) -> Any:
    def run(rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {"logits": model.score(rows["images"], rows["labels"])}

    return run


class InferenceEngine:
    """Batchers of every served model version; the routes' only way to run a model."""

    def __init__(
        self,
        repository: ModelRepository,
        settings: Settings,
        metrics: Metrics,
        codec_pool: Executor | None = None,
    ) -> None:
        self.repository = repository
        self.settings = settings
        self.metrics = metrics
        self.codec_pool = codec_pool
        self.batch_sizes = settings.batch_sizes()
        self._batchers: dict[tuple[str, int, str], Batcher] = {}
        # Requests queued or running per (name, version): a removed version waits for zero.
        self._active: dict[tuple[str, int], int] = {}
        # Image counters by (signature, name, version): `.labels()` locks and hashes per call.
        self._counters: dict[tuple[str, str, int], Any] = {}

    def _config(self, batch_sizes: Sequence[int]) -> BatchConfig:
        s = self.settings
        return BatchConfig(
            max_batch_size=min(s.max_batch_size, batch_sizes[-1]),
            batch_timeout_s=s.batch_timeout_ms / 1000.0,
            max_enqueued=s.max_enqueued,
            allowed_batch_sizes=tuple(batch_sizes),
            timeout_s=s.request_timeout_ms / 1000.0,
            retry_after_s=s.retry_after_s,
        )

    async def start(self) -> None:
        """Warm up every model at every allowed batch size, then start the batchers."""
        for model in self.repository.all():
            await self.add(model)

    async def add(self, model: LoadedModel) -> None:
        """Warm ``model`` up (in a worker thread) and start its batchers; requests can then use it.

        Hot reload calls this before it swaps the new version into :attr:`repository`, so that
        the first request to see the new version finds it warm.
        """
        sizes = self.batch_sizes
        if self.settings.warmup:
            sizes = await asyncio.get_running_loop().run_in_executor(None, self.warm_up, model)
        level = self.settings.png_compress_level
        # The optional encode and complete signatures, for the models that have them.
        optional = completion_batch_fns(model, level)
        if self.settings.warmup and optional:
            await asyncio.get_running_loop().run_in_executor(None, warm_up_optional, model, sizes)
        for signature, fn, post in (
            ("generate", _generate_fn(model), partial(_encode_rows, level=level)),
            ("score", _score_fn(model), None),
            *optional,
        ):
            labels = (model.name, str(model.version), signature)
            batcher = Batcher(
                fn,
                self._config(sizes),
                labels=labels,
                metrics=self.metrics,
                postprocess=post,
                post_executor=self.codec_pool,
            )
            batcher.start()
            self._batchers[(model.name, model.version, signature)] = batcher

    async def remove(self, model: LoadedModel, grace_s: float = 1.0) -> None:
        """Stop ``model``'s batchers once no request uses them; call after the swap.

        Waits ``grace_s`` first (a request may have picked the version just before the swap
        and not reached its batcher yet), then until no request of it is queued or running.
        """
        key = (model.name, model.version)
        await asyncio.sleep(grace_s)
        while self._active.get(key, 0) > 0:
            await asyncio.sleep(0.05)
        signatures = ("generate", "score", *OPTIONAL_SIGNATURES)
        batchers = [self._batchers.pop((*key, sig), None) for sig in signatures]
        await asyncio.gather(*(b.stop() for b in batchers if b is not None))
        self._active.pop(key, None)
        logger.info("unloaded model %s version %d", model.name, model.version)

    async def stop(self) -> None:
        """Stop every batcher (their queued requests get 503)."""
        batchers, self._batchers = self._batchers, {}
        await asyncio.gather(*(b.stop() for b in batchers.values()))

    def warm_up(self, model: LoadedModel) -> list[int]:
        """Trace every allowed batch size of both signatures and check that they agree.

        Reference rows are run in chunks of every allowed size, so each row is computed at every
        position of every batch shape. A size whose images differ in any byte from the smallest
        size's (CPU kernels may pick a different summation order for another shape) is dropped,
        so that an image is byte-identical whether it was computed alone or within a batch.
        Returns the consistent sizes.
        """
        sizes = self.batch_sizes
        count = sizes[-1]
        z = seeds_to_z(range(count), model.z_dim)
        labels = (np.arange(count) % max(model.num_classes, 1)).astype(np.int32)
        reference: np.ndarray | None = None
        kept: list[int] = []
        for size in sizes:
            chunks = []
            for start in range(0, count, size):
                part_z, part_l = z[start : start + size], labels[start : start + size]
                rows = len(part_z)
                if rows < size:
                    part_z = np.concatenate(
                        [part_z, np.zeros((size - rows, model.z_dim), np.float32)]
                    )
                    part_l = np.concatenate([part_l, np.zeros(size - rows, np.int32)])
                chunks.append(model.generate(part_z, part_l, 1.0)[:rows])
            images = np.concatenate(chunks)
            blank = np.zeros((size, model.resolution, model.resolution, model.channels), np.uint8)
            logits = model.score(blank, np.zeros(size, np.int32))
            if images.shape != (count, model.resolution, model.resolution, model.channels):
                raise RuntimeError(f"{model.path}: generate returned shape {images.shape}")
            if logits.shape != (size,):
                raise RuntimeError(f"{model.path}: score returned shape {logits.shape}")
            if reference is None:
                reference = images
            elif not np.array_equal(images, reference):
                flipped = int(np.count_nonzero(images != reference))
                logger.warning(
                    "%s/%d: batch size %d changes %d pixels of the reference images; not used",
                    model.name,
                    model.version,
                    size,
                    flipped,
                )
                continue
            kept.append(size)
        logger.info("%s/%d warmed up at batch sizes %s", model.name, model.version, kept)
        return kept

    def _batcher(self, model: LoadedModel, signature: str) -> Batcher:
        batcher = self._batchers.get((model.name, model.version, signature))
        if batcher is None:  # unloaded by a hot reload since the route chose it
            raise Unavailable(
                f"model {model.name} version {model.version} was just unloaded; retry",
                self.settings.retry_after_s,
            )
        return batcher

    def check_room(self, model: LoadedModel, signature: str, rows: int) -> None:
        """503 at once when ``rows`` more would overflow the model's queue (see Batcher)."""
        self._batcher(model, signature).check_room(rows)

    @contextlib.contextmanager
    def using(self, model: LoadedModel) -> Iterator[None]:
        """Count a request as using ``model`` while inside: a hot reload keeps the version
        loaded until it is done. Routes that work (decode uploads) before reaching the model
        enter it as soon as they have chosen the version."""
        key = (model.name, model.version)
        self._active[key] = self._active.get(key, 0) + 1
        try:
            yield
        finally:
            self._active[key] = self._active.get(key, 1) - 1

    async def run(
        self,
        model: LoadedModel,
        signature: str,
        rows: dict[str, np.ndarray],
        shared: Mapping[str, Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` of ``model`` on ``rows`` through its batcher (service.completion)."""
        return await self._submit(model, signature, rows, shared)

    async def _submit(
        self,
        model: LoadedModel,
        signature: str,
        rows: dict[str, np.ndarray],
        shared: Mapping[str, Any] | None = None,
    ) -> dict[str, np.ndarray]:
        batcher = self._batcher(model, signature)
        with self.using(model):
            return await batcher.submit(rows, shared)

    def _counter(self, signature: str, model: LoadedModel) -> Any:
        key = (signature, model.name, model.version)
        counter = self._counters.get(key)
        if counter is None:
            metric = self.metrics.images_generated
            if signature == "score":
                metric = self.metrics.images_scored
            counter = self._counters[key] = metric.labels(model.name, str(model.version))
        return counter

    def queue_depths(self) -> dict[str, int]:
        """Rows waiting per ``name/version/signature``."""
        return {"/".join(map(str, key)): b.queued_rows for key, b in self._batchers.items()}

    async def generate(
        self, model: LoadedModel, z: np.ndarray, labels: np.ndarray, psi: float
    ) -> tuple[np.ndarray, list[bytes]]:
        """uint8 images [N, H, W, C] and their PNGs for noise ``z`` [N, z_dim], ``labels`` [N]."""
        z = z.astype(np.float32, copy=False)
        return await self._generate(model, z, np.zeros(len(z), np.int64), labels, psi)

    async def generate_seeds(
        self, model: LoadedModel, seeds: Sequence[int], labels: np.ndarray, psi: float
    ) -> tuple[np.ndarray, list[bytes]]:
        """Like :meth:`generate` for the noise of ``seeds`` (:func:`seeds_to_z`), drawn in the
        model's thread."""
        z = np.zeros((len(seeds), model.z_dim), np.float32)
        return await self._generate(model, z, np.array(seeds, np.int64) + 1, labels, psi)

    async def _generate(
        self, model: LoadedModel, z: np.ndarray, seeds: np.ndarray, labels: np.ndarray, psi: float
    ) -> tuple[np.ndarray, list[bytes]]:
        # seeds: seed + 1 of each row whose noise is still to draw, 0 where z holds it (the
        # batcher's zero padding then draws nothing).
        if model.num_classes == 0:
            labels = np.zeros(len(z), np.int32)
        out = await self._submit(
            model,
            "generate",
            {"z": z, "seeds": seeds, "labels": labels.astype(np.int32, copy=False)},
            {"truncation_psi": float(np.float32(psi))},
        )
        self._counter("generate", model).inc(len(z))
        return out["images"], list(out["png"])

    async def score(self, model: LoadedModel, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """float32 logits [N] of uint8 ``images`` [N, H, W, C]."""
        if model.num_classes == 0:
            labels = np.zeros(len(images), np.int32)
        out = await self._submit(
            model, "score", {"images": images, "labels": labels.astype(np.int32, copy=False)}
        )
        self._counter("score", model).inc(len(images))
        return out["logits"]
