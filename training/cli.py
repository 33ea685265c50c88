"""The command-line tools ``gan-train``, ``gan-export`` and ``gan-sample``.

Each is a thin layer: parse arguments, build the typed config, call one function. TensorFlow is
imported only after the arguments, the input paths and the installed packages are checked
(:mod:`training.startup`), so ``--help``, ``--dry-run`` and mistakes stay instant. Every failure
(bad arguments, unreadable data, a diverged run, a failed export, an unexpected error) prints one
clear line and exits with code 2, never a traceback; set ``GAN_TRACEBACK=1`` to see the traceback
of an unexpected error.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
from training.startup import SAMPLE_NEEDS, check_dataset_path, load_tensorflow, require_packages
from training.startup import fail as _fail

TRAIN_EXAMPLES = """examples:
  # a small conditional model on scikit-learn's digits (no download), then images from it
  gan-train --dataset digits --conditional --resolution 16 --steps 300 --export digits
  gan-sample models/digits --seeds 0-9 --class 3 --grid digits-3.png

  # your own pictures, one subfolder per class, 64x64 RGB with flips
  gan-train --dataset folder:~/pictures --conditional --resolution 64 --channels 3 --flip

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

EXPORT_EXAMPLES = """examples:
  gan-export runs/00000-digits --name digits          # -> models/digits/<next version>/
  gan-export runs/00000-digits --name digits --models-dir /srv/models --calibration 500
  gan-export runs/00000-mnist --name mnist --eval-num 10000   # metrics measured into model.json
  gan-export runs/00000-mnist --name mnist --encoder-steps 3000   # + encode and complete
  gan-export models/mnist/1 --name mnist --encoder-steps 3000      # add them to a model version
"""

