"""The table of model calls: one entry per signature, saying how a request's rows are packed,
how a batch of them is run on the model, and how the batch's outputs are post-processed.

Usage (the engine does this; routes call the engine's methods)::

    for call in calls_of(model):                       # generate, score, and encode/complete
        fn = call.batch_fn(model)                      # run by one Batcher per load
        post = call.postprocess(png_level)             # None, or the encoding of "images"
    rows, shared = CALLS["generate"].pack(model, z, seeds, labels, 0.7, Encoding("webp"))

Rows are numpy arrays whose dimension 0 is the batch; ``shared`` holds the scalar arguments
(requests share a batch only when those are equal). The batcher pads a batch with zero rows up to
an allowed size and post-processes only the real rows.

- ``generate``: ``z`` float32 [N, z_dim], ``seeds`` int64 [N] (seed + 1 of each row whose noise
  is still to draw, 0 where ``z`` holds it: the zero padding then draws nothing), ``labels``
  int32 [N], ``format`` uint8 [N] (the row's image format, :data:`service.imaging.FORMAT_CODES`;
  0: its pixels are enough, as for a walk's frames, and the padding) and ``parameter`` uint8
  [N] (its PNG level or WebP/JPEG quality); shared ``truncation_psi``. Outputs ``images`` uint8
  [N, H, W, C] and ``encoded``: each row's image in the format it asked for, ``b""`` for the
  others. Rows of every format, and rows without one, share batches: the format is a row, not a
  shared argument, and one model call serves them all.
- ``score``: ``images`` uint8 [N, H, W, C], ``labels`` int32 [N]. Output ``logits`` [N].
- ``encode`` (optional): ``images``, ``masks`` uint8 [N, H, W] (0 = missing), ``labels``.
  Output ``z`` [N, z_dim]. Padding rows have all-zero masks: nothing observed.
- ``complete`` (optional): as ``encode``, shared ``steps``. Outputs ``images``, ``png``, ``z``
  and ``observed_error``. Each row's optimisation is independent of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gan_contract.seeds import seeds_to_z
from service import imaging
from service.errors import NotFound
from service.imaging import Encoding
from service.repository.repository import LoadedModel

# The outputs that carry a generate row's format and parameter to the post-processing.
FORMAT = "row_format"
PARAMETER = "row_parameter"
Rows = dict[str, np.ndarray]
RowsFn = Callable[[Mapping[str, np.ndarray], Mapping[str, Any]], dict[str, np.ndarray]]
PostFn = Callable[[Mapping[str, np.ndarray], int], dict[str, Any]]


def _generate(model: LoadedModel) -> RowsFn:
    def run(rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, np.ndarray]:
        # Noise of seeded rows is drawn here, in the model's thread, not on the event loop:
        # numpy releases the GIL while it draws, and taking it back on the event loop means
        # waiting for the busy model and codec threads (the loop's costliest line under load).
        z, seeded = rows["z"], np.flatnonzero(rows["seeds"])
        if len(seeded):
            z = z.copy()
            z[seeded] = seeds_to_z((rows["seeds"][seeded] - 1).tolist(), model.z_dim)
        images = model.generate(z, rows["labels"], shared["truncation_psi"])
        # The post-processing sees the outputs only: the rows' formats go along with them.
        return {"images": images, FORMAT: rows["format"], PARAMETER: rows["parameter"]}

    return run


def _pack_generate(
    model: LoadedModel,
    z: np.ndarray,
    seeds: np.ndarray,
    labels: np.ndarray,
    psi: float,
    encoding: Encoding | None = None,
) -> tuple[Rows, dict[str, Any]]:
    """``encoding``: how the rows' images are encoded; None: not at all (their pixels)."""
    if model.num_classes == 0:
        labels = np.zeros(len(z), np.int32)
    code, parameter = encoding.code() if encoding is not None else (0, 0)
    # np.empty and fill: a third of np.full's time, which counts on the event loop per request.
    formats, parameters = np.empty(len(z), np.uint8), np.empty(len(z), np.uint8)
    formats.fill(code)
    parameters.fill(parameter)
    rows = {
        "z": z,
        "seeds": seeds,
        "labels": labels.astype(np.int32, copy=False),
        "format": formats,
        "parameter": parameters,
    }
    return rows, {"truncation_psi": float(np.float32(psi))}


