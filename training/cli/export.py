"""``gan-export``: a training run's last checkpoint as a model version, or an encoder added to
an exported version.

A thin layer over :func:`training.export.export_run` and :func:`training.export.add_encoder`.
TensorFlow is loaded only after the arguments, the run directory and the installed packages are
checked (:mod:`training.cli.startup`); every failure is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from training.cli.startup import fail, load_tensorflow, one_line_errors, require_packages
from training.config import ConfigError
from training.nets.layouts import ENCODER_HIDDEN, ENCODER_WIDTH

EXAMPLES = """examples:
  gan-export runs/00000-digits --name digits          # -> models/digits/<next version>/
  gan-export runs/00000-digits --name digits --models-dir /srv/models --calibration 500
  gan-export runs/00000-mnist --name mnist --eval-num 10000   # metrics measured into model.json
  gan-export runs/00000-mnist --name mnist --encoder-steps 3000   # + encode and complete
  gan-export models/mnist/1 --name mnist --encoder-steps 3000      # add them to a model version
  gan-export models/mnist/1 --name mnist --encoder-steps 3000 --encoder-width 8 \
      --encoder-hidden 128                             # a smaller encoder (0.2M weights, not 0.85M)
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-export``."""
    parser = argparse.ArgumentParser(
        prog="gan-export",
        description="Export the last checkpoint of a training run as a model version "
        "(SavedModel with the generate and score signatures, plus model.json).",
        epilog=EXAMPLES,
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
        "--encoder-width", type=int, default=ENCODER_WIDTH, metavar="N",
        help="channels of the encoder's first convolution, doubling per level up to 256 "
        "[%(default)s]",
    )  # fmt: skip
    parser.add_argument(
        "--encoder-hidden", type=int, default=ENCODER_HIDDEN, metavar="N",
        help="units of the dense layer in each of the encoder's branches [%(default)s]",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved options and exit"
    )
    return parser


@one_line_errors("gan-export")
def main(argv: Sequence[str] | None = None) -> int:
    """``gan-export RUN_DIR --name NAME``."""
    args = build_parser().parse_args(argv)
    if args.encoder_width < 1 or args.encoder_hidden < 1:
        fail("gan-export", "--encoder-width and --encoder-hidden must be at least 1")
    if (args.run_dir / "saved_model.pb").is_file():
        return _add_encoder(args)
    from training.rundir import read_run

    try:
        config, _ = read_run(args.run_dir)
    except ConfigError as error:
        fail("gan-export", str(error))
    if args.calibration < 1:
        fail("gan-export", "--calibration must be at least 1")
    if args.encoder_steps < 0:
        fail("gan-export", "--encoder-steps must be 0 (none) or more")
    if args.eval_num < 0:
        fail("gan-export", "--eval-num must be 0 (off) or a positive number of samples")
    if not args.name or "/" in args.name or args.name.startswith("."):
        fail("gan-export", f"bad model name {args.name!r}: use a plain directory name")
    require_packages("gan-export")
    if args.dry_run:
        resolved = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        print(json.dumps({**resolved, "training_options": config.to_dict()}, indent=2))
        return 0
    load_tensorflow("gan-export", ", then the run's checkpoint")
    from training.data import DatasetError
    from training.export import EncoderSize, ExportError, export_run
    from training.metrics.callback import last_eval_metrics
    from training.metrics.extractors import ExtractorError

    try:
        version_dir = export_run(
            args.run_dir, args.models_dir, args.name, calibration_count=args.calibration,
            metrics=last_eval_metrics(args.run_dir), eval_num=args.eval_num,
            encoder_steps=args.encoder_steps, verbose=True,
            encoder_size=EncoderSize(args.encoder_width, args.encoder_hidden),
        )  # fmt: skip
    except (ExportError, DatasetError, ExtractorError, OSError) as error:
        fail("gan-export", str(error))
    print(f"exported {version_dir}")
    return 0


def _add_encoder(args: argparse.Namespace) -> int:
    """``gan-export MODEL_VERSION_DIR --name NAME --encoder-steps N``."""
    if args.encoder_steps < 1:
        fail("gan-export", "an exported model version needs --encoder-steps N (N >= 1)")
    if not args.name or "/" in args.name or args.name.startswith("."):
        fail("gan-export", f"bad model name {args.name!r}: use a plain directory name")
    if args.dry_run:
        print(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
        return 0
    require_packages("gan-export")
    load_tensorflow("gan-export", ", then the model and its generator")
    from training.export import EncoderSize, ExportError, add_encoder

    try:
        version_dir = add_encoder(
            args.run_dir, args.models_dir, args.name, args.encoder_steps, verbose=True,
            size=EncoderSize(args.encoder_width, args.encoder_hidden),
        )  # fmt: skip
    except (ExportError, ConfigError, KeyError, ValueError) as error:
        fail("gan-export", f"cannot add an encoder to {args.run_dir}: {error}")
    print(f"exported {version_dir}")
    return 0
