"""Uploaded images: multipart files, a raw ``image/*`` body or JSON base64, read one way.

Usage (inside a route; ``SCORE_FORM`` is the form of ``POST /score``)::

    upload = await read_upload(request, settings, SCORE_FORM)
    upload.files["images"]     # [(filename or None, bytes), ...] of each file field
    upload.fields["model"]     # a text field: the form's or JSON's value, else the query's
    images, sizes = decode_all(upload.files["images"], settings, model)   # in the codec pool

The three ways in, the same for every route that takes images (``/score``, ``/complete``,
``/encode``):

- ``multipart/form-data``: file parts under the form's file field names (repeat a field for
  several files) and text fields. At most ``GAN_MAX_IMAGES_PER_REQUEST`` files per file field
  (the parser stops past the total, so a request of thousands of parts costs nothing); an
  unknown field, a file in a text field or text in a file field is a 422.
- a raw ``image/*`` (or ``application/octet-stream``) body: one file, its text fields given as
  query parameters.
- ``application/json``: the route's pydantic body, whose base64 lists are decoded into files.

A text field given both in the body (form or JSON) and in the query takes the body's value.
Anything else is a 415; a body that cannot be parsed is a 400. ``decode_all`` (for /score)
checks each image's pixel count before decoding it (see :func:`service.imaging.decode_image`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from service import imaging
from service.api.class_labels import per_image
from service.api.media_types import MULTIPART, is_json, is_raw_image, media_type
from service.errors import (
    BadRequest,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    validation_detail,
)
from service.repository.repository import LoadedModel, ModelRepository
from service.settings import Settings

File = tuple[str | None, bytes]  # (the uploaded file's name, when given; its bytes)


@dataclass(frozen=True)
class UploadForm:
    """The names one route reads from an upload.

    ``files``: the multipart file fields, the first of them being the images (a raw body is
    one file of it); ``fields``: the text fields (form fields, JSON fields, query parameters);
    ``json``: the JSON body's model, in which each file field is a list of base64 text of the
    same name.
    """

    files: tuple[str, ...]
    fields: tuple[str, ...]
    json: type[BaseModel]


@dataclass
class Upload:
    """The files and text fields of one request (see :func:`read_upload`)."""

    files: dict[str, list[File]]
    fields: dict[str, Any]


async def read_upload(request: Request, settings: Settings, form: UploadForm) -> Upload:
    """The files and text fields of ``request``, sent any of the three ways (module docstring).

    Raises 415 for another content type, 400 for a body that cannot be parsed and 422 for too
    many files, unknown fields or invalid JSON fields.
    """
    kind = media_type(request.headers.get("content-type"))
    if kind == MULTIPART:
        upload = await _multipart(request, settings, form)
    elif is_raw_image(kind):
        body = await request.body()
        if not body:
            raise InvalidRequest("no image received: the request body is empty")
        upload = Upload({form.files[0]: [(None, body)]}, {})
    elif is_json(kind):
        upload = _json(await request.body(), settings, form)
    else:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {kind or '(none)'!r}: send multipart/form-data files, "
            "a raw image/* (or application/octet-stream) body or application/json with base64 "
            "images"
        )
    for name in form.files:
        upload.files.setdefault(name, [])
    for name in form.fields:
        if upload.fields.get(name) is None and name in request.query_params:
            upload.fields[name] = request.query_params[name]
    return upload


async def _multipart(request: Request, settings: Settings, form: UploadForm) -> Upload:
    limit = settings.max_images_per_request
    most = limit * len(form.files)
    try:
        parsed = await request.form(
            max_files=most,
            max_fields=len(form.fields) + 2,
            max_part_size=settings.max_body_bytes,
        )
    except HTTPException as error:  # starlette's MultiPartException, as a 400
        detail = str(error.detail)
        if detail.startswith("Too many files"):
            raise InvalidRequest(
                f"more than {most} files; send at most {limit} per request in "
                f"{' and '.join(map(repr, form.files))}"
            ) from None
        if detail.startswith("Too many fields"):
            raise InvalidRequest(
                f"too many form fields; the form takes {', '.join(form.fields)} once each"
            ) from None
        raise BadRequest(f"the multipart body cannot be parsed: {detail}") from None
    unknown = sorted(set(parsed.keys()) - {*form.files, *form.fields})
    if unknown:
        raise InvalidRequest(
            f"unknown form field(s) {', '.join(map(repr, unknown))}: send "
            f"{', '.join(form.files)} (files) and {', '.join(form.fields)}"
        )
    files: dict[str, list[File]] = {name: [] for name in form.files}
    fields: dict[str, Any] = {}
    for name, value in parsed.multi_items():
        if name in form.files:
            if not isinstance(value, UploadFile):
                raise InvalidRequest(f"form field {name!r} must be a file (curl -F {name}=@FILE)")
            data = await value.read()
            if not data:
                raise InvalidRequest(f"file {len(files[name]) + 1} of {name!r} is empty")
            files[name].append((value.filename, data))
        elif isinstance(value, UploadFile):
            raise InvalidRequest(f"form field {name!r} must be text, not a file")
        elif name in fields:
            raise InvalidRequest(f"form field {name!r} given more than once; give it once")
        else:
            fields[name] = value
    for name, found in files.items():
        if len(found) > limit:
            raise InvalidRequest(f"{len(found)} {name!r} files; at most {limit} per request")
    return Upload(files, fields)


def _json(body: bytes, settings: Settings, form: UploadForm) -> Upload:
    try:
        parsed = form.json.model_validate_json(body)
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] == "json_invalid":  # e.g. "Invalid JSON: ... at line 1 column 2"
                raise BadRequest(f"the request body is not valid JSON: {error['msg']}") from None
        detail = validation_detail(exc.errors(), list(form.json.model_fields))
        raise InvalidRequest(detail) from None
    limit = settings.max_images_per_request
    files: dict[str, list[File]] = {}
    for name in form.files:
        texts = getattr(parsed, name)
        if texts is None:
            continue
        if len(texts) > limit:
            raise InvalidRequest(f"{len(texts)} {name}; at most {limit} per request")
        files[name] = [(None, _base64(text, f"{name}[{i}]")) for i, text in enumerate(texts)]
    # Only the fields given (not the model's defaults), so that the query fills the others.
    fields = {
        name: value
        for name, value in parsed.model_dump(exclude_unset=True).items()
        if name not in form.files and value is not None
    }
    return Upload(files, fields)


def _base64(text: str, where: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where} is not valid base64") from None
    if not data:
        raise InvalidRequest(f"{where} is empty")
    return data


def decode_all(
    uploads: list[tuple[str | None, bytes]], settings: Settings, model: LoadedModel
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """uint8 [N, R, R, C] images of a score request, each prepared as training prepares them,
    and their sizes as uploaded. Runs in the codec thread pool."""
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


def check_query(
    repository: ModelRepository, class_label: int | None, model: str | None, version: int | None
) -> None:
    """Check the query's ``class_label``, ``model`` and ``version`` (404, 422) even where a form
    or JSON field of the same name wins over them, so that no value given is silently wrong."""
    if class_label is None and not model and version is None:
        return
    queried = repository.get(model or None, version)
    per_image(class_label, queried, 1)