def _score(model: LoadedModel) -> RowsFn:
    def run(rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {"logits": model.score(rows["images"], rows["labels"])}

    return run


def _pack_score(
    model: LoadedModel, images: np.ndarray, labels: np.ndarray
) -> tuple[Rows, dict[str, Any]]:
    if model.num_classes == 0:
        labels = np.zeros(len(images), np.int32)
    return {"images": images, "labels": labels.astype(np.int32, copy=False)}, {}


def _encode(model: LoadedModel) -> RowsFn:
    def run(rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {"z": model.encode(rows["images"], rows["masks"], rows["labels"])}

    return run


def _pack_masked(
    model: LoadedModel, images: np.ndarray, masks: np.ndarray, labels: np.ndarray, **shared: Any
) -> tuple[Rows, dict[str, Any]]:
    rows = {"images": images, "masks": masks, "labels": labels.astype(np.int32, copy=False)}
    return rows, {name: int(value) for name, value in shared.items()}


def _complete(model: LoadedModel) -> RowsFn:
    def run(rows: Mapping[str, np.ndarray], shared: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return model.complete(rows["images"], rows["masks"], rows["labels"], shared["steps"])

    return run


def _encoded(outputs: Mapping[str, np.ndarray], rows: int, level: int) -> dict[str, Any]:
    """Each real (not padding) row's image in the format its :data:`FORMAT` output names, at
    its :data:`PARAMETER` (``b""`` for rows that want none); ``level`` is not used: every row
    carries its own."""
    images, formats, parameters = outputs["images"], outputs[FORMAT], outputs[PARAMETER]
    encoded = [b""] * rows
    for row in np.flatnonzero(formats[:rows]):
        encoding = Encoding.from_code(int(formats[row]), int(parameters[row]))
        encoded[row] = encoding.encode(images[row])
    return {"encoded": encoded}


def _pngs(outputs: Mapping[str, np.ndarray], rows: int, level: int) -> dict[str, Any]:
    """PNG bytes (zlib ``level``) of every real (not padding) row's ``images``."""
    return {"png": imaging.encode_pngs(outputs["images"][:rows], level)}


@dataclass(frozen=True)
class ModelCall:
    """How one signature is called: pack a request's rows, run a batch, post-process it."""

    signature: str
    pack: Callable[..., tuple[Rows, dict[str, Any]]]
    batch_fn: Callable[[LoadedModel], RowsFn]
    # Post-processing (image encoding), off the model's thread: (outputs, rows, PNG level).
    post: Callable[[Mapping[str, np.ndarray], int, int], dict[str, Any]] | None = None
    optional: bool = False  # only for models whose model.json lists the signature

    def postprocess(self, png_level: int) -> PostFn | None:
        """The batch's post-processing at the default PNG compression ``png_level``, or None."""
        post = self.post
        if post is None:
            return None
        return lambda outputs, rows: post(outputs, rows, png_level)


CALLS: dict[str, ModelCall] = {
    call.signature: call
    for call in (
        ModelCall("generate", _pack_generate, _generate, post=_encoded),
        ModelCall("score", _pack_score, _score),
        ModelCall("encode", _pack_masked, _encode, optional=True),
        ModelCall("complete", _pack_masked, _complete, post=_pngs, optional=True),
    )
}


def calls_of(model: LoadedModel) -> list[ModelCall]:
    """The calls ``model`` serves: every required signature, and the optional ones it has."""
    return [call for call in CALLS.values() if not call.optional or model.has(call.signature)]


def require(model: LoadedModel, signature: str) -> None:
    """404 with a clear message when ``model`` lacks the optional ``signature``."""
    if not model.has(signature):
        raise NotFound(
            f"model {model.name!r} version {model.version} has no {signature!r} signature "
            "(it was exported without an encoder; export one with gan-export --encoder-steps N)"
        )
