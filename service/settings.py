"""The service's configuration: one pydantic-settings class, read from ``GAN_*`` variables.

Usage::

    settings = Settings()                      # from the environment
    settings = Settings(max_batch_size=16)     # explicit values win over the environment

Every field is read from ``GAN_<FIELD NAME>`` (``GAN_MAX_BATCH_SIZE=16``); dicts and lists are
JSON (``GAN_MODEL_VERSIONS='{"mnist": 1}'``, ``GAN_ALLOWED_BATCH_SIZES='[2, 8, 32]'``), except
``GAN_API_KEYS``, a comma-separated list. The instance is frozen: the running service never changes
its configuration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.machine import usable_cpus

# A version number in GAN_MODEL_VERSIONS.
PinnedVersion = Annotated[int, Field(ge=0)]


class Settings(BaseSettings):
    """Every knob of the service. Each field is read from ``GAN_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="GAN_", frozen=True, extra="ignore")

    # --- models ---------------------------------------------------------------------------------
    model_dir: Path = Field(
        default=Path("models"), description="Model repository: <dir>/<name>/<version>/."
    )
    default_model: str | None = Field(
        default=None,
        description='Model used when a request names none; "mnist" if present, else the first.',
    )
    version_policy: str = Field(
        default="latest:2",
        description="Versions served of every model not pinned: 'latest:N' (the N highest on "
        "disk) or 'all'. The highest served answers requests that name no version.",
    )
    model_versions: dict[
        str, PinnedVersion | Annotated[list[PinnedVersion], Field(min_length=1)]
    ] = Field(
        default_factory=dict,
        description='Pinned versions, e.g. {"mnist": 1} or {"mnist": [1, 3]}: those only are '
        "served (TensorFlow Serving's 'specific' policy); other models follow version_policy.",
    )
    warmup: bool = Field(
        default=True, description="Run every allowed batch size once before /readyz is 200."
    )

    # --- batching (TensorFlow Serving's names) --------------------------------------------------
    max_batch_size: int = Field(
        default=32, ge=1, le=4096, description="Largest batch of one model call."
    )
    batch_timeout_ms: float = Field(
        # 0, as Triton's dynamic batcher: a batch fires as soon as the model's thread is free,
        # with every request that arrived while it was busy. On 2 CPU cores, waiting 2 ms for
        # companions cost a quarter of the images/s at 8 clients and gained nothing at 32.
        default=0.0,
        ge=0.0,
        le=10_000.0,
        description="Longest wait of a partial batch for companions once the model is free; "
        "0: none.",
    )
    max_enqueued: int = Field(
        default=1024,
        ge=1,
        description="Images waiting per model and signature, queued or for PNG encoding; "
        "beyond: 503 + Retry-After.",
    )
    allowed_batch_sizes: list[int] | None = Field(
        default=None,
        description="Batch sizes the model is called with (padded up, or fewer rows taken when "
        "the calls' measured costs say padding costs more); default: 1, 2, 4, 8, 12, 16, 24, 32, "
        "... up to max_batch_size. The last must be >= max_batch_size.",
    )
    request_timeout_ms: float = Field(
        default=10_000.0, gt=0.0, description="Deadline of a request in the queue; past it: 504."
    )
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After seconds sent with a 503.")

    # --- limits ---------------------------------------------------------------------------------
    max_images_per_request: int = Field(
        default=64,
        ge=1,
        description="Images one /generate or /score request may ask for or upload.",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Request body limit (413)."
    )
    max_image_pixels: int = Field(
        default=4096 * 4096,
        ge=1,
        description="Pixels of one uploaded image; larger ones are not decoded.",
    )
    max_request_pixels: int = Field(
        default=4 * 4096 * 4096,
        ge=1,
        description="Pixels of all the images of one /score request together; bounds the "
        "decoding time one request can take.",
    )
    max_seed_string_length: int = Field(
        default=1024, ge=1, description="Characters of a seed range string such as '0-7,12'."
    )
    max_walk_frames: int = Field(
        default=120,
        ge=2,
        le=1000,
        description="Frames of one POST /animate walk.",
    )
    max_walk_pixels: int = Field(
        default=2048 * 2048,
        ge=1,
        description="Pixels of all the frames of one POST /animate answer together (after "
        "scaling); bounds its memory and encoding time.",
    )
    max_concurrent_walks: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="POST /animate walks made at once, from their frames to their encoded file "
        "(one thread encodes them in turn); beyond: 503 + Retry-After.",
    )
    complete_steps: int = Field(
        default=50, ge=0, description="Optimisation steps of a /complete request that names none."
    )
    max_complete_steps: int = Field(
        default=200,
        ge=0,
        le=10_000,
        description="Most optimisation steps a /complete request may ask for (also capped by the "
        "model's own limit in model.json); bounds the time one request takes.",
    )
    min_truncation_psi: float = Field(default=-1.0, description="Smallest accepted truncation_psi.")
    max_truncation_psi: float = Field(default=2.0, description="Largest accepted truncation_psi.")

    # --- operations -----------------------------------------------------------------------------
    poll_seconds: float = Field(
        # On by default, as TensorFlow Serving polls its model base path by default: a new export
        # is served without a restart. A scan lists a few directories; it costs nothing.
        default=10.0,
        ge=0.0,
        description="Seconds between scans of model_dir for new or removed versions (0 = off).",
    )
    drain_seconds: float = Field(
        default=20.0,
        ge=0.0,
        le=3600.0,
        description="After SIGTERM: /readyz is 503 at once, requests are still served this long, "
        "then accepted requests finish and the process exits 0.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="API keys (comma-separated) that every API route requires (all but health, "
        "metrics, the page and the docs) as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'; "
        "empty: no key needed.",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        description="Longest time a client may take to send its request body (408 after).",
    )

    # --- encoding -------------------------------------------------------------------------------
    png_compress_level: int = Field(
        default=6,
        ge=0,
        le=9,
        description="zlib level of PNG responses whose request names no compress_level.",
    )
    image_quality: int = Field(
        default=90,
        ge=1,
        le=100,
        description="Quality of WebP and JPEG responses whose request names no quality.",
    )
    codec_threads: int = Field(
        # Image encoding runs without the interpreter lock (zlib, Pillow's codecs), so each
        # core can encode: one thread per usable CPU, and two at least (the measured default of
        # a 2-core host).
        default_factory=lambda: min(64, max(2, usable_cpus())),
        ge=1,
        le=64,
        description="Threads of each of the two image pools: one encodes generated images, "
        "the other decodes uploads (and encodes grids), so that neither starves the other. "
        "Default: the CPUs this process may use, at least 2.",
    )

    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes sharing the port (gan-serve), each with its own copy of "
        "the models, batchers and limits. One process uses about 1.5 cores (the interpreter "
        "lock); on a CPU host with more cores, more workers use them. On a GPU keep 1.",
    )

    # --- TensorFlow's threads (measured on a 2-core CPU: see docs/measurements.md) -----------
    intra_op_threads: Annotated[int, Field(ge=0, le=1024)] | Literal["auto"] = Field(
        default="auto",
        description="Threads one TensorFlow op may split over (0: TensorFlow's default, one "
        "per core). auto: 1 for small models (the other core is the event loop's), the cores "
        "for compute-heavy ones or with a GPU (service/repository/threads.py).",
    )
    inter_op_threads: Annotated[int, Field(ge=0, le=1024)] | Literal["auto"] = Field(
        default="auto",
        description="TensorFlow ops run at once (0: TensorFlow's default, one per core); auto "
        "as intra_op_threads.",
    )
    switch_interval_ms: float = Field(
        default=0.2,
        ge=0.01,
        le=100.0,
        description="Longest time one Python thread keeps the interpreter lock while another "
        "waits for it (sys.setswitchinterval; Python's default is 5). Short, so that the "
        "model's thread, back from a model call, waits little for the event loop.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        # A comma-separated environment variable; blanks around keys and empty entries dropped.
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("version_policy")
    @classmethod
    def _check_policy(cls, value: str) -> str:
        # The same rule as service.repository.policy.POLICY_PATTERN, said in words.
        if not re.fullmatch(r"all|latest:[1-9][0-9]{0,3}", value):
            raise ValueError("expected 'latest:N' (N from 1 to 9999) or 'all'")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        sizes = self.allowed_batch_sizes
        if sizes is not None:
            if not sizes or sorted(set(sizes)) != sizes or sizes[0] < 1:
                raise ValueError("allowed_batch_sizes must be strictly increasing positive ints")
            if sizes[-1] < self.max_batch_size:
                raise ValueError("the last allowed_batch_sizes entry must be >= max_batch_size")
        if self.min_truncation_psi > self.max_truncation_psi:
            raise ValueError("min_truncation_psi must not exceed max_truncation_psi")
        if self.complete_steps > self.max_complete_steps:
            raise ValueError("complete_steps must not exceed max_complete_steps")
        if self.max_images_per_request > self.max_enqueued:
            raise ValueError("max_images_per_request must not exceed max_enqueued")
        return self

    def batch_sizes(self) -> list[int]:
        """The allowed batch sizes, explicit or the default ladder.

        The default starts at one row, so that a lone request (sequential traffic, or batching
        off) costs one row's work; images agree across batch shapes to within a grey level.
        """
        if self.allowed_batch_sizes is not None:
            return list(self.allowed_batch_sizes)
        # Powers of two, with the midpoints from 8 up (12, 24, 48, ...): padding then wastes
        # at most a third of a batch, for a few more shapes to warm up.
        sizes = []
        size = 1
        while size < self.max_batch_size:
            sizes.append(size)
            if size >= 8 and size + size // 2 < self.max_batch_size:
                sizes.append(size + size // 2)
            size *= 2
        return [*sizes, self.max_batch_size]
