"""The model card: ``model.json`` beside each exported SavedModel, its fields and their checks.

Usage::

    from gan_contract.model_card import read_model_card, validate_model_card

    meta = read_model_card(Path("models/mnist/1"))          # a validated dict
    validate_model_card(meta, complete=True)                 # what an export must write

:data:`FIELDS` lists every field with its JSON type and meaning (docs/model-format.md shows the
same table). Readers need only the fields marked ``required`` (an older export may lack the
others); an export writes them all, checked with ``complete=True``. Problems raise
:class:`ModelCardError` naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_contract.errors import ContractError

FILE_NAME = "model.json"


class ModelCardError(ContractError):
    """A ``model.json`` that is missing, not JSON, or breaks the schema; the message says where."""


@dataclass(frozen=True)
class Field:
    """One field of ``model.json``."""

    kind: type
    meaning: str
    required: bool = False  # readers refuse a card without it
    always: bool = True  # every export writes it (False: only some models have it)


FIELDS: dict[str, Field] = {
    "name": Field(str, "model name (the directory name)", True),
    "version": Field(int, "version (the directory name)", True),
    "z_dim": Field(int, "latent size", True),
    "resolution": Field(int, "image height = width", True),
    "channels": Field(int, "1 (grayscale) or 3 (RGB)", True),
    "num_classes": Field(int, "0 for an unconditional model", True),
    "class_names": Field(list, "one name per class (empty when unconditional)", True),
    "architecture": Field(str, "`dcgan` or `resnet`"),
    "loss": Field(str, "`nonsaturating`, `minimax`, `hinge` or `wgan-gp`"),
    "dataset": Field(str, "the `--dataset` spec trained on"),
    "steps": Field(int, "optimizer steps of the generator"),
    "images_seen": Field(int, "real images shown to the discriminator"),
    "training_options": Field(dict, "the resolved training options"),
    "command": Field(str, "the last command line that trained it (a resume's, after a resume)"),
    "commands": Field(list, "every command line that trained it, first to last"),
    "metrics": Field(dict, "evaluation metrics measured at export (may be empty)"),
    "calibration": Field(dict, "quantiles of D's logits (see below)", True),
    "created_at": Field(str, "ISO 8601 UTC time of export"),
    "project_version": Field(str, "version of this project that exported it"),
    "seed_convention": Field(str, "the seed rule, in words"),
    "run": Field(str, "the run directory's name (empty when exported from memory)"),
    "signatures": Field(
        list, "the SavedModel's signatures, sorted (older exports: generate, score)"
    ),
    "completion": Field(
        dict, "how `complete` refines a latent (models with an encoder)", always=False
    ),
}
CALIBRATION_FIELDS: dict[str, type] = {
    "quantile_levels": list,
    "real_logits": list,
    "generated_logits": list,
    "num_real": int,
    "num_generated": int,
}


def _is(value: Any, kind: type) -> bool:
    # JSON's true/false are Python bools, which are ints too: never accept them as numbers.
    return isinstance(value, kind) and not isinstance(value, bool)


def validate_model_card(
    meta: Any, where: str = FILE_NAME, complete: bool = False
) -> dict[str, Any]:
    """``meta`` when it follows the schema, else :class:`ModelCardError`.

    Checks the required fields (every field with ``complete``) and their types, the value ranges
    the service relies on (channels 1 or 3, positive sizes, one class name per class) and the
    calibration: ``quantile_levels`` and ``real_logits`` of equal length, or an empty
    ``real_logits`` for a model exported without held-out real images.
    """
    if not isinstance(meta, dict):
        raise ModelCardError(f"{where}: expected a JSON object")
    for key, field in FIELDS.items():
        present = key in meta
        needed = field.required or (complete and field.always)
        if (needed or present) and not _is(meta.get(key), field.kind):
            raise ModelCardError(
                f"{where}: key {key!r} is missing or not of type {field.kind.__name__}"
            )
    if meta["channels"] not in (1, 3):
        raise ModelCardError(f"{where}: channels must be 1 or 3, not {meta['channels']}")
    if meta["z_dim"] < 1 or meta["resolution"] < 1 or meta["num_classes"] < 0:
        raise ModelCardError(f"{where}: z_dim and resolution must be positive")
    if meta["num_classes"] and len(meta["class_names"]) != meta["num_classes"]:
        raise ModelCardError(
            f"{where}: {len(meta['class_names'])} class_names for {meta['num_classes']} classes"
        )
    calibration = meta["calibration"]
    for key, kind in CALIBRATION_FIELDS.items():
        needed = complete or key in ("quantile_levels", "real_logits")
        if needed and not _is(calibration.get(key), kind):
            raise ModelCardError(
                f"{where}: calibration.{key} is missing or not of type {kind.__name__}"
            )
    levels, real = calibration["quantile_levels"], calibration["real_logits"]
    # An empty real_logits is a model exported without held-out real images: no percentiles.
    if real and len(levels) != len(real):
        raise ModelCardError(
            f"{where}: calibration needs quantile_levels and real_logits of equal length"
        )
    return meta


def read_model_card(version_dir: Path) -> dict[str, Any]:
    """The validated ``model.json`` of a model version directory (required fields only)."""
    file = Path(version_dir) / FILE_NAME
    if not file.is_file():
        raise ModelCardError(f"{version_dir}: {FILE_NAME} is missing")
    try:
        meta = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"{file}: not valid JSON ({exc})") from exc
    return validate_model_card(meta, str(file))
