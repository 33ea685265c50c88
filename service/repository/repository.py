"""The model repository: find, validate and load ``<root>/<name>/<integer version>/``.

Usage::

    repo = ModelRepository.load(Path("models"), VersionPolicies.parse("latest:2", {"cifar": 1}))
    model = repo.get("mnist")            # the highest served version
    older = repo.get("mnist", 1)         # another served version, for requests that pin it
    images = model.generate(z, labels, 1.0)

Which versions are served is each model's version policy (:mod:`service.repository.policy`:
the two latest by default, ``all``, or the versions it is pinned to). Loading checks every
served version against docs/model-format.md (``model.json`` with the
contract's :mod:`gan_contract.model_card`, the two signatures' inputs, and those of the optional
``encode`` and ``complete`` when present) and raises :class:`ModelLoadError` with one clear
sentence when something is missing or broken, so that the service refuses to start rather than
serving half its models.

The loaded versions live in one dict that is replaced as a whole (never mutated), so that a later
hot reload can swap in new versions atomically while requests keep reading the old dict.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gan_contract.model_card import ModelCardError, read_model_card
from service.errors import NotFound
from service.repository.policy import VersionPolicies
from service.repository.signatures import FlatSignature

logger = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model directory is missing, empty or broken; the message says which and why."""


# Each load of a version directory gets its own number, so that two loads of the same
# (name, version) (a rollback) are told apart by the batchers and the reference counts.
_generations = itertools.count(1)


def content_digest(path: Path) -> str:
    """SHA-256 of every file under ``path`` (relative names and bytes): the content of a load."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def directory_stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of everything under ``path``: cheap to take on
    every scan, and changed by any edit inside the directory (unlike the directory's mtime)."""
    entries = []
    for folder, _, files in os.walk(path):
        for name in [".", *files]:
            full = os.path.join(folder, name)
            info = os.stat(full)
            entries.append((os.path.relpath(full, path), info.st_size, info.st_mtime_ns))
    return tuple(sorted(entries))


def configure_tensorflow(intra_op_threads: int = 0, inter_op_threads: int = 0) -> list[str]:
    """Size TensorFlow's thread pools, turn on GPU memory growth (never grab all GPU memory) and
    full float32 matmuls; return the GPUs TF sees.

    ``intra_op_threads``: threads one op (a matmul, a convolution) may split over;
    ``inter_op_threads``: ops run at once. 0 leaves TensorFlow's default (one per core each).
    Call it before any model is loaded: TensorFlow fixes both when its runtime starts.

    TensorFloat-32 (on by default on Ampere and newer GPUs) rounds matmul and convolution
    inputs to 10 mantissa bits, an error of about 1e-3 relative: enough to move pixels by
    more than the one grey level the service promises (gan_contract.reproducibility).
    """
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    threading = tf.config.threading
    wanted = {
        "intra": (
            intra_op_threads,
            threading.get_intra_op_parallelism_threads,
            threading.set_intra_op_parallelism_threads,
        ),
        "inter": (
            inter_op_threads,
            threading.get_inter_op_parallelism_threads,
            threading.set_inter_op_parallelism_threads,
        ),
    }
    for kind, (count, get, set_) in wanted.items():
        if get() == count:
            continue
        try:
            set_(count)
        except RuntimeError:  # the runtime already started in this process (tests, reloads)
            logger.warning(
                "TensorFlow already runs with %d %s-op threads; %d not applied", get(), kind, count
            )
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process (tests, reloads)
            logger.warning("GPU %s was initialised before memory growth could be set", gpu.name)
    return [gpu.name for gpu in gpus]


