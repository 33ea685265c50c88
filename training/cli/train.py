"""``gan-train``: train a GAN on images (or resume a run), then optionally export it.

A thin layer: parse the flags (one per :class:`training.config.TrainConfig` field), build the
config and call :func:`training.loop.train`. TensorFlow is loaded only after the arguments, the
dataset path and the installed packages are checked (:mod:`training.cli.startup`); every failure
is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.cli.startup import (
    check_dataset_path,
    fail,
    load_tensorflow,
    one_line_errors,
    require_packages,
)
from training.config import (
    ARCHITECTURES,
    DIVERSITY_SPACES,
    G_CONDITIONINGS,
    LOSSES,
    MASK_MODES,
    PRECISIONS,
    RECIPES,
    RESOLUTIONS,
    STRATEGIES,
    ConfigError,
    TrainConfig,
)
from training.recipe import RECIPE_FIELDS

EXAMPLES = """examples:
  # a small conditional model on scikit-learn's digits (no download), then images from it
  gan-train --dataset digits --conditional --resolution 16 --steps 300 --export digits
  gan-sample models/digits --seeds 0-9 --class 3 --grid digits-3.png

  # your own pictures, one subfolder per class, 64x64 RGB with flips, for an hour
  gan-train --dataset folder:~/pictures --conditional --resolution 64 --channels 3 --flip \\
      --minutes 60 --export pictures

  # MNIST from its IDX files, WGAN-GP with 5 critic steps
  gan-train --dataset mnist-idx:../shared/data/mnist --resolution 28 --loss wgan-gp --n-critic 5

  # continue a run (Ctrl-C or SIGTERM leaves a checkpoint), with more steps
  gan-train --resume runs/00000-digits --steps 600
  gan-train --dataset npz:faces.npz --resolution 32 --channels 3 --dry-run

  # partly observed data: half the pixels of every image missing (or a folder of RGBA images
  # whose alpha marks missing pixels, or an npz with a 'mask' array beside 'x')
  gan-train --dataset mnist-idx:../shared/data/mnist --resolution 28 --corrupt dropout:0.5

