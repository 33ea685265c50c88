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
conditional model) the class the model needs. The protocols' routes (``/v2/models/...`` and
TF Serving's ``/v1/models/...``) name the default model and its served version, and their
inference requests carry tensors the model takes (the schema states the protocol's generic
request: it cannot tie a tensor's shape to its data, nor its name to the model's inputs).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import struct
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


HEADER_LENGTH = "Inference-Header-Content-Length"
# Parameters that ask for what the service does not serve (refused with a 400 when sent).
UNSERVED = ("shared_memory_region", "classification")
PROTOCOL_PREFIXES = ("/v2/models/{name}", "/v1/models/{name}/", "/v1/models/{name}:")


def _served_parameters(parameters: object) -> object:
    """``parameters`` without the keys that ask for an unserved extension."""
    if not isinstance(parameters, dict):
        return parameters
    return {key: value for key, value in parameters.items() if key not in UNSERVED}


def _seed_tensors(model: dict, count: int) -> list[dict]:
    """JSON tensors the generator takes: ``count`` seeds, and a class for a conditional one."""
    tensors = [{"name": "seed", "shape": [count], "datatype": "INT64", "data": list(range(count))}]
    if int(model.get("num_classes", 0)) > 0:
        tensors.append({"name": "class_label", "shape": [1], "datatype": "INT32", "data": [0]})
    return tensors


def _valid_inference(case: schemathesis.Case, model: dict) -> None:
    """A v2 inference request the default model takes, in the generated body's form (JSON, or a
    binary body), keeping its id, its parameters and the outputs it may ask for."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != HEADER_LENGTH.lower()}
    body = case.body
    if isinstance(body, dict):
        inputs = body.get("inputs")
        count = min(max(len(inputs) if isinstance(inputs, list) else 1, 1), 3)
        body["inputs"] = _seed_tensors(model, count)
        if "parameters" in body:
            body["parameters"] = _served_parameters(body["parameters"])
        outputs = body.get("outputs")
        if isinstance(outputs, list):
            kept, seen = [], set()
            for output in outputs:
                name = output.get("name") if isinstance(output, dict) else None
                if name in ("images", "png") and name not in seen:
                    seen.add(name)
                    kept.append(
                        {**output, "parameters": _served_parameters(output.get("parameters"))}
                    )
                    if kept[-1]["parameters"] is None:
                        del kept[-1]["parameters"]
            body["outputs"] = kept
    else:  # the binary tensor extension: the seeds' bytes after the JSON header
        tensors = _seed_tensors(model, 2)
        raw = b"".join(
            struct.pack(
                "<" + ("q" if t["datatype"] == "INT64" else "i") * len(t["data"]), *t["data"]
            )
            for t in tensors
        )
        for tensor in tensors:
            size = len(tensor.pop("data")) * (8 if tensor["datatype"] == "INT64" else 4)
            tensor["parameters"] = {"binary_data_size": size}
        header = json.dumps(
            {"inputs": tensors, "parameters": {"binary_data_output": True}}
        ).encode()
        if isinstance(body, Binary):
            body.data = header + raw
        else:
            case.body = header + raw
        headers[HEADER_LENGTH] = str(len(header))
    case.headers = headers


def _valid_prediction(case: schemathesis.Case, model: dict) -> None:
    """A TF Serving :predict request of the default model's generator, in the generated format."""
    body = case.body
    if not isinstance(body, dict):
        return
    conditional = int(model.get("num_classes", 0)) > 0
    row = body.get("inputs") is None
    seeds = [1, 2]
    body.clear()
    if row:
        body["instances"] = [{"seed": s, "class_label": 0} for s in seeds] if conditional else seeds
    else:
        body["inputs"] = {"seed": seeds, **({"class_label": 0} if conditional else {})}


def _protocol_model(case: schemathesis.Case) -> None:
    """The default model (and its served version) in a protocol route's path, and a request
    of its generator in an inference route's body."""
    model = _default_model(case.operation.base_url or "http://127.0.0.1:8000")
    parameters = dict(case.path_parameters or {})
    parameters["name"] = model["name"]
    if "version" in parameters:
        parameters["version"] = str(model["served_versions"][-1])
    case.path_parameters = parameters
    path = case.operation.path
    if path.endswith("/infer"):
        _valid_inference(case, model)
    elif path.endswith(":predict"):
        _valid_prediction(case, model)


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
    if positive and case.operation.path.startswith(PROTOCOL_PREFIXES):
        _protocol_model(case)
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
