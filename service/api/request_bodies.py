"""OpenAPI request bodies of the routes that read uploads themselves (:mod:`service.api.uploads`).

Usage (on the route)::

    @model_router.post("/score", openapi_extra=SCORE_BODY)
    @router.post("/complete", openapi_extra=partial_images_body("CompleteRequest"))

FastAPI cannot describe a body that comes three ways (multipart files, a raw image, JSON), so
these dicts do: a multipart form, ``image/png`` (other image types are read as well),
``application/octet-stream`` (bytes read as an image, see :mod:`service.api.media_types`) and
the JSON model by reference (:func:`service.api.openapi.install_openapi` adds the models the
references name). :mod:`service.api.openapi` fills in the limits of the running service (files
per request, classes, steps).
"""

from __future__ import annotations

from typing import Any

from service.api.class_labels import CLASS_LIST_TEXT
from service.api.media_types import OCTET_STREAM

IMAGE_FILE: dict[str, Any] = {
    "type": "string",
    "format": "binary",
    "minLength": 1,
    "contentMediaType": "image/png",
}
RAW_IMAGE: dict[str, Any] = {"type": "string", "format": "binary", "minLength": 1}
FORM_CLASS = {
    "type": "integer",
    "description": "Class of every image, or 'A,B,...' as text. " + CLASS_LIST_TEXT,
}


def _files(description: str) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "items": dict(IMAGE_FILE), "description": description}


def _body(form: dict[str, Any], raw_types: tuple[str, ...], json_model: str) -> dict[str, Any]:
    files = [name for name, schema in form["properties"].items() if schema.get("type") == "array"]
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": form,
            # PNG here; JPEG, WebP, GIF, BMP and TIFF files are read as well.
            "encoding": {name: {"contentType": "image/png"} for name in files},
        }
    }
    content.update({media: {"schema": dict(RAW_IMAGE)} for media in raw_types})
    content["application/json"] = {"schema": {"$ref": f"#/components/schemas/{json_model}"}}
    return {"requestBody": {"required": True, "content": content}}


SCORE_BODY = _body(
    {
        "type": "object",
        "properties": {
            "images": _files("Image files (PNG, JPEG, WebP, ...); repeat the field."),
            "class_label": FORM_CLASS,
            "model": {"type": "string"},
            "version": {"type": "integer"},
        },
        "required": ["images"],
        "additionalProperties": False,
    },
    ("image/png", "image/jpeg", OCTET_STREAM),
    "ScoreRequest",
)


def partial_images_body(json_model: str) -> dict[str, Any]:
    """The body of ``/complete`` (``json_model`` "CompleteRequest", with steps and response)
    or ``/encode`` ("EncodeRequest")."""
    properties: dict[str, Any] = {
        "images": _files(
            "Image files of the model's resolution; alpha 0 marks missing pixels. Repeat the "
            "field for several images."
        ),
        "masks": _files(
            "Optional mask files, one per image in the same order and of its size: black (or "
            "alpha 0) = missing. They replace the images' own alpha."
        ),
        "class_label": FORM_CLASS,
        "model": {"type": "string"},
        "version": {"type": "integer"},
    }
    form: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": ["images"],
        "additionalProperties": False,
    }
    if json_model == "CompleteRequest":
        properties["steps"] = {
            "type": "integer",
            "minimum": 0,
            "description": "Optimisation steps (default and maximum: the service's settings).",
        }
        properties["response"] = {"type": "string", "enum": ["png", "grid", "json"]}
        # response=png returns one image: one image file, unless the response is grid or json.
        several = {"properties": {"response": {"enum": ["grid", "json"]}}}
        single = {"properties": {"images": {"maxItems": 1}}}
        form["allOf"] = [{"anyOf": [several, single]}]
    return _body(form, ("image/png", OCTET_STREAM), json_model)
