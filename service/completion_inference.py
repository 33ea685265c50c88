"""Batched calls of the optional ``encode`` and ``complete`` signatures.

Usage (the inference engine and the completion routes do this)::

    for signature, fn, post in completion_batch_fns(model, png_level):   # [] without them
        ...one Batcher per entry, as for generate and score...
    z = await encode(engine, model, images, masks, labels)
    out = await complete(engine, model, images, masks, labels, steps)   # images, png, z, error

Rows are uint8 ``images`` [N, H, W, C], uint8 ``masks`` [N, H, W] (0 = missing) and int32
``labels`` [N]; ``steps`` is a scalar of the signature, so only requests with the same number of
steps share a batch (the batcher groups requests by their shared arguments). The batcher's zero
padding rows have all-zero masks: the signature treats them as rows with nothing observed, and
each row's optimisation is independent of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from service.errors import NotFound
from service.imaging import encode_pngs
from service.model_repository import LoadedModel

if TYPE_CHECKING:
    from service.inference import InferenceEngine

OPTIONAL_SIGNATURES = ("encode", "complete")
RowsFn = Callable[[Mapping[str, np.ndarray], Mapping[str, Any]], dict[str, np.ndarray]]


def _encode_fn(model: LoadedModel) -> RowsFn:
    def run(rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {"z": model.encode(rows["images"], rows["masks"], rows["labels"])}

    return run


def _complete_fn(model: LoadedModel) -> RowsFn:
    def run(rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return model.complete(rows["images"], rows["masks"], rows["labels"], shared["steps"])

    return run


def _pngs(outputs: Mapping[str, np.ndarray], rows: int, level: int) -> dict[str, Any]:
    """PNG bytes of the completed (not padding) rows of a batch."""
    return {"png": encode_pngs(outputs["images"][:rows], level)}


def completion_batch_fns(model: LoadedModel, png_level: int) -> list[tuple[str, RowsFn, Any]]:
    """(signature, batch function, postprocess) of each optional signature ``model`` has."""
    fns: list[tuple[str, RowsFn, Any]] = []
    if model.has("encode"):
        fns.append(("encode", _encode_fn(model), None))
    if model.has("complete"):
        fns.append(("complete", _complete_fn(model), partial(_pngs, level=png_level)))
    return fns


def warm_up(model: LoadedModel, sizes: list[int]) -> None:
    """Trace the optional signatures at every allowed batch size (one step of ``complete``)."""
    for size in sizes:
        images = np.zeros((size, model.resolution, model.resolution, model.channels), np.uint8)
        masks = np.ones(images.shape[:3], np.uint8)
        labels = np.zeros(size, np.int32)
        if model.has("encode"):
            model.encode(images, masks, labels)
        if model.has("complete"):
            model.complete(images, masks, labels, 1)


def require(model: LoadedModel, signature: str) -> None:
    """404 with a clear message when ``model`` lacks the optional ``signature``."""
    if not model.has(signature):
        raise NotFound(
            f"model {model.name!r} version {model.version} has no {signature!r} signature "
            "(it was exported without an encoder; export one with gan-export --encoder-steps N)"
        )


def max_steps(model: LoadedModel, settings_max: int) -> int:
    """The most steps a request may ask of ``model``: the settings' and the model's limit."""
    completion = model.meta.get("completion")
    limit = completion.get("max_steps") if isinstance(completion, dict) else None
    return min(settings_max, limit) if isinstance(limit, int) else settings_max


async def encode(
    engine: InferenceEngine,
    model: LoadedModel,
    images: np.ndarray,
    masks: np.ndarray,
    labels: np.ndarray,
) -> np.ndarray:
    """float32 latents [N, z_dim] of partly observed images (the encoder's guess)."""
    require(model, "encode")
    rows = {"images": images, "masks": masks, "labels": labels.astype(np.int32, copy=False)}
    out = await engine.run(model, "encode", rows)
    return out["z"]


async def complete(
    engine: InferenceEngine,
    model: LoadedModel,
    images: np.ndarray,
    masks: np.ndarray,
    labels: np.ndarray,
    steps: int,
) -> dict[str, Any]:
    """Completed images (``images`` uint8, ``png`` bytes), ``z`` and ``observed_error``."""
    require(model, "complete")
    rows = {"images": images, "masks": masks, "labels": labels.astype(np.int32, copy=False)}
    return await engine.run(model, "complete", rows, {"steps": int(steps)})
