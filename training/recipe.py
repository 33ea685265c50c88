"""The automatic training recipe: options chosen from the data, as ``gan-train`` does by default.

Usage::

    from training.recipe import resolve

    config = TrainConfig(dataset="folder:pics", resolution=32, channels=3, recipe="auto",
                         explicit=("loss",))          # the user chose the loss: kept as given
    config, choices = resolve(config, num_images=2700)
    for choice in choices:
        print(choice.line())                           # "--augment  color,translation  ..."

``recipe="classic"`` (TrainConfig's default, for code that builds configs itself) keeps every
option as given. ``recipe="auto"`` (gan-train's default) replaces the options in
:data:`RECIPE_FIELDS` that the user did not give (``explicit``) with the values below, chosen
from the image size, the channels and the number of training images. Each choice carries the
reason printed at start-up and kept in ``run.json``; the resolved options are ``options.json``.

What the rules encode (measured on 3,000 recoloured MNIST digits, ``benchmarks/colour_recipe.py``
and the 8-minute runs of docs/recipe.md, and from the data-efficient GAN literature):

- With classes, the plain DCGAN collapses in one of two ways on small colour data: G ignores z
  (one picture per class) or ignores the class (one shape per seed in every class). Conditional
  batch norm puts the class into every layer of G; the auxiliary class loss (AC-GAN) makes D
  learn the classes from the labels rather than only from the adversarial game; together they
  give every class but one picture each, and the mode-seeking term (MSGAN) restores the variety.
  Measured in pixels that term was met by recolouring one shape per class (recall 0.15-0.19 in
  12,700-step runs); measured in D's features, where shapes count too, recall reached 0.48, and
  0.55 with z fed to every normalisation of G (BigGAN's skip-z), which gives z a direct say in
  every scale rather than only through the first layer.
- Grey images keep the plain options: on 9,000 MNIST digits (8 minutes each, side by side) they
  reached class accuracy 0.85 and FD 3.5 where the small-data measures reached 0.56 and 13.1.
  Data sets of 20,000 images or more keep them too: the measures were measured on small ones.
- Small data sets need DiffAugment (Zhao et al. 2020) against a D that memorises them; cutout
  hides too much of a 32-pixel digit, colour jitter suits colour images only.
- R1 slowed the step by a third and stopped neither collapse, so it stays off.
- On a CPU the DCGAN networks train an order of magnitude faster per step than the SN-ResNet
  (750 against 47 images/s at 32x32x3, widths 32 and 16), so the recipe keeps DCGAN; the ResNet
  stays a choice (``--architecture resnet``) for GPUs and CIFAR-10-sized data.
- Narrower networks for small data sets: fewer parameters to fit a few thousand images, and more
  steps in the same time.
- Past 32x32 the networks follow the resolution as StyleGAN2-ADA's ``--cfg auto`` derives them
  (``min(channel_base / resolution, channel_max)`` channels at each resolution): one level more
  per doubling, and every level keeps the channels it has at 32x32, so the DCGAN's finest width
  halves per doubling (32, 16, 8 for small colour data at 32, 64, 128) and each level costs about
  the same. The ResNet's layouts (BigGAN's) halve their channels per level already.
- The batch is DCGAN's 64 (32 below 640 images) when the step's activations fit 2 GiB
  (:mod:`training.footprint` estimates them from the networks as built), else the largest
  multiple of 8 that fits: memory per image grows with the resolution (StyleGAN2-ADA halves its
  batch from 32 at 128x128 per doubling for the same reason, ``min(4096 // resolution, 32)``).
- ProGAN's minibatch standard deviation in D (``--mbstd-group``) is not chosen: with groups of 4
  recall rose from 0.14 to 0.27 in 12-minute runs, but in the 30-minute benchmark it gave 0.19
  against 0.17, FD 1.66 against 1.10 and less coverage (0.38 against 0.40): no clear gain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from training import footprint
from training.config import RECIPES, TrainConfig
from training.nets.layouts import base_size, dcgan_widths, num_upsamplings, resnet_layout

__all__ = ["RECIPES", "RECIPE_FIELDS", "Choice", "auto_choices", "report", "resolve"]

# The options the automatic recipe may choose; anything else is always the user's (or default).
RECIPE_FIELDS = (
    "architecture",
    "g_conditioning",
    "g_width",
    "d_width",
    "loss",
    "r1_gamma",
    "class_weight",
    "diversity_weight",
    "diversity_space",
    "diversity_ramp_steps",
    "augment",
    "batch_size",
    "lr_g",
    "lr_d",
    "beta1",
    "beta2",
    "n_critic",
    "ema_decay",
)

# Steps over which the recipe's mode-seeking term grows to its weight (docs/recipe.md, Reaching
# the classes sooner): a step count, not a share of the run, so a longer run passes through the
# same early states and only adds steps at the full weight.
DIVERSITY_RAMP_STEPS = 3000

# Below this many training images the discriminator overfits without augmentation (DiffAugment
# reports its gains up to 20% of CIFAR-10, i.e. 10,000 images; ADA's up to about 30,000).
SMALL_DATA = 20_000

_LOSS_REASONS = {
    "nonsaturating": "-log D(G(z)), the stable baseline with DCGAN",
    "hinge": "hinge, SNGAN's loss for its spectrally normalised networks",
}


@dataclass(frozen=True)
class Choice:
    """One option the recipe set (or kept because the user gave it)."""

    field: str
    value: Any
    reason: str
    kept: bool = False  # the user's value, left alone

    def line(self) -> str:
        """One line for the start-up report."""
        flag = "--" + self.field.replace("_", "-")
        value = "''" if self.value == "" else str(self.value)
        return f"  {flag:<19} {value:<25} {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"option": self.field, "value": self.value, "reason": self.reason, "kept": self.kept}


def auto_choices(
    resolution: int,
    channels: int,
    num_images: int,
    conditional: bool = False,
    given: Mapping[str, Any] | None = None,
    max_width: int = 512,
) -> list[Choice]:
    """The automatic recipe's value and reason for every option in :data:`RECIPE_FIELDS`.

    ``given``: the options the user chose (by field name), which the others follow: the
    optimizer follows a given architecture or loss (SNGAN's for the ResNet with hinge, WGAN-GP's
    for wgan-gp), the batch the memory of the networks as given. Their own choices are listed
    with the recipe's value; :func:`resolve` replaces them with the user's.
    """
    given = dict(given or {})
    architecture, loss = given.get("architecture"), given.get("loss")
    # The measures below were measured to help on small colour data sets; on grey MNIST (9,000
    # images) the plain options trained better in the same time, so grey data keeps them.
    small = num_images < SMALL_DATA and channels == 3
    grey = channels == 1
    arch = architecture or "dcgan"
    conditioned = conditional and small  # the class-conditioning measures
    # The class loss and the feature-space mode seeking: the ResNet's D has neither class
    # scores nor a features layer to measure in.
    dcgan_measures = conditioned and arch == "dcgan"
    size = f"{num_images:,} training images"
    plain = "grey images: the plain DCGAN options (on 9,000 MNIST digits they beat the small-data "
    plain += "measures in the same time)"
    large = f"{size}: it helped below {SMALL_DATA:,} colour images"
    # Why a class-conditioning measure is off, when it is.
    unconditioned = "no classes" if not conditional else plain if grey else large
    loss = loss or ("hinge" if arch == "resnet" else "nonsaturating")
    # The DCGAN's channels at the finest level (doubling toward 4x4), or the ResNet's base width
    # (64 = BigGAN's CIFAR-10 networks).
    width = 32 if small else 64
    if arch == "dcgan" and resolution > 32:
        # One level more per doubling, and every level keeps the channels it has at 32x32, so
        # the finest halves: StyleGAN2-ADA's min(channel_base / resolution, channel_max).
        width = width * 32 // resolution
    if small:
        # Cutout hid too much of a 32-pixel digit (class accuracy 0.50 against 0.84 without).
        policy = "color,translation"
        augment_reason = (
            f"DiffAugment: with {size} (< {SMALL_DATA:,}) the discriminator memorises the data "
            "and the generator collapses without it"
        )
    else:
        policy = ""
        augment_reason = "none: " + (
            plain if grey else f"{size} are enough for the discriminator not to memorise them"
        )
    g_conditioning = "batchnorm-z" if conditioned else "concat"
    # The networks as they will be built (the user's widths, augmentation and conditioning where
    # given): the batch follows their memory.
    networks = TrainConfig(
        resolution=resolution, channels=channels, conditional=conditional, architecture=arch,
        g_width=given.get("g_width", width), d_width=given.get("d_width", width),
        max_width=max_width, augment=given.get("augment", policy),
        g_conditioning=given.get("g_conditioning", g_conditioning),
    )  # fmt: skip
    batch, batch_reason = _batch(networks, num_images)
    if loss == "wgan-gp":
        n_critic, beta1, beta2 = 5, 0.0, 0.9
        optimizer = "WGAN-GP's (Gulrajani et al. 2017)"
    elif arch == "resnet":
        n_critic, beta1, beta2 = 2, 0.0, 0.9
        optimizer = "SNGAN's (Miyato et al. 2018), with 2 D steps per G step instead of 5"
    else:
        n_critic, beta1, beta2 = 1, 0.5, 0.999
        optimizer = "DCGAN's (Radford et al. 2016): less momentum keeps the game stable"
    return [
        Choice(
            "architecture", arch,
            "DCGAN: an order of magnitude faster per step than the SN-ResNet on a CPU; choose "
            "--architecture resnet on GPUs for CIFAR-10-sized data",
        ),
        Choice(
            "g_conditioning", g_conditioning,
            "conditional batch norm: the class sets every layer's gain and bias, so G cannot "
            "ignore it (with the label only beside z, G learnt colours and ignored the class); "
            "z shifts them too, so it reaches every scale and can vary the shapes (BigGAN's skip-z)"
            if conditioned else f"an embedding of the class beside z: {unconditioned}",
        ),
        Choice(
            "g_width", width,
            (f"narrow for {size} at {resolution}x{resolution}" if small else
             plain if grey else f"standard for {size} at {resolution}x{resolution}")
            + _levels(arch, resolution, width, max_width),
        ),
        Choice("d_width", width, "as the generator's, so neither network overpowers the other"),
        Choice("loss", loss, _LOSS_REASONS.get(loss, "given")),
        Choice("r1_gamma", 0.0, "off: it slowed training by a third and did not stop collapse"),
        Choice(
            "class_weight", 1.0 if dcgan_measures else 0.0,
            "D also classifies the real images by its class projection and G is rewarded for "
            "images of the asked class (AC-GAN): D learns the classes from labels, not only "
            "from the adversarial game" if dcgan_measures else
            "off: the ResNet has no class scores" if conditioned else f"off: {unconditioned}",
        ),
        Choice(
            "diversity_weight", 1.0 if conditioned else 0.0,
            "mode-seeking term (MSGAN): two latents of one class must give different images, "
            "against the one-picture-per-class collapse of small conditional data sets"
            if conditioned else f"off: {unconditioned}",
        ),
        Choice(
            "diversity_space", "features" if dcgan_measures else "pixels",
            "measured in D's features: in pixels the term was met by recolouring one shape "
            "(recall 0.48 against 0.15-0.19 on 3,000 colour digits)" if dcgan_measures else
            "pixels: the ResNet's D has no features layer to measure in" if conditioned else
            "pixels (the term is off)",
        ),
        Choice(
            "diversity_ramp_steps", DIVERSITY_RAMP_STEPS if dcgan_measures else 0,
            f"the mode-seeking term grows from 0 to its weight over the first "
            f"{DIVERSITY_RAMP_STEPS:,} steps, so that the classes form first (3,000 colour "
            "digits at 6,000 steps: class accuracy 0.95 against 0.85 with the full term from "
            "the start)" if dcgan_measures else
            "0: measured with the DCGAN's class loss only" if conditioned else
            "0 (the term is off)",
        ),
        Choice("augment", policy, augment_reason),
        Choice("batch_size", batch, batch_reason),
        Choice("lr_g", 2e-4, "Adam 2e-4, the common baseline"),
        Choice("lr_d", 2e-4, "as the generator's"),
        Choice("beta1", beta1, f"Adam betas {optimizer}"),
        Choice("beta2", beta2, "see beta1"),
        Choice("n_critic", n_critic, "D steps per G step: " + optimizer.split(" (")[0]),
        Choice("ema_decay", 0.999, "exported G averages the last ~700 steps (ramped up early)"),
    ]  # fmt: skip


def _levels(arch: str, resolution: int, width: int, max_width: int) -> str:
    """How the channels of the networks' levels follow from ``width`` (empty up to 32x32, where
    one sentence said enough when the widths were measured)."""
    if resolution <= 32:
        return ""
    if arch == "resnet":
        multipliers = resnet_layout(resolution).g_channels
        return (
            f"; BigGAN's layout: {multipliers[0] * width} channels at 4x4 halving to "
            f"{multipliers[-1] * width} at {resolution}x{resolution}"
        )
    count = num_upsamplings(resolution)
    widths = dcgan_widths(width, max_width, count)
    finest = base_size(resolution) * 2 ** (count - 1)
    return (
        f"; {widths[0]} channels at 4x4 halving per level to {widths[-1]} at {finest}x{finest} "
        "(StyleGAN2-ADA's rule: each level keeps its channels at 32x32, one level more per "
        "doubling, and every level costs about the same)"
    )


def _batch(networks: TrainConfig, num_images: int) -> tuple[int, str]:
    """The batch for ``networks`` and its reason: 64 (32 for fewer than 640 images), or the
    largest multiple of 8 whose activations fit :data:`training.footprint.STEP_BUDGET`."""
    cap = 64 if num_images >= 640 else 32
    per_image = footprint.bytes_per_image(networks)
    batch = footprint.largest_batch(per_image, cap)
    need = f"{_size(per_image)} of activations per image"
    budget = f"the {_size(footprint.STEP_BUDGET)} a step is assumed to have"
    if batch == cap:
        first = "64, DCGAN's" if cap == 64 else "32: 64 would be over a tenth of the data"
        return batch, f"{first} ({_size(batch * per_image)} of activations, within {budget})"
    if batch * per_image <= footprint.STEP_BUDGET:
        return batch, f"{batch}: {need} (G's and D's layer outputs); {batch} fit {budget}"
    return batch, (
        f"{batch}, the least: {need} put a step at {_size(batch * per_image)}, over {budget}; "
        "lower --g-width and --d-width if memory runs out"
    )


def _size(count: int) -> str:
    """Bytes as people read them: ``2.5 MB``, ``1.2 GB``, ``2 GiB`` for powers of two."""
    if count >= 2**30 and count % 2**30 == 0:
        return f"{count // 2**30} GiB"
    if count >= 10**9:
        return f"{count / 10**9:.1f} GB"
    return f"{count / 10**6:.2g} MB" if count < 10**7 else f"{count / 10**6:.0f} MB"


def resolve(config: TrainConfig, num_images: int) -> tuple[TrainConfig, list[Choice]]:
    """``config`` with the recipe applied, and the choices made (empty for ``classic``).

    Options named in ``config.explicit`` keep their values; they appear as ``kept`` choices.
    """
    if config.recipe != "auto":
        return config, []
    keep = set(config.explicit)
    choices = []
    given = {name: getattr(config, name) for name in RECIPE_FIELDS if name in keep}
    for choice in auto_choices(
        config.resolution, config.channels, num_images, config.conditional, given,
        config.max_width,
    ):  # fmt: skip
        if choice.field in keep:
            value = getattr(config, choice.field)
            choices.append(Choice(choice.field, value, "given on the command line", kept=True))
        else:
            choices.append(choice)
    changes = {c.field: c.value for c in choices if not c.kept}
    return config.replace(**changes).validate(), choices


def report(choices: Iterable[Choice], num_images: int, config: TrainConfig) -> str:
    """The start-up report of the automatic recipe (one line per option)."""
    head = (
        f"recipe auto for {num_images:,} training images of {config.resolution}x"
        f"{config.resolution}x{config.channels} (override any option with its flag; "
        "--recipe classic keeps the plain defaults):"
    )
    return "\n".join([head, *(choice.line() for choice in choices)])
