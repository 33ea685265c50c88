"""Request and response bodies of every route of the API (pydantic), with the examples shown
at /docs: generate, score and the model catalogue first, then ``POST /animate``, then
``POST /encode`` and ``POST /complete``.

Usage::

    request = GenerateRequest(seeds="0-7", response="grid")
    request = AnimateRequest(seeds=[0, 7, 42], frames=60, fps=15, format="gif")
    body = CompleteRequest(images=[png_base64], masks=[mask_base64], class_label=3, steps=50)

Limits that depend on the settings (images per request, psi range, z_dim of the chosen model)
are checked by the routes, which know both; these models check shapes and types. The OpenAPI
document states those limits as well: :mod:`service.api.openapi` fills them in from the settings and
the served models.

The terms the API documentation explains (``PSI_TEXT``, ``LOGIT_TEXT``, ``PERCENTILE_TEXT``):
``truncation_psi`` pulls each latent toward the average one (1 = none); a ``logit`` is the
discriminator's raw output (higher = more like the real images); ``real_percentile`` places it
among held-out real images' logits (50 = as real-looking as the median real image).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from gan_contract.seeds import seed_syntax_error
from service.api.class_labels import CLASS_LIST_TEXT


def _integer(value: Any) -> Any:
    # JSON Schema's integer: 3 and 3.0, but not true nor "3" (pydantic's lax mode takes both).
    if isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


# The models are strict (no "0.7" for a float, no true for a number); integers are JSON Schema
# integers, so 3.0 is accepted as 3.
# (Constraints go in the first Field, so that the JSON schema states them as minimum/maximum.)
JsonInt = Annotated[int, Field(strict=False), BeforeValidator(_integer)]
Seed = Annotated[int, Field(strict=False, ge=0, le=2**32 - 1), BeforeValidator(_integer)]
Count = Annotated[int, Field(strict=False, ge=1), BeforeValidator(_integer)]
SOURCES = ("seeds", "noise", "count")
NoiseValue = Annotated[float, Field(json_schema_extra={"minimum": -1e4, "maximum": 1e4})]
# The syntax of a seed range string, in a regex that means the same in Python and in JSON Schema
# (ECMA-262): ASCII digits and spaces only.
SEED_RANGE_PATTERN = r"^ *[0-9]+ *(- *[0-9]+ *)?(, *[0-9]+ *(- *[0-9]+ *)?)*$"
SEED_RANGE: dict[str, Any] = {
    "format": "seed-range",
    "pattern": SEED_RANGE_PATTERN,
    "minLength": 1,
}
# Classes applied in turn: image i gets class_label[i % len(class_label)]
# (service.api.class_labels).
ClassList = Annotated[list[JsonInt], Field(json_schema_extra={"minItems": 1})]
# Base64 text of an image file (OpenAPI 3.1 / JSON Schema 2020-12 content keywords).
# format base64-image: the base64 text of an image file (PNG, JPEG, ...).
BASE64_PNG: dict[str, Any] = {
    "format": "base64-image",
    "contentEncoding": "base64",
    "contentMediaType": "image/png",
}

PSI_TEXT = (
    "Truncation psi: each latent is pulled toward the average latent (z * psi) before it is "
    "generated; 1 is no truncation, smaller values trade variety for cleaner, more typical "
    "images, 0 gives the average image for every seed."
)
CLASS_TEXT = (
    "Class of a conditional model, in 0..num_classes-1 of the chosen model (GET /v1/models "
    "lists num_classes; the maximum in this schema is that of the served model with the most "
    "classes). 422 for an unconditional model, or for a class the chosen model does not have."
)
LOGIT_TEXT = (
    "The discriminator's raw output (a logit) for the image: higher means it looks more like "
    "the real training images. Comparable only between images scored by the same model version."
)
PERCENTILE_TEXT = (
    "Percentile (0..100) of the logit among the logits of held-out real images, measured at "
    "export: 50 means as real-looking as the median real image. Generated images usually score "
    "below real ones: for the bundled MNIST model half of its generated images score under the "
    "14th percentile and three quarters under the 30th, so 5-30 is typical of a good one, and "
    "under 1 marks an image the discriminator finds clearly fake. Null for a model exported "
    "without held-out real images."
)
FORMAT_TEXT = (
    "Image format: png (lossless, the default), webp or jpeg (lossy, at quality). Without it "
    "the Accept header chooses among image/png, image/webp and image/jpeg (406 when it allows "
    "none); with it, Accept is not consulted."
)
QUALITY_TEXT = (
    "Quality of a WebP or JPEG image, 1-100 (higher: closer to the PNG, larger); default "
    "GAN_IMAGE_QUALITY (90). Not used for PNG."
)
LEVEL_TEXT = (
    "zlib compression level of a PNG, 0-9 (9: smallest, slowest to encode; the pixels are the "
    "same at every level); default GAN_PNG_COMPRESS_LEVEL (6). Not used for WebP and JPEG."
)
ImageFormat = Literal["png", "webp", "jpeg"]
Quality = Annotated[int, Field(strict=False, ge=1, le=100), BeforeValidator(_integer)]
CompressLevel = Annotated[int, Field(strict=False, ge=0, le=9), BeforeValidator(_integer)]

SEED_RANGE_TEXT = (
    "Seeds as a range string: comma-separated seeds and ascending ranges, such as '0-7,12' "
    "(format seed-range: each range low-high with low <= high, every seed in 0..2**32-1, and "
    "at most the images-per-request limit in all)."
)


def _exactly_one_source(schema: dict[str, Any]) -> None:
    # "Exactly one of seeds, noise or count" in JSON Schema: each branch requires its field with
    # a value that is not null (the server treats a null field as absent).
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in SOURCES
    ]
    # response=png (the default) returns one image: one seed, one noise vector or count 1.
    one_seed = {"type": "string", "pattern": r"^ *[0-9]+ *$"}
    one = {"type": "array", "maxItems": 1}
    single_image = {
        "properties": {
            "seeds": {"anyOf": [one, one_seed, {"type": "null"}]},
            "noise": {"anyOf": [one, {"type": "null"}]},
            "count": {"anyOf": [{"type": "integer", "maximum": 1}, {"type": "null"}]},
        }
    }
    several = {"required": ["response"], "properties": {"response": {"enum": ["grid", "json"]}}}
    schema["allOf"] = [{"anyOf": [several, single_image]}]
    schema["examples"] = [
        {"seeds": [1, 2, 3], "class_label": 2, "response": "grid"},
        {"seeds": "0-7,12", "truncation_psi": 0.7, "response": "json"},
        {"count": 4, "response": "json"},
        {"seeds": [42], "class_label": 1, "response": "png"},
        {"seeds": [7], "format": "webp", "quality": 80},
    ]


class GenerateRequest(BaseModel):
    """Which images to generate: give exactly one of ``seeds``, ``noise`` or ``count``."""

    # strict: JSON true is not the integer 1, nor "3" the integer 3, as the schema says.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_exactly_one_source)

    # The routes check these limits themselves (with messages that say what to fix); the
    # json_schema_extra only states them in the OpenAPI document.
    seeds: (
        Annotated[list[Seed], Field(json_schema_extra={"minItems": 1})]
        | Annotated[str, Field(description=SEED_RANGE_TEXT, json_schema_extra=SEED_RANGE)]
        | None
    ) = Field(
        None,
        description="Seeds in 0..2**32-1, as a list or a range string such as '0-7,12'. "
        "The same seed, psi, class and model version always give the same image (within one "
        "grey level per pixel across machines and batch shapes).",
    )
    noise: (
        Annotated[
            list[Annotated[list[NoiseValue], Field(json_schema_extra={"minItems": 1})]],
            Field(json_schema_extra={"minItems": 1}),
        ]
        | None
    ) = Field(
        None,
        description="Latent vectors, each of the chosen model's z_dim finite floats "
        "(|value| <= 10000).",
    )
    count: Count | None = Field(
        None, description="Number of images from seeds the server draws (returned)."
    )
    truncation_psi: float = Field(1.0, description=PSI_TEXT)
    class_label: JsonInt | ClassList | None = Field(
        None,
        description=f"{CLASS_TEXT} {CLASS_LIST_TEXT} Default: seed modulo the number of "
        "classes (row index for noise).",
    )
    model: str | None = Field(None, description="Model name; default: the default model.")
    version: JsonInt | None = Field(None, description="Model version; default: the served one.")
    response: Literal["png", "grid", "json"] = Field(
        "png",
        description="png: one image; grid: one image tiling every image; json: each image "
        "base64-encoded with its media type and seed. (The name png is historical: the "
        "image is in the chosen format.)",
    )
    format: ImageFormat | None = Field(None, description=FORMAT_TEXT)
    quality: Quality | None = Field(None, description=QUALITY_TEXT)
    compress_level: CompressLevel | None = Field(None, description=LEVEL_TEXT)

    @field_validator("seeds")
    @classmethod
    def _range_syntax(cls, value: list[int] | str | None) -> list[int] | str | None:
        # The contract's rule and message, the ones gan-sample gives (SEED_RANGE_PATTERN says
        # the same in the OpenAPI document).
        problem = seed_syntax_error(value) if isinstance(value, str) else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> GenerateRequest:
        given = [name for name in SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of seeds, noise or count"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class GeneratedImage(BaseModel):
    seed: int | None = Field(description="The seed of the image (null when noise was given).")
    class_label: int | None = Field(description="The class (null for an unconditional model).")
    media_type: str = Field(description="image/png, image/webp or image/jpeg.")
    image_base64: str = Field(description="The image file, base64-encoded.")
    png_base64: str | None = Field(
        None,
        description="Deprecated: the same text as image_base64 when the image is a PNG (null "
        "otherwise), for clients written before the other formats.",
    )


class GenerateResponse(BaseModel):
    model: str
    version: int
    truncation_psi: float = Field(description=PSI_TEXT)
    images: list[GeneratedImage]


class ScoreRequest(BaseModel):
    """Images to score as base64 strings (PNG, JPEG, ...)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    # An 8x8 grey PNG; it is resized to the model's resolution.
                    "images": [
                        "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAEElEQVR4nGM8wQABTAwUMQA6"
                        "AADYhMgK6QAAAABJRU5ErkJggg=="
                    ],
                    "class_label": 1,
                }
            ]
        },
    )

    images: list[Annotated[str, Field(json_schema_extra=BASE64_PNG)]] = Field(
        min_length=1, description="Base64-encoded image files (PNG, JPEG, WebP, ...)."
    )
    class_label: JsonInt | ClassList | None = Field(
        None,
        description=f"{CLASS_TEXT} {CLASS_LIST_TEXT} Without it a conditional model judges "
        "each image as the class it finds most real (reported).",
    )
    model: str | None = Field(None, description="Model name; default: the default model.")
    version: JsonInt | None = Field(None, description="Model version; default: the served one.")


