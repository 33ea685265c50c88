"""Request and response bodies of ``POST /encode`` and ``POST /complete`` (pydantic).

Usage::

    body = CompleteRequest(images=[png_base64], masks=[mask_base64], class_label=3, steps=50)

These are the JSON bodies; the same fields come as form fields (with ``images`` and ``masks``
files) or query parameters (with a raw image body), see :mod:`service.uploads`. Images are
base64 image files (PNG, WebP, ...) of exactly the model's resolution. Missing pixels
are marked by the image's alpha channel (alpha 0 = missing) or by a separate mask image per
image (black = missing, or its alpha when it has one); an image with neither is fully observed.
Limits that depend on the settings and the model (counts, steps, sizes) are checked by the
routes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.class_labels import CLASS_LIST_TEXT


def _non_empty_list(schema: dict[str, Any]) -> None:
    # A list of classes has at least one entry (an empty one is refused with a 422).
    for branch in schema.get("anyOf", []):
        if branch.get("type") == "array":
            branch["minItems"] = 1


class _PartialImages(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(
        min_length=1,
        description="Base64 image files of the model's resolution; alpha 0 marks missing pixels.",
    )
    masks: list[str] | None = Field(
        None,
        description="Optional base64 mask images, one per image and of its size: black (or "
        "alpha 0) = missing. They replace the images' own alpha.",
    )
    class_label: int | list[int] | None = Field(
        None,
        description="Class of a conditional model. " + CLASS_LIST_TEXT,
        json_schema_extra=_non_empty_list,
    )
    model: str | None = Field(None, description="Model name; default: the default model.")
    version: int | None = Field(None, description="Model version; default: the served one.")


class EncodeRequest(_PartialImages):
    """Images (partly observed or not) to map to latents."""


def _one_image_for_png(schema: dict[str, Any]) -> None:
    # response=png returns one image: one image sent, unless the response is grid or json
    # (the default).
    several = {"properties": {"response": {"enum": ["grid", "json"]}}}
    single = {"properties": {"images": {"maxItems": 1}}}
    schema["allOf"] = [{"anyOf": [several, single]}]


class CompleteRequest(_PartialImages):
    """Partly observed images to complete. Without ``class_label``, a conditional model
    completes each image in every class and keeps the class closest to the observed pixels."""

    # No example body: a valid one depends on the model's size (see the README's examples).
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_image_for_png)

    steps: int | None = Field(
        None,
        ge=0,
        description="Optimisation steps refining the encoder's guess (0 = the guess itself); "
        "default and maximum come from the service's settings.",
    )
    response: Literal["png", "grid", "json"] = Field(
        "json",
        description="png: one completed image; grid: one PNG of all; json: per image a base64 "
        "PNG, its latent and the error on its observed pixels.",
    )


class EncodeResponse(BaseModel):
    model: str
    version: int
    latents: list[list[float]] = Field(
        description="One z per image; POST /generate with 'noise' re-generates it."
    )


class CompletedImage(BaseModel):
    png_base64: str
    latent: list[float]
    observed_error: float = Field(
        description="Mean absolute difference on the observed pixels, in grey levels (0-255)."
    )
    observed_fraction: float = Field(description="Fraction of the image's pixels observed.")
    class_label: int | None = None


class CompleteResponse(BaseModel):
    model: str
    version: int
    steps: int
    images: list[CompletedImage]
