"""Schemathesis hooks: how to generate the API's custom string formats.

``schemathesis.toml`` at the repository's top loads this file, so that a plain
``schemathesis run http://127.0.0.1:8000/openapi.json --checks all`` run from there (and the
fuzz test in this folder) generates valid values of the formats the OpenAPI document names:

- ``seed-range``: seeds and ascending ranges such as ``0-7,12`` (see ``SEED_RANGE_TEXT`` in
  service/schemas.py). JSON Schema can state the syntax (a ``pattern``) but not that each range
  ascends or how many seeds a string names in all; the values here do both, with at most 16
  seeds, under any images-per-request limit a test sets.
- ``base64-image``: the base64 text of an image file; here small PNGs of several sizes and modes.

``map_case`` then makes valid requests valid in what JSON Schema cannot state: the files of a
/score request (multipart, or one raw body, which ``application/octet-stream`` lets schemathesis
generate) are images, and the images of /complete and /encode (JSON, multipart or a raw
body) have the model's size, an observed part, one mask each when masks are sent, and (for a
conditional model) the class the model needs.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import urllib.request

import schemathesis
from hypothesis import strategies as st
from PIL import Image
from schemathesis.transport.serialization import Binary

MAX_SEED = 2**32 - 1


@st.composite
def _seed_ranges(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        low = draw(st.integers(0, MAX_SEED - 3))
        span = draw(st.integers(0, 3))
        parts.append(str(low) if span == 0 else f"{low}-{low + span}")
    return ",".join(parts)


schemathesis.openapi.format("seed-range", _seed_ranges())


@st.composite
def _base64_images(draw: st.DrawFn) -> str:
    mode = draw(st.sampled_from(["L", "RGB", "RGBA"]))
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    colour = draw(st.integers(0, 255))
    buffer = io.BytesIO()
    Image.new(mode, size, (colour,) * len(mode)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


schemathesis.openapi.format("base64-image", _base64_images())


def _is_image(item: object) -> bool:
    # Generated files are bytes, or schemathesis' Binary (a str holding them in .data).
    data = getattr(item, "data", item)
    if not isinstance(data, bytes):
        return True  # not a file: leave it as generated
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        return True
    except Exception:
        return False


_SAMPLE = io.BytesIO()
Image.new("L", (8, 8), 128).save(_SAMPLE, "PNG")
SAMPLE_PNG = _SAMPLE.getvalue()


@functools.cache
def _default_model(base_url: str) -> dict:
    """The served default model's card (``GET /v1/models/{name}``) of the service under test."""
    with urllib.request.urlopen(base_url.rstrip("/") + "/v1/models", timeout=10) as response:
        listing = json.load(response)
    models = listing.get("models", listing) if isinstance(listing, dict) else listing
    default = next((m for m in models if m.get("default")), models[0])
    return default


def _partial_png(model: dict) -> bytes:
    """A PNG of the model's size, its top half observed and its bottom half missing (alpha 0)."""
    card = model.get("model_json", model.get("meta", model))
    side, channels = int(card["resolution"]), int(card["channels"])
    mode = "LA" if channels == 1 else "RGBA"
    image = Image.new(mode, (side, side), (128,) * (len(mode) - 1) + (255,))
    image.paste((0,) * len(mode), (0, side // 2, side, side))  # alpha 0 below the middle
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _top_half_mask(model: dict) -> bytes:
    """A mask of the model's size: white (observed) on the top half, black below."""
    side = int(model.get("model_json", model.get("meta", model))["resolution"])
    mask = Image.new("L", (side, side), 255)
    mask.paste(0, (0, side // 2, side, side))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def _class_for(model: dict, given: object) -> object:
    """``given`` where the model takes it: None for an unconditional model, and for a
    conditional one a class (or a non-empty list of classes) as generated, else class 0."""
    card = model.get("model_json", model.get("meta", model))
    if int(card.get("num_classes", 0)) == 0:
        return None
    if isinstance(given, int) or (isinstance(given, list) and given):
        return given
    return 0


def _valid_partial_request(case: schemathesis.Case) -> None:
    """Images of a /complete or /encode request as the default model takes them (its size, an
    observed part), one mask per image when masks are sent, no model or version (the default
    model has the signatures), and a class where the model is conditional. Each way in: JSON
    (base64 images), multipart (image and mask files) and a raw image with the query's fields;
    a query response=png with several images in the body is dropped (JSON Schema cannot tie the
    query to the body).

    Bodies are edited in place: schemathesis checks a case whose body a hook replaces against
    the schema again, and counts any body holding files (its Binary) as invalid there."""
    model = _default_model(case.operation.base_url or "http://127.0.0.1:8000")
    query = {
        name: value
        for name, value in (case.query or {}).items()
        if name not in ("model", "version")
    }
    body = case.body
    if isinstance(body, dict) and case.media_type == "multipart/form-data":
        images = body.get("images")
        count = len(images) if isinstance(images, list) and images else 1
        body["images"] = [Binary(_partial_png(model))] * count
        if "masks" in body:
            body["masks"] = [Binary(_top_half_mask(model))] * count
        label = _class_for(model, body.get("class_label", query.get("class_label")))
        for name in ("model", "version", "class_label"):
            body.pop(name, None)
        if label is not None:
            body["class_label"] = label if isinstance(label, int) else label[0]
    elif isinstance(body, dict):  # JSON
        count = len(body.get("images") or [None])
        body.update(model=None, version=None, masks=None)
        body["images"] = [base64.b64encode(_partial_png(model)).decode("ascii")] * count
        body["class_label"] = _class_for(model, body.get("class_label"))
    elif isinstance(body, Binary):  # a raw image body: one image, its fields in the query
        count = 1
        body.data = _partial_png(model)
        label = _class_for(model, query.pop("class_label", None))
        if label is not None:
            query["class_label"] = label
    else:
        return
    if count > 1 and query.get("response") == "png":
        query.pop("response")
    case.query = query


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """Valid requests made valid in what JSON Schema cannot state (see the module docstring);
    schema-invalid requests are left as they are. The files of a valid /score request are
    images ("image/png" in the document's encoding of a multipart body; the bytes of a raw
    body are read as an image whatever its type): generated bytes that are no image are
    replaced with a PNG."""
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    if positive and case.operation.path in ("/complete", "/encode"):
        _valid_partial_request(case)
    if (
        positive
        and case.operation.path == "/score"
        and case.media_type == "multipart/form-data"
        and isinstance(case.body, dict)
        and isinstance(case.body.get("images"), list)
    ):
        case.body["images"] = [
            item if _is_image(item) else SAMPLE_PNG for item in case.body["images"]
        ]
    if (
        positive
        and case.operation.path == "/score"
        and isinstance(case.body, Binary)
        and not _is_image(case.body)
    ):
        case.body.data = SAMPLE_PNG  # edited in place, as _valid_partial_request does
    return case
