"""``POST /animate``: an animated WebP or GIF of a latent walk between key frames.

Its ``router`` is listed in :mod:`service.api.registry` (protected by API keys).

The key frames are seeds (their noise drawn as for /generate) or noise vectors; the frames in
between come from :func:`gan_contract.walks.walk`, the same maths as ``gan-sample --walk``. The
frames run through the model's generate batcher like /generate, sharing its batches. A walk is
therefore as deterministic as its frames: each one is the image /generate gives for the same
noise, class and psi.

Its animation is encoded in the app's :class:`~service.api.animation_pool.AnimationPool`: one
thread, and at most ``GAN_MAX_CONCURRENT_WALKS`` walks at once (503 + Retry-After beyond).

A walk's frames are queued as one request, after a check that the queue has room for all of
them (the batcher splits it across batches of ``GAN_MAX_BATCH_SIZE``): a walk is refused (503)
before any frame is computed, or computed whole, never refused half-way. A walk of more frames
than the queue can ever hold (``GAN_MAX_ENQUEUED``) is a 422, as one past
``GAN_MAX_WALK_FRAMES`` is.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gan_contract.animation import MEDIA_TYPES, encode_animation
from gan_contract.seeds import seeds_to_z
from gan_contract.walks import walk
from service.api.animation_pool import AnimationPool
from service.api.class_labels import labels_or_rows
from service.api.dependencies import (
    ERRORS,
    EngineDep,
    SettingsDep,
    check_psi,
    json_content,
    log_model,
    noise_rows,
)
from service.api.schemas import MAX_KEYS, AnimateRequest
from service.errors import InvalidRequest, PayloadTooLarge
from service.repository.repository import LoadedModel
from service.settings import Settings

router = APIRouter()


def _check_limits(body: AnimateRequest, model: LoadedModel, settings: Settings) -> None:
    """422 past the frame limit, 413 past the pixel limit of one answer."""
    if body.frames > settings.max_walk_frames:
        raise InvalidRequest(
            f"frames is {body.frames}; at most {settings.max_walk_frames} per walk"
        )
    if body.frames > settings.max_enqueued:
        # Not a 503: no amount of waiting makes room for it.
        raise InvalidRequest(
            f"frames is {body.frames}; at most {settings.max_enqueued} per walk, the images a "
            "model's queue holds (a walk's frames are queued at once)"
        )
    side = model.resolution * body.scale
    pixels = body.frames * side * side
    if pixels > settings.max_walk_pixels:
        raise PayloadTooLarge(
            f"{body.frames} frames of {side}x{side} pixels exceed the limit of "
            f"{settings.max_walk_pixels} pixels per walk; ask for fewer frames or a smaller scale"
        )


def _keys(body: AnimateRequest, model: LoadedModel) -> np.ndarray:
    """float32 [K, z_dim] key frames of the request, checked as /generate checks noise."""
    if body.seeds is not None:
        return seeds_to_z(body.seeds, model.z_dim)
    return noise_rows(body.noise or [], model, MAX_KEYS)


def _key_labels(body: AnimateRequest, model: LoadedModel) -> list[int] | None:
    """The class of each key by the rule of every route (:mod:`service.api.class_labels`: a
    list is applied to the keys in turn, the default is the seed, or the key's index, modulo
    the number of classes), or None for an unconditional model."""
    labels = labels_or_rows(body.class_label, model, body.key_rows())
    return None if model.num_classes == 0 else labels.tolist()


@router.post(
    "/animate",
    dependencies=[Depends(json_content)],
    tags=["generate"],
    summary="An animated latent walk between seeds or noise vectors",
    response_class=Response,
    responses={
        200: {
            "content": {"image/webp": {}, "image/gif": {}},
            "description": "the animation; X-Frames and X-Model headers describe it",
        },
        **ERRORS,
    },
)
async def animate(
    body: AnimateRequest, request: Request, engine: EngineDep, settings: SettingsDep
) -> Response:
    """A walk through latent space that visits the key frames in order, as an animation.

    Each frame is the image /generate gives for its noise, class and psi. Bounded by
    ``GAN_MAX_WALK_FRAMES`` frames (and ``GAN_MAX_ENQUEUED``, the images a model's queue holds)
    and ``GAN_MAX_WALK_PIXELS`` pixels (after ``scale``). A walk the queue has no room for now,
    or one past ``GAN_MAX_CONCURRENT_WALKS`` walks under way, is a 503 with Retry-After before
    any frame is computed.
    """
    chosen = engine.repository.get(body.model, body.version)
    _check_limits(body, chosen, settings)
    psi = check_psi(body.truncation_psi, settings)
    engine.check_room(chosen, "generate", body.frames)  # every frame, before any is computed
    keys = _keys(body, chosen)
    key_labels = _key_labels(body, chosen)
    z, labels = walk(
        keys, body.frames, loop=body.loop, interpolation=body.interpolation, labels=key_labels
    )
    log_model(request, chosen, body.frames)
    pool: AnimationPool = request.app.state.animation_pool
    # Admitted before its frames are computed: a walk the encoder cannot take soon is refused
    # (503) before it costs a model call, and the frames waiting for it stay bounded.
    with pool.admit() as place:
        # One request: the batcher takes all its rows or none (503), and splits them into
        # batches. No PNGs: the frames are encoded as one animation, and a PNG of each would
        # only take the encode pool's time from the /generate answers waiting for it.
        images, _ = await engine.generate(chosen, z, labels, psi, encode=False)
        data = await place.encode(
            encode_animation, images, body.format, fps=body.fps, loop=body.loop, scale=body.scale
        )
    headers = {
        "X-Model": f"{chosen.name}/{chosen.version}",
        "X-Frames": str(body.frames),
    }
    if body.seeds is not None:
        headers["X-Seeds"] = ",".join(map(str, body.seeds))
    return Response(data, media_type=MEDIA_TYPES[body.format], headers=headers)
