"""``POST /generate`` (images from seeds, noise or a count) and ``GET /generate`` (one
cacheable image from a seed).

Routes do validation and HTTP; the model calls go through
:class:`service.engine.engine.InferenceEngine` (batched), grids through :mod:`service.imaging` in
the app's codec threads. The plain JSON ``POST /generate`` reaches :func:`generate` through
:class:`service.api.shortcut.GenerateShortcut`, which skips FastAPI's routing for it.

Both answer PNG, WebP or JPEG: the request's ``format``, else what its ``Accept`` header prefers
(:mod:`service.api.negotiation`). The format is carried with the request's rows to the batch's
encoding, never a second model call: requests of every format share batches.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from gan_contract.errors import ContractError
from gan_contract.grid import make_grid
from gan_contract.seeds import MAX_SEED, parse_seeds
from service.api.class_labels import labels_or_rows
from service.api.dependencies import (
    ERRORS,
    NOT_ACCEPTABLE,
    EngineDep,
    SettingsDep,
    check_psi,
    in_codec_pool,
    json_content,
    log_model,
    noise_rows,
)
from service.api.negotiation import choose_encoding
from service.api.schemas import (
    CLASS_TEXT,
    FORMAT_TEXT,
    LEVEL_TEXT,
    PSI_TEXT,
    QUALITY_TEXT,
    GeneratedImage,
    GenerateRequest,
    GenerateResponse,
    ImageFormat,
)
from service.errors import InvalidRequest
from service.imaging import MEDIA_TYPES, Encoding
from service.repository.repository import LoadedModel

router = APIRouter()

IMMUTABLE = "public, max-age=31536000, immutable"
# Without a version in the URL, a hot reload may change the image behind it: revalidate (a 304).
REVALIDATE = "public, no-cache"


# Image answers: every image media type a route may send (the format is chosen per request).
IMAGE_CONTENT: dict[str, dict[str, object]] = {
    media_type: {} for media_type in MEDIA_TYPES.values()
}


def _etag(model: LoadedModel, seed: int, psi: float, label: int, encoding: Encoding) -> str:
    """A weak ETag of the request's image in ``encoding``, known without computing it.

    Weak (``W/``) because two replicas, or two batch shapes, may render the same image a grey
    level apart (gan_contract.reproducibility): the representations are equivalent, not
    byte-identical, which is exactly what a weak validator states (RFC 9110, 8.8.1). The format
    and its parameter are part of it: a WebP and a PNG of one image are different
    representations. (A PNG's key is as before formats existed, so its ETags did not change.)
    """
    form = str(encoding.level) if encoding.format == "png" else encoding.format
    if encoding.format != "png":
        form += f":{encoding.quality}"
    key = f"{model.name}/{model.version}/{seed}/{np.float32(psi)!r}/{label}/{form}"
    return 'W/"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match's weak comparison: the opaque tags match, with or without ``W/``."""
    if not header:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag.removeprefix("W/") in candidates


def _one_seed(request: Request) -> None:
    """The same message as POST for a range or list in GET's ``seed`` (one image per GET)."""
    value = request.query_params.get("seed", "")
    if not re.fullmatch(r"[\d\s,-]*[,-][\d\s,-]*", value):
        return  # a plain integer, or not seed syntax at all: FastAPI's validation answers
    hint = "GET /generate makes one image from one seed; POST /generate takes a list or a range"
    try:
        parse_seeds(value, 1)
    except ContractError as exc:
        raise InvalidRequest(f"{exc}; {hint}") from None
    raise InvalidRequest(f"seed: give one integer, not {value!r}; {hint}")


def _psi_alias(request: Request, truncation_psi: float) -> float:
    """``truncation_psi``, or its alias ``psi`` (the short name of earlier GET URLs)."""
    alias = request.query_params.get("psi")
    if alias is None:
        return truncation_psi
    if "truncation_psi" in request.query_params:
        raise InvalidRequest("give truncation_psi or its alias psi, not both")
    try:
        return float(alias)
    except ValueError:
        raise InvalidRequest(f"truncation_psi (psi) must be a number, not {alias!r}") from None


@router.get(
    "/generate",
    tags=["generate"],
    summary="One image from a seed (cacheable)",
    response_class=Response,
    dependencies=[Depends(_one_seed)],
    responses={
        200: {
            "content": IMAGE_CONTENT,
            "description": "the image: PNG, WebP or JPEG (format, else the Accept header)",
        },
        304: {"description": "not modified (If-None-Match matched the ETag)"},
        **ERRORS,
        **NOT_ACCEPTABLE,
    },
    openapi_extra={"x-query-aliases": {"psi": "truncation_psi"}},
)
async def generate_one(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    seed: Annotated[int, Query(ge=0, le=MAX_SEED, description="Seed in 0..2**32-1")] = 0,
    truncation_psi: Annotated[
        float, Query(description=PSI_TEXT + " Alias: psi (give one of the two).")
    ] = 1.0,
    class_label: Annotated[int | None, Query(description=CLASS_TEXT)] = None,
    model: Annotated[
        str | None, Query(description="Model name; default: the default model")
    ] = None,
    version: Annotated[
        int | None, Query(description="Model version; default: the served one")
    ] = None,
    image_format: Annotated[
        ImageFormat | None, Query(alias="format", description=FORMAT_TEXT)
    ] = None,
    quality: Annotated[int | None, Query(ge=1, le=100, description=QUALITY_TEXT)] = None,
    compress_level: Annotated[int | None, Query(ge=0, le=9, description=LEVEL_TEXT)] = None,
) -> Response:
    """One image, named by the same parameters as POST /generate (one seed). With ``version``
    in the query the same URL gives the same image forever (``Cache-Control: immutable``);
    without it the ETag lets caches revalidate cheaply (304). ``psi`` is accepted as an alias
    of ``truncation_psi``; any other unknown query parameter is a 422 that names it. The image
    is a PNG unless ``format`` or the Accept header asks for WebP or JPEG (``Vary: Accept``)."""
    chosen = engine.repository.get(model, version)
    log_model(request, chosen, 1)
    psi = check_psi(_psi_alias(request, truncation_psi), settings)
    labels = labels_or_rows(class_label, chosen, [seed])
    encoding = choose_encoding(
        image_format, quality, compress_level, request.headers.get("accept"), settings
    )
    etag = _etag(chosen, seed, psi, int(labels[0]), encoding)
    cache = IMMUTABLE if version is not None else REVALIDATE
    headers = {"ETag": etag, "Cache-Control": cache, "X-Seeds": str(seed), "Vary": "Accept"}
    headers["X-Model"] = f"{chosen.name}/{chosen.version}"
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    engine.check_room(chosen, "generate", 1)  # a revalidation (304) needs no room
    _, files = await engine.generate_seeds(chosen, [seed], labels, psi, encoding)
    return Response(files[0], media_type=encoding.media_type, headers=headers)


def _grid(images: np.ndarray, encoding: Encoding) -> bytes:
    # The contract's layout: gan-sample --grid draws the same picture of the same images.
    return encoding.encode(make_grid(images))


@router.post(
    "/generate",
    dependencies=[Depends(json_content)],
    tags=["generate"],
    summary="Images from seeds, noise or a count",
    response_class=Response,
    responses={
        200: {
            "content": {
                **IMAGE_CONTENT,
                "application/json": {"schema": {"$ref": "#/components/schemas/GenerateResponse"}},
            },
            "description": "an image, PNG, WebP or JPEG (response=png or grid; format, else the "
            "Accept header), or JSON (response=json)",
            "model": GenerateResponse,
        },
        **ERRORS,
        **NOT_ACCEPTABLE,
    },
)
async def generate(
    body: GenerateRequest, request: Request, engine: EngineDep, settings: SettingsDep
) -> Response:
    """Generate images. The seed of every image is in the ``X-Seeds`` header (and the JSON).
    The images are PNGs unless ``format`` or the Accept header asks for WebP or JPEG."""
    chosen = engine.repository.get(body.model, body.version)
    psi = check_psi(body.truncation_psi, settings)
    # Before any work: a 406 costs nothing. JSON answers carry their images' media type, so
    # Accept chooses their format as it does an image's.
    encoding = choose_encoding(
        body.format, body.quality, body.compress_level, request.headers.get("accept"), settings
    )
    limit = settings.max_images_per_request
    seeds: list[int] | None
    z: np.ndarray | None = None
    if body.noise is not None:
        z = noise_rows(body.noise, chosen, limit)
        seeds = None
        rows = list(range(len(z)))
    else:
        if body.count is not None:
            if body.count > limit:
                raise InvalidRequest(f"count is {body.count}; at most {limit} per request")
            seeds = [secrets.randbelow(MAX_SEED + 1) for _ in range(body.count)]
        elif isinstance(body.seeds, str):
            if len(body.seeds) > settings.max_seed_string_length:
                raise InvalidRequest(
                    f"seeds string longer than {settings.max_seed_string_length} characters"
                )
            try:
                seeds = parse_seeds(body.seeds, limit)
            except ContractError as error:
                raise InvalidRequest(str(error)) from None
        else:
            seeds = list(body.seeds or [])
            if not seeds:
                raise InvalidRequest("seeds is empty; give at least one seed")
            if len(seeds) > limit:
                raise InvalidRequest(f"{len(seeds)} seeds; at most {limit} per request")
        engine.check_room(chosen, "generate", len(seeds))  # before the costlier work
        rows = seeds
    if body.response == "png" and len(rows) != 1:
        raise InvalidRequest(
            f"response=png returns one image but {len(rows)} were asked for; "
            "use response=grid or response=json"
        )
    labels = labels_or_rows(body.class_label, chosen, rows)
    log_model(request, chosen, len(rows))
    # A grid is encoded whole, from the pixels: its rows need no files of their own.
    one_by_one = body.response != "grid"
    if z is None:  # the seeds' noise is drawn in the model's thread
        images, files = await engine.generate_seeds(chosen, rows, labels, psi, encoding, one_by_one)
    else:
        images, files = await engine.generate(chosen, z, labels, psi, one_by_one, encoding)
    headers = {"X-Model": f"{chosen.name}/{chosen.version}"}
    if body.format is None:
        headers["Vary"] = "Accept"
    if seeds is not None:
        headers["X-Seeds"] = ",".join(map(str, seeds))
    if body.response == "png":
        return Response(files[0], media_type=encoding.media_type, headers=headers)
    if body.response == "grid":
        grid = await in_codec_pool(request, _grid, images, encoding)
        return Response(grid, media_type=encoding.media_type, headers=headers)
    conditional = chosen.num_classes > 0
    payload = GenerateResponse(
        model=chosen.name,
        version=chosen.version,
        truncation_psi=psi,
        images=[
            GeneratedImage(
                seed=seeds[i] if seeds is not None else None,
                class_label=int(labels[i]) if conditional else None,
                media_type=encoding.media_type,
                image_base64=text,
                png_base64=text if encoding.format == "png" else None,
            )
            for i, text in enumerate(base64.b64encode(f).decode("ascii") for f in files)
        ],
    )
    return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