class ImageScore(BaseModel):
    index: int = Field(description="Position of the image in the request.")
    filename: str | None = Field(None, description="The uploaded file's name, when given.")
    class_label: int | None = Field(
        None,
        description="The class the image was judged as: the one given, or without one the "
        "class with the highest logit; null for an unconditional model.",
    )
    logit: float = Field(description=LOGIT_TEXT)
    real_percentile: float | None = Field(description=PERCENTILE_TEXT)
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
    z_dim: int = Field(description="Length of a latent vector (noise).")
    resolution: int
    channels: int
    num_classes: int = Field(description="Classes of a conditional model; 0: unconditional.")


class ModelDetail(ModelSummary):
    metadata: dict[str, Any] = Field(
        description="model.json of the served version. The generator is the EMA generator: an "
        "exponential moving average of the generator's weights over training, which gives "
        "smoother, usually better images than the last weights."
    )


class ModelList(BaseModel):
    models: list[ModelSummary]


class ErrorBody(BaseModel):
    """Every error answer: a short code and a sentence that says what to fix."""

    error: str = Field(description="A short code, e.g. invalid_request, not_found.")
    detail: str = Field(description="What went wrong and what to fix.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="Validation errors of a 422, each with its location (loc) and msg."
    )


# --- POST /animate ------------------------------------------------------------------------------

