"""HTTP routes: ``router`` (operations) and ``model_router`` (generate, score, models).

The two routers are separate so that an authentication dependency can be put on the model
routes alone (``app.include_router(model_router, dependencies=[...])``) while health checks and
metrics stay open. Routes do validation and HTTP (their dependencies are in
:mod:`service.dependencies`); the work happens in :class:`service.inference.InferenceEngine`
(model calls, batched), :mod:`service.imaging` (PNG work, in the app's codec thread pool) and
:mod:`service.uploads` (reading score uploads).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from gan_contract.errors import ContractError
from gan_contract.grid import make_grid
from gan_contract.seeds import MAX_SEED, parse_seeds
from service import imaging
from service.class_labels import int_or_none, parse_class_label, per_image
from service.dependencies import (
    ERRORS,
    EngineDep,
    SettingsDep,
    in_codec_pool,
    json_content,
)
from service.errors import InvalidRequest
from service.inference import InferenceEngine, real_percentiles
from service.model_repository import LoadedModel
from service.request_bodies import SCORE_BODY
from service.schemas import (
    CLASS_TEXT,
    PSI_TEXT,
    GeneratedImage,
    GenerateRequest,
    GenerateResponse,
    ImageScore,
    ModelDetail,
    ModelList,
    ModelSummary,
    ScoreRequest,
    ScoreResponse,
)
from service.settings import Settings
from service.uploads import UploadForm, check_query, decode_all, read_upload

router = APIRouter()
model_router = APIRouter()

IMMUTABLE = "public, max-age=31536000, immutable"
# Without a version in the URL, a hot reload may change the image behind it: revalidate (a 304).
REVALIDATE = "public, no-cache"


# --- operations -----------------------------------------------------------------------------


@router.get(
    "/healthz",
    tags=["operations"],
    summary="Liveness: the process is up and can serve",
    responses={503: ERRORS[503]},
)
async def healthz(request: Request) -> JSONResponse:
    """200 while the process can serve; 503 once a model's batch queue stopped after an internal
    error (it refuses every request from then on), so that the orchestrator restarts the replica."""
    broken = _broken_queues(getattr(request.app.state, "engine", None))
    if broken:
        return JSONResponse({"error": "unavailable", "detail": broken}, 503)
    return JSONResponse({"status": "ok"})


def _broken_queues(engine: InferenceEngine | None) -> str | None:
    """Which batch queues stopped after an internal error (they refuse every request), or None."""
    broken = engine.broken_batchers() if engine is not None else []
    if not broken:
        return None
    return f"the batch queue of {', '.join(broken)} stopped after an internal error"


@router.get(
    "/readyz",
    tags=["operations"],
    summary="Readiness: every model loaded and warmed up",
    responses={503: ERRORS[503]},
)
async def readyz(request: Request) -> JSONResponse:
    """200 once every model is loaded and warmed up; 503 before that and while draining."""
    if not getattr(request.app.state, "ready", False):
        return JSONResponse(
            {"error": "unavailable", "detail": "not ready"}, 503, headers={"Retry-After": "1"}
        )
    engine: InferenceEngine = request.app.state.engine
    broken = _broken_queues(engine)
    if broken:  # those models refuse every request: take the replica out of rotation
        return JSONResponse(
            {"error": "unavailable", "detail": broken}, 503, headers={"Retry-After": "1"}
        )
    served = {m.name: m.version for m in engine.repository.all()}
    return JSONResponse({"status": "ready", "models": served})


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)


# --- models ---------------------------------------------------------------------------------


def _summary(engine: InferenceEngine, name: str) -> dict[str, Any]:
    repo = engine.repository
    model = repo.get(name)
    return {
        "name": name,
        "default": name == repo.default_model,
        "served_versions": sorted(repo.models[name]),
        "available_versions": list(repo.available.get(name, [])),
        "z_dim": model.z_dim,
        "resolution": model.resolution,
        "channels": model.channels,
        "num_classes": model.num_classes,
    }


@model_router.get(
    "/v1/models", tags=["models"], response_model=ModelList, responses={401: ERRORS[401]}
)
async def list_models(engine: EngineDep) -> ModelList:
    """Every served model with its versions."""
    return ModelList(
        models=[ModelSummary(**_summary(engine, n)) for n in sorted(engine.repository.models)]
    )


@model_router.get(
    "/v1/models/{name}",
    tags=["models"],
    response_model=ModelDetail,
    responses={code: ERRORS[code] for code in (401, 404)},
)
async def get_model(name: str, engine: EngineDep) -> ModelDetail:
    """One model: its versions and the served version's ``model.json``."""
    summary = _summary(engine, name)
    return ModelDetail(**summary, metadata=engine.repository.get(name).meta)


# --- generate -------------------------------------------------------------------------------


def _check_psi(psi: float, settings: Settings) -> float:
    low, high = settings.min_truncation_psi, settings.max_truncation_psi
    if not math.isfinite(psi) or not low <= psi <= high:
        raise InvalidRequest(f"truncation_psi must be a finite number in [{low}, {high}]")
    return float(psi)


