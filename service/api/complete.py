"""Routes of partly observed images: ``POST /encode`` and ``POST /complete``.

Its ``router`` is listed in :mod:`service.api.registry` (protected by API keys).

Both take their images the three ways ``POST /score`` does (:mod:`service.api.uploads`): multipart
``images`` files with optional ``masks`` files and form fields, a raw ``image/*`` body with the
other fields in the query, or JSON (:mod:`service.api.schemas`) with base64 ``images``
and ``masks``. Images have the model's resolution; their alpha channel marks missing pixels
(alpha 0 = missing), or a separate mask image per image does (black = missing). ``/encode``
answers the encoder's latents, which ``POST /generate`` with ``noise`` turns back into images;
``/complete`` answers the completed images (observed pixels kept, missing ones from the
generator) after a bounded number of optimisation steps. Both go through the model's batchers
like /generate (queue limits, 503, 504 deadline, metrics). A model exported without an encoder
answers 404.
"""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from PIL import Image

from gan_contract.grid import make_grid
from gan_contract.masks import MaskError, check_mask, mask_from_image, split_alpha
from service import imaging
from service.api.class_labels import int_or_none, parse_class_label, per_image
from service.api.dependencies import ERRORS, EngineDep, SettingsDep, in_codec_pool
from service.api.request_bodies import partial_images_body
from service.api.schemas import (
    CLASS_TEXT,
    CompletedImage,
    CompleteRequest,
    CompleteResponse,
    EncodeRequest,
    EncodeResponse,
)
from service.api.uploads import Upload, UploadForm, check_query, read_upload
from service.engine.calls import require
from service.engine.engine import InferenceEngine
from service.errors import InvalidRequest
from service.repository.repository import LoadedModel
from service.settings import Settings

router = APIRouter()


def max_steps(model: LoadedModel, settings_max: int) -> int:
    """The most steps a request may ask of ``model``: the settings' and the model's limit."""
    completion = model.meta.get("completion")
    limit = completion.get("max_steps") if isinstance(completion, dict) else None
    return min(settings_max, limit) if isinstance(limit, int) else settings_max


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
    images: list[bytes],
    masks: list[bytes] | None,
    settings: Settings,
    model: LoadedModel,
    completing: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, R, R, C] and masks [N, R, R] (1 = observed) of a request.

    Runs in the codec thread pool. Raises 422 for a wrong size or a fully missing image, and
    when ``completing`` (``/complete``) for an image with no missing pixel; 413/415 as /score
    does for oversized or unreadable files.
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
        if completing and mask_arrays[-1].all():
            # Its "completion" would be the image itself: most likely a mistake (an image
            # saved without its alpha, a mask of the wrong colours), so say so.
            raise InvalidRequest(
                f"images[{index}] has no missing pixel: nothing to complete; mark the missing "
                "pixels with alpha 0 or send a mask (black = missing); POST /encode takes whole "
                "images"
            )
    return np.stack(arrays), np.stack(mask_arrays)


FIELDS = ("class_label", "model", "version")
ENCODE_FORM = UploadForm(
    files=("images", "masks"),
    fields=FIELDS,
    json=EncodeRequest,
)
COMPLETE_FORM = UploadForm(
    files=("images", "masks"),
    fields=(*FIELDS, "steps", "response"),
    json=CompleteRequest,
)
RESPONSES = ("png", "grid", "json")
QUERY = "for a raw image/* body (a form or JSON field of the same name wins)"


@dataclass
class PartialImages:
    """One request of either route, however it came: image files, optional masks, fields."""

    images: list[bytes]
    masks: list[bytes] | None
    class_label: int | list[int] | None
    model: str | None
    version: int | None
    steps: int | None = None
    response: str = "json"

    @classmethod
    def of(cls, upload: Upload) -> PartialImages:
        """The request in ``upload`` (see :func:`service.api.uploads.read_upload`), its fields
        checked: 422 for a field that is no integer, a negative steps, an unknown response."""
        images = [data for _, data in upload.files["images"]]
        if not images:
            raise InvalidRequest("no image received; send at least one image file as 'images'")
        masks = [data for _, data in upload.files["masks"]] or None
        fields = upload.fields
        steps = int_or_none(fields.get("steps"), "steps")
        if steps is not None and steps < 0:
            raise InvalidRequest(f"steps is {steps}; give 0 or more")
        response = str(fields.get("response") or "json")
        if response not in RESPONSES:
            raise InvalidRequest(f"response is {response!r}; give png, grid or json")
        return cls(
            images=images,
            masks=masks,
            class_label=parse_class_label(fields.get("class_label")),
            model=str(fields["model"]) if fields.get("model") else None,
            version=int_or_none(fields.get("version"), "version"),
            steps=steps,
            response=response,
        )