# Hard ceilings of the schema; the settings' limits (GAN_MAX_WALK_FRAMES, ...) are usually lower.
MAX_KEYS = 64
MAX_FRAMES = 1000
MAX_Z_DIM = 4096
MAX_SCALE = 8
WALK_KEYS = ("seeds", "noise")

Label = Annotated[int, Field(strict=False, ge=0, le=1_000_000), BeforeValidator(_integer)]
Coordinate = Annotated[float, Field(ge=-1e4, le=1e4, allow_inf_nan=False)]
LabelList = Annotated[list[Label], Field(min_length=1, max_length=MAX_KEYS)]
Vector = Annotated[list[Coordinate], Field(min_length=1, max_length=MAX_Z_DIM)]
Frames = Annotated[int, Field(strict=False, ge=2, le=MAX_FRAMES), BeforeValidator(_integer)]
Scale = Annotated[int, Field(strict=False, ge=1, le=MAX_SCALE), BeforeValidator(_integer)]
# No upper bound: a version no model has is a 404, whatever its size (as on /generate).
Version = Annotated[int, Field(strict=False, ge=0), BeforeValidator(_integer)]


def _walk_keys(schema: dict[str, Any]) -> None:
    # "Exactly one of seeds or noise", as GenerateRequest states its sources.
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in WALK_KEYS
    ]
    schema["examples"] = [
        {"seeds": [0, 7, 42], "frames": 60, "fps": 15},
        {"seeds": [3, 4], "class_label": [3, 8], "frames": 24, "format": "gif"},
        {"seeds": [1, 2], "loop": False, "interpolation": "lerp", "scale": 4},
        {"noise": [[0.5] * 64, [-0.5] * 64], "frames": 12},
    ]