dataset kinds: folder:PATH, mnist-idx:DIR, npz:PATH (arrays x, optional y), digits,
keras:mnist|fashion_mnist|cifar10. A run writes runs/NNNNN-NAME/ (options.json, metrics.jsonl,
tensorboard/, samples/, checkpoints/).
"""

# Help for each TrainConfig field; the flag is the field name with dashes.
FIELD_HELP: dict[str, str] = {
    "dataset": "folder:PATH, mnist-idx:DIR, npz:PATH, digits or keras:NAME",
    "resolution": f"image side, one of {list(RESOLUTIONS)}",
    "channels": "1 (grayscale) or 3 (RGB)",
    "conditional": "class-conditional (labels from the dataset)",
    "z_dim": "latent size",
    "architecture": f"network family, one of {list(ARCHITECTURES)}",
    "g_conditioning": "how a conditional DCGAN generator takes the class: concat (an embedding "
    "beside z), batchnorm (a per-class gain and bias in every normalisation) or batchnorm-z "
    "(the same, plus a gain and bias from z in every normalisation: z reaches every scale)",
    "g_width": "generator channels at the finest level (doubling toward 4x4)",
    "d_width": "discriminator channels at the finest level (doubling toward 4x4)",
    "max_width": "channel cap of both networks",
    "loss": f"one of {list(LOSSES)}",
    "r1_gamma": "R1 penalty weight (0 = off)",
    "gp_weight": "WGAN-GP gradient penalty weight",
    "label_smoothing": "one-sided label smoothing of real targets (non-saturating/minimax)",
    "class_weight": "weight of an auxiliary class loss (conditional DCGAN): D learns to classify "
    "the real images by the scores of its class projection, G to make images D classifies as "
    "their class (0 = off)",
    "class_boost": "the class loss's weight at step 0 as a multiple of --class-weight, falling "
    "linearly to --class-weight at step --class-boost-steps",
    "class_boost_steps": "steps over which --class-boost falls to 1 (0 = no schedule)",
    "diversity_ramp_steps": "steps over which the mode-seeking term's weight rises from 0 to "
    "--diversity-weight, so that the classes form first (0 = the full weight from step 0)",
    "diversity_weight": "weight of a mode-seeking term (MSGAN): G is penalised when two latents "
    "of one class give nearly the same image (0 = off)",
    "diversity_space": "where the mode-seeking term measures how much two images differ: pixels, "
    "or the discriminator's features (DCGAN; pixels are satisfied by recolouring one shape)",
    "mask_draws": "ambient training on partly observed data: masks each generated image is "
    "judged under in a G step, the loss averaged over them (lower variance, a D pass each)",
    "mbstd_group": "minibatch standard deviation in D (ProGAN): D also sees how much the images "
    "of each group of this many differ, so it can tell a collapsed generator (0 = off)",
    "n_critic": "discriminator steps per generator step",
    "batch_size": "global batch size (split across devices)",
    "steps": "generator steps in total (a resumed run continues to this); with --minutes and "
    "no --steps there is no step limit",
    "minutes": "training time in minutes, in total (a resumed run continues to it): training "
    "ends when it is spent, at the end of a step, and checkpoints and exports as at the last "
    "of --steps; with --steps too, whichever comes first (0 = no time limit)",
    "lr_g": "generator learning rate (Adam)",
    "lr_d": "discriminator learning rate (Adam)",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "ema_decay": "per-step decay of the exported EMA generator",
    "ema_rampup": "EMA half-life capped at this fraction of the steps done (0 = off)",
    "holdout": "real images held out for the score calibration (at most a tenth)",
    "sample_every": "steps between sample grids (0 = only at the end)",
    "checkpoint_every": "steps between checkpoints (0 = only at the end)",
    "log_every": "steps between metrics.jsonl / TensorBoard records",
    "seed": "random seed",
    "strategy": f"distribution strategy, one of {list(STRATEGIES)}",
    "precision": f"one of {list(PRECISIONS)}",
    "jit": "compile the train step with XLA",
    "augment": "differentiable augmentation policy (empty = none)",
    "flip": "random horizontal flips of the real images",
    "eval_every": "steps between evaluations (0 = off)",
    "name": "run name (default: from the dataset)",
    "corrupt": "simulate missing pixels: dropout:P (each pixel with probability P) or "
    "block:SIDE (one random square per image); empty = none",
    "recipe": "auto = choose the architecture, widths, loss, regularisation, augmentation, "
    "batch and optimizer from the data, keeping every option given on the command line "
    "(printed at start-up, kept in run.json); classic = the values in brackets",
    "explicit": "",
    "mask_mode": f"training on partly observed data, one of {list(MASK_MODES)}: ambient = D "
    "compares only observed pixels (the fakes get the data's masks); zero-fill = a plain GAN on "
    "images whose holes are black (a baseline); ignore = alpha is no mask (composited on "
    "black)",
}
CHOICES: dict[str, Sequence[Any]] = {
    "resolution": RESOLUTIONS,
    "channels": (1, 3),
    "architecture": ARCHITECTURES,
    "g_conditioning": G_CONDITIONINGS,
    "loss": LOSSES,
    "strategy": STRATEGIES,
    "precision": PRECISIONS,
    "mask_mode": MASK_MODES,
    "recipe": RECIPES,
    "diversity_space": DIVERSITY_SPACES,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-train`` (one flag per TrainConfig field)."""
    parser = argparse.ArgumentParser(
        prog="gan-train",
        description="Train a GAN (generator and discriminator, adversarially) on images and "
        "optionally export its EMA generator as a SavedModel.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = TrainConfig()
    options = parser.add_argument_group(
        "training options (classic defaults in brackets; --recipe auto, the default, chooses "
        "the architecture, widths, loss, regularisation, augmentation, batch and optimizer "
        "from the data unless given)"
    )
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("explicit", "mask_channel"):  # gan-train fills these in, from the flags
            continue  # given and from the data
        default = "auto" if f.name == "recipe" else getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{FIELD_HELP[f.name]} [{default!r}]"
        if isinstance(default, bool):
            options.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                help=help_text,
            )  # fmt: skip
        else:
            options.add_argument(
                flag,
                type=type(default),
                default=argparse.SUPPRESS,
                help=help_text,
                choices=CHOICES.get(f.name),
                metavar=None if f.name in CHOICES else f.name.upper(),
            )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--outdir", type=Path, default=Path("runs"), help="parent of run directories [runs]"
    )
    run.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue this run from its checkpoint"
    )
    run.add_argument(
        "--export", metavar="NAME", help="export to MODELS_DIR/NAME/<next version> at the end"
    )
    run.add_argument(
        "--models-dir", type=Path, default=Path("models"), help="model repository [models]"
    )
    run.add_argument(
        "--encoder-steps", type=int, default=0, metavar="N",
        help="with --export: train an encoder N steps on the generator's samples and export "
        "the encode and complete signatures too [0 = none]",
    )  # fmt: skip
    run.add_argument("--dry-run", action="store_true", help="print the resolved options and exit")
    return parser