async def _inputs(
    body: PartialImages,
    request: Request,
    engine: EngineDep,
    settings: Settings,
    signature: str,
) -> tuple[LoadedModel, np.ndarray, np.ndarray, np.ndarray | None]:
    """The chosen model and the decoded images, masks and labels of a request (labels None:
    a /complete request for a conditional model without a class, completed in every class)."""
    chosen = engine.repository.get(body.model, body.version)
    require(chosen, signature)
    limit = settings.max_images_per_request
    request.state.model = f"{chosen.name}/{chosen.version}"
    request.state.images = len(body.images)
    labels = per_image(body.class_label, chosen, len(body.images))
    if labels is None and signature == "encode":
        raise InvalidRequest(
            f"model {chosen.name!r} is conditional: give class_label in 0..{chosen.num_classes - 1}"
        )
    rows = len(body.images) * (chosen.num_classes if labels is None else 1)
    if rows > limit:
        raise InvalidRequest(
            f"without class_label every image is completed in each of the {chosen.num_classes} "
            f"classes: at most {limit // chosen.num_classes} images per request, or give "
            "class_label"
        )
    engine.check_room(chosen, signature, rows)  # before decoding
    pixels, mask = await in_codec_pool(
        request, decode_partial, body.images, body.masks, settings, chosen, signature == "complete"
    )
    return chosen, pixels, mask, labels


# The query parameters of a raw image body (a form or JSON field of the same name wins).
QueryClass = Annotated[int | None, Query(description=f"{CLASS_TEXT} Query parameter {QUERY}.")]
QueryModel = Annotated[str | None, Query(description=f"Model name, {QUERY}.")]
QueryVersion = Annotated[int | None, Query(description=f"Model version, {QUERY}.")]


@router.post(
    "/encode",
    tags=["complete"],
    summary="Latents of (partly observed) images",
    response_model=EncodeResponse,
    responses=ERRORS,
    openapi_extra=partial_images_body("EncodeRequest"),
)
async def encode(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    class_label: QueryClass = None,
    model: QueryModel = None,
    version: QueryVersion = None,
) -> EncodeResponse:
    """The encoder's latent of each image; POST /generate with ``noise`` re-generates it.

    Send multipart ``images`` files (optional ``masks`` files, one per image) with form fields,
    one raw image body (``image/*`` or ``application/octet-stream``) whose alpha marks the
    missing pixels with the fields in the query, or JSON with base64 ``images`` (and ``masks``).
    """
    check_query(engine.repository, class_label, model, version)
    body = PartialImages.of(await read_upload(request, settings, ENCODE_FORM))
    served = engine.repository.get(body.model, body.version)
    with engine.using(served):  # a hot reload waits for this request, decoding included
        chosen, images, masks, labels = await _inputs(body, request, engine, settings, "encode")
        assert labels is not None  # only /complete searches the classes
        z = await engine.encode(chosen, images, masks, labels)
    return EncodeResponse(
        model=chosen.name, version=chosen.version, latents=np.asarray(z, np.float64).tolist()
    )


async def _complete_every_class(
    engine: InferenceEngine, model: LoadedModel, images: np.ndarray, masks: np.ndarray, steps: int
) -> tuple[dict[str, Any], np.ndarray]:
    """Complete each image in every class and keep, per image, the class of the lowest
    ``class_cost`` (the fit weighed with the encoder's class, docs/model-format.md), or, for a
    version exported without it, the class closest to the observed pixels; returns the kept
    outputs and their classes."""
    classes = model.num_classes
    labels = np.tile(np.arange(classes, dtype=np.int32), len(images))
    out = await engine.complete(
        model, np.repeat(images, classes, 0), np.repeat(masks, classes, 0), labels, steps
    )
    cost = out.get("class_cost", out["observed_error"])
    best = np.asarray(cost).reshape(len(images), classes).argmin(axis=1)
    rows = np.arange(len(images)) * classes + best
    kept = {key: np.asarray(out[key])[rows] for key in ("images", "z", "observed_error")}
    kept["png"] = [out["png"][row] for row in rows]
    return kept, best.astype(np.int32)


@router.post(
    "/complete",
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
    openapi_extra=partial_images_body("CompleteRequest"),
)
async def complete(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    class_label: QueryClass = None,
    steps: Annotated[int | None, Query(ge=0, description=f"Optimisation steps, {QUERY}.")] = None,
    response: Annotated[
        Literal["png", "grid", "json"] | None, Query(description=f"Answer, {QUERY}.")
    ] = None,
    model: QueryModel = None,
    version: QueryVersion = None,
) -> Response:
    """Complete images: the encoder's guess of z, refined by ``steps`` optimisation steps on
    the observed pixels, then the observed pixels kept and the missing ones generated. An image
    with no missing pixel is a 422 (nothing to complete).

    Send multipart ``images`` files (optional ``masks`` files, one per image) with form fields,
    one raw image body (``image/*`` or ``application/octet-stream``) whose alpha marks the
    missing pixels with the fields in the query, or JSON with base64 ``images`` (and ``masks``).
    """
    check_query(engine.repository, class_label, model, version)
    body = PartialImages.of(await read_upload(request, settings, COMPLETE_FORM))
    served = engine.repository.get(body.model, body.version)
    require(served, "complete")
    allowed = max_steps(served, settings.max_complete_steps)
    # The query's steps is checked even where a form or JSON field wins over it.
    for given in (steps, body.steps):
        if given is not None and given > allowed:
            raise InvalidRequest(f"steps is {given}; at most {allowed} per request")
    steps = settings.complete_steps if body.steps is None else body.steps
    if body.response == "png" and len(body.images) != 1:
        raise InvalidRequest(
            f"response=png returns one image but {len(body.images)} were sent; "
            "use response=grid or response=json"
        )
    with engine.using(served):
        chosen, images, masks, labels = await _inputs(body, request, engine, settings, "complete")
        if labels is None:
            out, labels = await _complete_every_class(engine, chosen, images, masks, steps)
        else:
            out = await engine.complete(chosen, images, masks, labels, steps)
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
