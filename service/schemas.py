"""Request and response bodies of the API (pydantic), with the examples shown at /docs.

Usage::

    request = GenerateRequest(seeds="0-7", response="grid")

Limits that depend on the settings (images per request, psi range, z_dim of the chosen model)
are checked by the routes, which know both; these models check shapes and types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


class GenerateRequest(BaseModel):
    """Which images to generate: give exactly one of ``seeds``, ``noise`` or ``count``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"seeds": [1, 2, 3], "class_label": 7, "response": "grid"},
                {"seeds": "0-7,12", "truncation_psi": 0.7, "response": "json"},
                {"count": 4, "response": "json"},
                {"seeds": [42], "class_label": 3, "response": "png"},
            ]
        },
    )

    seeds: list[Seed] | str | None = Field(
        None,
        description="Seeds in 0..2**32-1, as a list or a range string such as '0-7,12'. "
        "The same seed, psi, class and model version always give the same image.",
    )
    noise: list[list[float]] | None = Field(
        None, description="Latent vectors, each of the model's z_dim finite floats."
    )
    count: int | None = Field(
        None, ge=1, description="Number of images from seeds the server draws (returned)."
    )
    truncation_psi: float = Field(
        1.0, description="Truncation: 1 is none, smaller trades variety for fidelity."
    )
    class_label: int | list[int] | None = Field(
        None,
        description="Class of a conditional model: one for all images or one per image. "
        "Default: seed modulo the number of classes (row index for noise). "
        "Refused for an unconditional model.",
    )
    model: str | None = Field(None, description="Model name; default: the default model.")
    version: int | None = Field(None, description="Model version; default: the served one.")
    response: Literal["png", "grid", "json"] = Field(
        "png",
        description="png: one image; grid: one PNG tiling every image; json: a base64 PNG and "
        "the seed of each image.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> GenerateRequest:
        given = [name for name in ("seeds", "noise", "count") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of seeds, noise or count"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class GeneratedImage(BaseModel):
    seed: int | None = Field(description="The seed of the image (null when noise was given).")
    class_label: int | None = Field(description="The class (null for an unconditional model).")
    png_base64: str = Field(description="The PNG, base64-encoded.")


class GenerateResponse(BaseModel):
    model: str
    version: int
    truncation_psi: float
    images: list[GeneratedImage]


class ScoreRequest(BaseModel):
    """Images to score as base64 strings (PNG, JPEG, ...)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    # An 8x8 grey PNG; it is resized to the model's resolution.
                    "images": [
                        "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAEElEQVR4nGM8wQABTAwUMQA6"
                        "AADYhMgK6QAAAABJRU5ErkJggg=="
                    ],
                    "class_label": 7,
                }
            ]
        },
    )

    images: list[str] = Field(min_length=1, description="Base64-encoded image files.")
    class_label: int | list[int] | None = Field(
        None, description="Class to judge against; required for a conditional model."
    )
    model: str | None = None
    version: int | None = None


class ImageScore(BaseModel):
    index: int = Field(description="Position of the image in the request.")
    filename: str | None = Field(None, description="The uploaded file's name, when given.")
    logit: float = Field(description="The discriminator's raw output; higher is more real.")
    real_percentile: float | None = Field(
        description="Percentile (0..100) of the logit among held-out real images' logits; null "
        "for a model exported without held-out real images."
    )
    original_size: tuple[int, int] = Field(description="Width and height as uploaded.")


class ScoreResponse(BaseModel):
    model: str
    version: int
    resolution: int = Field(description="Images were resized to resolution x resolution.")
    channels: int = Field(description="Images were converted to this many channels.")
    scores: list[ImageScore]


class ModelSummary(BaseModel):
    name: str
    default: bool
    served_versions: list[int]
    available_versions: list[int]
    z_dim: int
    resolution: int
    channels: int
    num_classes: int


class ModelDetail(ModelSummary):
    metadata: dict[str, Any] = Field(description="model.json of the served version.")


class ModelList(BaseModel):
    models: list[ModelSummary]


class ErrorBody(BaseModel):
    error: str
    detail: str