@one_line_errors("gan-train")
def main(argv: Sequence[str] | None = None) -> int:
    """``gan-train``: train (or resume), then optionally export."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    names = ("outdir", "resume", "export", "models_dir", "dry_run", "encoder_steps")
    control = {k: args.pop(k) for k in names}
    if control["encoder_steps"] < 0:
        fail("gan-train", "--encoder-steps must be 0 (none) or more")
    command = "gan-train " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    try:
        if control["resume"] is not None:
            from training.rundir import resume_config  # no TensorFlow in this module

            config = resume_config(control["resume"], args).validate()
        else:
            # gan-train lets the data choose what the user did not (training/recipe.py).
            explicit = tuple(sorted(name for name in args if name in RECIPE_FIELDS))
            args = {"recipe": "auto", **args, "explicit": explicit}
            if args.get("minutes") and "steps" not in args:
                args["steps"] = 0  # a time budget alone: no step limit
            config = TrainConfig(**args).validate()
    except ConfigError as error:
        fail("gan-train", str(error))
    check_dataset_path("gan-train", config.dataset)
    require_packages("gan-train")
    if control["dry_run"]:
        print(json.dumps({**config.to_dict(), **{k: str(v) for k, v in control.items()}}, indent=2))
        if config.recipe == "auto" and control["resume"] is None:
            chosen = ", ".join(name for name in RECIPE_FIELDS if name not in config.explicit)
            print(
                f"gan-train: recipe auto chooses {chosen} from the data when the run starts "
                "(the values above are the classic defaults)",
                file=sys.stderr,
            )
        return 0

    load_tensorflow("gan-train", ", then the data and the networks")
    from training.data import DatasetError
    from training.distribute import bfloat16_warning
    from training.loop import TrainingDiverged, train

    warning = bfloat16_warning(config.precision)
    if warning:
        print(f"gan-train: warning: {warning}", file=sys.stderr)

    try:
        result = train(config, outdir=control["outdir"], resume=control["resume"], command=command)
    except (ConfigError, DatasetError, TrainingDiverged, OSError) as error:
        fail("gan-train", str(error))
    print(f"{result.status} at step {int(result.gan.step.numpy())}{_reached(result)}: "
          f"{result.run_dir}")  # fmt: skip
    if result.status != "finished":
        print(f"resume with: gan-train --resume {result.run_dir}")
        return 0
    if control["export"] and not result.chief:
        print("not the chief worker: the chief exports the model")
    elif control["export"]:
        from training.export import ExportError, export_model, with_encoder
        from training.metrics.callback import last_eval_metrics

        try:
            encoder, encoder_info = with_encoder(
                result.gan, control["encoder_steps"], verbose=True, real=result.data
            )
            version_dir = export_model(
                result.gan, control["models_dir"], control["export"], run_dir=result.run_dir,
                holdout=result.holdout, metrics=last_eval_metrics(result.run_dir),
                encoder=encoder, encoder_info=encoder_info,
            )  # fmt: skip
        except (ExportError, OSError) as error:
            fail(
                "gan-train", f"training finished ({result.run_dir}), but the export failed: {error}"
            )
        print(f"exported {version_dir}")
    return 0


def _reached(result: Any) -> str:
    """What a run of ``--minutes`` reached in its time (empty for a run ended by its steps):
    machines differ, so the steps do too."""
    if not result.out_of_time:
        return ""
    minutes = result.gan.config.minutes
    if not result.history:  # nothing trained now: a resume of a run whose time was spent
        return f" (its {minutes:g} minutes of training were spent before)"
    steps = int(result.gan.step.numpy())
    rate = steps / max(result.seconds, 1e-9) * 60
    took = f"{result.seconds:.0f} s" if result.seconds < 120 else f"{result.seconds / 60:.1f} min"
    return (
        f", the {minutes:g}-minute budget spent ({steps:,} steps in {took} of training, "
        f"{rate:.0f} a minute on this machine)"
    )
