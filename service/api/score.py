"""``POST /score``: the discriminator's judgement of images sent as multipart files, a raw
``image/*`` body or JSON base64 (read by :mod:`service.api.uploads`).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request

from service.api.class_labels import int_or_none, labels_or_rows, parse_class_label
from service.api.dependencies import (
    ERRORS,
    EngineDep,
    SettingsDep,
    in_codec_pool,
    log_model,
)
from service.api.request_bodies import SCORE_BODY
from service.api.schemas import (
    CLASS_TEXT,
    ImageScore,
    ScoreRequest,
    ScoreResponse,
)
from service.api.uploads import UploadForm, check_query, decode_all, read_upload
from service.engine.engine import real_percentiles
from service.errors import InvalidRequest
from service.repository.repository import LoadedModel
from service.settings import Settings

router = APIRouter()


def score_rows(
    model: LoadedModel, given: int | list[int] | None, count: int, settings: Settings
) -> tuple[int, np.ndarray, bool]:
    """(model rows, int32 labels, every class?) to score ``count`` images: one row each with
    the classes ``given`` (the rule of every route), or, for a conditional model given none,
    each image once per class (labels 0..K-1 for the first image, then the next, ...); 422 when
    that is more rows than the queue may hold."""
    if model.num_classes == 0 or given is not None:
        return count, labels_or_rows(given, model, list(range(count))), False
    rows = count * model.num_classes
    if rows > settings.max_enqueued:
        raise InvalidRequest(
            f"scoring {count} images as each of {model.num_classes} classes is {rows} model "
            f"rows, over the limit of {settings.max_enqueued}; give class_label"
        )
    return rows, np.tile(np.arange(model.num_classes, dtype=np.int32), count), True


def best_class(logits: np.ndarray, count: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image's highest logit over its ``classes`` rows (as :func:`score_rows` laid them
    out), and that class (int32)."""
    per_class = logits.reshape(count, classes)
    judged = per_class.argmax(axis=1)
    return per_class[np.arange(count), judged], judged.astype(np.int32)


SCORE_QUERY = "for a raw image/* body (a form or JSON field of the same name wins)"
SCORE_FORM = UploadForm(
    files=("images",),
    fields=("class_label", "model", "version"),
    json=ScoreRequest,
)


@router.post(
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
    """Score images sent as multipart files, a raw image body (``image/*`` or
    ``application/octet-stream``) or JSON base64.

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
    log_model(request, chosen, len(uploads))
    given = parse_class_label(raw_label)
    count = len(uploads)
    rows, labels, every_class = score_rows(chosen, given, count, settings)
    engine.check_room(chosen, "score", rows)  # before decoding the images
    with engine.using(chosen):  # a hot reload waits for this request, decoding included
        images, sizes = await in_codec_pool(request, decode_all, uploads, settings, chosen)
        if every_class:
            images = np.repeat(images, chosen.num_classes, axis=0)
        logits = await engine.score(chosen, images, labels)
    if every_class:
        logits, labels = best_class(logits, count, chosen.num_classes)
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
