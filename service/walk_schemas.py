"""The request body of ``POST /animate`` (pydantic), with the examples shown at /docs.

Usage::

    request = WalkFromSeeds(seeds=[0, 7, 42], frames=60, fps=15, format="gif")
    request = WalkFromNoise(noise=[z0, z1], loop=False)     # latent vectors as key frames

Every field is bounded here, so that the OpenAPI document states the bounds. The bounds that
depend on the settings (frames and pixels per response, psi range) or on the chosen model
(z_dim, classes) are checked by the route, which knows both.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Hard ceilings of the schema; the settings' limits (GAN_MAX_WALK_FRAMES, ...) are usually lower.
MAX_KEYS = 64
MAX_FRAMES = 1000
MAX_Z_DIM = 4096
MAX_SCALE = 8

Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
Label = Annotated[int, Field(ge=0, le=1_000_000)]
Coordinate = Annotated[float, Field(ge=-1e4, le=1e4, allow_inf_nan=False)]
LabelList = Annotated[list[Label], Field(min_length=1, max_length=MAX_KEYS)]
Vector = Annotated[list[Coordinate], Field(min_length=1, max_length=MAX_Z_DIM)]


class WalkOptions(BaseModel):
    """What every walk request may say besides its key frames."""

    model_config = ConfigDict(extra="forbid")

    frames: int = Field(
        30, ge=2, le=MAX_FRAMES, description="Frames of the animation (GAN_MAX_WALK_FRAMES)."
    )
    fps: float = Field(15.0, ge=1.0, le=60.0, description="Frames per second.")
    loop: bool = Field(
        True,
        description="Return from the last key to the first and repeat forever; false: play the "
        "walk from the first key to the last once.",
    )
    interpolation: Literal["slerp", "lerp"] = Field(
        "slerp",
        description="slerp: along great circles (keeps Gaussian latents typical); lerp: straight.",
    )
    truncation_psi: float = Field(
        1.0,
        ge=-1e3,
        le=1e3,
        allow_inf_nan=False,
        description="Truncation: 1 is none (the service's psi range applies).",
    )
    class_label: Label | LabelList | None = Field(
        None,
        description="Class of a conditional model: one for the whole walk, or a list applied "
        "to the keys in turn (key i gets entry i modulo the list's length: one per key, or a "
        "shorter list that repeats; the class changes half-way between two keys). Default: "
        "each seed modulo the number of classes (key index for noise). Refused for an "
        "unconditional model.",
    )
    model: str | None = Field(
        None, max_length=200, description="Model name; default: the default model."
    )
    # No upper bound: a version no model has is a 404, whatever its size (as on /generate).
    version: int | None = Field(None, ge=0, description="Model version; default: the served one.")
    format: Literal["webp", "gif"] = Field(
        "webp", description="webp: lossless animated WebP; gif: animated GIF."
    )
    scale: int = Field(
        1,
        ge=1,
        le=MAX_SCALE,
        description="Each pixel becomes scale x scale pixels (nearest neighbour).",
    )


class WalkFromSeeds(WalkOptions):
    """A latent walk through key frames given as seeds."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"seeds": [0, 7, 42], "frames": 60, "fps": 15},
                {"seeds": [3, 4], "class_label": [3, 8], "frames": 24, "format": "gif"},
                {"seeds": [1, 2], "loop": False, "interpolation": "lerp", "scale": 4},
            ]
        },
    )

    seeds: list[Seed] = Field(
        min_length=2,
        max_length=MAX_KEYS,
        description="Key frames as seeds in 0..2**32-1 (StyleGAN's convention), visited in order.",
    )


class WalkFromNoise(WalkOptions):
    """A latent walk through key frames given as latent vectors."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"noise": [[0.5] * 64, [-0.5] * 64], "frames": 12}]},
    )

    noise: list[Vector] = Field(
        min_length=2,
        max_length=MAX_KEYS,
        description="Key frames as latent vectors, each of the model's z_dim finite floats.",
    )


# The body of POST /animate: exactly one of the two, as the OpenAPI document says (anyOf of two
# closed objects), so that a schema-valid body never lacks its key frames.
AnimateRequest = WalkFromSeeds | WalkFromNoise
