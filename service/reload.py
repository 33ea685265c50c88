"""Hot model reload: poll the model repository and switch to new versions without a restart.

Usage (the app's lifespan does this when ``GAN_POLL_SECONDS`` > 0)::

    watcher = ModelWatcher(engine, settings)
    task = asyncio.create_task(watcher.run())     # polls every settings.poll_seconds
    await watcher.poll_once()                     # one scan (tests)

On each scan the watcher compares what should be served (the pinned version of a pinned model,
else the highest version directory) with what is served. A new target version is loaded and
warmed up in a worker thread while the old one keeps answering, its batchers are started, and
only then is a new :class:`ModelRepository` swapped in (one attribute assignment, so a request
sees either the old or the new set of versions, never a mix). The version it replaces is unloaded
once its queued and running requests are done. A version that fails to load is logged and
remembered (by its directory's modification time), so it is not retried on every scan; the old
version keeps serving. A model whose directory disappears is unloaded, except the default model,
which keeps serving its loaded version (requests naming no model would otherwise all fail).

Exports are renamed into place (``models/NAME/.export-*.tmp`` -> ``models/NAME/<n>``) and only
integer-named directories are versions, so a half-written export is never seen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from service.inference import InferenceEngine
from service.model_repository import LoadedModel, ModelLoadError, discover, load_version
from service.settings import Settings

logger = logging.getLogger(__name__)


class ModelWatcher:
    """Keeps ``engine.repository`` in step with the directories under ``settings.model_dir``."""

    def __init__(self, engine: InferenceEngine, settings: Settings, retire_grace_s: float = 1.0):
        self.engine = engine
        self.settings = settings
        self.retire_grace_s = retire_grace_s
        self._failed: dict[tuple[str, int], float] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Scan every ``poll_seconds`` until cancelled; a failed scan is logged, never fatal."""
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("model repository scan failed; serving what is loaded")

    async def wait_retired(self) -> None:
        """Wait until every replaced version is unloaded (tests, shutdown)."""
        while self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def poll_once(self) -> None:
        """One scan: load, warm up and switch to new target versions; unload removed ones."""
        loop = asyncio.get_running_loop()
        root = self.settings.model_dir
        try:
            available = await loop.run_in_executor(None, discover, root)
        except ModelLoadError as exc:
            # A missing or empty repository is more likely a mount hiccup than an intent to
            # stop serving everything: keep what is loaded and look again next time.
            logger.warning("model repository scan: %s; keeping the loaded models", exc)
            return
        served = self.engine.repository.models
        for name, versions in available.items():
            target = self.settings.model_versions.get(name, versions[-1])
            current = served.get(name)
            if current is not None and target in current:
                continue
            if target not in versions:
                continue  # a pinned version whose directory is gone: keep serving what is loaded
            model = await self._load(root / name / str(target))
            if model is None:
                continue
            try:
                await self.engine.add(model)
            except Exception as exc:  # warm-up ran the model: any failure is the model's
                self._failed[(name, target)] = model.path.stat().st_mtime
                logger.error(
                    "model %s version %d failed its warm-up, the old one keeps serving: %r",
                    name,
                    target,
                    exc,
                )
                await self.engine.remove(model, 0.0)
                continue
            self._swap(name, model, available)
            logger.info("now serving model %s version %d", name, target)
        for name in list(served):
            if name in available:
                continue
            if name == self.engine.repository.default_model:
                logger.warning(
                    "model %s disappeared from %s; it is the default model and "
                    "keeps serving its loaded version",
                    name,
                    root,
                )
                continue
            self._swap(name, None, available)
            logger.info("model %s disappeared from %s; unloading it", name, root)
        if dict(self.engine.repository.available) != available:
            repo = self.engine.repository
            self.engine.repository = dataclasses.replace(repo, available=available)

    async def _load(self, path: Path) -> LoadedModel | None:
        """Load ``path`` in a worker thread; None (logged once) when it is broken."""
        key = (path.parent.name, int(path.name))
        try:
            stamp = path.stat().st_mtime
        except OSError:
            return None
        if self._failed.get(key) == stamp:
            return None
        try:
            model = await asyncio.get_running_loop().run_in_executor(None, load_version, path)
        except ModelLoadError as exc:
            self._failed[key] = stamp
            logger.error("new model version not loaded, the old one keeps serving: %s", exc)
            return None
        self._failed.pop(key, None)
        return model

    def _swap(self, name: str, model: LoadedModel | None, available: dict[str, list[int]]) -> None:
        """Serve ``model`` as ``name`` (None: stop serving ``name``) and retire the old version."""
        repo = self.engine.repository
        models = dict(repo.models)
        old = models.pop(name, {})
        if model is not None:
            models[name] = {model.version: model}
        self.engine.repository = dataclasses.replace(repo, models=models, available=available)
        for previous in old.values():
            task = asyncio.get_running_loop().create_task(
                self.engine.remove(previous, self.retire_grace_s)
            )
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
