"""Routes of partly observed images: ``POST /encode`` and ``POST /complete``.

Usage (service.app includes it beside the model routes, behind the same API key)::

    app.include_router(completion_router)   # behind the ApiKeys middleware when keys are configured

Both take JSON (:mod:`service.completion_schemas`): base64 images of the model's resolution
whose alpha channel marks missing pixels (alpha 0 = missing), or a separate mask image per
image (black = missing). ``/encode`` answers the encoder's latents, which ``POST /generate``
with ``noise`` turns back into images; ``/complete`` answers the completed images (observed
pixels kept, missing ones from the generator) after a bounded number of optimisation steps.
Both go through the model's batchers like /generate (queue limits, 503, 504 deadline, metrics).
A model exported without an encoder answers 404.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from PIL import Image

from gan_contract.grid import make_grid
from gan_contract.masks import MaskError, check_mask, mask_from_image, split_alpha
from service import completion_inference as ci
from service import imaging
from service.completion_schemas import (
    CompletedImage,
    CompleteRequest,
    CompleteResponse,
    EncodeRequest,
    EncodeResponse,
)
from service.dependencies import ERRORS, EngineDep, SettingsDep, in_codec_pool, json_content
from service.errors import InvalidRequest
from service.inference import InferenceEngine
from service.model_repository import LoadedModel
from service.settings import Settings

completion_router = APIRouter()


def _base64(items: list[str], field: str) -> list[bytes]:
    decoded = []
    for index, text in enumerate(items):
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{field}[{index}] is not valid base64") from None
        if not data:
            raise InvalidRequest(f"{field}[{index}] is empty")
        decoded.append(data)
    return decoded


def _decode_one(data: bytes, model: LoadedModel, what: str, channels: int) -> np.ndarray:
    """uint8 [R, R, channels] of an image that must be exactly the model's size.

    The size is read from the header first, so a large image is refused (422) undecoded.
    """
    side = model.resolution
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as peek:
                size: tuple[int, int] | None = peek.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        size = None  # not an image: decode_image says so (415)
    if size is not None and size != (side, side):
        raise InvalidRequest(
            f"{what} is {size[0]}x{size[1]} pixels; model {model.name!r} takes {side}x{side} images"
        )
    array, _ = imaging.decode_image(
        data, max_pixels=side * side, resolution=side, channels=channels
    )
    return array


def decode_partial(
    images: list[bytes], masks: list[bytes] | None, settings: Settings, model: LoadedModel
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, R, R, C] and masks [N, R, R] (1 = observed) of a request.

    Runs in the codec thread pool. Raises 422 for a wrong size or a fully missing image,
    413/415 as /score does for oversized or unreadable files.
    """
    if masks is not None and len(masks) != len(images):
        raise InvalidRequest(f"{len(masks)} masks for {len(images)} images; give one per image")
    arrays, mask_arrays = [], []
    for index, data in enumerate(images):
        arrays.append(_decode_one(data, model, f"images[{index}]", model.channels))
        mask: np.ndarray | None = None
        if masks is not None:
            _decode_one(masks[index], model, f"masks[{index}] (a mask of another size)", 1)
            with Image.open(io.BytesIO(masks[index])) as opened:  # decoded safely just above
                mask = mask_from_image(opened)
        else:
            with Image.open(io.BytesIO(data)) as opened:
                _, mask = split_alpha(opened)
        if mask is None:  # no alpha and no mask: every pixel is observed
            mask = np.ones((model.resolution, model.resolution), np.uint8)
        try:
            mask_arrays.append(check_mask(mask, model.resolution))
        except MaskError as error:
            raise InvalidRequest(f"images[{index}]: {error}") from None
    return np.stack(arrays), np.stack(mask_arrays)


def _labels(
    class_label: int | list[int] | None, model: LoadedModel, count: int, search: bool = False
) -> np.ndarray | None:
    """int32 labels of ``count`` images; None (with ``search``) when a conditional model got
    no class: every class is then tried."""
    if model.num_classes == 0:
        if class_label is not None:
            raise InvalidRequest(f"model {model.name!r} is unconditional; omit class_label")
        return np.zeros(count, np.int32)
    if class_label is None and search:
        return None
    if class_label is None:
        raise InvalidRequest(
            f"model {model.name!r} is conditional: give class_label in 0..{model.num_classes - 1}"
        )
    labels = [class_label] * count if isinstance(class_label, int) else list(class_label)
    if len(labels) != count:
        raise InvalidRequest(f"class_label has {len(labels)} entries for {count} images")
    if any(not 0 <= label < model.num_classes for label in labels):
        raise InvalidRequest(f"class_label must lie in 0..{model.num_classes - 1}")
    return np.array(labels, np.int32)


