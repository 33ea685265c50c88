"""``POST /generate`` (images from seeds, noise or a count) and ``GET /generate`` (one
cacheable image from a seed).

Routes do validation and HTTP; the model calls go through
:class:`service.engine.engine.InferenceEngine` (batched), grids through :mod:`service.imaging` in
the app's codec threads. The plain JSON ``POST /generate`` reaches :func:`generate` through
:class:`service.api.shortcut.GenerateShortcut`, which skips FastAPI's routing for it.
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
from service import imaging
from service.api.class_labels import labels_or_rows
from service.api.dependencies import (
    ERRORS,
    EngineDep,
    SettingsDep,
    check_psi,
    in_codec_pool,
    json_content,
    log_model,
    noise_rows,
)
from service.api.schemas import (
    CLASS_TEXT,
    PSI_TEXT,
    GeneratedImage,
    GenerateRequest,
    GenerateResponse,
)
from service.errors import InvalidRequest
from service.repository.repository import LoadedModel

router = APIRouter()

IMMUTABLE = "public, max-age=31536000, immutable"
# Without a version in the URL, a hot reload may change the image behind it: revalidate (a 304).
REVALIDATE = "public, no-cache"


def _etag(model: LoadedModel, seed: int, psi: float, label: int, level: int) -> str:
    """A weak ETag of the request's image, known without computing it.

    Weak (``W/``) because two replicas, or two batch shapes, may render the same image a grey
    level apart (gan_contract.reproducibility): the representations are equivalent, not
    byte-identical, which is exactly what a weak validator states (RFC 9110, 8.8.1).
    """
    key = f"{model.name}/{model.version}/{seed}/{np.float32(psi)!r}/{label}/{level}"
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
        200: {"content": {"image/png": {}}, "description": "the PNG"},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
        **ERRORS,
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
) -> Response:
    """One image, named by the same parameters as POST /generate (one seed). With ``version``
    in the query the same URL gives the same image forever (``Cache-Control: immutable``);
    without it the ETag lets caches revalidate cheaply (304). ``psi`` is accepted as an alias
    of ``truncation_psi``; any other unknown query parameter is a 422 that names it."""
    chosen = engine.repository.get(model, version)
    log_model(request, chosen, 1)
    psi = check_psi(_psi_alias(request, truncation_psi), settings)
    labels = labels_or_rows(class_label, chosen, [seed])
    etag = _etag(chosen, seed, psi, int(labels[0]), settings.png_compress_level)
    cache = IMMUTABLE if version is not None else REVALIDATE
    headers = {"ETag": etag, "Cache-Control": cache, "X-Seeds": str(seed)}
    headers["X-Model"] = f"{chosen.name}/{chosen.version}"
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    engine.check_room(chosen, "generate", 1)  # a revalidation (304) needs no room
    _, pngs = await engine.generate_seeds(chosen, [seed], labels, psi)
    return Response(pngs[0], media_type="image/png", headers=headers)


def _grid_png(images: np.ndarray, level: int) -> bytes:
    # The contract's layout: gan-sample --grid draws the same picture of the same images.
    return imaging.encode_png(make_grid(images), level)


@router.post(
    "/generate",
    dependencies=[Depends(json_content)],
    tags=["generate"],
    summary="Images from seeds, noise or a count",
    response_class=Response,
    responses={
        200: {
            "content": {
                "image/png": {},
                "application/json": {"schema": {"$ref": "#/components/schemas/GenerateResponse"}},
            },
            "description": "a PNG (response=png or grid) or JSON (response=json)",
            "model": GenerateResponse,
        },
        **ERRORS,
    },
)
async def generate(
    body: GenerateRequest, request: Request, engine: EngineDep, settings: SettingsDep
) -> Response:
    """Generate images. The seed of every image is in the ``X-Seeds`` header (and the JSON)."""
    chosen = engine.repository.get(body.model, body.version)
    psi = check_psi(body.truncation_psi, settings)
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
    if z is None:  # the seeds' noise is drawn in the model's thread
        images, pngs = await engine.generate_seeds(chosen, rows, labels, psi)
    else:
        images, pngs = await engine.generate(chosen, z, labels, psi)
    headers = {"X-Model": f"{chosen.name}/{chosen.version}"}
    if seeds is not None:
        headers["X-Seeds"] = ",".join(map(str, seeds))
    level = settings.png_compress_level
    if body.response == "png":
        return Response(pngs[0], media_type="image/png", headers=headers)
    if body.response == "grid":
        png = await in_codec_pool(request, _grid_png, images, level)
        return Response(png, media_type="image/png", headers=headers)
    conditional = chosen.num_classes > 0
    payload = GenerateResponse(
        model=chosen.name,
        version=chosen.version,
        truncation_psi=psi,
        images=[
            GeneratedImage(
                seed=seeds[i] if seeds is not None else None,
                class_label=int(labels[i]) if conditional else None,
                png_base64=base64.b64encode(png).decode("ascii"),
            )
            for i, png in enumerate(pngs)
        ],
    )
    return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
