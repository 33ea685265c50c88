"""Hot model reload: poll the model repository and switch to new versions without a restart.

Usage (the app's lifespan does this when ``GAN_POLL_SECONDS`` > 0)::

    watcher = ModelWatcher(engine, settings)
    task = asyncio.create_task(watcher.run())     # polls every settings.poll_seconds
    await watcher.poll_once()                     # one scan (tests)

On each scan the watcher compares what should be served (the versions on disk each model's
version policy selects, :mod:`service.repository.policy`: the two latest by default, all of them,
or the pinned ones) with what is served. New versions are loaded and warmed up in a worker
thread while the served ones keep answering, their batchers are started, and only then are they
swapped in (:meth:`InferenceEngine.swap`: a request sees either the old or the new set of
versions, never a mix). A version the policy no longer selects is retired: unloaded once no
request holds it (:meth:`InferenceEngine.retire`). Each load is a servable of its own, so a
rollback (the newer version deleted while the older one still retires) loads the older version
again without the retiring load ever touching the new one.

A version that fails to load or warm up is logged and remembered by a stamp of its files' names,
sizes and modification times, so it is not retried on every scan but is retried as soon as
anything inside its directory changes. The policy then selects among the other versions (with
``latest:2``, a broken version 3 leaves versions 1 and 2 serving), and should no version on disk
load, the loaded ones keep serving. A version number names one content for good (``GET
/generate?version=N`` answers are cached as immutable): a version that this process served and
that reappears later is served again only if its files are byte for byte the same (a SHA-256 of
them); otherwise it is refused with a logged error. An unexpected error with one model is logged
and the scan goes on with the others. A model whose directory disappears is unloaded, except the
default model, which keeps serving its loaded versions (requests naming no model would otherwise
all fail).

Exports are renamed into place (``models/NAME/.export-*.tmp`` -> ``models/NAME/<n>``) and only
integer-named directories are versions, so a half-written export is never seen.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from service.engine.engine import InferenceEngine
from service.engine.heap import settle
from service.repository.policy import VersionPolicies
from service.repository.repository import (
    LoadedModel,
    ModelLoadError,
    content_digest,
    directory_stamp,
    discover,
    load_version,
)
from service.settings import Settings

logger = logging.getLogger(__name__)

Stamp = tuple[tuple[str, int, int], ...]


class ReusedVersion(ModelLoadError):
    """A version number this process served comes back with other content."""


def _stamp(path: Path) -> Stamp | None:
    try:
        return directory_stamp(path)
    except OSError:  # removed meanwhile
        return None


class ModelWatcher:
    """Keeps ``engine.repository`` in step with the directories under ``settings.model_dir``."""

    def __init__(self, engine: InferenceEngine, settings: Settings, retire_grace_s: float = 1.0):
        self.engine = engine
        self.settings = settings
        self.policies = VersionPolicies.parse(settings.version_policy, settings.model_versions)
        self.retire_grace_s = retire_grace_s
        # Versions that failed, by the stamp of their files when they did.
        self._failed: dict[tuple[str, int], Stamp | None] = {}
        # The content digest of every version this process has served.
        self._served: dict[tuple[str, int], str] = {
            (m.name, m.version): m.digest for m in engine.repository.all()
        }

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
        """Wait until every replaced version is unloaded (tests)."""
        await self.engine.wait_retired()

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
        for name, versions in available.items():
            try:
                await self._update(name, versions, available)
            except Exception:  # one model's trouble must not keep the others from updating
                logger.exception("model %s: scan failed; it keeps serving what is loaded", name)
        for name in list(self.engine.repository.models):
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
            self.engine.swap(name, {}, available, self.retire_grace_s)
            logger.info("model %s disappeared from %s; unloading it", name, root)
        self.engine.note_available(available)

    async def _update(
        self, name: str, versions: list[int], available: dict[str, list[int]]
    ) -> None:
        """Serve the versions of ``name`` its policy selects, loading and warming up the new
        ones; a version that fails is left out, and the policy picks among the others."""
        policy = self.policies.of(name)
        current = dict(self.engine.repository.models.get(name, {}))
        loaded: dict[int, LoadedModel] = {}
        failed: set[int] = set()
        while True:  # ends: each turn loads or fails at least one more version of `versions`
            target = policy.select([v for v in versions if v not in failed])
            new = [v for v in target if v not in current and v not in loaded]
            if not new:
                break
            for version in reversed(new):  # the newest first: it answers unversioned requests
                model = await self._load_and_add(name, version)
                if model is None:
                    failed.add(version)
                else:
                    loaded[version] = model
        if policy.kind == "specific":
            # A pinned version whose directory is gone keeps serving: nothing may replace it.
            target += [v for v in current if v in policy.versions and v not in versions]
        served = {v: current[v] if v in current else loaded[v] for v in sorted(set(target))}
        if served.keys() == current.keys():
            return
        if not served:  # every version on disk failed: a broken deploy, not a wish to stop
            logger.warning(
                "model %s: no version on disk can be served; it keeps serving versions %s",
                name,
                sorted(current),
            )
            return
        retiring = self.engine.swap(name, served, available, self.retire_grace_s)
        logger.info(
            "now serving model %s versions %s (%s); version %d answers requests naming none",
            name,
            sorted(served),
            policy,
            max(served),
        )
        if not retiring:
            # The new versions' objects join the frozen ones (see service.engine.heap); when a
            # version is retired, the engine does this once it is unloaded, freeing it too.
            settle()

    async def _load_and_add(self, name: str, version: int) -> LoadedModel | None:
        """Load, warm up and start version ``version`` of ``name``; None (logged once per
        content) when it fails."""
        path = self.settings.model_dir / name / str(version)
        model = await self._load(path)
        if model is None:
            return None
        try:
            await self.engine.add(model)
        except Exception as exc:  # warm-up ran the model: any failure is the model's
            loop = asyncio.get_running_loop()
            self._failed[(name, version)] = await loop.run_in_executor(None, _stamp, path)
            logger.error(
                "model %s version %d failed its warm-up, the versions served keep serving: %r",
                name,
                version,
                exc,
            )
            return None
        self._served[(name, version)] = model.digest
        return model

    async def _load(self, path: Path) -> LoadedModel | None:
        """Load ``path`` in a worker thread; None (logged once per content) when it fails."""
        loop = asyncio.get_running_loop()
        key = (path.parent.name, int(path.name))
        stamp = await loop.run_in_executor(None, _stamp, path)
        if stamp is None or (key in self._failed and self._failed[key] == stamp):
            return None
        try:
            model = await loop.run_in_executor(None, self._load_checked, path, key)
        except Exception as exc:  # a load error, or anything else TensorFlow may raise
            self._failed[key] = stamp
            detail = str(exc) if isinstance(exc, ModelLoadError) else f"{path}: {exc!r}"
            logger.error("new model version not loaded, the old one keeps serving: %s", detail)
            return None
        self._failed.pop(key, None)
        return model

    def _load_checked(self, path: Path, key: tuple[str, int]) -> LoadedModel:
        """``load_version``, refusing a served version number that comes back changed."""
        served = self._served.get(key)
        if served is not None and content_digest(path) != served:
            raise ReusedVersion(
                f"{path}: version {key[1]} of {key[0]} was served before with other content; "
                "a version number always names the same model (clients cache its images), "
                "so publish this one under a new version number"
            )
        return load_version(path)
