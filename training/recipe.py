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
- ProGAN's minibatch standard deviation in D (``--mbstd-group``) is not chosen: with groups of 4
  recall rose from 0.14 to 0.27 in 12-minute runs, but in the 30-minute benchmark it gave 0.19
  against 0.17, FD 1.66 against 1.10 and less coverage (0.38 against 0.40): no clear gain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from training.config import RECIPES, TrainConfig

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
    "augment",
    "batch_size",
    "lr_g",
    "lr_d",
    "beta1",
    "beta2",
    "n_critic",
    "ema_decay",
)

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
    architecture: str | None = None,
    loss: str | None = None,
) -> list[Choice]:
    """The automatic recipe's value and reason for every option in :data:`RECIPE_FIELDS`.

    ``architecture`` and ``loss`` are the user's when given: the optimizer settings follow them
    (SNGAN's for the ResNet with hinge, WGAN-GP's for wgan-gp).
    """
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
    if arch == "dcgan" and resolution >= 64:
        width //= 2  # two more doublings toward 4x4: keep the step affordable
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
    batch = 64 if num_images >= 640 else 32
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
            "g_conditioning", "batchnorm-z" if conditioned else "concat",
            "conditional batch norm: the class sets every layer's gain and bias, so G cannot "
            "ignore it (with the label only beside z, G learnt colours and ignored the class); "
            "z shifts them too, so it reaches every scale and can vary the shapes (BigGAN's skip-z)"
            if conditioned else f"an embedding of the class beside z: {unconditioned}",
        ),
        Choice(
            "g_width", width,
            f"narrow for {size} at {resolution}x{resolution}" if small else
            plain if grey else f"standard for {size} at {resolution}x{resolution}",
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
        Choice("augment", policy, augment_reason),
        Choice(
            "batch_size", batch,
            "64, DCGAN's" if batch == 64 else "32: 64 would be over a tenth of the data",
        ),
        Choice("lr_g", 2e-4, "Adam 2e-4, the common baseline"),
        Choice("lr_d", 2e-4, "as the generator's"),
        Choice("beta1", beta1, f"Adam betas {optimizer}"),
        Choice("beta2", beta2, "see beta1"),
        Choice("n_critic", n_critic, "D steps per G step: " + optimizer.split(" (")[0]),
        Choice("ema_decay", 0.999, "exported G averages the last ~700 steps (ramped up early)"),
    ]  # fmt: skip


def resolve(config: TrainConfig, num_images: int) -> tuple[TrainConfig, list[Choice]]:
    """``config`` with the recipe applied, and the choices made (empty for ``classic``).

    Options named in ``config.explicit`` keep their values; they appear as ``kept`` choices.
    """
    if config.recipe != "auto":
        return config, []
    keep = set(config.explicit)
    choices = []
    given = {name: getattr(config, name) for name in ("architecture", "loss") if name in keep}
    for choice in auto_choices(
        config.resolution, config.channels, num_images, config.conditional, **given
    ):
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
