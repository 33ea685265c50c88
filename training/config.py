"""Typed training configuration: one frozen dataclass, validated once.

Usage::

    from training.config import TrainConfig

    config = TrainConfig(dataset="digits", resolution=32, steps=2000)
    config.validate()                      # raises ConfigError with one clear message
    data = config.to_dict()                # JSON-ready (written to the run directory)
    same = TrainConfig.from_dict(data)     # unknown keys are an error

The CLI builds one of these from its flags; nothing else reads command-line arguments.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from training.nets.layouts import RESNET_RESOLUTIONS

RESOLUTIONS = (16, 28, 32, 64, 128)
LOSSES = ("nonsaturating", "minimax", "hinge", "wgan-gp")
ARCHITECTURES = ("dcgan", "resnet")
G_CONDITIONINGS = ("concat", "batchnorm", "batchnorm-z")
STRATEGIES = ("auto", "none", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DATASET_KINDS = ("folder", "mnist-idx", "npz", "digits", "keras")
MASK_MODES = ("ambient", "zero-fill", "ignore")  # partly observed data: see training/masking.py
DIVERSITY_SPACES = ("pixels", "features")  # where the mode-seeking term measures (gan.py)
RECIPES = ("auto", "classic")  # how options are chosen: see training/recipe.py
MAX_MINUTES = 525_600  # a year: a time budget beyond it is a typo

# Options that may differ between a run and its resume: they change how long or how often
# things happen, not what the networks, data or optimizers are.
RESUMABLE_FIELDS = frozenset(
    {"steps", "minutes", "sample_every", "checkpoint_every", "log_every", "eval_every", "strategy"}
)


class ConfigError(ValueError):
    """An option is invalid; the message says which and why (CLIs exit with code 2)."""


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run (the resolved form is saved as ``options.json``)."""

    dataset: str = "digits"
    resolution: int = 32
    channels: int = 1
    conditional: bool = False
    z_dim: int = 128
    architecture: str = "dcgan"
    g_conditioning: str = "concat"  # how a DCGAN generator takes the class: see nets/dcgan.py
    g_width: int = 64  # channels of the generator's last hidden layer (doubles toward 4x4)
    d_width: int = 64  # channels of the discriminator's first layer (doubles toward 4x4)
    max_width: int = 512
    loss: str = "nonsaturating"
    r1_gamma: float = 0.0
    gp_weight: float = 10.0
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - label_smoothing
    class_weight: float = 0.0  # auxiliary class loss of conditional DCGANs (gan.py); 0 = off
    # The class loss's weight at step 0 as a multiple of class_weight, falling linearly to 1
    # (class_weight itself) at step class_boost_steps: the classes first, the variety after.
    class_boost: float = 1.0
    class_boost_steps: int = 0  # 0 = no schedule (class_weight throughout)
    diversity_weight: float = 0.0  # mode-seeking term of G's loss (gan.mode_seeking); 0 = off
    diversity_space: str = "pixels"  # where that term measures two images' distance
    # The mode-seeking term's weight rises linearly from 0 at step 0 to diversity_weight at this
    # step: the classes form before the variety is asked for. 0 = the full weight from the start.
    diversity_ramp_steps: int = 0
    # Minibatch standard deviation in D (nets.dcgan.MinibatchStddev): images per group; 0 = off.
    mbstd_group: int = 0
    n_critic: int = 1
    batch_size: int = 64  # global batch (split across replicas)
    steps: int = 10_000  # generator steps in total; 0 = no limit (a run of ``minutes`` alone)
    # Training time in total, across resumes, in minutes; 0 = no limit. Training ends at the
    # first of ``steps`` and ``minutes``.
    minutes: float = 0.0
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999
    ema_rampup: float = 0.05  # EMA half-life capped at this fraction of the steps done; 0 = off
    holdout: int = 1000  # real images kept out of training for the score calibration
    sample_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 50
    seed: int = 0
    strategy: str = "auto"
    precision: str = "float32"
    jit: bool = False
    augment: str = ""
    flip: bool = False
    eval_every: int = 0
    name: str = ""  # run name (the suffix of runs/00000-<name>); derived from the dataset if empty
    # Partly observed data (training/masking.py): a simulated corruption, and how D sees holes.
    corrupt: str = ""  # "dropout:P" or "block:SIDE"; empty = none
    # "ambient": D compares observed pixels; "zero-fill": the naive baseline (holes black);
    # "ignore": a folder's alpha is composited on black as for complete data (no masks).
    mask_mode: str = "ambient"
    # Set by training, not a flag: D takes each image's mask as one more input channel (ambient
    # training on partly observed data; see training/masking.py). False in runs from before it.
    mask_channel: bool = False
    # Masks each generated image is judged under in a G step of ambient training (averaged):
    # on MNIST with 50% of the pixels missing, 4 gave FD 0.37 where 1 gave 0.51 (6,000 steps).
    mask_draws: int = 4
    # How the options were chosen (training/recipe.py): "classic" keeps them as given; "auto"
    # (gan-train's default) lets the recipe choose those not named in ``explicit`` from the data.
    recipe: str = "classic"
    explicit: tuple[str, ...] = ()

    def validate(self) -> TrainConfig:
        """Check every option; return ``self`` so calls chain. Raises :class:`ConfigError`."""
        kind = self.dataset.split(":", 1)[0]
        if kind not in DATASET_KINDS:
            raise ConfigError(
                f"unknown dataset kind {kind!r} in {self.dataset!r}; expected one of "
                "folder:PATH, mnist-idx:DIR, npz:PATH, digits, keras:mnist|fashion_mnist|cifar10"
            )
        if self.resolution not in RESOLUTIONS:
            raise ConfigError(
                f"unsupported resolution {self.resolution}; expected one of {list(RESOLUTIONS)}"
            )
        _choice("channels", self.channels, (1, 3))
        _choice("loss", self.loss, LOSSES)
        _choice("architecture", self.architecture, ARCHITECTURES)
        _choice("g_conditioning", self.g_conditioning, G_CONDITIONINGS)
        _choice("strategy", self.strategy, STRATEGIES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("mask_mode", self.mask_mode, MASK_MODES)
        _choice("recipe", self.recipe, RECIPES)
        _choice("diversity_space", self.diversity_space, DIVERSITY_SPACES)
        unknown = sorted(set(self.explicit) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"explicit names unknown options: {', '.join(unknown)}")
        from gan_contract.masks import MaskError, parse_corruption

        try:
            corruption = parse_corruption(self.corrupt)
        except MaskError as error:
            raise ConfigError(str(error)) from None
        if corruption is not None and self.mask_mode == "ignore":
            raise ConfigError("--corrupt and --mask-mode ignore contradict each other")
        block = corruption is not None and corruption.kind == "block"
        if block and corruption is not None and corruption.amount >= self.resolution:
            raise ConfigError(
                f"--corrupt {self.corrupt}: the block must be smaller than the "
                f"{self.resolution}x{self.resolution} image"
            )
        for name in ("z_dim", "g_width", "d_width", "max_width", "n_critic", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (math.isfinite(self.minutes) and 0 <= self.minutes <= MAX_MINUTES):
            raise ConfigError(
                f"minutes must be 0 (no time limit) to {MAX_MINUTES:,} (a year), got {self.minutes}"
            )
        if self.steps < 0 or (self.steps == 0 and not self.minutes):
            raise ConfigError(
                f"steps must be at least 1 (or 0, no step limit, with minutes), got {self.steps}"
            )
        counts = (
            "sample_every", "checkpoint_every", "log_every", "eval_every", "holdout",
            "class_boost_steps", "diversity_ramp_steps",
        )  # fmt: skip
        for name in counts:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("beta1", "beta2", "ema_decay", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        weights = (
            "r1_gamma", "gp_weight", "ema_rampup", "class_weight", "class_boost",
            "diversity_weight",
        )  # fmt: skip
        if min(getattr(self, name) for name in weights) < 0:
            raise ConfigError(f"{', '.join(weights)} must be 0 or more")
        if not 1 <= self.mask_draws <= 16:
            raise ConfigError(f"mask_draws must be 1 to 16, got {self.mask_draws}")
        if self.mbstd_group < 0 or (self.mbstd_group and self.batch_size % self.mbstd_group):
            raise ConfigError(
                f"mbstd_group must be 0 or divide the batch size {self.batch_size}, "
                f"got {self.mbstd_group}"
            )
        if self.architecture == "resnet" and self.resolution not in RESNET_RESOLUTIONS:
            sizes = ", ".join(map(str, RESNET_RESOLUTIONS))
            raise ConfigError(
                f"--architecture resnet has layouts for resolutions {sizes}, not {self.resolution}"
            )
        if self.mbstd_group and self.architecture != "dcgan":
            raise ConfigError("mbstd_group needs the DCGAN discriminator (--architecture dcgan)")
        if self.class_weight > 0 and (self.architecture != "dcgan" or not self.conditional):
            raise ConfigError("class_weight needs a conditional DCGAN (--conditional)")
        if self.diversity_space == "features" and self.architecture != "dcgan":
            raise ConfigError(
                "diversity_space features needs the DCGAN discriminator (--architecture dcgan)"
            )
        if not 0 <= self.seed < 2**31:
            raise ConfigError(f"seed must be in 0..2**31-1, got {self.seed}")
        return self

    @property
    def run_name(self) -> str:
        """The run directory's suffix: ``name`` or a slug of the dataset spec."""
        base = self.name or self.dataset.replace("\\", "/").rstrip("/").split("/")[-1]
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in base).strip("-")
        return slug or "run"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every option."""
        data = dataclasses.asdict(self)
        data["explicit"] = list(self.explicit)  # as JSON reads it back
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training options: {', '.join(unknown)}")
        if "mask_draws" not in data:  # options saved before it existed: those runs used one
            data = {**data, "mask_draws": 1}
        if isinstance(data.get("explicit"), list):  # JSON has no tuples
            data = {**data, "explicit": tuple(data["explicit"])}
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some options changed."""
        return dataclasses.replace(self, **changes)


def _choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"unsupported {name} {value!r}; expected one of {list(allowed)}")
