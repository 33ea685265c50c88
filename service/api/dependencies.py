"""Shared pieces of the HTTP routes: FastAPI dependencies and the documented error answers.

Usage (in a route)::

    async def route(engine: EngineDep, settings: SettingsDep) -> ...:
        png = await in_codec_pool(request, encode, image)

``get_engine`` answers 503 while the service is starting or stopping (not while it drains),
``json_content`` answers 415 for a body not declared JSON, ``known_query_only`` answers 422 for
a query parameter the route does not take (naming it) or one given twice, and ``ERRORS``
documents every error status in the OpenAPI document. ``check_psi`` and ``noise_rows`` are the
checks of ``truncation_psi`` and ``noise`` that every route generating images shares (the
classes are :mod:`service.api.class_labels`).

A route that accepts an alias of one of its query parameters lists it in its OpenAPI extension
``x-query-aliases`` (``openapi_extra={"x-query-aliases": {"psi": "truncation_psi"}}``), which
documents the alias and lets ``known_query_only`` accept it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import Depends, Request

from service.api.media_types import is_json, media_type
from service.api.schemas import ErrorBody
from service.engine.engine import InferenceEngine
from service.errors import InvalidRequest, Unavailable, UnsupportedMediaType, unknown_name_message
from service.repository.repository import LoadedModel
from service.settings import Settings

T = TypeVar("T")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "malformed body (JSON or multipart that cannot be parsed)",
        401: "missing or invalid API key (when GAN_API_KEYS is set)",
        404: "unknown model or version",
        408: "the request body arrived too slowly",
        413: "request or image too large",
        415: "unsupported media type",
        422: "invalid request (the detail says what to fix)",
        503: "queue full or not ready (Retry-After says when to retry)",
        504: "deadline passed while queued",
    }.items()
}
# The routes that choose an image format by the Accept header add this answer.
NOT_ACCEPTABLE: dict[int | str, dict[str, Any]] = {
    406: {
        "model": ErrorBody,
        "description": "the Accept header allows none of image/png, image/webp, image/jpeg "
        "(and no format was given)",
    }
}


# --- dependencies ---------------------------------------------------------------------------


# Dependencies are `async def`: FastAPI runs a plain `def` dependency in a worker thread,
# two thread hand-offs per request for what is an attribute lookup.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> InferenceEngine:
    """The inference engine, or 503 while the service is starting or stopping.

    A draining service (SIGTERM, see service.server.draining) is not ready but still serves: the
    load
    balancer takes it out on its readiness, and requests sent meanwhile must not fail.
    """
    engine: InferenceEngine | None = getattr(request.app.state, "engine", None)
    state = request.app.state
    if engine is None or not (state.ready or getattr(state, "draining", False)):
        raise Unavailable("the service is not ready; retry shortly")
    return engine


async def json_content(request: Request) -> None:
    """415 unless the body is declared JSON (:func:`service.api.media_types.is_json`: the types
    FastAPI parses as JSON)."""
    kind = media_type(request.headers.get("content-type"))
    if not is_json(kind):
        raise UnsupportedMediaType(
            f"unsupported Content-Type {kind or '(none)'!r}: send application/json"
        )


def query_aliases(request: Request) -> dict[str, str]:
    """The matched route's ``x-query-aliases``: alias -> canonical query parameter name."""
    extra = getattr(request.scope.get("route"), "openapi_extra", None) or {}
    aliases: dict[str, str] = extra.get("x-query-aliases", {})
    return aliases


async def known_query_only(request: Request) -> None:
    """422 naming every query parameter the matched route neither declares nor aliases, and
    every one given more than once."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = [param.alias for param in dependant.query_params]
    accepted = set(known) | set(query_aliases(request))
    unknown = sorted(set(request.query_params) - accepted)
    if unknown:
        owner = f"{request.method} {request.url.path}"
        raise InvalidRequest(
            "; ".join(unknown_name_message(n, "query parameter", known, owner) for n in unknown)
        )
    # No parameter of this API is a list: a repeated one would be read as one of its values.
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidRequest(
            f"query parameter(s) {', '.join(map(repr, repeated))} given more than once; give "
            "each once"
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[InferenceEngine, Depends(get_engine)]


async def in_codec_pool(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-bound image work in the app's codec threads, off the event loop."""
    pool: ThreadPoolExecutor = request.app.state.codec_pool
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


def check_psi(psi: float, settings: Settings) -> float:
    """``psi`` as a float, or 422 unless it is finite and in the settings' range."""
    low, high = settings.min_truncation_psi, settings.max_truncation_psi
    if not math.isfinite(psi) or not low <= psi <= high:
        raise InvalidRequest(f"truncation_psi must be a finite number in [{low}, {high}]")
    return float(psi)


# Largest magnitude of a noise value: far beyond any Gaussian latent (|z| < 10 in practice), and
# small enough that truncation and the generator's first layer stay finite in float32.
MAX_NOISE = 1e4


def noise_rows(noise: Sequence[Sequence[float]], model: LoadedModel, limit: int) -> np.ndarray:
    """float32 [N, z_dim] of a request's ``noise``, or 422 unless it holds 1 to ``limit``
    vectors of ``model``'s z_dim finite numbers (|value| <= :data:`MAX_NOISE`).

    The one check of noise for /generate and /animate, so that both say the same."""
    try:
        z = np.asarray(noise, dtype=np.float64)
    except ValueError:  # rows of different lengths
        z = np.empty((0, 0))
    if z.ndim != 2 or z.shape[1] != model.z_dim or len(z) == 0:
        raise InvalidRequest(
            f"noise must be a list of vectors of length z_dim={model.z_dim} "
            f"for model {model.name!r}"
        )
    if len(z) > limit:
        raise InvalidRequest(f"noise has {len(z)} vectors; at most {limit} per request")
    if not np.all(np.isfinite(z)) or np.any(np.abs(z) > MAX_NOISE):
        raise InvalidRequest(f"noise must hold finite numbers (|value| <= {MAX_NOISE:g})")
    return z.astype(np.float32)


def log_model(request: Request, model: LoadedModel, images: int) -> None:
    """Name the model version and image count in the request's log line
    (:mod:`service.http.request_log`)."""
    request.state.model = f"{model.name}/{model.version}"
    request.state.images = images
