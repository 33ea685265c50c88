"""What the signatures of :mod:`service.api.protocols.tensor_signatures` share: tensor specs, the
call's context, and the checks of shapes, rows, classes and masks every signature applies.

Usage (in a signature's run function)::

    count = row_count(tensors["seed"], "seed", (), call.settings.max_images_per_request)
    labels = class_list(tensors.get("class_label"), count)      # [count] or [1] -> list, or None
    psi = scalar_value(tensors.get("truncation_psi"), "truncation_psi")

Each refusal is an :class:`~service.errors.InvalidRequest` naming the input and what it takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request

from gan_contract.masks import MaskError, check_mask
from service.engine.engine import InferenceEngine
from service.errors import InvalidRequest
from service.repository.repository import LoadedModel
from service.settings import Settings

MAX_NOISE = 1e4  # |z| bound of every route that takes noise (POST /generate's too)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, datatype and shape (-1: any length)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Call:
    """What running a signature needs besides its tensors."""

    engine: InferenceEngine
    model: LoadedModel
    settings: Settings
    request: Request
    # The outputs the response carries; None: all of them. A signature may skip the work of
    # the others (the generator encodes no PNG for a request that does not ask for ``png``).
    outputs: frozenset[str] | None = None

    def wants(self, output: str) -> bool:
        """Whether the response carries ``output``."""
        return self.outputs is None or output in self.outputs


Tensors = dict[str, np.ndarray]


def image_shape(model: LoadedModel) -> tuple[int, ...]:
    """[H, W, C] of the model's images."""
    return (model.resolution, model.resolution, model.channels)


def row_count(array: np.ndarray, name: str, trailing: tuple[int, ...], limit: int) -> int:
    """N of a tensor that must be [N, *trailing] with 1 <= N <= ``limit``."""
    if array.shape[1:] != trailing or array.ndim == 0:
        expected = ", ".join(["N", *map(str, trailing)])
        raise InvalidRequest(f"input {name!r} has shape {list(array.shape)}; it takes [{expected}]")
    if not 1 <= len(array) <= limit:
        raise InvalidRequest(
            f"input {name!r} has {len(array)} rows; give 1 to {limit} (GAN_MAX_IMAGES_PER_REQUEST)"
        )
    return len(array)


def same_rows(tensors: Tensors, names: Iterable[str], rows: int) -> None:
    for name in names:
        if name in tensors and len(tensors[name]) != rows:
            raise InvalidRequest(
                f"input {name!r} has {len(tensors[name])} rows, the images {rows}; give one per "
                "image"
            )


def one_of(tensors: Tensors, names: tuple[str, str]) -> str:
    given = [name for name in names if name in tensors]
    if len(given) != 1:
        raise InvalidRequest(
            f"give exactly one of the inputs {names[0]!r} or {names[1]!r}"
            + (" (got both)" if given else "")
        )
    return given[0]


def class_list(tensor: np.ndarray | None, rows: int) -> list[int] | None:
    """``class_label`` [rows] or [1] as a list (None when not given)."""
    if tensor is None:
        return None
    if tensor.ndim != 1 or len(tensor) not in (1, rows):
        raise InvalidRequest(
            f"input 'class_label' has shape {list(tensor.shape)}; give [{rows}] (one class "
            "per row) or [1] (one for all)"
        )
    labels: list[int] = tensor.tolist()
    return labels


def scalar_value(tensor: np.ndarray | None, name: str) -> float | None:
    if tensor is None:
        return None
    if tensor.shape != (1,):
        raise InvalidRequest(f"input {name!r} has shape {list(tensor.shape)}; it takes [1]")
    return float(tensor[0])


def png_tensor(pngs: list[bytes]) -> np.ndarray:
    array = np.empty(len(pngs), object)
    array[:] = pngs
    return array


def required(tensors: Tensors, name: str) -> np.ndarray:
    if name not in tensors:
        raise InvalidRequest(f"input {name!r} is required")
    return tensors[name]


def observed_masks(tensors: Tensors, model: LoadedModel, rows: int) -> np.ndarray:
    """``masks`` [rows, R, R] as 0/1 (every pixel observed when not given)."""
    side = model.resolution
    masks = tensors.get("masks")
    if masks is None:
        return np.ones((rows, side, side), np.uint8)
    row_count(masks, "masks", (side, side), rows)
    same_rows(tensors, ["masks"], rows)
    try:
        return check_mask(masks, side)
    except MaskError as error:
        raise InvalidRequest(f"input 'masks': {error}") from None


def conditional(model: LoadedModel, spec: TensorSpec) -> list[TensorSpec]:
    """``spec`` for a conditional model, nothing for an unconditional one (it refuses it)."""
    return [spec] if model.num_classes > 0 else []


# The class of each row, an input and an output of the same name and kind.
CLASS_LABEL = TensorSpec("class_label", "INT32", (-1,))


def check_inputs(names: list[str], specs: dict[str, TensorSpec], model_name: str) -> None:
    """400 for an input ``model_name`` does not take, or one given twice."""
    for name in names:
        if name not in specs:
            raise InvalidRequest(
                f"{model_name} has no input {name!r}; its inputs are {', '.join(specs)}"
            )
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise InvalidRequest(f"input(s) {', '.join(map(repr, repeated))} given more than once")


def describe(specs: list[TensorSpec]) -> list[dict[str, Any]]:
    """v2's metadata of tensors: name, datatype and shape."""
    return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in specs]