class AnimateRequest(BaseModel):
    """A latent walk through key frames: give exactly one of ``seeds`` or ``noise``.

    One model rather than a union of a seeds shape and a noise shape, as /generate's body: a
    mistake is then reported once, for the field that has it (a union reports it once per
    shape, beside "unknown field" errors of the shape the client did not mean).
    """

    # strict: JSON true is not the integer 1, nor "3" the integer 3, as the schema says.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_walk_keys)

    seeds: Annotated[list[Seed], Field(min_length=2, max_length=MAX_KEYS)] | None = Field(
        None,
        description="Key frames as seeds in 0..2**32-1 (StyleGAN's convention), visited in "
        "order: 2 to 64.",
    )
    noise: Annotated[list[Vector], Field(min_length=2, max_length=MAX_KEYS)] | None = Field(
        None,
        description="Key frames as latent vectors, each of the model's z_dim finite floats "
        "(|value| <= 10000): 2 to 64.",
    )
    frames: Frames = Field(
        30, description="Frames of the animation: 2 to GAN_MAX_WALK_FRAMES (120 by default)."
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
    version: Version | None = Field(None, description="Model version; default: the served one.")
    format: Literal["webp", "gif"] = Field(
        "webp", description="webp: lossless animated WebP; gif: animated GIF."
    )
    scale: Scale = Field(
        1,
        description=f"Each pixel becomes scale x scale pixels (nearest neighbour): 1 to "
        f"{MAX_SCALE}, and the frames after scaling at most GAN_MAX_WALK_PIXELS pixels in all.",
    )

    @model_validator(mode="after")
    def _one_kind_of_key(self) -> AnimateRequest:
        given = [name for name in WALK_KEYS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of seeds or noise as the key frames"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def key_rows(self) -> list[int]:
        """Per key frame the row the default class is taken from: its seed, or its index."""
        if self.seeds is not None:
            return list(self.seeds)
        return list(range(len(self.noise or ())))


# --- POST /encode and POST /complete -----------------------------------------------------------


Steps = Annotated[int, Field(strict=False, ge=0), BeforeValidator(_integer)]


class _PartialImages(BaseModel):
    # strict, as every JSON body: true is not the class 1, nor "1" the version 1.
    model_config = ConfigDict(extra="forbid", strict=True)

    images: list[str] = Field(
        min_length=1,
        description="Base64 image files of the model's resolution; alpha 0 marks missing pixels.",
    )
    masks: list[str] | None = Field(
        None,
        description="Optional base64 mask images, one per image and of its size: black (or "
        "alpha 0) = missing. They replace the images' own alpha.",
    )
    class_label: JsonInt | ClassList | None = Field(
        None, description="Class of a conditional model. " + CLASS_LIST_TEXT
    )
    model: str | None = Field(None, description="Model name; default: the default model.")
    version: JsonInt | None = Field(None, description="Model version; default: the served one.")


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
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_one_image_for_png)

    steps: Steps | None = Field(
        None,
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
