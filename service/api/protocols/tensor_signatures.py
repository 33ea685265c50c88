"""What each model signature takes and gives as named tensors, and how it runs on the engine:
the one meaning the protocol adapters (Open Inference Protocol v2, TensorFlow Serving REST)
translate their wire formats to.

Usage (in an adapter)::

    model, signature = resolve(engine.repository, "mnist.score", version=None)
    specs = signature.specs(model)     # specs.inputs["images"]: TensorSpec("images", "UINT8", ..)
    outputs = await signature.run(Call(engine, model, settings, request), {"images": array})

(``Call`` and ``TensorSpec`` live in :mod:`service.api.protocols.tensor_checks`, with the checks
every signature shares.)

The signatures (a v2 model name ``NAME`` is the generator; ``NAME.score``, ``NAME.encode`` and
``NAME.complete`` are the others; TF Serving names them by ``signature_name``):

- ``generate``: ``seed`` INT64 [N] or ``z`` FP32 [N, z_dim]; ``class_label`` INT32 [N] or [1]
  (conditional models only; default: the seed, or the row, modulo the number of classes);
  ``truncation_psi`` FP32 [1] (default 1). Outputs ``images`` UINT8 [N, H, W, C] and, named in
  the request, ``png`` BYTES [N] (encoded only then: :attr:`Call.outputs`).
- ``score``: ``images`` UINT8 [N, H, W, C] of the model's size, or ``png`` BYTES [N] (image files,
  prepared as ``POST /score`` prepares uploads); ``class_label``. Outputs ``logits`` FP32 [N],
  ``real_percentile`` FP32 [N] (models with a calibration of real images) and ``class_label``
  INT32 [N] (conditional models: the class given, or without one the class judged most real).
- ``encode`` (models with an encoder): ``images``, ``masks`` UINT8 [N, H, W] (0 = missing;
  default: all observed), ``class_label`` (required by a conditional model). Output ``z``.
- ``complete`` (models with an encoder): ``images``, ``masks``, ``class_label`` (without one a
  conditional model tries every class and keeps the closest), ``steps`` INT32 [1]. Outputs
  ``images``, ``png`` (named in the request), ``z``, ``observed_error`` FP32 [N] and
  ``class_label``.

Each runs through the same engine method as the native route (``generate_seeds``, ``generate``,
``score``, ``encode``, ``complete``), so its requests share batches, queue limits, deadlines and
metrics with the native API's, and obey the same limits (``GAN_MAX_IMAGES_PER_REQUEST``, the psi
range, the steps). A rule broken is an :class:`~service.errors.InvalidRequest` that names the
tensor; the adapters answer it in their protocol's shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from gan_contract.seeds import MAX_SEED
from service.api.class_labels import labels_or_rows, per_image
from service.api.complete import max_steps
from service.api.dependencies import check_psi, in_codec_pool, log_model
from service.api.protocols.tensor_checks import (
    CLASS_LABEL,
    MAX_NOISE,
    Call,
    Tensors,
    TensorSpec,
    class_list,
    conditional,
    image_shape,
    observed_masks,
    one_of,
    png_tensor,
    required,
    row_count,
    scalar_value,
)
from service.api.score import best_class, score_rows
from service.api.uploads import decode_all
from service.engine.calls import require
from service.engine.engine import real_percentiles
from service.errors import InvalidRequest, NotFound, UnsupportedMediaType
from service.repository.repository import LoadedModel, ModelRepository
from service.settings import Settings


@dataclass(frozen=True)
class Specs:
    """A signature's tensors for one model: inputs and outputs by name, and the outputs sent
    when a request names none."""

    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    defaults: tuple[str, ...]


# Specs by (signature, load): built once per model load, not per request. Bounded: a service
# that hot-reloads for months makes a few entries per load.
_SPECS: dict[tuple[str, int], Specs] = {}
_MAX_SPECS = 256


@dataclass(frozen=True)
class Signature:
    """One signature as named tensors: what a model takes and gives, and how it is run."""

    name: str
    inputs: Callable[[LoadedModel], list[TensorSpec]]
    outputs: Callable[[LoadedModel], list[TensorSpec]]
    run: Callable[[Call, Tensors], Awaitable[Tensors]]
    # Outputs sent only when a request names them (PNG bytes; the generator computes them only
    # then, the completion always).
    on_request: frozenset[str] = field(default_factory=frozenset)
    optional: bool = False  # only models whose model.json lists it

    def specs(self, model: LoadedModel) -> Specs:
        """The inputs and outputs of this signature for ``model`` (cached per load)."""
        key = (self.name, model.generation)
        found = _SPECS.get(key)
        if found is None:
            if len(_SPECS) >= _MAX_SPECS:
                _SPECS.clear()
            outputs = self.outputs(model)
            found = _SPECS[key] = Specs(
                inputs={spec.name: spec for spec in self.inputs(model)},
                outputs={spec.name: spec for spec in outputs},
                defaults=tuple(s.name for s in outputs if s.name not in self.on_request),
            )
        return found


# --- generate ---------------------------------------------------------------------------------


def _generate_inputs(model: LoadedModel) -> list[TensorSpec]:
    return [
        TensorSpec("seed", "INT64", (-1,)),
        TensorSpec("z", "FP32", (-1, model.z_dim)),
        *conditional(model, CLASS_LABEL),
        TensorSpec("truncation_psi", "FP32", (1,)),
    ]


def _generated_outputs(model: LoadedModel) -> list[TensorSpec]:
    return [
        TensorSpec("images", "UINT8", (-1, *image_shape(model))),
        TensorSpec("png", "BYTES", (-1,)),
    ]


async def _generate(call: Call, tensors: Tensors) -> Tensors:
    model, settings, engine = call.model, call.settings, call.engine
    limit = settings.max_images_per_request
    source = one_of(tensors, ("seed", "z"))
    z: np.ndarray | None = None
    if source == "seed":
        count = row_count(tensors["seed"], "seed", (), limit)
        rows = tensors["seed"].tolist()
        if min(rows) < 0 or max(rows) > MAX_SEED:
            raise InvalidRequest(f"input 'seed': seeds are in 0..{MAX_SEED}")
    else:
        z = tensors["z"]
        count = row_count(z, "z", (model.z_dim,), limit)
        if not np.all(np.isfinite(z)) or np.any(np.abs(z) > MAX_NOISE):
            raise InvalidRequest(f"input 'z' must hold finite numbers (|value| <= {MAX_NOISE:g})")
        rows = list(range(count))
    labels = labels_or_rows(class_list(tensors.get("class_label"), count), model, rows)
    psi = scalar_value(tensors.get("truncation_psi"), "truncation_psi")
    psi = check_psi(1.0 if psi is None else psi, settings)
    engine.check_room(model, "generate", count)
    log_model(call.request, model, count)
    encode = call.wants("png")  # no PNG for a request that does not ask for it
    if z is None:
        images, pngs = await engine.generate_seeds(model, rows, labels, psi, encode=encode)
    else:
        images, pngs = await engine.generate(model, z, labels, psi, encode=encode)
    return {"images": images, "png": png_tensor(pngs)} if encode else {"images": images}


# --- score ------------------------------------------------------------------------------------


def _score_inputs(model: LoadedModel) -> list[TensorSpec]:
    return [
        TensorSpec("images", "UINT8", (-1, *image_shape(model))),
        TensorSpec("png", "BYTES", (-1,)),
        *conditional(model, CLASS_LABEL),
    ]


def _has_calibration(model: LoadedModel) -> bool:
    return bool(model.meta["calibration"]["real_logits"])


def _score_outputs(model: LoadedModel) -> list[TensorSpec]:
    percentile = [TensorSpec("real_percentile", "FP32", (-1,))] if _has_calibration(model) else []
    return [
        TensorSpec("logits", "FP32", (-1,)),
        *percentile,
        *conditional(model, CLASS_LABEL),
    ]


def _decode_files(files: np.ndarray, settings: Settings, model: LoadedModel) -> np.ndarray:
    """uint8 [N, R, R, C] of image files, prepared as ``POST /score`` prepares uploads."""
    try:
        images, _ = decode_all([(None, bytes(data)) for data in files], settings, model)
    except UnsupportedMediaType as error:  # the tensor's element, not the body, is no image
        raise InvalidRequest(f"input 'png': {error.message}") from None
    return images


async def _score(call: Call, tensors: Tensors) -> Tensors:
    model, settings, engine = call.model, call.settings, call.engine
    source = one_of(tensors, ("images", "png"))
    trailing = image_shape(model) if source == "images" else ()
    count = row_count(tensors[source], source, trailing, settings.max_images_per_request)
    given = class_list(tensors.get("class_label"), count)
    # Each image judged as every class when none is given, as POST /score does.
    rows, labels, every_class = score_rows(model, given, count, settings)
    engine.check_room(model, "score", rows)  # before decoding the files
    log_model(call.request, model, count)
    with engine.using(model):  # a hot reload waits for this request, decoding included
        images = tensors.get("images")
        if images is None:
            images = await in_codec_pool(
                call.request, _decode_files, tensors["png"], settings, model
            )
        if every_class:
            images = np.repeat(images, model.num_classes, axis=0)
        logits = await engine.score(model, images, labels)
    if every_class:
        logits, labels = best_class(logits, count, model.num_classes)
    outputs = {"logits": np.asarray(logits, np.float32), "class_label": labels.astype(np.int32)}
    percentiles = real_percentiles(model, logits)
    if percentiles is not None:
        outputs["real_percentile"] = percentiles.astype(np.float32)
    return outputs


# --- encode and complete ----------------------------------------------------------------------


def _masked_inputs(model: LoadedModel) -> list[TensorSpec]:
    side = model.resolution
    return [
        TensorSpec("images", "UINT8", (-1, *image_shape(model))),
        TensorSpec("masks", "UINT8", (-1, side, side)),
        *conditional(model, CLASS_LABEL),
    ]


def _encode_outputs(model: LoadedModel) -> list[TensorSpec]:
    return [TensorSpec("z", "FP32", (-1, model.z_dim))]


async def _encode(call: Call, tensors: Tensors) -> Tensors:
    model, engine = call.model, call.engine
    count = row_count(required(tensors, "images"), "images", image_shape(model), _limit(call))
    masks = observed_masks(tensors, model, count)
    labels = per_image(class_list(tensors.get("class_label"), count), model, count)
    if labels is None:
        raise InvalidRequest(
            f"model {model.name!r} is conditional: give class_label in 0..{model.num_classes - 1}"
        )
    engine.check_room(model, "encode", count)
    log_model(call.request, model, count)
    z = await engine.encode(model, tensors["images"], masks, labels)
    return {"z": np.asarray(z, np.float32)}


def _complete_inputs(model: LoadedModel) -> list[TensorSpec]:
    return [*_masked_inputs(model), TensorSpec("steps", "INT32", (1,))]


def _complete_outputs(model: LoadedModel) -> list[TensorSpec]:
    return [
        *_generated_outputs(model),
        TensorSpec("z", "FP32", (-1, model.z_dim)),
        TensorSpec("observed_error", "FP32", (-1,)),
        *conditional(model, CLASS_LABEL),
    ]


def _limit(call: Call) -> int:
    return call.settings.max_images_per_request


def _steps(call: Call, tensor: np.ndarray | None) -> int:
    given = scalar_value(tensor, "steps")
    if given is None:
        return call.settings.complete_steps
    most = max_steps(call.model, call.settings.max_complete_steps)
    if not 0 <= given <= most:
        raise InvalidRequest(f"input 'steps' is {int(given)}; give 0 to {most}")
    return int(given)


async def _complete(call: Call, tensors: Tensors) -> Tensors:
    model, engine = call.model, call.engine
    images = required(tensors, "images")
    count = row_count(images, "images", image_shape(model), _limit(call))
    masks = observed_masks(tensors, model, count)
    steps = _steps(call, tensors.get("steps"))
    labels = per_image(class_list(tensors.get("class_label"), count), model, count)
    classes = model.num_classes if labels is None else 1
    if count * classes > _limit(call):
        raise InvalidRequest(
            f"without class_label every image is completed in each of the {classes} classes: "
            f"at most {_limit(call) // classes} images per request, or give class_label"
        )
    if labels is None:  # every class, as POST /complete does; keep the closest to the pixels
        labels = np.tile(np.arange(classes, dtype=np.int32), count)
        images, masks = np.repeat(images, classes, 0), np.repeat(masks, classes, 0)
    engine.check_room(model, "complete", count * classes)
    log_model(call.request, model, count)
    out = await engine.complete(model, images, masks, labels, steps)
    error = np.asarray(out["observed_error"], np.float32)
    kept = np.arange(count) * classes + error.reshape(count, classes).argmin(axis=1)
    return {
        "images": np.asarray(out["images"])[kept],
        "png": png_tensor([out["png"][row] for row in kept]),
        "z": np.asarray(out["z"], np.float32)[kept],
        "observed_error": error[kept],
        "class_label": labels[kept].astype(np.int32),
    }


SIGNATURES: dict[str, Signature] = {
    signature.name: signature
    for signature in (
        Signature("generate", _generate_inputs, _generated_outputs, _generate, frozenset({"png"})),
        Signature("score", _score_inputs, _score_outputs, _score),
        Signature("encode", _masked_inputs, _encode_outputs, _encode, optional=True),
        Signature(
            "complete",
            _complete_inputs,
            _complete_outputs,
            _complete,
            frozenset({"png"}),
            optional=True,
        ),
    )
}
DEFAULT_SIGNATURE = "generate"


def signatures_of(model: LoadedModel) -> list[Signature]:
    """The signatures ``model`` serves: generate and score, and encode and complete when its
    ``model.json`` lists them."""
    return [s for s in SIGNATURES.values() if not s.optional or model.has(s.name)]


def signature_of(model: LoadedModel, name: str) -> Signature:
    """The signature ``name`` of ``model``; 404 when it has no such signature."""
    signature = SIGNATURES.get(name)
    if signature is None:
        raise NotFound(
            f"no signature {name!r}; the signatures are {', '.join(SIGNATURES)} (encode and "
            "complete for models exported with an encoder)"
        )
    if signature.optional:
        require(model, name)
    return signature


def version_number(name: str, text: str | None) -> int | None:
    """A version named in a URL (text) as the repository's integer; None: the served one.
    Versions are integers: any other text names no version (404)."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise NotFound(f"model {name!r} has no version {text!r} (versions are integers)")
    return int(text)


def resolve(
    repository: ModelRepository, name: str, version: str | None
) -> tuple[LoadedModel, Signature]:
    """The model version and signature a protocol's model name means: a served model's name is
    its generator; ``NAME.score``, ``NAME.encode``, ``NAME.complete`` (and ``NAME.generate``)
    are its other signatures. ``version``: as the URL gives it (None: the served one). 404 for
    an unknown name, version or signature."""
    number = version_number(name, version)
    if name in repository.models:
        return repository.get(name, number), SIGNATURES[DEFAULT_SIGNATURE]
    base, dot, suffix = name.rpartition(".")
    if dot and base in repository.models and suffix in SIGNATURES:
        model = repository.get(base, number)
        return model, signature_of(model, suffix)
    raise NotFound(
        f"unknown model {name!r}; served: {', '.join(sorted(repository.models))} (each also as "
        "NAME.score, and NAME.encode and NAME.complete with an encoder)"
    )
