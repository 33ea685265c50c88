"""Uploaded images of ``POST /score``: multipart files, a raw ``image/*`` body or JSON base64.

Usage (inside a route)::

    uploads, label, model, version = await score_inputs(request, settings)
    images, sizes = decode_all(uploads, settings, model)     # in the codec thread pool

``score_inputs`` bounds the number of multipart parts; ``decode_all`` checks each image's pixel
count before decoding it (see :func:`service.imaging.decode_image`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from service import imaging
from service.errors import BadRequest, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from service.model_repository import LoadedModel
from service.schemas import ScoreRequest
from service.settings import Settings


def int_or_none(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be an integer, not {value!r}") from None


def class_labels(raw: Any) -> int | list[int] | None:
    """``class_label`` of a score request: an int, a list, or a string such as ``"1,7"``."""
    if isinstance(raw, str) and "," in raw:
        raw = raw.split(",")
    if isinstance(raw, list):
        labels = [int_or_none(value, "class_label") for value in raw]
        if any(label is None for label in labels):
            raise InvalidRequest("class_label has an empty entry; give one integer per image")
        return [label for label in labels if label is not None]
    return int_or_none(raw, "class_label")


async def score_inputs(
    request: Request, settings: Settings
) -> tuple[list[tuple[str | None, bytes]], Any, Any, Any]:
    """(filename, bytes) of each uploaded image and the class_label, model and version given."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = settings.max_images_per_request
    query = request.query_params
    if content_type == "multipart/form-data":
        form = await request.form(
            max_files=limit, max_fields=8, max_part_size=settings.max_body_bytes
        )
        uploads: list[tuple[str | None, bytes]] = []
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append((value.filename, await value.read()))
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        unknown = sorted(set(form.keys()) - {"images", "class_label", "model", "version"})
        if unknown:
            raise InvalidRequest(
                f"unknown form field(s) {', '.join(map(repr, unknown))}: send images (files), "
                "class_label, model and version"
            )
        label = fields.get("class_label", query.get("class_label"))
        return (
            uploads,
            label,
            fields.get("model", query.get("model")),
            fields.get("version", query.get("version")),
        )
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return (
            [(None, await request.body())],
            query.get("class_label"),
            query.get("model"),
            query.get("version"),
        )
    if content_type == "application/json":
        try:
            body = ScoreRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            for error in exc.errors():
                if error["type"] == "json_invalid":  # e.g. "Invalid JSON: ... at line 1 column 2"
                    raise BadRequest(
                        f"the request body is not valid JSON: {error['msg']}"
                    ) from None
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidRequest(problems) from None
        if len(body.images) > limit:
            raise InvalidRequest(f"{len(body.images)} images; at most {limit} per request")
        decoded = []
        for index, text in enumerate(body.images):
            try:
                decoded.append((None, base64.b64decode(text, validate=True)))
            except (binascii.Error, ValueError):
                raise InvalidRequest(f"images[{index}] is not valid base64") from None
        found: list[tuple[str | None, bytes]] = list(decoded)
        return found, body.class_label, body.model, body.version
    raise UnsupportedMediaType(
        f"unsupported Content-Type {content_type or '(none)'!r}: send multipart/form-data files, "
        "a raw image/* body or application/json with base64 images"
    )


def decode_all(
    uploads: list[tuple[str | None, bytes]], settings: Settings, model: LoadedModel
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    arrays, sizes = [], []
    # Each image's pixels are checked before it is decoded, against the smaller of the per-image
    # limit and what is left of the request's budget: decoding time stays bounded per request.
    budget = settings.max_request_pixels
    for data in (d for _, d in uploads):
        limit = min(settings.max_image_pixels, budget)
        try:
            array, size = imaging.decode_image(
                data, max_pixels=limit, resolution=model.resolution, channels=model.channels
            )
        except PayloadTooLarge:
            if limit == settings.max_image_pixels:
                raise
            raise PayloadTooLarge(
                f"the images of this request exceed {settings.max_request_pixels} pixels in "
                "all; send fewer or smaller images per request"
            ) from None
        budget -= size[0] * size[1]
        arrays.append(array)
        sizes.append(size)
    return np.stack(arrays), sizes


SCORE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "images": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "string",
                                "format": "binary",
                                "minLength": 1,
                                "contentMediaType": "image/png",
                            },
                            "description": "Image files (PNG, JPEG, WebP, ...); repeat the field.",
                        },
                        "class_label": {
                            "type": "integer",
                            "description": "Class for every image, or 'A,B,...' (one per image).",
                        },
                        "model": {"type": "string"},
                        "version": {"type": "integer"},
                    },
                    "required": ["images"],
                    "additionalProperties": False,
                },
                # PNG here; JPEG, WebP, GIF, BMP and TIFF files are read as well.
                "encoding": {"images": {"contentType": "image/png"}},
            },
            "image/png": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
            "application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}},
        },
    }
}