@dataclass
class LoadedModel:
    """One loaded model version: its ``model.json`` and numpy wrappers of its two signatures."""

    name: str
    version: int
    path: Path
    meta: dict[str, Any]
    _saved: Any = field(repr=False)
    # Signatures as FlatSignature (service.repository.signatures).
    _generate: Any = field(repr=False)
    _score: Any = field(repr=False)
    # SHA-256 of the directory's files when loaded (see content_digest); "" when not taken.
    digest: str = ""
    generation: int = field(default_factory=lambda: next(_generations))
    # The optional signatures (docs/model-format.md): name -> FlatSignature.
    optional: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def z_dim(self) -> int:
        return int(self.meta["z_dim"])

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])

    @property
    def channels(self) -> int:
        return int(self.meta["channels"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    def generate(self, z: np.ndarray, labels: np.ndarray, psi: float) -> np.ndarray:
        """uint8 images [B, H, W, C] for float32 ``z`` [B, z_dim] and int32 ``labels`` [B]."""
        import tensorflow as tf

        out = self._generate(
            z=tf.constant(z, tf.float32),
            labels=tf.constant(labels, tf.int32),
            truncation_psi=tf.constant(psi, tf.float32),
        )
        return np.asarray(out["images"])

    def has(self, signature: str) -> bool:
        """Whether the version has the optional ``signature`` (``encode``, ``complete``)."""
        return signature in self.optional

    def encode(self, images: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """float32 z [B, z_dim] of uint8 ``images`` [B, H, W, C] with ``masks`` [B, H, W]."""
        import tensorflow as tf

        out = self.optional["encode"](
            images=tf.constant(images, tf.uint8),
            masks=tf.constant(masks, tf.uint8),
            labels=tf.constant(labels, tf.int32),
        )
        return np.asarray(out["z"])

    def complete(
        self, images: np.ndarray, masks: np.ndarray, labels: np.ndarray, steps: int
    ) -> dict[str, np.ndarray]:
        """Completed uint8 images, their z and the error on the observed pixels (grey levels)."""
        import tensorflow as tf

        out = self.optional["complete"](
            images=tf.constant(images, tf.uint8),
            masks=tf.constant(masks, tf.uint8),
            labels=tf.constant(labels, tf.int32),
            steps=tf.constant(steps, tf.int32),
        )
        return {key: np.asarray(value) for key, value in out.items()}

    def score(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """float32 logits [B] for uint8 ``images`` [B, H, W, C] and int32 ``labels`` [B]."""
        import tensorflow as tf

        out = self._score(
            images=tf.constant(images, tf.uint8), labels=tf.constant(labels, tf.int32)
        )
        return np.asarray(out["logits"])


def read_model_json(path: Path) -> dict[str, Any]:
    """Read and validate ``path/model.json`` (:func:`gan_contract.model_card.read_model_card`)."""
    try:
        return read_model_card(path)
    except ModelCardError as exc:
        raise ModelLoadError(str(exc)) from exc


def _check_signature(
    fn: Any, expected: Mapping[str, tuple[Any, list[int | None]]], where: str
) -> None:
    """Compare a signature's inputs with the contract (names, dtypes, non-batch dimensions)."""
    _, specs = fn.structured_input_signature
    for name, (dtype, shape) in expected.items():
        spec = specs.get(name)
        if spec is None:
            raise ModelLoadError(f"{where}: input {name!r} is missing")
        if spec.dtype != dtype or spec.shape.as_list()[1:] != shape[1:]:
            raise ModelLoadError(
                f"{where}: input {name!r} is {spec.dtype.name}{spec.shape.as_list()}, "
                f"expected {dtype.name}{shape}"
            )


def load_version(path: Path) -> LoadedModel:
    """Load one version directory, checking it against the contract."""
    import tensorflow as tf

    meta = read_model_json(path)
    if not (path / "saved_model.pb").is_file():
        raise ModelLoadError(f"{path}: saved_model.pb is missing")
    try:
        digest = content_digest(path)
    except OSError as exc:
        raise ModelLoadError(f"{path}: its files could not be read ({exc})") from exc
    try:
        saved = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises many types for a corrupt model
        raise ModelLoadError(f"{path}: TensorFlow could not load the SavedModel ({exc})") from exc
    signatures = getattr(saved, "signatures", {})
    for name in ("generate", "score"):
        if name not in signatures:
            raise ModelLoadError(f"{path}: the SavedModel has no {name!r} signature")
    res, ch, z_dim = meta["resolution"], meta["channels"], meta["z_dim"]
    _check_signature(
        signatures["generate"],
        {
            "z": (tf.float32, [None, z_dim]),
            "labels": (tf.int32, [None]),
            "truncation_psi": (tf.float32, []),
        },
        f"{path} generate",
    )
    _check_signature(
        signatures["score"],
        {"images": (tf.uint8, [None, res, res, ch]), "labels": (tf.int32, [None])},
        f"{path} score",
    )
    optional: dict[str, Any] = {}
    extras: dict[str, dict[str, tuple[Any, list[int | None]]]] = {
        "encode": {},
        "complete": {"steps": (tf.int32, [])},
    }
    for name, extra in extras.items():
        if name not in signatures:
            continue
        inputs = {
            "images": (tf.uint8, [None, res, res, ch]),
            "masks": (tf.uint8, [None, res, res]),
            "labels": (tf.int32, [None]),
            **extra,
        }
        _check_signature(signatures[name], inputs, f"{path} {name}")
        optional[name] = FlatSignature(signatures[name])
    return LoadedModel(
        name=path.parent.name,
        version=int(path.name),
        path=path,
        meta=meta,
        _saved=saved,
        _generate=FlatSignature(signatures["generate"]),
        _score=FlatSignature(signatures["score"]),
        digest=digest,
        optional=optional,
    )


def discover(root: Path) -> dict[str, list[int]]:
    """Every model name under ``root`` and its integer versions, ascending.

    Only directories named by an integer count as versions, so that an export still being
    written to a temporary directory beside them is never picked up.
    """
    if not root.is_dir():
        raise ModelLoadError(f"model directory {root} does not exist")
    found: dict[str, list[int]] = {}
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        versions = sorted(
            int(p.name)
            for p in model_dir.iterdir()
            if p.is_dir() and p.name.isascii() and p.name.isdigit()
        )
        if versions:
            found[model_dir.name] = versions
    if not found:
        raise ModelLoadError(
            f"no models found under {root} (expected {root}/<name>/<integer version>/ holding "
            "saved_model.pb and model.json)"
        )
    return found


@dataclass(frozen=True)
class ModelRepository:
    """The served versions: ``models[name][version]``, those each model's version policy selects
    (:mod:`service.repository.policy`); the highest of a model's answers requests that name no
    version."""

    root: Path
    models: Mapping[str, Mapping[int, LoadedModel]]
    available: Mapping[str, list[int]]
    default_model: str

    @classmethod
    def load(
        cls,
        root: Path,
        policies: VersionPolicies | None = None,
        default_model: str | None = None,
    ) -> ModelRepository:
        """Load every version each model's policy selects (default: the two latest); every one
        must load, and every pinned version must be on disk."""
        policies = policies or VersionPolicies()
        available = discover(root)
        for name, policy in policies.pinned.items():
            if name not in available:
                raise ModelLoadError(f"pinned model {name!r} not found under {root}")
            for version in policy.versions:
                if version not in available[name]:
                    raise ModelLoadError(
                        f"pinned version {name}/{version} not found (available: {available[name]})"
                    )
        models: dict[str, dict[int, LoadedModel]] = {}
        for name, versions in available.items():
            models[name] = {}
            for version in policies.of(name).select(versions):
                model = load_version(root / name / str(version))
                if model.meta["name"] != name or model.meta["version"] != version:
                    logger.warning(
                        "%s: model.json says %s/%s; serving it as %s/%s",
                        model.path,
                        model.meta["name"],
                        model.meta["version"],
                        name,
                        version,
                    )
                models[name][version] = model
                logger.info("loaded model %s version %d from %s", name, version, model.path)
        if default_model is None:
            default_model = "mnist" if "mnist" in models else sorted(models)[0]
        elif default_model not in models:
            raise ModelLoadError(f"default model {default_model!r} not found under {root}")
        return cls(root, models, available, default_model)

    def default_versions(self) -> dict[str, int]:
        """Each model's version that answers requests naming none (its highest served)."""
        return {name: max(versions) for name, versions in self.models.items() if versions}

    def get(self, name: str | None = None, version: int | None = None) -> LoadedModel:
        """The highest served version of ``name`` (or ``version`` of it); 404 when unknown."""
        name = name or self.default_model
        versions = self.models.get(name)
        if versions is None:
            raise NotFound(f"unknown model {name!r}; available: {sorted(self.models)}")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(
                f"model {name!r} has no served version {version}; served: {sorted(versions)}"
            )
        return versions[version]

    def all(self) -> list[LoadedModel]:
        """Every loaded version."""
        return [model for versions in self.models.values() for model in versions.values()]
