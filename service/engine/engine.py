"""From requests to model calls: seeds to noise, one batcher per model version and signature.

Usage::

    engine = InferenceEngine(repository, settings, metrics, on_broken=stop)
    await engine.start()                         # warms up every batch size, checks consistency
    images, pngs = await engine.generate(model, z, labels, psi)   # uint8 [N, H, W, C], PNGs
    _, webps = await engine.generate(model, z, labels, psi, encoding=Encoding("webp"))
    images, _ = await engine.generate(model, z, labels, psi, encode=False)  # pixels only
    images, pngs = await engine.generate_seeds(model, seeds, labels, psi)  # noise of seeds
    logits = await engine.score(model, images, labels)        # float32 [N]
    z = await engine.encode(model, images, masks, labels)     # optional signatures
    out = await engine.complete(model, images, masks, labels, steps)
    engine.swap("mnist", {1: old, 2: new}, available)  # hot reload: serve these, retire the rest
    await engine.stop()

How a request becomes a batch: a route calls one of the methods above, which packs its rows by
the table of model calls (:mod:`service.engine.calls`) and submits them to the batcher of the
model's load and signature (:mod:`service.engine.batcher`); the batcher runs them in one model
call with the other requests queued meanwhile, and hands each request its rows back.

How a model version is loaded: :mod:`service.repository.repository` reads and validates it from
disk; :meth:`InferenceEngine.add` warms it up (:mod:`service.engine.warmup`) and starts its
batchers; :meth:`InferenceEngine.swap` makes requests see it and retires the loads no longer
served (those the version policy, :mod:`service.repository.policy`, no longer selects).
Hot reload (:mod:`service.engine.reload`) does the same for versions that appear on disk.

Each load of a model version is a :class:`~service.engine.servable.Servable` of its own, found by
``model.generation``: retiring one load never stops the batchers of another load of the same
(name, version).

Seeds follow StyleGAN's convention (:func:`gan_contract.seeds.seeds_to_z`,
docs/model-format.md): ``z = numpy.random.RandomState(seed).randn(z_dim).astype("float32")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from service.engine.batcher import BatchConfig, Batcher
from service.engine.calls import CALLS, calls_of, require
from service.engine.heap import settle
from service.engine.servable import Servable
from service.engine.warmup import warm_up, warm_up_optional
from service.errors import Unavailable
from service.imaging import Encoding
from service.metrics import Metrics
from service.repository.repository import LoadedModel, ModelRepository
from service.repository.threads import tensorflow_fills_the_cpus
from service.settings import Settings

logger = logging.getLogger(__name__)


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


class InferenceEngine:
    """Batchers of every served model version; the routes' only way to run a model."""

    def __init__(
        self,
        repository: ModelRepository,
        settings: Settings,
        metrics: Metrics,
        encode_pool: Executor | None = None,
        on_broken: Callable[[str], None] | None = None,
    ) -> None:
        """``on_broken(what)``: called on the event loop when the batch queue ``what``
        (``name/version/signature``) stops after an internal error; it refuses every request
        from then on, so the process should be restarted."""
        self.repository = repository
        self.on_broken = on_broken
        self.settings = settings
        self.metrics = metrics
        self.encode_pool = encode_pool  # PNG encoding of generated images
        self.batch_sizes = settings.batch_sizes()
        # Every started load by its generation; a route's LoadedModel finds its own load.
        self._servables: dict[int, Servable] = {}
        # Unloads waiting for their requests to finish (awaited or cancelled by stop()).
        self._retiring: set[asyncio.Task[None]] = set()
        # Image counters by (signature, name, version): `.labels()` locks and hashes per call.
        self._counters: dict[tuple[str, str, int], Any] = {}

    @functools.cached_property
    def _overlap(self) -> bool:
        """Encode a batch's images beside the next model call, unless the call keeps every
        core busy (:func:`~service.repository.threads.fills_the_cpus`)."""
        return not tensorflow_fills_the_cpus()

    def _config(self, batch_sizes: Sequence[int]) -> BatchConfig:
        s = self.settings
        return BatchConfig(
            max_batch_size=min(s.max_batch_size, batch_sizes[-1]),
            batch_timeout_s=s.batch_timeout_ms / 1000.0,
            max_enqueued=s.max_enqueued,
            allowed_batch_sizes=tuple(batch_sizes),
            timeout_s=s.request_timeout_ms / 1000.0,
            retry_after_s=s.retry_after_s,
            overlap_postprocessing=self._overlap,
        )

    async def start(self) -> None:
        """Warm up every model at every allowed batch size, then start the batchers."""
        for model in self.repository.all():
            await self.add(model)

    async def add(self, model: LoadedModel) -> None:
        """Warm ``model`` up (in a worker thread) and start its batchers; requests can then use it.

        Hot reload calls this before it swaps the new version into :attr:`repository`, so that
        the first request to see the new version finds it warm. The batchers use the batch
        sizes the warm-up kept; a model that cannot serve at any raises
        :class:`~service.engine.warmup.WarmUpError`. On failure nothing of this load is left
        running (and no other load is touched).
        """
        sizes = self.batch_sizes
        loop = asyncio.get_running_loop()
        if self.settings.warmup:
            sizes = await loop.run_in_executor(None, self.warm_up, model)
        calls = calls_of(model)
        if self.settings.warmup and any(call.optional for call in calls):
            sizes = await loop.run_in_executor(None, warm_up_optional, model, sizes, self.metrics)
        level = self.settings.png_compress_level
        batchers = {
            call.signature: Batcher(
                call.batch_fn(model),
                self._config(sizes),
                labels=(model.name, str(model.version), call.signature),
                metrics=self.metrics,
                postprocess=call.postprocess(level),
                post_executor=self.encode_pool,
                on_broken=functools.partial(
                    self._broken, f"{model.name}/{model.version}/{call.signature}"
                ),
            )
            for call in calls
        }
        for batcher in batchers.values():
            batcher.start()
        self.metrics.serve_version(model.name, str(model.version))
        self._servables[model.generation] = Servable(model, batchers)

    def swap(
        self,
        name: str,
        served: Mapping[int, LoadedModel],
        available: Mapping[str, list[int]] | None = None,
        grace_s: float = 1.0,
    ) -> list[asyncio.Task[None]]:
        """Serve exactly the loads of ``served`` (by version, each already :meth:`add`-ed, or
        served already) as ``name``'s versions, none when it is empty, and retire the loads
        no longer served (:meth:`retire`); returns their unloads.

        One attribute assignment: a request sees either the old or the new set of versions,
        never a mix. ``available``: the versions found on disk, when they changed too.
        """
        repo = self.repository
        models = dict(repo.models)
        old = models.pop(name, {})
        if served:
            models[name] = dict(sorted(served.items()))
        found = dict(repo.available) if available is None else dict(available)
        self.repository = dataclasses.replace(repo, models=models, available=found)
        kept = {model.generation for model in served.values()}
        return [
            self.retire(previous, grace_s)
            for previous in old.values()
            if previous.generation not in kept
        ]

    def note_available(self, available: Mapping[str, list[int]]) -> None:
        """Record the versions found on disk (the model catalogue lists them)."""
        if dict(self.repository.available) != dict(available):
            self.repository = dataclasses.replace(self.repository, available=dict(available))

    def retire(self, model: LoadedModel, grace_s: float = 1.0) -> asyncio.Task[None]:
        """Unload ``model`` in the background once its requests are done (see :meth:`remove`);
        :meth:`stop` cancels what is still waiting. Once the last load retiring is unloaded,
        the garbage is collected (:func:`~service.engine.heap.settle`), so that its memory is
        freed then, not at the next reload."""
        task = asyncio.get_running_loop().create_task(self.remove(model, grace_s))
        self._retiring.add(task)
        task.add_done_callback(self._retired)
        return task

    def _retired(self, task: asyncio.Task[None]) -> None:
        self._retiring.discard(task)
        if self._retiring or task.cancelled():
            return  # more loads to unload first, or the engine is stopping
        # Nothing refers to the unloaded loads any more (this runs after the task's frame is
        # gone), but their reference cycles are among the objects the last settle froze: only a
        # collection after gc.unfreeze() frees them. Settling again also freezes what the new
        # version left.
        seconds, frozen = settle()
        logger.info(
            "retired versions collected in %.2f s; %d long-lived objects frozen", seconds, frozen
        )

    async def wait_retired(self) -> None:
        """Wait until every retired load is unloaded (tests)."""
        while self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def remove(self, model: LoadedModel, grace_s: float = 1.0) -> None:
        """Stop this load's batchers once no request holds it; call after the swap.

        Waits ``grace_s`` first (a request may have picked the version just before the swap
        and not reached its batcher yet), then until no request holds it. Only this load
        (``model.generation``) is touched: another load of the same version keeps serving.
        """
        await asyncio.sleep(grace_s)
        servable = self._servables.get(model.generation)
        if servable is None:
            return  # never started (a failed warm-up) or already unloaded
        await servable.wait_idle()
        del self._servables[model.generation]
        await servable.stop()
        if not any(self._same_version(s.model, model) for s in self._servables.values()):
            # No other load reports under these labels: drop the version's metric series.
            self.metrics.forget_version(
                model.name, str(model.version), servable.batchers, self.batch_sizes
            )
            for signature in servable.batchers:
                self._counters.pop((signature, model.name, model.version), None)
        logger.info("unloaded model %s version %d", model.name, model.version)

    @staticmethod
    def _same_version(a: LoadedModel, b: LoadedModel) -> bool:
        return (a.name, a.version) == (b.name, b.version)

    async def stop(self) -> None:
        """Cancel pending unloads, stop every batcher (their queued requests get 503)."""
        retiring = list(self._retiring)
        for task in retiring:
            task.cancel()
        await asyncio.gather(*retiring, return_exceptions=True)
        servables, self._servables = self._servables, {}
        await asyncio.gather(*(s.stop() for s in servables.values()))

    def warm_up(self, model: LoadedModel) -> list[int]:
        """Trace every allowed batch size of ``generate`` and ``score`` and check that they
        agree (:func:`service.engine.warmup.warm_up`); returns the sizes kept (those that work
        and agree)."""
        return warm_up(model, self.batch_sizes, self.metrics)

    def _servable(self, model: LoadedModel) -> Servable:
        servable = self._servables.get(model.generation)
        if servable is None:  # unloaded by a hot reload since the route chose it
            raise Unavailable(
                f"model {model.name} version {model.version} was just unloaded; retry",
                self.settings.retry_after_s,
            )
        return servable

    def batcher(self, model: LoadedModel, signature: str) -> Batcher:
        """The batcher of ``model``'s load for ``signature``; 503 once it is unloaded."""
        return self._servable(model).batchers[signature]

    def _broken(self, what: str) -> None:
        if self.on_broken is not None:
            self.on_broken(what)

    def is_loaded(self, model: LoadedModel) -> bool:
        """True while this load of ``model`` has running batchers (the protocols' model
        readiness and version status ask it)."""
        return model.generation in self._servables

    def broken_batchers(self) -> list[str]:
        """``name/version/signature`` of every batcher whose model thread stopped on its own."""
        return [
            f"{s.model.name}/{s.model.version}/{signature}"
            for s in self._servables.values()
            for signature, batcher in s.batchers.items()
            if batcher.broken
        ]

    def check_room(self, model: LoadedModel, signature: str, rows: int) -> None:
        """503 at once when ``rows`` more would overflow the model's queue (see Batcher)."""
        self.batcher(model, signature).check_room(rows)

    @contextlib.contextmanager
    def using(self, model: LoadedModel) -> Iterator[None]:
        """Count a request as using ``model`` while inside: a hot reload keeps the version
        loaded until it is done. Routes that work (decode uploads) before reaching the model
        enter it as soon as they have chosen the version (503 if it is already unloaded)."""
        with self._servable(model).hold():
            yield

    async def run(
        self,
        model: LoadedModel,
        signature: str,
        rows: dict[str, np.ndarray],
        shared: Mapping[str, Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` of ``model`` on ``rows`` through its batcher, holding the load
        meanwhile (a hot reload cannot unload it under the request)."""
        servable = self._servable(model)
        with servable.hold():
            return await servable.batchers[signature].submit(rows, shared)

    def _counter(self, signature: str, model: LoadedModel) -> Any:
        key = (signature, model.name, model.version)
        counter = self._counters.get(key)
        if counter is None:
            metric = self.metrics.images_generated
            if signature == "score":
                metric = self.metrics.images_scored
            counter = self._counters[key] = metric.labels(model.name, str(model.version))
        return counter

    async def generate(
        self,
        model: LoadedModel,
        z: np.ndarray,
        labels: np.ndarray,
        psi: float,
        encode: bool = True,
        encoding: Encoding | None = None,
    ) -> tuple[np.ndarray, list[bytes]]:
        """uint8 images [N, H, W, C] and their encoded files for noise ``z`` [N, z_dim],
        ``labels`` [N].

        ``encoding``: the format of the files (default: PNG at ``GAN_PNG_COMPRESS_LEVEL``);
        requests of different formats share batches. ``encode=False``: the pixels only, and no
        files (an empty list), for callers that encode the images otherwise (a walk's frames);
        the rows still share batches with others."""
        z = z.astype(np.float32, copy=False)
        seeds = np.zeros(len(z), np.int64)
        return await self._generate(model, z, seeds, labels, psi, encode, encoding)

    async def generate_seeds(
        self,
        model: LoadedModel,
        seeds: Sequence[int],
        labels: np.ndarray,
        psi: float,
        encoding: Encoding | None = None,
        encode: bool = True,
    ) -> tuple[np.ndarray, list[bytes]]:
        """Like :meth:`generate` for the noise of ``seeds`` (:func:`seeds_to_z`), drawn in the
        model's thread."""
        z = np.zeros((len(seeds), model.z_dim), np.float32)
        rows = np.array(seeds, np.int64) + 1
        return await self._generate(model, z, rows, labels, psi, encode, encoding)

    async def _generate(
        self,
        model: LoadedModel,
        z: np.ndarray,
        seeds: np.ndarray,
        labels: np.ndarray,
        psi: float,
        encode: bool,
        encoding: Encoding | None,
    ) -> tuple[np.ndarray, list[bytes]]:
        if encode and encoding is None:
            encoding = Encoding("png", level=self.settings.png_compress_level)
        rows, shared = CALLS["generate"].pack(
            model, z, seeds, labels, psi, encoding if encode else None
        )
        out = await self.run(model, "generate", rows, shared)
        self._counter("generate", model).inc(len(z))
        return out["images"], list(out["encoded"]) if encode else []

    async def score(self, model: LoadedModel, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """float32 logits [N] of uint8 ``images`` [N, H, W, C]."""
        rows, shared = CALLS["score"].pack(model, images, labels)
        out = await self.run(model, "score", rows, shared)
        self._counter("score", model).inc(len(images))
        return out["logits"]

    async def encode(
        self, model: LoadedModel, images: np.ndarray, masks: np.ndarray, labels: np.ndarray
    ) -> np.ndarray:
        """float32 latents [N, z_dim] of partly observed images (the encoder's guess); 404
        when the model has no ``encode`` signature."""
        require(model, "encode")
        rows, shared = CALLS["encode"].pack(model, images, masks, labels)
        out = await self.run(model, "encode", rows, shared)
        return out["z"]

    async def complete(
        self,
        model: LoadedModel,
        images: np.ndarray,
        masks: np.ndarray,
        labels: np.ndarray,
        steps: int,
    ) -> dict[str, Any]:
        """Completed images (``images`` uint8, ``png`` bytes), ``z`` and ``observed_error``;
        404 when the model has no ``complete`` signature. Only requests with the same
        ``steps`` share a batch."""
        require(model, "complete")
        rows, shared = CALLS["complete"].pack(model, images, masks, labels, steps=steps)
        return await self.run(model, "complete", rows, shared)