def _labels(
    class_label: int | list[int] | None, model: LoadedModel, rows: Sequence[int]
) -> np.ndarray:
    """int32 labels of ``len(rows)`` images by the rule of :mod:`service.class_labels`; without
    a class, each row (seed or index) modulo the number of classes."""
    default = [row % max(model.num_classes, 1) for row in rows]
    labels = per_image(class_label, model, len(rows), default)
    assert labels is not None  # a default was given
    return labels


def _log_model(request: Request, model: LoadedModel, images: int) -> None:
    """Name the model version and image count in the request's log line (service.logs)."""
    request.state.model = f"{model.name}/{model.version}"
    request.state.images = images


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


@model_router.get(
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
    _log_model(request, chosen, 1)
    psi = _check_psi(_psi_alias(request, truncation_psi), settings)
    labels = _labels(class_label, chosen, [seed])
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


@model_router.post(
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
    psi = _check_psi(body.truncation_psi, settings)
    limit = settings.max_images_per_request
    seeds: list[int] | None
    z: np.ndarray | None = None
    if body.noise is not None:
        try:
            z = np.asarray(body.noise, dtype=np.float64)
        except ValueError:  # rows of different lengths
            z = np.empty((0, 0))
        if z.ndim != 2 or z.shape[1] != chosen.z_dim or len(z) == 0:
            raise InvalidRequest(
                f"noise must be a list of vectors of length z_dim={chosen.z_dim} "
                f"for model {chosen.name!r}"
            )
        if len(z) > limit:
            raise InvalidRequest(f"noise has {len(z)} vectors; at most {limit} per request")
        if not np.all(np.isfinite(z)) or np.any(np.abs(z) > 1e4):
            raise InvalidRequest("noise must hold finite numbers (|value| <= 10000)")
        z = z.astype(np.float32)
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
    labels = _labels(body.class_label, chosen, rows)
    _log_model(request, chosen, len(rows))
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


# --- score ----------------------------------------------------------------------------------


SCORE_QUERY = "for a raw image/* body (a form or JSON field of the same name wins)"
SCORE_FORM = UploadForm(
    files=("images",),
    fields=("class_label", "model", "version"),
    json=ScoreRequest,
)


@model_router.post(
    "/score",
    tags=["score"],
    summary="The discriminator's judgement of images",
    response_model=ScoreResponse,
    responses=ERRORS,
    openapi_extra=SCORE_BODY,
)
async def score(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    class_label: Annotated[
        int | None, Query(description=f"{CLASS_TEXT} Query parameter {SCORE_QUERY}.")
    ] = None,
    model: Annotated[str | None, Query(description=f"Model name, {SCORE_QUERY}.")] = None,
    version: Annotated[int | None, Query(description=f"Model version, {SCORE_QUERY}.")] = None,
) -> ScoreResponse:
    """Score images sent as multipart files, a raw ``image/*`` body or JSON base64.

    Each image is converted to the model's channels and resized to its resolution (both in the
    answer). For a raw body, give ``class_label``, ``model`` and ``version`` as query parameters;
    a form field or a JSON body field of the same name wins over the query (both are checked).
    A conditional model judges each image as the ``class_label`` given; without one, as every
    class, and the answer reports the class with the highest logit.
    """
    check_query(engine.repository, class_label, model, version)
    upload = await read_upload(request, settings, SCORE_FORM)
    uploads = upload.files["images"]
    if not uploads:
        raise InvalidRequest("no image received; send at least one non-empty image")
    raw_label, raw_model, raw_version = (
        upload.fields.get(name) for name in ("class_label", "model", "version")
    )
    chosen = engine.repository.get(raw_model or None, int_or_none(raw_version, "version"))
    _log_model(request, chosen, len(uploads))
    given = parse_class_label(raw_label)
    every_class = chosen.num_classes > 0 and given is None
    count = len(uploads)
    if every_class:
        # Each image once per class: labels 0..K-1 for the first image, then the next, ...
        rows = count * chosen.num_classes
        if rows > settings.max_enqueued:
            raise InvalidRequest(
                f"scoring {count} images as each of {chosen.num_classes} classes is {rows} model "
                f"rows, over the limit of {settings.max_enqueued}; give class_label"
            )
        labels = np.tile(np.arange(chosen.num_classes, dtype=np.int32), count)
    else:
        rows = count
        labels = _labels(given, chosen, list(range(count)))
    engine.check_room(chosen, "score", rows)  # before decoding the images
    with engine.using(chosen):  # a hot reload waits for this request, decoding included
        images, sizes = await in_codec_pool(request, decode_all, uploads, settings, chosen)
        if every_class:
            images = np.repeat(images, chosen.num_classes, axis=0)
        logits = await engine.score(chosen, images, labels)
    if every_class:
        per_class = logits.reshape(count, chosen.num_classes)
        judged = per_class.argmax(axis=1)
        logits = per_class[np.arange(count), judged]
        labels = judged.astype(np.int32)
    percentiles = real_percentiles(chosen, logits)
    conditional = chosen.num_classes > 0
    return ScoreResponse(
        model=chosen.name,
        version=chosen.version,
        resolution=chosen.resolution,
        channels=chosen.channels,
        scores=[
            ImageScore(
                index=i,
                filename=uploads[i][0],
                class_label=int(labels[i]) if conditional else None,
                logit=float(logits[i]),
                real_percentile=None if percentiles is None else float(percentiles[i]),
                original_size=sizes[i],
            )
            for i in range(count)
        ],
    )