SAMPLE_EXAMPLES = """examples:
  gan-sample models/mnist --seeds 0-35 --grid grid.png              # latest version
  gan-sample models/mnist/1 --seeds 0-9 --class 3 --psi 0.7 --outdir out/
  gan-sample models/mnist --seeds 0-9 --grid docs/mnist-grid.png   # a row per class
  gan-sample models/mnist --walk 0,7,42 --frames 60 --out walk.webp  # a latent walk (or .gif)
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
    "steps": "generator steps in total (a resumed run continues to this)",
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


def _one_line_errors(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Turn any error a CLI did not foresee into one line and exit code 2 (the last resort)."""

    def wrap(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(argv: Sequence[str] | None = None) -> int:
            try:
                return main(argv)
            except Exception as error:  # SystemExit and Ctrl-C pass through
                if os.environ.get("GAN_TRACEBACK"):
                    raise
                message = str(error).strip().splitlines()
                _fail(prog, f"{type(error).__name__}: {message[0] if message else 'failed'}")

        return run

    return wrap


# -- gan-train -------------------------------------------------------------------------------


def build_train_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-train`` (one flag per TrainConfig field)."""
    parser = argparse.ArgumentParser(
        prog="gan-train",
        description="Train a GAN (generator and discriminator, adversarially) on images and "
        "optionally export its EMA generator as a SavedModel.",
        epilog=TRAIN_EXAMPLES,
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


@_one_line_errors("gan-train")
def train_main(argv: Sequence[str] | None = None) -> int:
    """``gan-train``: train (or resume), then optionally export."""
    parser = build_train_parser()
    args = vars(parser.parse_args(argv))
    names = ("outdir", "resume", "export", "models_dir", "dry_run", "encoder_steps")
    control = {k: args.pop(k) for k in names}
    if control["encoder_steps"] < 0:
        _fail("gan-train", "--encoder-steps must be 0 (none) or more")
    command = "gan-train " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    try:
        if control["resume"] is not None:
            from training.rundir import resume_config  # no TensorFlow in this module

            config = resume_config(control["resume"], args).validate()
        else:
            # gan-train lets the data choose what the user did not (training/recipe.py).
            explicit = tuple(sorted(name for name in args if name in RECIPE_FIELDS))
            args = {"recipe": "auto", **args, "explicit": explicit}
            config = TrainConfig(**args).validate()
    except ConfigError as error:
        _fail("gan-train", str(error))
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
        _fail("gan-train", str(error))
    print(f"{result.status} at step {int(result.gan.step.numpy())}: {result.run_dir}")
    if result.status != "finished":
        print(f"resume with: gan-train --resume {result.run_dir}")
        return 0
    if control["export"] and not result.chief:
        print("not the chief worker: the chief exports the model")
    elif control["export"]:
        from training.export import ExportError, export_model, with_encoder
        from training.metrics.callback import last_eval_metrics

        try:
            encoder, encoder_info = with_encoder(result.gan, control["encoder_steps"], verbose=True)
            version_dir = export_model(
                result.gan, control["models_dir"], control["export"], run_dir=result.run_dir,
                holdout=result.holdout, metrics=last_eval_metrics(result.run_dir),
                encoder=encoder, encoder_info=encoder_info,
            )  # fmt: skip
        except (ExportError, OSError) as error:
            _fail(
                "gan-train", f"training finished ({result.run_dir}), but the export failed: {error}"
            )
        print(f"exported {version_dir}")
    return 0


# -- gan-export ------------------------------------------------------------------------------


def build_export_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-export``."""
    parser = argparse.ArgumentParser(
        prog="gan-export",
        description="Export the last checkpoint of a training run as a model version "
        "(SavedModel with the generate and score signatures, plus model.json).",
        epilog=EXPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR",
        help="a gan-train run directory, or an exported model version (with --encoder-steps: "
        "exported again as the next version, with an encoder)",
    )  # fmt: skip
    parser.add_argument("--name", required=True, help="model name (models/NAME/<version>/)")
    parser.add_argument(
        "--models-dir", type=Path, default=Path("models"), help="model repository [models]"
    )
    parser.add_argument(
        "--calibration",
        type=int,
        default=1000,
        metavar="N",
        help="real and generated images for the score calibration [1000]",
    )
    parser.add_argument(
        "--eval-num",
        type=int,
        default=0,
        metavar="N",
        help="measure the evaluation metrics on N samples now and write them into model.json "
        "(extractor from GAN_EVAL_EXTRACTOR, default the bundled MNIST classifier); "
        "0 = take the run's last --eval-every record [0]",
    )
    parser.add_argument(
        "--encoder-steps", type=int, default=0, metavar="N",
        help="train an encoder N steps on the generator's samples and export the encode and "
        "complete signatures too [0 = none]",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved options and exit"
    )
    return parser


@_one_line_errors("gan-export")
def export_main(argv: Sequence[str] | None = None) -> int:
    """``gan-export RUN_DIR --name NAME``."""
    args = build_export_parser().parse_args(argv)
    if (args.run_dir / "saved_model.pb").is_file():
        return _add_encoder(args)
    from training.rundir import read_run

    try:
        config, _ = read_run(args.run_dir)
    except ConfigError as error:
        _fail("gan-export", str(error))
    if args.calibration < 1:
        _fail("gan-export", "--calibration must be at least 1")
    if args.encoder_steps < 0:
        _fail("gan-export", "--encoder-steps must be 0 (none) or more")
    if args.eval_num < 0:
        _fail("gan-export", "--eval-num must be 0 (off) or a positive number of samples")
    if not args.name or "/" in args.name or args.name.startswith("."):
        _fail("gan-export", f"bad model name {args.name!r}: use a plain directory name")
    require_packages("gan-export")
    if args.dry_run:
        resolved = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        print(json.dumps({**resolved, "training_options": config.to_dict()}, indent=2))
        return 0
    load_tensorflow("gan-export", ", then the run's checkpoint")
    from training.data import DatasetError
    from training.export import ExportError, export_run
    from training.metrics.callback import last_eval_metrics
    from training.metrics.extractors import ExtractorError

    try:
        version_dir = export_run(
            args.run_dir, args.models_dir, args.name, calibration_count=args.calibration,
            metrics=last_eval_metrics(args.run_dir), eval_num=args.eval_num,
            encoder_steps=args.encoder_steps,
        )  # fmt: skip
    except (ExportError, DatasetError, ExtractorError, OSError) as error:
        _fail("gan-export", str(error))
    print(f"exported {version_dir}")
    return 0


def _add_encoder(args: argparse.Namespace) -> int:
    """``gan-export MODEL_VERSION_DIR --name NAME --encoder-steps N``."""
    if args.encoder_steps < 1:
        _fail("gan-export", "an exported model version needs --encoder-steps N (N >= 1)")
    if not args.name or "/" in args.name or args.name.startswith("."):
        _fail("gan-export", f"bad model name {args.name!r}: use a plain directory name")
    if args.dry_run:
        print(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
        return 0
    require_packages("gan-export")
    load_tensorflow("gan-export", ", then the model and its generator")
    from training.export import ExportError, add_encoder

    try:
        version_dir = add_encoder(
            args.run_dir, args.models_dir, args.name, args.encoder_steps, verbose=True
        )
    except (ExportError, ConfigError, KeyError, ValueError) as error:
        _fail("gan-export", f"cannot add an encoder to {args.run_dir}: {error}")
    print(f"exported {version_dir}")
    return 0


# -- gan-sample ------------------------------------------------------------------------------


# The most seeds one gan-sample run draws (the service has its own, smaller, limit).
MAX_SAMPLE_SEEDS = 100_000


def build_sample_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-sample``."""
    from gan_contract.grid import GRID_PADDING

    parser = argparse.ArgumentParser(
        prog="gan-sample",
        description="Generate images from an exported model (no service needed). Seeds map to "
        "noise as in StyleGAN: z = numpy.random.RandomState(seed).randn(z_dim). A conditional "
        "model without --class gives every seed in every class (one row per class).",
        epilog=SAMPLE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model_dir", type=Path, metavar="MODEL_DIR", help="models/NAME (latest) or models/NAME/V"
    )
    parser.add_argument(
        "--seeds",
        default="0-35",
        help=f"seeds, e.g. 0-7,12,20-23, at most {MAX_SAMPLE_SEEDS} [0-35]",
    )
    parser.add_argument(
        "--truncation-psi",
        "--psi",
        dest="psi",
        type=float,
        default=1.0,
        help="truncation psi (1 = none; alias --psi) [1.0]",
    )
    parser.add_argument(
        "--class-label",
        "--class",
        dest="class_label",
        type=int,
        help="class label of a conditional model (alias --class, as in StyleGAN)",
    )
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--outdir", type=Path, help="write one PNG per image into this folder")
    out.add_argument("--grid", type=Path, metavar="FILE", help="write one PNG grid of all images")
    out.add_argument(
        "--out", type=Path, metavar="FILE", help="with --walk: the animation (.webp or .gif)"
    )
    walk = parser.add_argument_group("latent walk (as POST /animate)")
    walk.add_argument("--walk", metavar="SEEDS", help="key seeds visited in order, e.g. 0,7,42")
    walk.add_argument("--frames", type=int, default=60, help="frames of the walk [60]")
    walk.add_argument("--fps", type=float, default=15.0, help="frames per second [15]")
    parser.add_argument(
        "--padding",
        type=int,
        default=GRID_PADDING,
        metavar="PX",
        help=f"black pixels between grid cells; the service's grids have {GRID_PADDING} "
        f"[{GRID_PADDING}]",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved options and exit"
    )
    return parser


@_one_line_errors("gan-sample")
def sample_main(argv: Sequence[str] | None = None) -> int:
    """``gan-sample MODEL_DIR --seeds ... (--outdir DIR | --grid FILE)``."""
    from gan_contract.grid import make_grid
    from gan_contract.model_card import read_model_card
    from gan_contract.seeds import parse_seeds, seeds_to_z
    from training.sampling import resolve_version_dir, save_png

    args = build_sample_parser().parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds, MAX_SAMPLE_SEEDS)
        version_dir = resolve_version_dir(args.model_dir)
        info = read_model_card(version_dir)
    except (ValueError, OSError) as error:  # ContractError and ModelDirError are ValueErrors
        _fail("gan-sample", str(error))
    num_classes = int(info.get("num_classes", 0))
    if args.class_label is not None and num_classes == 0:
        _fail("gan-sample", "--class given, but the model is unconditional")
    if args.class_label is not None and not 0 <= args.class_label < num_classes:
        _fail("gan-sample", f"--class must be in 0..{num_classes - 1}, got {args.class_label}")
    if not 0 <= args.padding <= 64:
        _fail("gan-sample", f"--padding must be in 0..64, got {args.padding}")
    if not args.psi > 0:
        _fail("gan-sample", f"--psi must be positive, got {args.psi}")
    if (args.walk is None) != (args.out is None):
        _fail("gan-sample", "--walk and --out go together (--out FILE.webp or FILE.gif)")
    if args.walk is not None:
        return _sample_walk(args, version_dir, info)
    if num_classes and args.class_label is None:
        classes = list(range(num_classes))  # every seed in every class, row by row
    else:
        classes = [args.class_label or 0]
    require_packages("gan-sample", SAMPLE_NEEDS)
    if args.dry_run:
        resolved = {
            "model": str(version_dir),
            "seeds": seeds,
            "psi": args.psi,
            "classes": classes if num_classes else [],
            "outdir": str(args.outdir),
            "grid": str(args.grid),
        }
        print(json.dumps(resolved, indent=2))
        return 0

    load_tensorflow("gan-sample")
    import numpy as np
    import tensorflow as tf

    generate = tf.saved_model.load(str(version_dir)).signatures["generate"]
    z_all = np.concatenate([seeds_to_z(seeds, int(info["z_dim"]))] * len(classes))
    labels_all = np.repeat(np.array(classes, np.int32), len(seeds))
    images = np.concatenate([
        generate(z=tf.constant(z_all[i : i + 256]), labels=tf.constant(labels_all[i : i + 256]),
                 truncation_psi=tf.constant(args.psi, tf.float32))["images"].numpy()
        for i in range(0, len(z_all), 256)
    ])  # fmt: skip
    if args.grid is not None:
        columns = len(seeds) if len(classes) > 1 else None
        save_png(make_grid(images, columns, padding=args.padding), args.grid)
        print(f"wrote {args.grid} ({len(images)} images from {version_dir})")
        return 0
    for image, seed, label in zip(images, seeds * len(classes), labels_all, strict=True):
        suffix = f"-class{label}" if num_classes else ""
        save_png(image, args.outdir / f"seed{seed:04d}{suffix}.png")
    print(f"wrote {len(images)} images to {args.outdir} from {version_dir}")
    return 0


def _sample_walk(args: argparse.Namespace, version_dir: Path, info: dict[str, Any]) -> int:
    """``gan-sample --walk SEEDS --out FILE``: the animation POST /animate gives (defaults)."""
    from gan_contract.animation import encode_animation
    from gan_contract.seeds import parse_seeds, seeds_to_z
    from gan_contract.walks import walk

    fmt = args.out.suffix.lower().lstrip(".")
    if fmt not in ("webp", "gif"):
        _fail("gan-sample", f"--out must end in .webp or .gif, got {args.out.name!r}")
    try:
        seeds = parse_seeds(args.walk, 64)
    except ValueError as error:
        _fail("gan-sample", str(error))
    if not 2 <= len(seeds) <= 64:
        _fail("gan-sample", f"--walk needs 2..64 seeds, got {len(seeds)}")
    if not 2 <= args.frames <= 1000:
        _fail("gan-sample", f"--frames must be in 2..1000, got {args.frames}")
    if not 1 <= args.fps <= 60:
        _fail("gan-sample", f"--fps must be in 1..60, got {args.fps}")
    num_classes = int(info.get("num_classes", 0))
    key_labels = None
    if num_classes:  # as the service: the seed modulo the number of classes, unless --class
        key_labels = [args.class_label if args.class_label is not None else s % num_classes
                      for s in seeds]  # fmt: skip
    z, labels = walk(seeds_to_z(seeds, int(info["z_dim"])), args.frames, labels=key_labels)
    if args.dry_run:
        print(json.dumps({"model": str(version_dir), "walk": seeds, "frames": args.frames,
                          "labels": labels.tolist(), "out": str(args.out)}, indent=2))  # fmt: skip
        return 0

    require_packages("gan-sample", SAMPLE_NEEDS)
    load_tensorflow("gan-sample")
    import numpy as np
    import tensorflow as tf

    generate = tf.saved_model.load(str(version_dir)).signatures["generate"]
    images = np.concatenate([
        generate(z=tf.constant(z[i : i + 256]), labels=tf.constant(labels[i : i + 256]),
                 truncation_psi=tf.constant(args.psi, tf.float32))["images"].numpy()
        for i in range(0, len(z), 256)
    ])  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(encode_animation(images, fmt, fps=args.fps))
    print(f"wrote {args.out} ({len(images)} frames from {version_dir})")
    return 0