async def _inputs(
    body: EncodeRequest | CompleteRequest,
    request: Request,
    engine: EngineDep,
    settings: Settings,
    signature: str,
) -> tuple[LoadedModel, np.ndarray, np.ndarray, np.ndarray | None]:
    """The chosen model and the decoded images, masks and labels of a request (labels None:
    a /complete request for a conditional model without a class, completed in every class)."""
    chosen = engine.repository.get(body.model, body.version)
    ci.require(chosen, signature)
    limit = settings.max_images_per_request
    if len(body.images) > limit:
        raise InvalidRequest(f"{len(body.images)} images; at most {limit} per request")
    request.state.model = f"{chosen.name}/{chosen.version}"
    request.state.images = len(body.images)
    labels = _labels(body.class_label, chosen, len(body.images), search=signature == "complete")
    rows = len(body.images) * (chosen.num_classes if labels is None else 1)
    if rows > limit:
        raise InvalidRequest(
            f"without class_label every image is completed in each of the {chosen.num_classes} "
            f"classes: at most {limit // chosen.num_classes} images per request, or give "
            "class_label"
        )
    engine.check_room(chosen, signature, rows)  # before decoding
    images = _base64(body.images, "images")
    masks = _base64(body.masks, "masks") if body.masks is not None else None
    pixels, mask = await in_codec_pool(request, decode_partial, images, masks, settings, chosen)
    return chosen, pixels, mask, labels


@completion_router.post(
    "/encode",
    dependencies=[Depends(json_content)],
    tags=["complete"],
    summary="Latents of (partly observed) images",
    response_model=EncodeResponse,
    responses=ERRORS,
)
async def encode(
    body: EncodeRequest, request: Request, engine: EngineDep, settings: SettingsDep
) -> EncodeResponse:
    """The encoder's latent of each image; POST /generate with ``noise`` re-generates it."""
    model = engine.repository.get(body.model, body.version)
    with engine.using(model):  # a hot reload waits for this request, decoding included
        chosen, images, masks, labels = await _inputs(body, request, engine, settings, "encode")
        assert labels is not None  # only /complete searches the classes
        z = await ci.encode(engine, chosen, images, masks, labels)
    return EncodeResponse(
        model=chosen.name, version=chosen.version, latents=np.asarray(z, np.float64).tolist()
    )


async def _complete_every_class(
    engine: InferenceEngine, model: LoadedModel, images: np.ndarray, masks: np.ndarray, steps: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Complete each image in every class and keep, per image, the class whose completion is
    closest to the observed pixels; returns the kept outputs and their classes."""
    classes = model.num_classes
    labels = np.tile(np.arange(classes, dtype=np.int32), len(images))
    out = await ci.complete(
        engine, model, np.repeat(images, classes, 0), np.repeat(masks, classes, 0), labels, steps
    )
    best = np.asarray(out["observed_error"]).reshape(len(images), classes).argmin(axis=1)
    rows = np.arange(len(images)) * classes + best
    kept = {key: np.asarray(out[key])[rows] for key in ("images", "z", "observed_error")}
    kept["png"] = [out["png"][row] for row in rows]
    return kept, best.astype(np.int32)


@completion_router.post(
    "/complete",
    dependencies=[Depends(json_content)],
    tags=["complete"],
    summary="Fill in the missing pixels of images",
    response_class=Response,
    responses={
        200: {
            "content": {
                "image/png": {},
                "application/json": {"schema": {"$ref": "#/components/schemas/CompleteResponse"}},
            },
            "description": "a PNG (response=png or grid) or JSON (response=json)",
            "model": CompleteResponse,
        },
        **ERRORS,
    },
)
async def complete(
    body: CompleteRequest, request: Request, engine: EngineDep, settings: SettingsDep
) -> Response:
    """Complete images: the encoder's guess of z, refined by ``steps`` optimisation steps on
    the observed pixels, then the observed pixels kept and the missing ones generated."""
    model = engine.repository.get(body.model, body.version)
    ci.require(model, "complete")
    allowed = ci.max_steps(model, settings.max_complete_steps)
    steps = settings.complete_steps if body.steps is None else body.steps
    if steps > allowed:
        raise InvalidRequest(f"steps is {steps}; at most {allowed} per request")
    if body.response == "png" and len(body.images) != 1:
        raise InvalidRequest(
            f"response=png returns one image but {len(body.images)} were sent; "
            "use response=grid or response=json"
        )
    with engine.using(model):
        chosen, images, masks, labels = await _inputs(body, request, engine, settings, "complete")
        if labels is None:
            out, labels = await _complete_every_class(engine, chosen, images, masks, steps)
        else:
            out = await ci.complete(engine, chosen, images, masks, labels, steps)
    headers = {"X-Model": f"{chosen.name}/{chosen.version}"}
    level = settings.png_compress_level
    if body.response == "png":
        return Response(out["png"][0], media_type="image/png", headers=headers)
    if body.response == "grid":
        grid = await in_codec_pool(
            request, lambda: imaging.encode_png(make_grid(out["images"]), level)
        )
        return Response(grid, media_type="image/png", headers=headers)
    conditional = chosen.num_classes > 0
    payload = CompleteResponse(
        model=chosen.name,
        version=chosen.version,
        steps=steps,
        images=[
            CompletedImage(
                png_base64=base64.b64encode(png).decode("ascii"),
                latent=np.asarray(out["z"][i], np.float64).tolist(),
                observed_error=float(out["observed_error"][i]),
                observed_fraction=float(masks[i].mean()),
                class_label=int(labels[i]) if conditional else None,
            )
            for i, png in enumerate(out["png"])
        ],
    )
    return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
